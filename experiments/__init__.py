"""Running studies: splitters, metrics, the sweep runner, tables and figures, and the CLI.

``experiments`` knows the papers only through the specs registered in ``experiments.configs``
(one module per paper table) and the dotted path of each paper's task.
"""

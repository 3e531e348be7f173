"""Running studies: splitters, metrics, the sweep runner, tables and figures, and the CLI.

``experiments`` knows the papers only through the specs registered in ``experiments.configs``
(one module per paper table) and the dotted path of each paper's task; it imports no paper package.

Modules
-------
spec, registry, configs/   experiment specs (rows, profiles), their registry, one module per paper's tables
task                       the task protocol (prepare, folds, run_fold), Prepared, RunOptions
runner, executors          a sweep = rows x folds, each fold stored atomically; local, process pool, Ray
cli, __main__, errors      ``python -m experiments``; the one-line error policy (CliParser, run_cli)
cv, metrics, references    splitters (leakage-checked); metrics; the floor and classical rows
training, batchnorm        the fast and fold-parallel training path; precise batch norm
store, provenance          atomic writes, the cache folder, load_or_compute; code hashes and library versions
search                     keras-tuner projects keyed per fold, and the search command of every paper
tables, plots              stored folds -> Markdown/CSV tables beside the paper's numbers; figures
console, phases, seeding, versions, devices, flops   printing, timing, seeds, version checks, devices, FLOPs
"""

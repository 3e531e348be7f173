"""One module per paper table. Each defines ``EXPERIMENTS``: a tuple of
:class:`~experiments.spec.ExperimentSpec` naming the paper task that runs its rows."""

"""What an experiment is: rows (configurations) of a paper's table, profiles, and the task that runs them.

Experiments know papers only through these specs (one module per table in
``experiments.configs``) and the dotted path of the paper's :class:`~experiments.task.Task`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from experiments.errors import UnknownNameError


@dataclass(frozen=True)
class Profile:
    """A named amount of work. ``params`` are read by the task (subjects, epochs, minutes of
    recording, folds); ``description`` says what it reduces relative to the paper."""

    name: str
    params: dict
    description: str


@dataclass(frozen=True)
class Row:
    """One row of a paper's table.

    name    stable id, also the folder of its stored fold results (shared between tables)
    config  keyword arguments of the task's ``run_fold``; ``None`` for rows we only quote
    label   the row's descriptive columns, in order (e.g. direction, stages)
    paper   the paper's published numbers for this row, metric name -> percent
    """

    name: str
    config: dict | None
    label: dict
    paper: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    title: str
    task: str  # "package.module:TaskClass"
    rows: tuple[Row, ...]
    profiles: dict[str, Profile]
    metrics: tuple[str, ...]
    notes: tuple[str, ...] = ()
    default_profile: str = "quick"
    #: how the tables show the spread over folds: "std" (mean ± sample std) or "ci95"
    #: (mean ± half-width of the two-sided 95 % Student's t interval, n-1 dof)
    spread: str = "std"
    #: the metric the table compares with the ``floor`` row ("vs floor" column); default: the first
    primary: str | None = None
    #: optional: a row name; the table adds the paired per-fold difference of the primary metric of
    #: every other row against it (mean, and how many folds the row is ahead / behind)
    compare_to: str | None = None
    #: optional: profile name -> the row names that profile runs and shows (default: every row)
    profile_rows: dict | None = None

    def __post_init__(self):
        if self.spread not in ("std", "ci95"):
            raise ValueError(f"experiment {self.name!r}: spread {self.spread!r} (expected 'std' or 'ci95')")
        if self.primary is not None and self.primary not in self.metrics:
            raise ValueError(f"experiment {self.name!r}: primary {self.primary!r} (expected one of {self.metrics})")

    @property
    def primary_metric(self) -> str:
        return self.primary or self.metrics[0]

    def for_profile(self, profile: str) -> "ExperimentSpec":
        """This spec with only the rows ``profile_rows`` gives ``profile`` (itself when none are given)."""
        names = (self.profile_rows or {}).get(profile)
        if names is None:
            return self
        from dataclasses import replace

        return replace(self, rows=tuple(self.row(n) for n in names), profile_rows=None)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise UnknownNameError(f"experiment {self.name!r} has no row {name!r}; rows: {[r.name for r in self.rows]}")

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UnknownNameError(f"experiment {self.name!r} has no profile {name!r}; "
                                   f"profiles: {sorted(self.profiles)}")
        return self.profiles[name]

    @property
    def runnable_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.config is not None)

    @property
    def model_rows(self) -> tuple[Row, ...]:
        """The runnable rows that train a model: all but the ``floor`` and ``classical`` reference rows
        (:mod:`experiments.references`)."""
        return tuple(r for r in self.runnable_rows if "reference" not in r.config)

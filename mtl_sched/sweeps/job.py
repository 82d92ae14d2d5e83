"""What a sweep runs: a scheduler comparison's trials, or any job that can tell whether it is
stored and can run itself.

A comparison's `mtl_sched.sweeps.spec.TrialSpec` is run by `mtl_sched.sweeps.trial.run_trial`;
a study can define its own jobs (the Q-MTL study's models are, `mtl_sched.studies.qmtl.jobs`),
which a backend runs by calling ``job.run(store_path, report, threads)`` in a worker
(`mtl_sched.sweeps.backends.run_job` does either). Both must be picklable (a frozen dataclass of
plain values) and write their own trial(s) to the store before they return.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mtl_sched.results import TrialKey

# Called with (examples seen, budget) as a job trains.
ProgressReport = Callable[[int, int], None]


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished job reports back.

    :param key: the store key of the trial it wrote (or found).
    :param written: whether this call wrote the trial (``False``: it was already stored).
    :param wall_time: seconds this call took.
    """

    key: TrialKey
    written: bool
    wall_time: float


@runtime_checkable
class SweepJob(Protocol):
    """One unit of a sweep."""

    @property
    def label(self) -> str:
        """Short name for progress bars and failure messages."""
        ...

    def is_stored(self, finished: Set[TrialKey]) -> bool:
        """Whether the job's results are already there (it is then skipped).

        :param finished: every trial key of the store.
        """
        ...

    def run(
        self, store_path: str, report: ProgressReport | None = None, threads: int | None = 1
    ) -> TrialOutcome:
        """Run the job and store its results, unless they are stored.

        :param store_path: the results store file.
        :param report: progress callback, ``(examples seen, budget)``.
        :param threads: torch threads of this process (one per worker, so that workers do not
            oversubscribe the cores); ``None`` leaves the setting alone.
        """
        ...

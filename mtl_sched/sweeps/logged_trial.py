"""A comparison trial that also writes TensorBoard events: `TensorBoardTrial`.

It is a sweep job (`mtl_sched.sweeps.job.SweepJob`) wrapping a `TrialSpec`: stored, labelled and
run like it, with a `mtl_sched.training.tensorboard.TensorBoardObserver` made in the worker process
that runs it (an observer holds an open event file, which does not travel between processes).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path

from mtl_sched.results import TrialKey
from mtl_sched.sweeps.job import ProgressReport, TrialOutcome
from mtl_sched.sweeps.spec import TrialSpec
from mtl_sched.sweeps.trial import run_trial
from mtl_sched.training.tensorboard import close_observers, optional_observers, run_log_dir


@dataclass(frozen=True)
class TensorBoardTrial:
    """``spec``'s trial, with its validation curves and task shares written under ``root``.

    :param spec: the trial.
    :param root: the TensorBoard root; the run writes to `run_log_dir` under it.
    """

    spec: TrialSpec
    root: str

    @property
    def label(self) -> str:
        """The trial's label."""
        return self.spec.label

    @property
    def log_dir(self) -> Path:
        """The trial's event directory."""
        spec = self.spec
        return run_log_dir(self.root, spec.benchmark, spec.scheduler, spec.seed, spec.left_out)

    def is_stored(self, finished: Set[TrialKey]) -> bool:
        """Whether the store already holds the trial.

        :param finished: every trial key of the store.
        """
        return self.spec.is_stored(finished)

    def run(
        self, store_path: str, report: ProgressReport | None = None, threads: int | None = 1
    ) -> TrialOutcome:
        """Train and store the trial, writing its events (`mtl_sched.sweeps.trial.run_trial`).

        :param store_path: the results store file.
        :param report: progress callback, ``(examples seen, budget)``.
        :param threads: torch threads of this process; ``None`` leaves the setting alone.
        """
        observers = optional_observers(self.log_dir)
        try:
            return run_trial(self.spec, store_path, report, threads, observers=observers)
        finally:
            close_observers(observers)


def with_tensorboard(specs: Sequence[TrialSpec], root: str | Path) -> list[TensorBoardTrial]:
    """Every trial of ``specs`` writing TensorBoard events under ``root``.

    :param specs: the planned trials.
    :param root: the TensorBoard root directory.
    """
    return [TensorBoardTrial(spec, str(root)) for spec in specs]

"""TensorBoard events of training runs: `TensorBoardObserver`, a `RunObserver`.

A run's directory receives, against the training examples seen (the budget's unit):

- ``validation/<task>/score`` and ``validation/<task>/loss`` at every validation evaluation,
  with ``validation/average_score``;
- ``share/<task>``: the fraction of all examples so far that went to the task, and
  ``share_since_last/<task>``: its fraction of the examples since the previous evaluation (what
  the scheduler chose lately; a phased schedule shows its stages here);
- ``test/<task>/score`` and ``test/average_score`` of the model selected on validation, once,
  at the end.

`run_log_dir` names one run's directory under a root: ``<benchmark>/<scheduler>-seed<N>``, so
that ``tensorboard --logdir ROOT`` shows each benchmark's schedulers side by side. Writing needs
the ``tensorboard`` package (`tensorboard_available`); `optional_observers` gives no observer
without it, so the commands run the same either way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtl_sched.scheduling import EvalResult

if TYPE_CHECKING:
    from mtl_sched.training import RunResult
    from mtl_sched.training.observers import RunObserver


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package, which writing events needs, is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def run_log_dir(
    root: str | Path, benchmark: str, scheduler: str, seed: int, left_out: str | None = None
) -> Path:
    """The event directory of one run: ``ROOT/<benchmark>/<scheduler>-seed<N>``, with
    ``-without-<task>`` for a leave-one-out run.

    :param root: the directory given to ``tensorboard --logdir``.
    :param benchmark: benchmark name.
    :param scheduler: scheduler name.
    :param seed: run seed.
    :param left_out: the task a leave-one-out run trains without.
    """
    name = f"{scheduler}-seed{seed}" + (f"-without-{left_out}" if left_out else "")
    return Path(root) / benchmark / name


class TensorBoardObserver:
    """Writes a run's validation curves and task shares as TensorBoard scalars.

    :param log_dir: the run's event directory (created when missing); see `run_log_dir`.
    :raises ImportError: naming ``pip install tensorboard`` when it is not installed.
    """

    def __init__(self, log_dir: str | Path) -> None:
        if not tensorboard_available():
            raise ImportError(
                "TensorBoard logging needs the tensorboard package: pip install tensorboard"
            )
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self._last_counts: np.ndarray | None = None

    def on_evaluation(
        self,
        step: int,
        examples_seen: int,
        metrics: EvalResult,
        task_shares: Mapping[str, float],
    ) -> None:
        """Write the evaluation's scalars at ``examples_seen`` (see the module docstring).

        :param step: training steps taken so far (not written: examples are the x axis).
        :param examples_seen: training examples consumed so far.
        :param metrics: the validation result, in the order of ``task_shares``.
        :param task_shares: task name -> fraction of the examples so far.
        """
        del step
        names = list(task_shares)
        for name, score, loss in zip(names, metrics.scores, metrics.losses, strict=True):
            self._writer.add_scalar(f"validation/{name}/score", float(score), examples_seen)
            self._writer.add_scalar(f"validation/{name}/loss", float(loss), examples_seen)
        self._writer.add_scalar(
            "validation/average_score", float(metrics.average_score), examples_seen
        )
        shares = np.array([task_shares[name] for name in names])
        counts = shares * examples_seen
        recent = counts - (self._last_counts if self._last_counts is not None else 0.0)
        recent_total = recent.sum()
        for name, share, part in zip(names, shares, recent, strict=True):
            self._writer.add_scalar(f"share/{name}", float(share), examples_seen)
            if recent_total > 0:
                value = float(part / recent_total)
                self._writer.add_scalar(f"share_since_last/{name}", value, examples_seen)
        self._last_counts = counts
        # a few evaluations per run: flushing each keeps the curves of a failed run on disk
        self._writer.flush()

    def on_end(self, result: RunResult) -> None:
        """Write the selected model's test scores and close the event file.

        :param result: the finished run.
        """
        seen = result.examples_seen
        for name, score in zip(result.task_names, result.test.scores, strict=True):
            self._writer.add_scalar(f"test/{name}/score", float(score), seen)
        self._writer.add_scalar("test/average_score", float(result.test.average_score), seen)
        self.close()

    def close(self) -> None:
        """Flush and close the event file (also when the run failed before its end)."""
        self._writer.close()


def optional_observers(log_dir: str | Path | None) -> list[RunObserver]:
    """A `TensorBoardObserver` of ``log_dir`` when one is given and tensorboard is installed;
    no observer otherwise.

    :param log_dir: the run's event directory, or ``None`` for no TensorBoard events.
    """
    if log_dir is None or not tensorboard_available():
        return []
    return [TensorBoardObserver(log_dir)]


def close_observers(observers: list[Any]) -> None:
    """Close the observers that can be closed (a failed run's event files included).

    :param observers: observers given to a run.
    """
    for observer in observers:
        close = getattr(observer, "close", None)
        if callable(close):
            close()

"""Dynamic weight average (Liu, Johns and Davison 2019): slowly falling losses weigh more."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import EvalOutcome, Scheduler, Step, StepOutcome, TrainState


def dwa_weights(older_means: np.ndarray, newer_means: np.ndarray, temperature: float) -> np.ndarray:
    """``w_k = K exp(r_k / T) / sum_j exp(r_j / T)`` with ``r_k = newer_k / older_k``.

    The weights sum to ``K``, so that ``T -> inf`` gives uniform weighting (every weight 1).

    :param older_means: mean loss of each task over the older window, ``Lbar_k(t-2)``.
    :param newer_means: mean loss of each task over the newer window, ``Lbar_k(t-1)``.
    :param temperature: ``T``; larger values make the weights more uniform.
    """
    rates = np.asarray(newer_means, dtype=float) / np.asarray(older_means, dtype=float)
    return len(rates) * softmax(rates / temperature)


@register_scheduler
class DWAScheduler(Scheduler):
    """Train every task every step with the dynamic weight average of Liu, Johns and Davison
    (2019, "End-to-end multi-task learning with attention", eq. 7):

    ``w_k(t) = K exp(r_k(t-1) / T) / sum_j exp(r_j(t-1) / T)``,
    ``r_k(t-1) = Lbar_k(t-1) / Lbar_k(t-2)``.

    The paper's ``Lbar_k(t)`` is task ``k``'s mean loss over epoch ``t``; runs here are budgets
    of examples rather than epochs, so ``Lbar_k`` is the mean training minibatch loss of task
    ``k`` (``StepOutcome.task_losses``) over consecutive windows of ``window`` optimizer steps.
    The weights change once per window and are constants of the loss; during the first two
    windows, before two means exist, every weight is 1, as in the paper. A task that trained in
    neither of the last two windows keeps the rate 1. ``torchjd.scalarization.DWA`` computes the
    same weights per epoch.

    :param temperature: ``T``; the paper uses 2.
    :param window: optimizer steps per window. The default, 5, averages five minibatches per
        task (160 examples at batch size 32, which smooths most minibatch noise out of the
        ratio) while leaving many windows in a short run: the synthetic benchmark's 9600-example
        budget is 75 weighting steps, 15 windows, and the weights adapt from step 10 on.
    """

    name = "dwa"
    description = "every task every step; tasks whose windowed loss falls slowly weigh more"
    source = "Liu, Johns and Davison 2019 (dynamic weight average, CVPR)"
    kind = "weighting"
    task_symmetric = True

    def __init__(self, temperature: float = 2.0, window: int = 5) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive number of steps; got {window!r}")
        self.temperature = temperature
        self.window = window
        self.current_weights = np.zeros(0)
        self._loss_sums = np.zeros(0)
        self._loss_counts = np.zeros(0)
        self._steps_in_window = 0
        self._window_means: list[np.ndarray] = []

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self.current_weights = np.ones(self.num_tasks)
        self._loss_sums = np.zeros(self.num_tasks)
        self._loss_counts = np.zeros(self.num_tasks)
        self._steps_in_window = 0
        self._window_means = []

    @property
    def window_means(self) -> list[np.ndarray]:
        """The mean task losses of the last (at most two) completed windows, oldest first; NaN
        for a task that did not train in a window."""
        return list(self._window_means)

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.current_weights)

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:
        if not isinstance(outcome, StepOutcome) or outcome.skipped:
            return
        tasks = list(outcome.plan.tasks)
        self._loss_sums[tasks] += outcome.task_losses
        self._loss_counts[tasks] += 1
        self._steps_in_window += 1
        if self._steps_in_window == self.window:
            self._close_window()

    def _close_window(self) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self._loss_sums / self._loss_counts
        self._window_means = [*self._window_means, means][-2:]
        self._loss_sums = np.zeros(self.num_tasks)
        self._loss_counts = np.zeros(self.num_tasks)
        self._steps_in_window = 0
        if len(self._window_means) == 2:
            older, newer = self._window_means
            # a missing or zero mean has no descending rate: neutral ratio 1 for that task
            known = np.isfinite(older) & np.isfinite(newer) & (older > 0)
            self.current_weights = dwa_weights(
                np.where(known, older, 1.0), np.where(known, newer, 1.0), self.temperature
            )

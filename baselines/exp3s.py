"""Exp3.S (Graves et al. 2017, automated curriculum learning): a non-stationary bandit over
tasks, rewarded by learning progress."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from mtl_sched.baselines.common import SamplingScheduler
from mtl_sched.data.task import Task
from mtl_sched.models.base import Batch, MTLModel
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import CombineContext, EvalOutcome, LoopNeed, StepOutcome, TrainState


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ascending ``sorted_values``, interpolated linearly between
    order statistics (NumPy's default method)."""
    position = q / 100.0 * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    fraction = position - below
    return sorted_values[below] + fraction * (sorted_values[above] - sorted_values[below])


def rescale_reward(raw: float, q_low: float, q_high: float) -> float:
    """``raw`` mapped to ``[-1, 1]``: -1 up to ``q_low``, 1 from ``q_high``, linear between;
    0 while the two coincide (too little history to tell a good reward from a bad one)."""
    if q_high <= q_low:
        return 0.0
    if raw <= q_low:
        return -1.0
    if raw >= q_high:
        return 1.0
    return 2.0 * (raw - q_low) / (q_high - q_low) - 1.0


@register_scheduler
class Exp3SScheduler(SamplingScheduler):
    """Sample tasks from ``pi = (1 - eps) softmax(w) + eps / K`` and update ``w`` with the
    learning progress each choice brought.

    Raw reward of a step: ``progress="prediction-gain"`` (Graves et al.'s prediction gain) is
    the chosen task's loss on the step's minibatch before the update minus after it (two extra
    forward passes of that minibatch, in evaluation mode); ``progress="loss-change"`` is the
    task's previous training-minibatch loss minus the current one (free, noisier; the reward is
    0 on a task's first step). The raw reward is rescaled to ``[-1, 1]`` by the 20th and 80th
    percentiles of the last ``history_size`` raw rewards (the paper keeps a reservoir sample
    of all of them; a window follows a changing reward scale), importance-weighted as
    ``r / pi(k)`` for the chosen task ``k`` (0 for the others), and applied with fixed share:
    ``w_i <- log[(1 - a_t) exp(w_i + eta r_i) + a_t / (K - 1) sum_{j != i} exp(w_j + eta r_j)]``,
    ``a_t = 1 / t`` at the ``t``-th update.

    :param eta: learning rate of the weights. The paper uses 1e-3 over 10^5+ steps; the
        default 1e-2, the top of ALGORITHMS.md's range, suits runs of hundreds of steps.
    :param epsilon: share of the policy spread uniformly over the tasks.
    :param progress: ``"prediction-gain"`` or ``"loss-change"`` (see above).
    :param history_size: raw rewards kept for the percentile rescaling.
    :param low_percentile: percentile mapped to -1.
    :param high_percentile: percentile mapped to 1.
    """

    name = "exp3s"
    description = "Exp3.S bandit over tasks rewarded by learning progress (automated curriculum)"
    source = "Graves et al. 2017 (automated curriculum learning, Exp3.S)"
    task_symmetric = True
    needs = frozenset({"model", "batches"})

    def __init__(
        self,
        eta: float = 1e-2,
        epsilon: float = 0.05,
        progress: Literal["prediction-gain", "loss-change"] = "prediction-gain",
        history_size: int = 1000,
        low_percentile: float = 20.0,
        high_percentile: float = 80.0,
    ) -> None:
        super().__init__()
        if not eta > 0:
            raise ValueError(f"eta must be positive; got {eta}")
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
        if progress not in ("prediction-gain", "loss-change"):
            raise ValueError(
                f"progress must be 'prediction-gain' or 'loss-change'; got {progress!r}"
            )
        if history_size < 1:
            raise ValueError(f"history_size must be positive; got {history_size}")
        if not 0 <= low_percentile < high_percentile <= 100:
            raise ValueError(
                f"need 0 <= low_percentile < high_percentile <= 100; got {low_percentile}, "
                f"{high_percentile}"
            )
        self.eta = eta
        self.epsilon = epsilon
        self.progress = progress
        self.history_size = history_size
        self.low_percentile = low_percentile
        self.high_percentile = high_percentile
        self.log_weights = np.zeros(0)
        self.updates = 0
        self.history: deque[float] = deque(maxlen=history_size)
        self._sorted_history: list[float] = []  # the same rewards, kept sorted for percentiles
        self._last_probabilities = np.zeros(0)
        self._last_train_loss = np.zeros(0)
        self._pending: tuple[MTLModel, str, Batch, float] | None = None

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self.log_weights = np.zeros(self.num_tasks)
        self.updates = 0
        self.history = deque(maxlen=self.history_size)
        self._sorted_history = []
        self._last_probabilities = self.policy()
        self._last_train_loss = np.full(self.num_tasks, np.nan)
        self._pending = None

    def loop_needs(self) -> frozenset[LoopNeed]:
        # the loss change is read from the reported losses; the prediction gain re-evaluates
        # the step's minibatch with the model
        return frozenset() if self.progress == "loss-change" else self.needs

    def policy(self) -> np.ndarray:
        """``pi = (1 - eps) softmax(w) + eps / K``."""
        exp = np.exp(self.log_weights - self.log_weights.max())
        softmax = exp / exp.sum()
        return (1.0 - self.epsilon) * softmax + self.epsilon / self.num_tasks

    def probabilities(self, state: TrainState) -> np.ndarray:
        self._last_probabilities = self.policy()
        return self._last_probabilities.copy()

    def update(self, task: int, raw_reward: float) -> None:
        """One Exp3.S update for a pull of ``task`` that earned ``raw_reward``.

        The importance weight uses the policy of the latest ``probabilities`` call (the one
        the task was drawn from).
        """
        if len(self.history) == self.history_size:
            del self._sorted_history[bisect.bisect_left(self._sorted_history, self.history[0])]
        self.history.append(float(raw_reward))
        bisect.insort(self._sorted_history, float(raw_reward))
        reward = rescale_reward(
            raw_reward,
            percentile(self._sorted_history, self.low_percentile),
            percentile(self._sorted_history, self.high_percentile),
        )
        self.updates += 1
        gains = np.zeros(self.num_tasks)
        gains[task] = self.eta * reward / self._last_probabilities[task]
        boosted = self.log_weights + gains
        # the update is invariant to shifting every w_i by one constant: shifting by the max
        # keeps exp() in (0, 1] and the weights bounded over long runs
        exp = np.exp(boosted - boosted.max())
        if self.num_tasks == 1:
            self.log_weights = np.zeros(1)
            return
        share = 1.0 / self.updates
        mixed = (1.0 - share) * exp + share / (self.num_tasks - 1) * (exp.sum() - exp)
        self.log_weights = np.log(mixed)

    @torch.no_grad()
    def _evaluation_loss(self, model: MTLModel, task: str, batch: Batch) -> float:
        was_training = model.training  # type: ignore[attr-defined]
        model.eval()
        try:
            return float(model.task_output(task, batch).loss())
        finally:
            model.train(was_training)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        if self.progress == "prediction-gain" and context.batches:
            k = context.plan.tasks[0]
            name, batch = self.task_names[k], context.batches[0]
            before = self._evaluation_loss(context.model, name, batch)
            self._pending = (context.model, name, batch, before)
        return super().combine(losses, context)

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:
        if not isinstance(outcome, StepOutcome):
            return
        k = outcome.plan.tasks[0]
        loss = outcome.task_losses[0]
        if self.progress == "prediction-gain":
            if self._pending is None:
                raise RuntimeError(
                    "exp3s with progress='prediction-gain' needs the step's minibatch: in a "
                    "loop of your own, call driver.combine(losses, model=your_model, "
                    "batches=batches) before driver.report(...) (the Trainer passes them)"
                )
            model, name, batch, before = self._pending
            self._pending = None
            raw = before - self._evaluation_loss(model, name, batch)
        else:
            previous = self._last_train_loss[k]
            raw = 0.0 if np.isnan(previous) else float(previous - loss)
        self._last_train_loss[k] = loss
        self.update(k, raw)

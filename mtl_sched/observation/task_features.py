"""Per-task feature observations: one row of features per task, for agents that score each task
from its own row and a pooled summary of all rows, and so work for any number of tasks ``K`` and
any task order.

Row ``k`` of `TaskFeatureTracker.features` holds ``F = bins + 7`` values (`task_feature_size`):

- columns ``0 .. bins-1``: task ``k``'s normalized uncertainty histogram from the probe pass
  (`mtl_sched.observation.probing.ProbeResult.histograms`), in ``[0, 1]``;
- ``relative_loss``: ``clip(L_k / max(L0_k, 1e-8), 0, 4)``, the task's probe loss ``L_k`` relative
  to its loss ``L0_k`` at the start of the run (1 at the start, below 1 once it improves);
- ``accuracy``: the task's probe accuracy, in ``[0, 1]``;
- ``loss_change``: ``clip((Lprev_k - L_k) / max(L0_k, 1e-8), -1, 1)``, how much the loss fell since
  the previous decision (``Lprev``: the losses of the previous `TaskFeatureTracker.features` call;
  0 at the first call of a run), in units of the initial loss;
- ``recency``: an exponential moving average of the one-hot choices of this task,
  ``trace <- decay * trace + (1 - decay) * onehot(choice)``
  (`mtl_sched.observation.recency.ChoiceTrace`), in ``[0, 1]``;
- ``example_share``: ``examples_per_task[k] / max(examples_seen, 1)``, the task's share of the
  training examples consumed so far, in ``[0, 1]``;
- ``progress``: ``clip(examples_seen / budget, 0, 1)``, how much of the run's example budget is
  spent (0 when there is no budget); the same in every row;
- ``inverse_task_count``: ``1 / K``, the same in every row, so that a network pooling over rows
  still knows how many tasks there are.

Every value lies in ``[-1, 4]``. Losses are relative to each task's own initial loss so that tasks
with losses of different scales (and different numbers of classes) give comparable rows.

`pad_task_features` pads a ``(K, F)`` array to ``max_tasks`` rows and appends a mask column (1 for
a real task, 0 for a padded slot), so that runs of different ``K`` share one observation space;
`task_mask` reads that column back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtl_sched.observation.probing import ProbeResult
from mtl_sched.observation.recency import ChoiceTrace, check_recency_decay

TASK_FEATURE_NAMES: tuple[str, ...] = (
    "relative_loss",
    "accuracy",
    "loss_change",
    "recency",
    "example_share",
    "progress",
    "inverse_task_count",
)

# losses are divided by the initial loss; a task that starts at (almost) 0 loss must not blow up
_LOSS_FLOOR = 1e-8
_MAX_RELATIVE_LOSS = 4.0


def task_feature_size(bins: int) -> int:
    """Features per task ``F``: the histogram bins followed by `TASK_FEATURE_NAMES`.

    :param bins: histogram bins per task.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1; got {bins}")
    return bins + len(TASK_FEATURE_NAMES)


class TaskFeatureTracker:
    """What the per-task features remember across the decisions of one training run: each task's
    initial probe loss, the losses at the previous decision and the recency trace.

    Call `reset` with the first probe pass of a run, `record` after each decision and `features`
    after each probe pass.

    :param num_tasks: the number of tasks ``K``.
    :param bins: histogram bins per task.
    :param recency_decay: decay of the recency trace, in ``(0, 1)``.
    """

    def __init__(self, num_tasks: int, bins: int, recency_decay: float = 0.9) -> None:
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be at least 1; got {num_tasks}")
        if recency_decay is None:
            raise ValueError("recency_decay must be in (0, 1); got None")
        self.num_tasks = num_tasks
        self.bins = bins
        self.size = task_feature_size(bins)
        self.recency = ChoiceTrace(num_tasks, check_recency_decay(recency_decay))
        self._initial_losses: np.ndarray | None = None
        self._previous_losses: np.ndarray | None = None

    def _losses(self, probe: ProbeResult) -> np.ndarray:
        shape = (self.num_tasks, self.bins)
        if np.shape(probe.histograms) != shape or np.shape(probe.losses) != (self.num_tasks,):
            raise ValueError(
                f"probe must have histograms of shape {shape} and {self.num_tasks} losses; got "
                f"{np.shape(probe.histograms)} and {np.shape(probe.losses)}"
            )
        return np.asarray(probe.losses, dtype=np.float64).copy()

    def reset(self, probe: ProbeResult) -> None:
        """Start a run: remember ``probe``'s losses as the initial ones and forget the choices.

        :param probe: the probe pass of the freshly initialized model.
        """
        losses = self._losses(probe)
        self._initial_losses = losses
        self._previous_losses = losses.copy()
        self.recency.reset()

    def record(self, task: int) -> None:
        """Count one decision that chose ``task``.

        :param task: the chosen task index.
        """
        if not 0 <= task < self.num_tasks:
            raise ValueError(f"task must be in [0, {self.num_tasks}); got {task}")
        self.recency.record(task)

    def features(
        self,
        probe: ProbeResult,
        examples_per_task: np.ndarray,
        examples_seen: int,
        budget: int,
    ) -> np.ndarray:
        """The ``(K, F)`` float32 features after ``probe`` (see the module docstring); the losses
        of ``probe`` become the previous losses of the next call.

        :param probe: the latest probe pass.
        :param examples_per_task: training examples consumed per task, shape ``(K,)``.
        :param examples_seen: training examples consumed in all.
        :param budget: the run's example budget (``<= 0``: none; ``progress`` is then 0).
        """
        if self._initial_losses is None or self._previous_losses is None:
            raise RuntimeError("call reset() before features()")
        losses = self._losses(probe)
        counts = np.asarray(examples_per_task, dtype=np.float64)
        if counts.shape != (self.num_tasks,):
            raise ValueError(
                f"examples_per_task must have shape ({self.num_tasks},); got {counts.shape}"
            )
        scale = np.maximum(self._initial_losses, _LOSS_FLOOR)
        progress = min(max(examples_seen / budget, 0.0), 1.0) if budget > 0 else 0.0
        scalars = np.column_stack(
            [
                np.clip(losses / scale, 0.0, _MAX_RELATIVE_LOSS),
                np.asarray(probe.accuracies, dtype=np.float64),
                np.clip((self._previous_losses - losses) / scale, -1.0, 1.0),
                self.recency.values,
                counts / max(examples_seen, 1),
                np.full(self.num_tasks, progress),
                np.full(self.num_tasks, 1.0 / self.num_tasks),
            ]
        )
        self._previous_losses = losses
        return np.concatenate([probe.histograms, scalars], axis=1).astype(np.float32)

    def get_state(self) -> dict[str, Any]:
        """Initial and previous losses and the recency trace (copies); `set_state` restores them."""
        return {
            "initial_losses": None if self._initial_losses is None else self._initial_losses.copy(),
            "previous_losses": (
                None if self._previous_losses is None else self._previous_losses.copy()
            ),
            "recency": self.recency.values.copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` of a tracker of the same ``num_tasks``.

        :param state: the stored state.
        """
        initial, previous = state["initial_losses"], state["previous_losses"]
        self._initial_losses = None if initial is None else np.array(initial, dtype=np.float64)
        self._previous_losses = None if previous is None else np.array(previous, dtype=np.float64)
        self.recency.values[:] = state["recency"]


def pad_task_features(features: np.ndarray, max_tasks: int) -> np.ndarray:
    """``features`` of ``K`` tasks padded to ``max_tasks`` rows, with a mask column appended.

    :param features: shape ``(K, F)``.
    :param max_tasks: rows of the result ``M >= K``.
    :returns: float32 of shape ``(M, F + 1)``: rows ``0 .. K-1`` are ``features`` followed by 1
        (the mask column, last), rows ``K .. M-1`` are all 0.
    """
    if np.ndim(features) != 2:
        raise ValueError(f"features must have shape (K, F); got {np.shape(features)}")
    num_tasks, size = features.shape
    if num_tasks > max_tasks:
        raise ValueError(f"max_tasks ({max_tasks}) is smaller than the {num_tasks} tasks")
    padded = np.zeros((max_tasks, size + 1), dtype=np.float32)
    padded[:num_tasks, :size] = features
    padded[:num_tasks, size] = 1.0
    return padded


# mask entries are exactly 0 or 1; the threshold only guards against rounding
MASK_THRESHOLD = 0.5


def task_mask(observation: np.ndarray) -> np.ndarray:
    """Which slots of padded observations hold real tasks: the mask column (last) above
    `MASK_THRESHOLD`.

    :param observation: shape ``(..., M, F + 1)`` (one observation or a batch).
    :returns: bool of shape ``(..., M)``.
    """
    if np.ndim(observation) < 2:
        raise ValueError(
            f"observation must have shape (..., M, F + 1); got {np.shape(observation)}"
        )
    return np.asarray(observation)[..., -1] > MASK_THRESHOLD

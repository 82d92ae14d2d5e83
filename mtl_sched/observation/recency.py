"""How recently each task was chosen, as extra observation features for scheduling agents.

The uncertainty histograms change slowly from one minibatch to the next, so a greedy policy that
sees only them tends to keep choosing the same task for long stretches while the shared encoder
drifts away from the others. `ChoiceTrace` adds ``K`` features: an exponential moving average of
the one-hot task choices, ``trace <- decay * trace + (1 - decay) * onehot(choice)``, which is 0 for
a task never chosen and approaches 1 for a task chosen every time. The environment and
`QLSScheduler` share this class, so an agent sees the same features in training and in use.
"""

from __future__ import annotations

import numpy as np


def check_recency_decay(decay: float | None) -> float | None:
    """``decay`` if it is ``None`` (no features) or in ``(0, 1)``; else a ``ValueError``."""
    if decay is not None and not 0.0 < decay < 1.0:
        raise ValueError(f"recency_decay must be in (0, 1) or None; got {decay}")
    return decay


class ChoiceTrace:
    """Exponential moving average of one-hot task choices.

    :param num_tasks: the number of tasks ``K``.
    :param decay: how much of the trace survives each choice, in ``(0, 1)``; ``None`` turns the
        features off (`size` is then 0 and `extend` returns the observation unchanged).
    """

    def __init__(self, num_tasks: int, decay: float | None) -> None:
        self.decay = check_recency_decay(decay)
        self.num_tasks = num_tasks
        self.values = np.zeros(self.size, dtype=np.float32)

    @property
    def size(self) -> int:
        """Features added to the observation: ``K``, or 0 when off."""
        return 0 if self.decay is None else self.num_tasks

    def reset(self) -> None:
        """Forget every choice (the start of a training run)."""
        self.values[:] = 0.0

    def record(self, task: int) -> None:
        """Count one choice of ``task``."""
        if self.decay is None:
            return
        self.values *= self.decay
        self.values[task] += 1.0 - self.decay

    def extend(self, observation: np.ndarray) -> np.ndarray:
        """``observation`` followed by the trace (a new float32 array)."""
        if self.decay is None:
            return observation
        return np.concatenate([observation, self.values]).astype(np.float32)

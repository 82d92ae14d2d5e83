"""Size-based sampling: proportional to the training-set sizes, or tempered toward uniform."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtl_sched.baselines.common import SamplingScheduler
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import TrainState


@register_scheduler
class TemperatureScheduler(SamplingScheduler):
    """Draw each step's task with probability ``p_k ∝ n_k^(1/T)``, ``n_k`` its training-set
    size.

    ``T = 1`` is proportional sampling (`ProportionalScheduler`), ``T -> inf`` uniform sampling.

    :param temperature: ``T > 0``. The default 2 is a common middle ground in multi-task NLP
        toolkits; ALGORITHMS.md gives no value.
    """

    name = "temperature"
    description = "sample a task with probability proportional to (training-set size)^(1/T)"
    source = "temperature sampling, common multi-task NLP practice (Jean et al. 2019 compare it)"
    task_symmetric = True
    needs = frozenset({"train_sizes"})

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        self.temperature = temperature
        self._probabilities = np.zeros(0)

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        sizes = np.asarray([t.size("train") for t in tasks], dtype=float)
        # in log space: sizes of millions raised to 1/T stay finite, and relative sizes matter
        logits = np.log(np.maximum(sizes, 1.0)) / self.temperature
        weights = np.exp(logits - logits.max())
        self._probabilities = weights / weights.sum()

    def probabilities(self, state: TrainState) -> np.ndarray:
        return self._probabilities.copy()


@register_scheduler
class ProportionalScheduler(TemperatureScheduler):
    """Draw each step's task with probability proportional to its training-set size."""

    name = "proportional"
    description = "sample a task with probability proportional to its training-set size"
    source = "size-proportional sampling, common multi-task practice (Jean et al. 2019)"

    def __init__(self) -> None:
        super().__init__(temperature=1.0)

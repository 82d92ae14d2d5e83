"""Random selection: an independently drawn task at every step."""

from __future__ import annotations

import numpy as np

from mtl_sched.baselines.common import SamplingScheduler
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Step, TrainState


@register_scheduler
class RandomScheduler(SamplingScheduler):
    """Pick a task uniformly at random for each step (seeded by ``reset``)."""

    name = "random"
    description = "a uniformly random task for each step"
    source = "seed 002, Table 2 (Random)"
    kind = "selection"
    task_symmetric = True

    def probabilities(self, state: TrainState) -> np.ndarray:
        return np.full(self.num_tasks, 1.0 / self.num_tasks)

    def plan(self, state: TrainState) -> Step:
        # an integer draw, cheaper than sampling the (uniform) distribution
        return Step.select(int(self.rng.integers(self.num_tasks)))

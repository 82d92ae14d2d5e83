"""Uniform weighting: every task, weight 1, every step (the fully-shared baseline)."""

from __future__ import annotations

from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState


@register_scheduler
class UniformScheduler(Scheduler):
    """Train every task at every step with equal loss weights (``L = sum_k L_k``)."""

    name = "uniform"
    description = "every task every step with equal loss weights (fully-shared MTL baseline)"
    source = "seed 002, Table 2 (Uniform baseline)"
    kind = "weighting"
    task_symmetric = True

    def plan(self, state: TrainState) -> Step:
        return Step.weighted([1.0] * self.num_tasks)

"""Random selection: an independently drawn task at every step."""

from __future__ import annotations

from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState


@register_scheduler
class RandomScheduler(Scheduler):
    """Pick a task uniformly at random for each step (seeded by ``reset``)."""

    name = "random"
    description = "a uniformly random task for each step"
    source = "seed 002, Table 2 (Random)"
    kind = "selection"

    def plan(self, state: TrainState) -> Step:
        return Step.select(int(self.rng.integers(self.num_tasks)))

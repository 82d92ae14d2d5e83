"""Greedy selection: train the task whose current training loss is highest."""

from __future__ import annotations

import numpy as np

from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState


@register_scheduler
class GreedyScheduler(Scheduler):
    """Train next the task with the highest latest training-minibatch loss.

    Tasks not yet trained come first (their loss is unknown), in index order; ties go to the
    lower index. Apart from these tie-breaks, tasks are treated alike.
    """

    name = "greedy"
    description = "the task with the highest current training loss is trained next"
    source = "seed 002, Table 2 (Greedy)"
    kind = "selection"
    task_symmetric = True

    def plan(self, state: TrainState) -> Step:
        losses = state.train_losses
        untried = np.flatnonzero(np.isnan(losses))
        if untried.size:
            return Step.select(int(untried[0]))
        return Step.select(int(np.argmax(losses)))

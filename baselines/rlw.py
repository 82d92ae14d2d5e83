"""Random loss weighting (Lin et al. 2022): fresh random task weights at every step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState


@register_scheduler
class RLWScheduler(Scheduler):
    """Train every task every step with random weights ``w = softmax(u)``, ``u_k ~ N(0, 1)``
    i.i.d., drawn afresh at each step (Lin et al. 2022, "Reasonable effectiveness of random
    weighting: a litmus test for multi-task learning", TMLR, Algorithm 2 with the standard
    normal distribution, also LibMTL's default).

    As in the paper and its authors' LibMTL, the weights sum to 1, not ``K``: with the same
    learning rate a step moves the shared layers ``K`` times less than ``uniform``'s
    ``sum_k L_k``. ``scale_by_num_tasks=True`` multiplies them by ``K``, which makes the expected
    weight 1 and compares the randomness alone with ``uniform``.

    The draws come from the run's seeded generator, so a seed fixes the weight sequence; they
    are dealt to the tasks in the order of their names, so that a task's weights do not depend
    on where it is listed.
    The weights multiply the losses, costing nothing beyond the weighted sum;
    ``torchjd.aggregation.Random`` applies the same random combination to the rows of the
    per-task gradient Jacobian instead, which needs one backward pass per task.

    :param scale_by_num_tasks: multiply the weights by the number of tasks (off in the paper).
    """

    name = "rlw"
    description = "every task every step with weights softmax(N(0, I)) drawn afresh each step"
    source = "Lin et al. 2022 (random loss weighting, TMLR)"
    kind = "weighting"
    task_symmetric = True

    def __init__(self, scale_by_num_tasks: bool = False) -> None:
        super().__init__()
        if not isinstance(scale_by_num_tasks, bool):
            raise ValueError(f"scale_by_num_tasks must be a bool; got {scale_by_num_tasks!r}")
        self.scale_by_num_tasks = scale_by_num_tasks
        self._draw_of_task = np.zeros(0, dtype=np.int64)

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._draw_of_task = np.argsort(np.argsort(self.task_names))

    def plan(self, state: TrainState) -> Step:
        weights = softmax(self.rng.standard_normal(self.num_tasks))[self._draw_of_task]
        if self.scale_by_num_tasks:
            weights = weights * self.num_tasks
        return Step.weighted(weights)

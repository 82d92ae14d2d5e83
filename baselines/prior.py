"""Prior easy / prior hard (seed 002, Table 6): a fixed large weight on one task.

The easiest (hardest) task, the one with the highest (lowest) single-task validation accuracy,
gets weight 0.98 for the whole run and every other task 0.01, the values of seed 002. Accuracy
is compared as is, so with tasks of very different label counts "easy" means "high accuracy",
not "far above chance".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np

from mtl_sched.baselines.common import ReferenceScheduler
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Step, TrainState

SOURCE = "seed 002, section 5.3 and Table 6 (prioritize easy / hard)"


class PriorScheduler(ReferenceScheduler):
    """Weight ``favoured_weight`` on the task picked by ``prefer``, ``other_weight`` on the rest.

    :param references: single-task validation accuracy per task, in task order; ``None`` takes
        the benchmark's cached references in ``prepare``.
    :param favoured_weight: loss weight of the favoured task.
    :param other_weight: loss weight of every other task.
    :param reference_seed: seed of the single-task reference runs read by ``prepare``.
    """

    kind = "weighting"
    task_symmetric = True
    prefer: ClassVar[Literal["easy", "hard"]] = "easy"

    def __init__(
        self,
        references: Sequence[float] | None = None,
        favoured_weight: float = 0.98,
        other_weight: float = 0.01,
        reference_seed: int = 0,
    ) -> None:
        super().__init__(references, reference_seed)
        if favoured_weight < 0 or other_weight < 0:
            raise ValueError(
                f"weights must be non-negative; got {favoured_weight} and {other_weight}"
            )
        self.favoured_weight = favoured_weight
        self.other_weight = other_weight
        self.weights = np.zeros(0)

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        # ties go to the lower task index
        favoured = (
            np.argmax(self.references) if self.prefer == "easy" else np.argmin(self.references)
        )
        self.weights = np.full(self.num_tasks, self.other_weight)
        self.weights[favoured] = self.favoured_weight

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.weights)


@register_scheduler
class PriorEasyScheduler(PriorScheduler):
    __doc__ = PriorScheduler.__doc__
    name = "prior-easy"
    description = "weight 0.98 on the task with the best single-task accuracy, 0.01 on the rest"
    source = SOURCE
    prefer = "easy"


@register_scheduler
class PriorHardScheduler(PriorScheduler):
    __doc__ = PriorScheduler.__doc__
    name = "prior-hard"
    description = "weight 0.98 on the task with the worst single-task accuracy, 0.01 on the rest"
    source = SOURCE
    prefer = "hard"

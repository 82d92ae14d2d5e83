"""Single-task schedules (Kiperwasser and Ballesteros 2018; seed 002, Table 6).

The probability ``alpha(t)`` of training the main task follows a fixed curve over optimizer steps
``t``; the auxiliary tasks share ``1 - alpha(t)`` equally. The curves are the ones given in
ALGORITHMS.md, marked there as not confirmed against the original paper:

- constant: ``alpha(t) = c``;
- exponential: ``alpha(t) = 1 - exp(-a t)`` (auxiliary tasks first, the main task takes over);
- sigmoid: ``alpha(t) = 1 / (1 + exp(-a t))`` (half and half at first, then the main task).

Kiperwasser and Ballesteros draw each batch's task with these probabilities, which is what these
schedulers do (selection); seed 002 describes them as tuning the main task's weight, the same
curve applied to loss weights. The rate ``a`` is per step and its default (0.01: ``alpha``
exceeds 0.95 after 300 steps, the length of a ``synthetic`` run) is ours, not the paper's.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from mtl_sched.baselines.common import SamplingScheduler, task_index
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import TrainState

SOURCE = "Kiperwasser and Ballesteros 2018; seed 002, Table 6"


class MainTaskSchedule(SamplingScheduler):
    """Sample the main task with probability ``alpha(step)``, the others equally.

    :param main_task: the main (target) task, by name or index.
    """

    task_symmetric = True  # when the main task is named, relabelling tasks relabels the plan

    def __init__(self, main_task: str | int = 0) -> None:
        super().__init__()
        self.main_task = main_task
        self._main = 0

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._main = task_index(self.main_task, self.task_names, self.name)

    @abstractmethod
    def alpha(self, step: int) -> float:
        """The probability of training the main task at optimizer step ``step``."""

    def probabilities(self, state: TrainState) -> np.ndarray:
        if self.num_tasks == 1:
            return np.ones(1)
        alpha = min(max(self.alpha(state.step), 0.0), 1.0)
        p = np.full(self.num_tasks, (1.0 - alpha) / (self.num_tasks - 1))
        p[self._main] = alpha
        return p


class RateSchedule(MainTaskSchedule):
    """A `MainTaskSchedule` whose curve ``alpha(t)`` has one rate ``a`` per optimizer step.

    :param main_task: the main (target) task, by name or index.
    :param rate: ``a``, per optimizer step.
    """

    def __init__(self, main_task: str | int = 0, rate: float = 0.01) -> None:
        super().__init__(main_task)
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be positive and finite; got {rate}")
        self.rate = rate


@register_scheduler
class ConstantSchedule(MainTaskSchedule):
    """The main task with a constant probability ``c``, the other tasks sharing the rest.

    :param main_task: the main (target) task, by name or index.
    :param main_probability: ``c`` in ``[0, 1]``.
    """

    name = "constant-schedule"
    description = "the main task with a constant probability c, the others share the rest"
    source = SOURCE

    def __init__(self, main_task: str | int = 0, main_probability: float = 0.5) -> None:
        super().__init__(main_task)
        if not 0.0 <= main_probability <= 1.0:
            raise ValueError(f"main_probability must be in [0, 1]; got {main_probability}")
        self.constant = main_probability

    def alpha(self, step: int) -> float:
        return self.constant


@register_scheduler
class ExponentialSchedule(RateSchedule):
    """The main task with probability ``1 - exp(-rate * t)`` at step ``t``.

    Parameters as in `RateSchedule`.
    """

    name = "exponential-schedule"
    description = "main-task probability 1 - exp(-a t) grows from 0 to 1 over the steps"
    source = SOURCE

    def alpha(self, step: int) -> float:
        return -math.expm1(-self.rate * step)


@register_scheduler
class SigmoidSchedule(RateSchedule):
    """The main task with probability ``1 / (1 + exp(-rate * t))`` at step ``t``.

    Parameters as in `RateSchedule`.
    """

    name = "sigmoid-schedule"
    description = "main-task probability 1 / (1 + exp(-a t)) grows from 1/2 to 1 over the steps"
    source = SOURCE

    def alpha(self, step: int) -> float:
        return 1.0 / (1.0 + math.exp(-self.rate * step))

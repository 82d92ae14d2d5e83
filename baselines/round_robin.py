"""Round-robin selection, optionally over a subset of the tasks."""

from __future__ import annotations

from collections.abc import Sequence

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState


@register_scheduler
class RoundRobinScheduler(Scheduler):
    """Cycle through the tasks in order, one minibatch each.

    :param tasks: names of the tasks to cycle through, in this order; ``None`` cycles through
        every task. A single name gives single-task training.
    """

    name = "round-robin"
    description = "cycle through the tasks (or a named subset) one minibatch at a time"
    source = "common MTL practice; seed 002 section 5 (uniform task order)"
    kind = "selection"

    def __init__(self, tasks: Sequence[str] | None = None) -> None:
        super().__init__()
        self.cycle_names = tuple(tasks) if tasks is not None else None
        self._cycle: tuple[int, ...] = ()

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        if self.cycle_names is None:
            self._cycle = tuple(range(self.num_tasks))
            return
        unknown = [n for n in self.cycle_names if n not in self.task_names]
        if unknown or not self.cycle_names:
            raise ValueError(
                f"round-robin tasks {list(self.cycle_names)} must be a non-empty subset of "
                f"{list(self.task_names)}"
            )
        self._cycle = tuple(self.task_names.index(n) for n in self.cycle_names)

    def plan(self, state: TrainState) -> Step:
        return Step.select(self._cycle[state.step % len(self._cycle)])

"""What `mtl_sched.hooks.SchedulerDriver` reads from a training loop of your own: task names
standing in for `Task` objects, losses as plain numbers, and probe data turned into the
observation the trainer's probe pass would make."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mtl_sched.observation.probe_inputs import PerTask, ProbeData, check_probe_data
from mtl_sched.observation.probing import ProbeConfig, ProbeResult, probe_from_probabilities
from mtl_sched.scheduler_needs import missing_need_message

if TYPE_CHECKING:
    from mtl_sched.data.task import Task
    from mtl_sched.scheduling import Scheduler

ProbeFn = Callable[[], ProbeData | PerTask]


class NamedTask:
    """Stands in for a `Task` when the loop owns its data: a name and, if known, a size.

    :param name: the task name.
    :param train_size: training examples of the task, or ``None`` when not given.
    """

    def __init__(self, name: str, train_size: int | None) -> None:
        self.name = name
        self.train_size = train_size

    def size(self, split: str = "train") -> int:
        """Examples of ``split``; only the training split's size can be known.

        :param split: the split asked for.
        """
        if split != "train" or self.train_size is None:
            raise ValueError(
                f"the scheduler asked for the size of task {self.name!r}'s {split} split: pass "
                "train_sizes=[...] (training examples per task) to SchedulerDriver"
            )
        return self.train_size


def task_stand_ins(
    tasks: Sequence[str] | Sequence[Task], train_sizes: Sequence[int] | None
) -> list[Any]:
    """The tasks a scheduler is reset with: `Task` objects as given, names as `NamedTask`.

    :param tasks: task names or `Task` objects.
    :param train_sizes: training examples per named task (ignored for `Task` objects).
    """
    if not all(isinstance(t, str) for t in tasks):
        return list(tasks)
    if train_sizes is not None and len(train_sizes) != len(tasks):
        raise ValueError(f"{len(train_sizes)} train_sizes for {len(tasks)} tasks")
    sizes = list(train_sizes) if train_sizes is not None else [None] * len(tasks)
    return [NamedTask(str(n), s) for n, s in zip(tasks, sizes, strict=True)]


def as_floats(values: float | torch.Tensor | Sequence[float | torch.Tensor]) -> list[float]:
    """Plain floats from a number, a tensor (any shape) or a sequence of numbers or scalars.

    :param values: what the loop reported.
    """
    if isinstance(values, torch.Tensor):
        return [float(v) for v in values.detach().reshape(-1).cpu().tolist()]
    if isinstance(values, (int, float, np.number)):
        return [float(values)]
    return [float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in values]


class ProbeReader:
    """The driver's probe handling: validates per-task probabilities and summarizes them as
    the trainer's probe pass does (both through `probe_from_probabilities`)."""

    scheduler: Scheduler
    task_names: tuple[str, ...]
    probe_config: ProbeConfig
    probe_fn: ProbeFn | None
    atol: float
    step: int

    @property
    def needs_probe(self) -> bool:
        """Whether the next ``next_step`` reads probe data (compute probabilities only then)."""
        return self.scheduler.requires_probe and self.scheduler.wants_probe(self.step)

    def probe_result(
        self,
        probabilities: PerTask,
        targets: PerTask | None = None,
        losses: PerTask | None = None,
    ) -> ProbeResult:
        """Validate per-task probe predictions and summarize them as the probe pass does.

        :param probabilities: class probabilities per task, shape ``(N_k, C_k)``.
        :param targets: gold labels per task, shape ``(N_k,)``, or ``None``.
        :param losses: per-unit losses per task, shape ``(N_k,)``, or ``None``.
        :raises NonFiniteLossError: (kind ``"probe"``, at the driver's step) naming the first
            task whose probabilities or losses are NaN or infinite.
        """
        return self._summarize(ProbeData(probabilities, targets, losses))

    def _summarize(self, data: ProbeData) -> ProbeResult:
        probs, gold, unit_losses = check_probe_data(data, self.task_names, self.atol, self.step)
        return probe_from_probabilities(
            probs, self.probe_config, gold, unit_losses, self.task_names, self.step
        )

    def _probe_for_step(
        self, probabilities: PerTask | None, targets: PerTask | None, losses: PerTask | None
    ) -> ProbeResult | None:
        if not self.needs_probe:
            return None
        if probabilities is not None:
            return self._summarize(ProbeData(probabilities, targets, losses))
        if self.probe_fn is None:
            raise ValueError(
                f"scheduler {self.scheduler.name!r} reads the probe at step {self.step}; "
                + missing_need_message(self.scheduler, "probe")
            )
        produced = self.probe_fn()
        return self._summarize(produced if isinstance(produced, ProbeData) else ProbeData(produced))

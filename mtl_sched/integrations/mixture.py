"""Interleave per-task datasets by a scheduler's decisions, in a training loop of your own.

`ScheduledMixture` wraps one map-style dataset per task (a ``datasets.Dataset``, a torch
``Dataset``, a list: anything with ``len`` and integer indexing) and yields ``(task_name,
batch)`` pairs in the order a scheduler plans them. Report each batch's training loss with
``report(task, loss)`` and the scheduler learns from it, through a `SchedulerDriver`, exactly as
it does under the `Trainer`::

    mixture = ScheduledMixture(make_scheduler("greedy"), {"sst": sst, "topic": topic},
                               batch_size=32, budget=50_000, collate_fn=my_collate)
    for task, batch in mixture:
        loss = my_model(task, batch) * mixture.loss_weight(task)
        loss.backward(); optimizer.step(); optimizer.zero_grad()
        mixture.report(task, loss)  # the unweighted loss, as a number or a tensor

A selection scheduler plans one task per step, so the mixture yields one batch per step. A
weighting scheduler plans every task with a loss weight: the mixture yields one batch of each
planned task, in plan order, and ``loss_weight(task)`` is the weight to scale its loss by (1 for
a selection scheduler). The scheduler plans its next step once every batch of the current one
is reported, so the loop must report each batch before drawing the one after the step's last
(a ``DataLoader`` over `as_iterable_dataset` with ``num_workers=0`` draws them in time).

Schedulers that combine the step's task losses themselves (``uncertainty``, ``gradnorm``,
``focal``, ...: their ``loop_needs()`` hold ``"combine"`` or one of its arguments) need every
task loss of a step in one backward pass; use `SchedulerDriver` for them. Every other scheduler
works, including ``qls`` (give ``probe_fn``) and those that read validation scores
(``report_evaluation``).

Data order: each task's examples are drawn epoch by epoch in an order reshuffled every epoch,
from a generator seeded by ``seed`` and the task's index, so a seed gives the same batches for
the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate

from mtl_sched.hooks import ProbeFn, SchedulerDriver
from mtl_sched.scheduling import COMBINE_ARGUMENTS, EvalResult, Scheduler, Step, StepOutcome
from mtl_sched.training import TaskSampler

Collate = Callable[[list[Any]], Any]
# what a per-batch loop cannot give: the step's task losses together, in one backward pass
UNSUPPORTED_NEEDS = frozenset({"combine", "parameters", *COMBINE_ARGUMENTS})


class MapStyleDataset(Protocol):
    """What the mixture reads from a task's data: its size and its examples by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class ScheduledMixture:
    """Yield ``(task_name, batch)`` pairs of per-task datasets in a scheduler's order.

    :param scheduler: any scheduler whose ``loop_needs()`` do not ask for ``combine`` (see the
        module docstring); it is reset here with the task names and ``seed``.
    :param datasets: task name -> map-style dataset of its training examples, in the order of
        the scheduler's task indices.
    :param batch_size: examples per batch.
    :param collate_fn: turns a list of examples into a batch, as a ``DataLoader``'s does, for
        every task or per task name (default: ``torch.utils.data.default_collate``).
    :param seed: seed of the scheduler and of the data order.
    :param budget: stop after this many examples (0: never; stop the loop yourself); the last
        step's batches shrink so that the total is exactly the budget, as
        `SchedulerDriver.batch_sizes` draws them.
    :param probe_fn: computes the probe probabilities for schedulers that read them (``qls``),
        as `SchedulerDriver` takes it.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        datasets: Mapping[str, MapStyleDataset],
        *,
        batch_size: int = 32,
        collate_fn: Collate | Mapping[str, Collate] | None = None,
        seed: int = 0,
        budget: int = 0,
        probe_fn: ProbeFn | None = None,
    ) -> None:
        if not datasets:
            raise ValueError("datasets must name at least one task")
        unsupported = sorted(scheduler.loop_needs() & UNSUPPORTED_NEEDS)
        if unsupported:
            raise ValueError(
                f"scheduler {scheduler.name!r} needs {unsupported} from the loop: it combines "
                "every task loss of a step in one backward pass, which a loop over single "
                "batches cannot give; use mtl_sched.SchedulerDriver for it"
            )
        self.task_names: tuple[str, ...] = tuple(datasets)
        self.datasets = dict(datasets)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size = batch_size
        self.collate_fns = _per_task("collate_fn", collate_fn or default_collate, self.task_names)
        for name, dataset in self.datasets.items():
            if len(dataset) == 0:
                raise ValueError(f"datasets[{name!r}] is empty")
        self.driver = SchedulerDriver(
            scheduler,
            self.task_names,
            seed=seed,
            budget=budget,
            train_sizes=[len(d) for d in self.datasets.values()],
            probe_fn=probe_fn,
        )
        streams = np.random.SeedSequence(seed).spawn(len(self.task_names))
        self.samplers = [
            TaskSampler(len(dataset), np.random.default_rng(stream))
            for dataset, stream in zip(self.datasets.values(), streams, strict=True)
        ]
        self._plan: Step | None = None
        self._plan_sizes: dict[str, int] = {}
        self._unreported: list[str] = []
        self._losses: dict[str, float] = {}

    # ------------------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether the budget is spent (never, without a budget)."""
        return self.driver.done

    @property
    def step(self) -> int:
        """Scheduler steps completed (every batch of them reported)."""
        return self.driver.step

    @property
    def examples_per_task(self) -> dict[str, int]:
        """Examples reported per task so far."""
        counts = self.driver.examples_per_task.tolist()
        return dict(zip(self.task_names, counts, strict=True))

    @property
    def shares(self) -> dict[str, float]:
        """Each task's share of the examples reported so far (0 before the first report)."""
        total = max(int(self.driver.examples_seen), 1)
        return {name: n / total for name, n in self.examples_per_task.items()}

    @property
    def unreported(self) -> tuple[str, ...]:
        """Tasks of the batches yielded but not reported yet, oldest first."""
        return tuple(self._unreported)

    def loss_weight(self, task: str) -> float:
        """The current step's loss weight of ``task`` (1 for a selection scheduler's task).

        :param task: a task of the current step.
        """
        if self._plan is None:
            raise RuntimeError("no step is planned: iterate the mixture first")
        index = self._task_index(task)
        if index not in self._plan.tasks:
            raise ValueError(f"task {task!r} is not planned in the current step")
        return float(self._plan.weights[self._plan.tasks.index(index)])

    def _task_index(self, task: str) -> int:
        if task not in self.task_names:
            raise ValueError(f"unknown task {task!r}; tasks: {list(self.task_names)}")
        return self.task_names.index(task)

    # -------------------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[tuple[str, Any]]:
        while not self.done:
            if self._unreported:
                raise RuntimeError(
                    f"report(task, loss) the batches of step {self.step} "
                    f"({list(self._unreported)}) before drawing the next: the scheduler plans "
                    "from the losses"
                )
            plan = self.driver.next_step()
            names = [self.task_names[k] for k in plan.tasks]
            sizes = self.driver.batch_sizes(self.batch_size)
            # every batch of the step is known before the first is reported
            self._plan = plan
            self._plan_sizes = dict(zip(names, sizes, strict=True))
            self._losses = {}
            for k, name, size in zip(plan.tasks, names, sizes, strict=True):
                self._unreported.append(name)
                yield name, self._batch(k, size)

    def _batch(self, k: int, size: int) -> Any:
        dataset = self.datasets[self.task_names[k]]
        examples = [dataset[int(i)] for i in self.samplers[k].take(size)]
        return self.collate_fns[self.task_names[k]](examples)

    def as_iterable_dataset(self) -> IterableDataset:
        """The batches alone (without task names), as a torch ``IterableDataset`` for a
        ``DataLoader(..., batch_size=None)``; `unreported` names each batch's task."""
        return _BatchStream(self)

    # ---------------------------------------------------------------------------- feedback
    def report(self, task: str, loss: float | torch.Tensor) -> StepOutcome | None:
        """Record the training loss of the oldest unreported batch of ``task``.

        Once every batch of the step is reported, the scheduler observes the step.

        :param task: the batch's task.
        :param loss: its unweighted mean training loss.
        :returns: the step's outcome once the step is complete, else ``None``.
        :raises NonFiniteLossError: for a NaN or infinite loss (the step is not recorded).
        """
        if task not in self._unreported:
            raise ValueError(
                f"no unreported batch of task {task!r}; unreported: {list(self._unreported)}"
            )
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._losses[task] = value
        if len(self._losses) < len(self._plan_sizes):
            self._unreported.remove(task)
            return None
        names = list(self._plan_sizes)
        outcome = self.driver.report(
            [self._losses[n] for n in names], [self._plan_sizes[n] for n in names]
        )
        self._unreported.remove(task)
        return outcome

    def report_evaluation(
        self, scores: Sequence[float] | np.ndarray, losses: Sequence[float] | None = None
    ) -> EvalResult:
        """Record a validation evaluation for schedulers that read it (`SchedulerDriver`).

        :param scores: each task's validation score in ``[0, 1]``, in task order.
        :param losses: each task's mean validation loss.
        """
        return self.driver.report_evaluation(scores, losses)


class _BatchStream(IterableDataset):
    """The mixture's batches without their task names."""

    def __init__(self, mixture: ScheduledMixture) -> None:
        self.mixture = mixture

    def __iter__(self) -> Iterator[Any]:
        for _, batch in self.mixture:
            yield batch


def _per_task(argument: str, value: Any, names: Sequence[str]) -> dict[str, Any]:
    """``value`` for every task, or the mapping checked to name exactly the tasks."""
    if not isinstance(value, Mapping):
        return dict.fromkeys(names, value)
    if set(value) != set(names):
        raise ValueError(
            f"{argument} names tasks {sorted(value)}; the datasets' tasks are {sorted(names)}"
        )
    return {name: value[name] for name in names}

"""Machinery shared by several baselines.

- `SamplingScheduler`: selection by sampling from a task distribution (``probabilities``),
  so that tests can check the distribution itself rather than noisy draws;
- `ReferenceScheduler`: methods that need single-task reference accuracies;
- `task_distribution`, `task_index`: validated probability vectors and task lookups;
- `focal_unit_losses`: per-unit focal loss.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from mtl_sched.scheduling import LoopNeed, Scheduler, Step, TrainState

if TYPE_CHECKING:
    from mtl_sched.benchmarks.base import Benchmark
    from mtl_sched.data.task import Task
    from mtl_sched.models.base import TaskOutput


def task_distribution(weights: Sequence[float] | np.ndarray, owner: str) -> np.ndarray:
    """``weights`` normalized to sum to 1.

    :param weights: finite non-negative weights, at least one positive.
    :param owner: scheduler name, for the error message.
    """
    values = np.asarray(weights, dtype=float)
    total = float(values.sum()) if values.ndim == 1 and values.size else math.nan
    # a NaN or an infinity makes the sum non-finite: two reductions check everything
    if not math.isfinite(total) or values.min() < 0:
        raise ValueError(f"{owner}: task weights must be finite and non-negative; got {values}")
    if total <= 0:
        raise ValueError(f"{owner}: at least one task weight must be positive; got {values}")
    return values / total


def task_index(task: str | int, task_names: Sequence[str], owner: str) -> int:
    """Index of ``task``, given by name or index, among ``task_names``."""
    if isinstance(task, str):
        if task not in task_names:
            raise ValueError(f"{owner}: unknown task {task!r}; tasks: {list(task_names)}")
        return list(task_names).index(task)
    if not 0 <= task < len(task_names):
        raise ValueError(f"{owner}: task index {task} out of range for {len(task_names)} tasks")
    return int(task)


class SamplingScheduler(Scheduler):
    """A selection scheduler that draws each step's task from ``probabilities(state)``."""

    kind = "selection"

    @abstractmethod
    def probabilities(self, state: TrainState) -> np.ndarray:
        """The distribution the next task is drawn from, shape ``(K,)``, summing to 1."""

    def plan(self, state: TrainState) -> Step:
        cumulative = np.cumsum(task_distribution(self.probabilities(state), self.name))
        # inverse-CDF sampling: Generator.choice(p=...) re-validates p at a cost comparable to
        # a small model's training step; a task of probability 0 is never drawn
        task = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
        return Step.select(min(task, self.num_tasks - 1))


class ReferenceScheduler(Scheduler):
    """A scheduler that compares tasks with their single-task reference accuracies.

    :param references: single-task validation accuracy of each task, in task order; ``None``
        takes the benchmark's cached ones in ``prepare`` (a run without either is an error).
    :param reference_seed: seed of the single-task reference runs read by ``prepare``.
    """

    requires_references: ClassVar[bool] = True
    needs: ClassVar[frozenset[LoopNeed]] = frozenset({"references"})

    def __init__(self, references: Sequence[float] | None = None, reference_seed: int = 0) -> None:
        super().__init__()
        self.given_references = None if references is None else np.asarray(references, float)
        self.reference_seed = reference_seed
        self.references = np.zeros(0)
        self._reference_examples = 0

    def prepare(self, benchmark: Benchmark) -> None:
        if self.given_references is None:
            from mtl_sched.references import reference_budget, single_task_references

            self.given_references = single_task_references(benchmark, self.reference_seed)
            # the single-task runs are part of the method's cost, cached or not
            self._reference_examples = reference_budget(benchmark) * benchmark.num_tasks

    @property
    def preparation_examples(self) -> int:
        """Examples of the single-task reference runs read by ``prepare`` (0 for references
        passed in)."""
        return self._reference_examples

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        if self.given_references is None:
            raise ValueError(
                f"scheduler {self.name!r} needs single-task reference accuracies: pass "
                "references=[...] (one per task, in task order) or call prepare(benchmark), "
                "which reads the benchmark's cached references ('mtl-sched run' and "
                "compare_schedulers do)"
            )
        refs = self.given_references
        if refs.shape != (self.num_tasks,) or not np.all(np.isfinite(refs)) or np.any(refs < 0):
            raise ValueError(
                f"scheduler {self.name!r}: references must be {self.num_tasks} finite "
                f"non-negative accuracies (one per task); got {refs.tolist()}"
            )
        self.references = refs.copy()


def focal_unit_losses(output: TaskOutput, gamma: float) -> torch.Tensor:
    """Per-unit focal loss ``-(1 - p)^gamma log p`` (Lin et al. 2017), shape ``(U,)``.

    ``p`` is the probability of the gold label, recovered as ``exp(-loss)`` from the unit's
    negative log-likelihood, so heads with their own per-unit losses (a CRF) work too. The
    modulating factor is differentiated as well, as in the paper; ``gamma = 0`` is the plain
    loss.
    """
    losses = output.losses()
    if gamma == 0:
        return losses
    # 1 - exp(-l), computed as -expm1(-l) to stay accurate for well-classified units
    return (-torch.expm1(-losses)).clamp_min(0.0).pow(gamma) * losses

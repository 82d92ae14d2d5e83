"""What a training run reports (`RunResult`) and gathers on its way there (`RunRecorder`)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from mtl_sched.scheduling import EvalResult, StepOutcome

if TYPE_CHECKING:
    from mtl_sched.models.base import MTLModel
    from mtl_sched.scheduling import Scheduler

__all__ = ["RunRecorder", "RunResult"]


@dataclass
class RunResult:
    """Everything a finished run reports.

    :param scheduler: scheduler name.
    :param seed: the run's seed.
    :param task_names: task names in index order.
    :param test: test metrics of the model selected on validation.
    :param best_validation: validation metrics of the selected model.
    :param best_examples_seen: examples seen when the selected model was evaluated.
    :param validation_history: ``(examples_seen, result)`` of every validation evaluation.
    :param schedule: examples drawn from each task at each step, shape ``(steps, K)``.
    :param examples_seen: examples consumed (equals the budget).
    :param steps: training steps taken (skipped ones included).
    :param wall_time: seconds spent in the run.
    :param cpu_time: CPU seconds the run's process spent in the run, every thread of it (NaN
        where it was not measured).
    :param preparation_examples: training examples the scheduler spent before the run (a
        weight search, single-task reference runs), outside the budget.
    :param probe_history: ``(examples_seen, histograms)`` of every probe pass the scheduler
        read (``requires_probe`` schedulers only), histograms of shape ``(K, bins)``.
    :param loss_history: training loss of each task at each step, shape ``(steps, K)``; NaN
        where a step did not train the task (the learning curves of seed 004's features).
    :param skipped_steps: steps whose loss was not finite and whose update was skipped
        (``TrainerConfig.on_nonfinite="skip"``; always 0 under ``"raise"``).
    :param scheduler_notes: the scheduler's `Scheduler.notes` (e.g. ``trained_on``: the task
        sets a learned scheduler's agent was trained on).
    """

    scheduler: str
    seed: int
    task_names: tuple[str, ...]
    test: EvalResult
    best_validation: EvalResult
    best_examples_seen: int
    validation_history: list[tuple[int, EvalResult]]
    schedule: np.ndarray
    examples_seen: int
    steps: int
    wall_time: float
    cpu_time: float = math.nan
    preparation_examples: int = 0
    probe_history: list[tuple[int, np.ndarray]] = field(default_factory=list)
    loss_history: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    skipped_steps: int = 0
    scheduler_notes: dict[str, str] = field(default_factory=dict)

    @property
    def examples_per_task(self) -> np.ndarray:
        """Examples consumed per task over the whole run."""
        return self.schedule.sum(axis=0)

    @property
    def task_share(self) -> np.ndarray:
        """Fraction of the examples that went to each task."""
        total = self.schedule.sum()
        return self.examples_per_task / max(total, 1)


class RunRecorder:
    """The step, probe and validation records of a run in progress, and the model selected so
    far: the state of the best validation score (the first, on ties).

    :param num_tasks: tasks of the run.
    """

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks
        self.validation_history: list[tuple[int, EvalResult]] = []
        self.probe_history: list[tuple[int, np.ndarray]] = []
        self.best: EvalResult | None = None
        self.best_examples_seen = 0
        self._best_state: dict[str, torch.Tensor] | None = None
        self._schedule: list[np.ndarray] = []
        self._losses: list[np.ndarray] = []

    def add_step(self, outcome: StepOutcome) -> None:
        """Record the examples drawn per task and, unless the step was skipped, its task losses.

        :param outcome: the step's outcome.
        """
        tasks = list(outcome.plan.tasks)
        drawn = np.zeros(self.num_tasks, dtype=np.int64)
        drawn[tasks] = outcome.batch_sizes
        self._schedule.append(drawn)
        losses = np.full(self.num_tasks, np.nan)
        if not outcome.skipped:
            losses[tasks] = outcome.task_losses
        self._losses.append(losses)

    def add_probe(self, examples_seen: int, histograms: np.ndarray) -> None:
        """Record the histograms of a probe pass the scheduler read.

        :param examples_seen: examples consumed when the pass ran.
        :param histograms: its histograms, shape ``(K, bins)``.
        """
        self.probe_history.append((examples_seen, histograms))

    def add_validation(self, examples_seen: int, result: EvalResult, model: MTLModel) -> None:
        """Record a validation evaluation, keeping a copy of ``model`` when it scores best.

        :param examples_seen: examples consumed when the evaluation ran.
        :param result: the evaluation.
        :param model: the model evaluated.
        """
        self.validation_history.append((examples_seen, result))
        if self.best is None or result.average_score > self.best.average_score:
            self.best, self.best_examples_seen = result, examples_seen
            self._best_state = copy.deepcopy(model.state_dict())  # type: ignore[attr-defined]

    def restore_best(self, model: MTLModel) -> EvalResult:
        """Load the selected state into ``model`` and return its validation result.

        :param model: the model of the run.
        :raises RuntimeError: when the run has no validation evaluation.
        """
        if self.best is None or self._best_state is None:
            raise RuntimeError(
                "the run ended without a validation evaluation (budget already spent)"
            )
        model.load_state_dict(self._best_state)  # type: ignore[attr-defined]
        return self.best

    def result(
        self,
        scheduler: Scheduler,
        *,
        seed: int,
        task_names: tuple[str, ...],
        test: EvalResult,
        examples_seen: int,
        steps: int,
        skipped_steps: int,
        wall_time: float,
        cpu_time: float = math.nan,
    ) -> RunResult:
        """The run's result, once the selected model is restored and tested.

        :param scheduler: the run's scheduler (its name, preparation cost and notes).
        :param seed: the run's seed.
        :param task_names: task names in index order.
        :param test: test metrics of the selected model.
        :param examples_seen: examples consumed by the run.
        :param steps: training steps taken (skipped ones included).
        :param skipped_steps: steps of this run whose update was skipped.
        :param wall_time: seconds spent in the run.
        :param cpu_time: CPU seconds the run's process spent in the run.
        """
        if self.best is None:
            raise RuntimeError("the run has no validation evaluation to report")
        schedule = np.zeros((0, self.num_tasks), np.int64)
        losses = np.zeros((0, self.num_tasks))
        return RunResult(
            scheduler=scheduler.name,
            seed=seed,
            task_names=task_names,
            test=test,
            best_validation=self.best,
            best_examples_seen=self.best_examples_seen,
            validation_history=self.validation_history,
            schedule=np.stack(self._schedule) if self._schedule else schedule,
            examples_seen=examples_seen,
            steps=steps,
            wall_time=wall_time,
            cpu_time=cpu_time,
            preparation_examples=scheduler.preparation_examples,
            probe_history=self.probe_history,
            loss_history=np.stack(self._losses) if self._losses else losses,
            skipped_steps=skipped_steps,
            scheduler_notes=dict(scheduler.notes),
        )

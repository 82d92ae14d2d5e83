"""Drive any scheduler from your own PyTorch training loop.

`SchedulerDriver` keeps the bookkeeping the `Trainer` keeps (optimizer steps, examples seen in
total and per task, each task's latest training loss, the latest validation result), turns your
model's class probabilities on each task's probe set into the observation histograms exactly as
the trainer's probe pass does (both go through
`mtl_sched.observation.probing.probe_from_probabilities`), and asks the scheduler for the next
step::

    driver = SchedulerDriver(scheduler, ["sentiment", "topic"], seed=0, budget=10_000)
    while not driver.done:
        probs = my_probe_probabilities() if driver.needs_probe else None
        step = driver.next_step(probs, targets=probe_labels)
        sizes = driver.batch_sizes(32)  # shrunk on the last step to end at the budget
        losses = torch.stack([my_loss(task, n) for task, n in zip(step.tasks, sizes)])
        loss = driver.combine(losses)  # the weighted sum, or the scheduler's own combination
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        driver.report(losses, batch_sizes=sizes)

A selection scheduler returns one task with weight 1 (`next_task` gives its index); a weighting
scheduler returns every task with its loss weight. What else a scheduler needs from your loop
(`combine` with the task outputs or the model, validation scores, training-set sizes, ...) is
its ``loop_needs()`` (see `mtl_sched.scheduling.LoopNeed`); the driver checks each where it is
due and names the missing argument, and `mtl_sched.scheduler_needs.needs_table` lists them for
every scheduler.

The driver keeps the run at exactly its ``budget``, as the `Trainer` does: ``examples_left``
says how many examples remain, ``next_step`` leaves out of the last plan the tasks that no
example is left for, ``batch_sizes(batch_size)`` gives the minibatch sizes to draw (shrunk on
the last step), and ``report`` refuses a step that draws past the budget.

Schedulers with ``requires_probe`` (``qls``) read the uncertainty histograms of the model's
class probabilities on a fixed probe set of each task. Give them, at the steps where
``needs_probe`` is true, to ``next_step`` or through ``probe_fn``. To match an agent trained in
`mtl_sched.envs.MTLSchedulingEnv`, use the probe set the trainer uses, with the model in
evaluation mode: each task's whole validation split when ``probe.pool_size`` is ``None`` (the
default), else the examples `Trainer.probe_pool` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from mtl_sched.driver_inputs import ProbeFn, ProbeReader, as_floats, task_stand_ins
from mtl_sched.observation.probe_inputs import PerTask, ProbeData
from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.scheduler_needs import missing_need_message, needs_combine
from mtl_sched.scheduling import (
    COMBINE_ARGUMENTS,
    CombineContext,
    EvalOutcome,
    EvalResult,
    NonFiniteLossError,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
    fit_to_budget,
)

if TYPE_CHECKING:
    from mtl_sched.data.task import Task
    from mtl_sched.models.base import Batch, MTLModel, TaskOutput

__all__ = ["ProbeData", "ProbeFn", "SchedulerDriver"]


class SchedulerDriver(ProbeReader):
    """Run a scheduler inside a training loop you own.

    Per step: ``next_step`` (with probe data when ``needs_probe``), draw ``batch_sizes(n)``
    examples of the planned tasks and train them, ``combine`` their losses, then ``report``
    what was trained. Call ``report_evaluation`` after validating, for schedulers that read
    validation scores. ``needs`` holds what the scheduler needs from the loop (its
    ``loop_needs()``); the driver refuses a step that leaves any of it out.

    :param scheduler: any scheduler (e.g. ``make_scheduler("round-robin")`` or a
        `mtl_sched.agents.QLSScheduler`); it is reset here with the task names and ``seed``.
    :param tasks: task names in the order of the scheduler's task indices (or `Task` objects).
    :param seed: seed of the scheduler's randomness; the same seed as a `Trainer` run gives
        the same decisions for the same feedback.
    :param budget: the run's budget in training examples, shown to the scheduler and used by
        ``done`` (0: no fixed budget, ``done`` stays false).
    :param train_sizes: training examples per task, for schedulers that sample by dataset size
        (``proportional``, ``temperature``); ignored when ``tasks`` are `Task` objects.
    :param probe: probe settings of the observation; defaults to the scheduler's
        ``probe_config`` (a different one is refused) or ``ProbeConfig()``.
    :param probe_fn: called without arguments when the scheduler needs probe data and
        ``next_step`` got none; returns a `ProbeData` or the per-task probabilities.
    :param device: where the scheduler's learnable terms live (your model's device).
    :param atol: how far a probability row's sum may be from 1.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        tasks: Sequence[str] | Sequence[Task],
        *,
        seed: int = 0,
        budget: int = 0,
        train_sizes: Sequence[int] | None = None,
        probe: ProbeConfig | None = None,
        probe_fn: ProbeFn | None = None,
        device: str | torch.device = "cpu",
        atol: float = 1e-3,
    ) -> None:
        if not tasks:
            raise ValueError("SchedulerDriver needs at least one task")
        if budget < 0:
            raise ValueError(f"budget must be non-negative; got {budget}")
        self.needs = scheduler.loop_needs()
        if "budget" in self.needs and budget == 0:
            raise ValueError(missing_need_message(scheduler, "budget"))
        named = all(isinstance(t, str) for t in tasks)
        if "train_sizes" in self.needs and named and train_sizes is None:
            raise ValueError(missing_need_message(scheduler, "train_sizes"))
        stand_ins = task_stand_ins(tasks, train_sizes)
        self.task_names: tuple[str, ...] = tuple(t.name for t in stand_ins)
        if len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"task names must be unique; got {list(self.task_names)}")
        own = scheduler.probe_config if scheduler.requires_probe else None
        if probe is not None and own is not None and probe != own:
            raise ValueError(
                f"scheduler {scheduler.name!r} observes with {own}, not the given {probe}"
            )
        self.probe_config: ProbeConfig = probe or own or ProbeConfig()
        self.scheduler = scheduler
        self.seed = seed
        self.budget = budget
        self.probe_fn = probe_fn
        self.atol = atol
        scheduler.reset(cast("Sequence[Task]", stand_ins), seed)
        scheduler.to(torch.device(device))
        self.step = 0
        self.examples_seen = 0
        self.examples_per_task = np.zeros(self.num_tasks, dtype=np.int64)
        self.train_losses = np.full(self.num_tasks, np.nan)
        self.validation: EvalResult | None = None
        self.last_probe: ProbeResult | None = None
        self._pending: Step | None = None
        self._pending_state: TrainState | None = None
        self._combined = False

    # ------------------------------------------------------------------------------ state
    @property
    def num_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_names)

    @property
    def owns_combination(self) -> bool:
        """Whether the scheduler combines the task losses itself (``combine`` must make the
        loss, and ``report`` refuses a step without it); when false, ``combine`` is the plain
        weighted sum of the plan."""
        return needs_combine(self.needs)

    @property
    def done(self) -> bool:
        """Whether the example budget is spent (never, without a budget)."""
        return self.budget > 0 and self.examples_seen >= self.budget

    @property
    def examples_left(self) -> int | None:
        """Training examples the budget still allows (``None`` without a budget)."""
        return self.budget - self.examples_seen if self.budget > 0 else None

    def batch_sizes(self, batch_size: int) -> list[int]:
        """The minibatch size of each task of the planned step, in plan order, so that the run
        stops at exactly its budget: ``batch_size`` each while they fit, the examples left
        split evenly (the first tasks one more) on the last step, as the `Trainer` draws.

        :param batch_size: examples per task minibatch, at least 1.
        """
        plan, _ = self._require_pending("batch_sizes")
        return fit_to_budget(plan, batch_size, self.examples_left)[1]

    def parameters(self) -> list[torch.nn.Parameter]:
        """The scheduler's learnable terms: add them to your optimizer (without weight decay)."""
        return list(self.scheduler.parameters())

    def state(self, probe: ProbeResult | None = None) -> TrainState:
        """The training state the scheduler plans from.

        :param probe: the probe result to show the scheduler, if any.
        """
        return TrainState(
            step=self.step,
            examples_seen=self.examples_seen,
            budget=self.budget,
            examples_per_task=self.examples_per_task.copy(),
            train_losses=self.train_losses.copy(),
            validation=self.validation,
            probe=probe,
        )

    # --------------------------------------------------------------------------- planning
    def next_step(
        self,
        probabilities: PerTask | None = None,
        *,
        targets: PerTask | None = None,
        losses: PerTask | None = None,
    ) -> Step:
        """The scheduler's plan for the next optimizer step.

        Probe data are read only when ``needs_probe`` is true (otherwise ignored, and
        ``probe_fn`` is not called). On the last step of a budget, tasks that no example is
        left for are left out of the plan.

        :param probabilities: class probabilities per task on its probe set, shape
            ``(N_k, C_k)``, as a sequence in task order or a mapping by task name.
        :param targets: gold labels per task, shape ``(N_k,)`` (accuracies; unit losses for
            batch-hard selection when ``losses`` is not given).
        :param losses: per-unit losses per task, shape ``(N_k,)``.
        :raises NonFiniteLossError: (kind ``"probe"``, at the driver's step) naming the first
            task whose probe probabilities or losses are NaN or infinite; nothing is planned.
        :raises ValueError: when the budget is spent.
        """
        if self._pending is not None:
            raise RuntimeError(
                f"step {self.step} was planned but not reported: call report(...) after training "
                "it, before planning the next step"
            )
        if self.done:
            raise ValueError(
                f"the budget of {self.budget} examples is spent ({self.examples_seen} seen): "
                "stop when driver.done"
            )
        probe = self._probe_for_step(probabilities, targets, losses)
        if probe is not None:
            self.last_probe = probe
        state = self.state(probe)
        plan = self.scheduler.plan(state)
        plan.validate(self.num_tasks)
        # with fewer examples left than planned tasks, the last tasks draw none (as in the
        # Trainer); which ones does not depend on the minibatch size
        plan = fit_to_budget(plan, 1, self.examples_left)[0]
        self._pending, self._pending_state = plan, state
        self._combined = False
        return plan

    def next_task(
        self,
        probabilities: PerTask | None = None,
        *,
        targets: PerTask | None = None,
        losses: PerTask | None = None,
    ) -> int:
        """The index of the task to train next, for selection schedulers (see ``next_step``).

        :param probabilities: as for ``next_step``.
        :param targets: as for ``next_step``.
        :param losses: as for ``next_step``.
        """
        if self.scheduler.kind != "selection":
            raise ValueError(
                f"scheduler {self.scheduler.name!r} weights every task: use next_step(), which "
                "returns the tasks and their loss weights"
            )
        plan = self.next_step(probabilities, targets=targets, losses=losses)
        return plan.tasks[0]

    # --------------------------------------------------------------------------- training
    def combine(
        self,
        task_losses: torch.Tensor,
        *,
        outputs: Sequence[TaskOutput] = (),
        model: MTLModel | None = None,
        batches: Sequence[Batch] = (),
    ) -> torch.Tensor:
        """The loss to back-propagate for the planned step.

        :param task_losses: mean loss of each planned task, shape ``(n,)``, in plan order, still
            attached to the graph.
        :param outputs: each planned task's `TaskOutput` on its minibatch, in plan order.
        :param model: the model being trained, satisfying `MTLModel`.
        :param batches: each planned task's minibatch, in plan order, as ``model.task_output``
            takes it.
        :raises ValueError: naming the argument when the scheduler needs ``outputs``, ``model``
            or ``batches`` (its ``loop_needs()``) and it is not given.
        """
        plan, state = self._require_pending("combine")
        if task_losses.dim() != 1 or task_losses.shape[0] != len(plan.tasks):
            raise ValueError(
                f"task_losses must have shape ({len(plan.tasks)},), one mean loss per planned "
                f"task {list(plan.tasks)}; got {tuple(task_losses.shape)}"
            )
        for name, given in (("outputs", outputs), ("batches", batches)):
            if given and len(given) != len(plan.tasks):
                raise ValueError(f"{len(given)} {name} for {len(plan.tasks)} planned tasks")
        given_arguments = {
            "outputs": bool(outputs),
            "model": model is not None,
            "batches": bool(batches),
        }
        for need in COMBINE_ARGUMENTS:
            if need in self.needs and not given_arguments[need]:
                raise ValueError(missing_need_message(self.scheduler, need))
        context = CombineContext(
            plan=plan,
            model=cast("MTLModel", model),
            outputs=outputs,
            state=state,
            batches=batches,
        )
        combined = self.scheduler.combine(task_losses, context)
        self._combined = True
        return combined

    def _require_pending(self, caller: str) -> tuple[Step, TrainState]:
        if self._pending is None or self._pending_state is None:
            raise RuntimeError(f"{caller}() needs a planned step: call next_step() first")
        return self._pending, self._pending_state

    def report(
        self,
        task_losses: float | torch.Tensor | Sequence[float | torch.Tensor],
        batch_sizes: int | Sequence[int],
        *,
        loss: float | torch.Tensor | None = None,
    ) -> StepOutcome:
        """Record the optimizer step just taken on the planned tasks and tell the scheduler.

        :param task_losses: the unweighted mean training loss of each planned task, in plan
            order (a number for a one-task plan).
        :param batch_sizes: examples drawn from each planned task, in plan order (one number
            for a one-task plan).
        :param loss: the combined loss that was back-propagated (default: the plan's weighted
            sum of ``task_losses``).
        :raises NonFiniteLossError: naming the step and the first task whose loss is NaN or
            infinite (nothing is recorded; the scheduler does not observe the step).
        :raises ValueError: when the scheduler combines the losses itself and ``combine`` was
            not called, or the batch sizes draw past the budget (nothing is recorded).
        """
        plan, _ = self._require_pending("report")
        if self.owns_combination and not self._combined:
            raise ValueError(missing_need_message(self.scheduler, "combine"))
        values = as_floats(task_losses)
        sizes = [batch_sizes] if isinstance(batch_sizes, (int, np.integer)) else list(batch_sizes)
        if len(values) != len(plan.tasks) or len(sizes) != len(plan.tasks):
            raise ValueError(
                f"report {len(plan.tasks)} task losses and batch sizes, one per planned task "
                f"{list(plan.tasks)}; got {len(values)} and {len(sizes)}"
            )
        for k, value in zip(plan.tasks, values, strict=True):
            if not np.isfinite(value):
                raise NonFiniteLossError(self.task_names[k], self.step, "training", value)
        if any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"batch sizes must be positive integers; got {sizes}")
        left = self.examples_left
        if left is not None and sum(sizes) > left:
            raise ValueError(
                f"batch sizes {sizes} draw {int(sum(sizes))} examples but the budget of "
                f"{self.budget} leaves {left}: draw driver.batch_sizes(batch_size)"
            )
        total = as_floats(loss)[0] if loss is not None else float(np.dot(plan.weights, values))
        for k, n, value in zip(plan.tasks, sizes, values, strict=True):
            self.examples_per_task[k] += int(n)
            self.train_losses[k] = value
        self.examples_seen += int(sum(sizes))
        outcome = StepOutcome(
            step=self.step,
            plan=plan,
            task_losses=tuple(values),
            loss=total,
            batch_sizes=tuple(int(n) for n in sizes),
            examples_seen=self.examples_seen,
        )
        self.step += 1
        self._pending = self._pending_state = None
        self.scheduler.observe(outcome)
        return outcome

    def report_evaluation(
        self,
        scores: Sequence[float] | np.ndarray,
        losses: Sequence[float] | np.ndarray | None = None,
        *,
        metric_names: Sequence[str] | None = None,
    ) -> EvalResult:
        """Record a validation evaluation and tell the scheduler (``adaptive``, ``dtp`` with
        ``kpi="validation"`` read it).

        :param scores: each task's validation score in ``[0, 1]`` (e.g. accuracy), task order.
        :param losses: each task's mean validation loss (NaN when omitted).
        :param metric_names: each task's metric name (default ``"accuracy"``).
        :raises NonFiniteLossError: naming the first task whose given loss is NaN or infinite.
        """
        values = np.asarray(scores, dtype=float)
        loss_values = (
            np.full(self.num_tasks, np.nan) if losses is None else np.asarray(losses, float)
        )
        names = tuple(metric_names) if metric_names is not None else ("accuracy",) * self.num_tasks
        for what, given in (("scores", values), ("losses", loss_values), ("metric_names", names)):
            if len(given) != self.num_tasks:
                raise ValueError(f"{len(given)} {what} for {self.num_tasks} tasks")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"validation scores must be finite; got {values.tolist()}")
        if losses is not None:
            for name, value in zip(self.task_names, loss_values, strict=True):
                if not np.isfinite(value):
                    raise NonFiniteLossError(name, self.step, "validation", float(value))
        result = EvalResult(
            split="validation", losses=loss_values, scores=values, metric_names=names
        )
        self.validation = result
        self.scheduler.observe(EvalOutcome(examples_seen=self.examples_seen, result=result))
        return result

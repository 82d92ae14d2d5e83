"""The `Trainer`: one training loop for every scheduler.

It owns the optimizer, the example budget, the evaluation cadence and model selection.
Budgets are counted in training examples seen, so that selection schedulers (one minibatch per
step) and weighting schedulers (one minibatch of every task per step) are compared at equal
cost; a run stops at exactly ``budget`` examples (the last step's minibatches are shrunk to fit).
The model is selected on validation data only; test data are touched once, at the end.

Its parts live in the other modules of `mtl_sched.training`: the settings
(`mtl_sched.training.config`), the data draws (`mtl_sched.training.sampler`), evaluation
(`mtl_sched.training.evaluation`) and the result (`mtl_sched.training.run_result`); the budget
rule of a step is `mtl_sched.scheduling.fit_to_budget`, shared with loops of one's own.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mtl_sched.data.task import Task
from mtl_sched.models.base import Batch, MTLModel, task_outputs, to_device
from mtl_sched.observation.probing import ProbeConfig, ProbeResult, RollingProbe, probe
from mtl_sched.scheduling import (
    CombineContext,
    EvalOutcome,
    EvalResult,
    NonFiniteLossError,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
    fit_to_budget,
    weighted_sum,
)
from mtl_sched.training.config import (
    TrainerConfig,
    resolve_device,
)
from mtl_sched.training.evaluation import EvalBatches, evaluate_tasks
from mtl_sched.training.observers import RunObserver
from mtl_sched.training.run_result import RunRecorder, RunResult
from mtl_sched.training.sampler import (
    TaskSampler,
    materialize,
    step_random_stream,
    take_rows,
)

__all__ = ["Trainer"]


class Trainer:
    """Trains one `MTLModel` on its tasks, one planned step at a time.

    :param model: the multi-task model; its ``task_names`` must match ``tasks`` in order.
    :param tasks: the tasks, each with train/validation/test splits.
    :param config: budget, optimizer, evaluation and probe settings.
    :param seed: seed of the data order (model initialization is the model builder's).
    """

    def __init__(
        self,
        model: MTLModel,
        tasks: Sequence[Task],
        config: TrainerConfig,
        seed: int = 0,
    ) -> None:
        names = tuple(t.name for t in tasks)
        if tuple(model.task_names) != names:
            raise ValueError(
                f"model tasks {tuple(model.task_names)} do not match the given tasks {names}"
            )
        self.tasks = list(tasks)
        self.task_names = names
        self.config = config
        self.seed = seed
        self.device = resolve_device(config.device)
        self.model = model
        model.to(self.device)
        self.optimizer = config.make_optimizer(model.parameters())
        self._model_param_groups = len(self.optimizer.param_groups)
        self._train_sets = [materialize(t.split("train")) for t in tasks]
        self._samplers = [
            TaskSampler(t.size("train"), np.random.default_rng([seed, k]))
            for k, t in enumerate(tasks)
        ]
        self._eval_batches = EvalBatches(model, tasks, self.device, config.eval_batch_size)
        self.step_count = 0
        self.skipped_steps = 0
        self.examples_seen = 0
        self.examples_per_task = np.zeros(len(tasks), dtype=np.int64)
        self.train_losses = np.full(len(tasks), np.nan)
        self.last_validation: EvalResult | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def attach(self, scheduler: Scheduler) -> None:
        """Start ``scheduler`` on this trainer: reset it with the tasks and seed, move its
        tensors to the device and let the optimizer train its learnable terms.

        ``run`` calls this; call it yourself when driving ``train_step`` with a scheduler. The
        scheduler's parameters form their own optimizer group without weight decay (the decay
        would pull, e.g., log-variances toward 0 for no reason); the group of a previously
        attached scheduler is dropped.
        """
        scheduler.reset(self.tasks, self.seed)
        scheduler.to(self.device)
        for group in self.optimizer.param_groups[self._model_param_groups :]:
            for param in group["params"]:
                self.optimizer.state.pop(param, None)
        del self.optimizer.param_groups[self._model_param_groups :]
        params = list(scheduler.parameters())
        if params:
            self.optimizer.add_param_group({"params": params, "weight_decay": 0.0})

    # ----------------------------------------------------------------------------- state
    def task_shares(self) -> dict[str, float]:
        """Task name -> fraction of the training examples seen so far that went to it."""
        total = max(self.examples_seen, 1)
        return {
            name: float(count) / total
            for name, count in zip(self.task_names, self.examples_per_task, strict=True)
        }

    def state(self, probe_result: ProbeResult | None = None) -> TrainState:
        """The training state a scheduler plans from."""
        return TrainState(
            step=self.step_count,
            examples_seen=self.examples_seen,
            budget=self.config.budget,
            examples_per_task=self.examples_per_task.copy(),
            train_losses=self.train_losses.copy(),
            validation=self.last_validation,
            probe=probe_result,
        )

    def training_state(self) -> dict[str, Any]:
        """Everything a run has changed since construction: model and optimizer state, the data
        samplers' orders and generators, the counters and the latest validation result.

        `load_training_state` on a trainer built with the same seed continues the run exactly.
        """
        return {
            "model": copy.deepcopy(self.model.state_dict()),  # type: ignore[attr-defined]
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "samplers": [sampler.state() for sampler in self._samplers],
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
            "examples_seen": self.examples_seen,
            "examples_per_task": self.examples_per_task.copy(),
            "train_losses": self.train_losses.copy(),
            "last_validation": copy.deepcopy(self.last_validation),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore a `training_state` (of a trainer of the same model, tasks and seed)."""
        self.model.load_state_dict(state["model"])  # type: ignore[attr-defined]
        self.optimizer.load_state_dict(state["optimizer"])
        for sampler, stored in zip(self._samplers, state["samplers"], strict=True):
            sampler.load_state(stored)
        self.step_count = int(state["step_count"])
        self.skipped_steps = int(state["skipped_steps"])
        self.examples_seen = int(state["examples_seen"])
        self.examples_per_task = np.asarray(state["examples_per_task"]).copy()
        self.train_losses = np.asarray(state["train_losses"]).copy()
        self.last_validation = copy.deepcopy(state["last_validation"])

    # ------------------------------------------------------------------------- training
    def train_step(
        self,
        plan: Step,
        scheduler: Scheduler | None = None,
        max_examples: int | None = None,
    ) -> StepOutcome:
        """Take one optimizer step following ``plan``.

        A step whose loss (a task's or the combined one) is not finite raises
        `NonFiniteLossError` before the update, or, with ``on_nonfinite="skip"``, is skipped:
        no update, ``skipped_steps`` grows by one and the outcome says ``skipped``.

        :param plan: tasks to draw a minibatch from and their loss weights.
        :param scheduler: whose ``combine`` merges the task losses (weighted sum if ``None``).
        :param max_examples: cap on the examples this step may draw (minibatches shrink to fit).
        """
        plan.validate(self.num_tasks)
        if max_examples is not None and max_examples < 1:
            raise ValueError(
                f"train_step was given no examples to draw (max_examples={max_examples})"
            )
        plan, sizes = fit_to_budget(plan, self.config.batch_size, max_examples)
        state = self.state()
        self.model.train()
        batches: list[Batch] = []
        with step_random_stream(self.seed, self.step_count, self.device):
            for k, n in zip(plan.tasks, sizes, strict=True):
                rows = take_rows(self._train_sets[k], self._samplers[k].take(n))
                batches.append(to_device(self.model.collate(self.task_names[k], rows), self.device))
            names = [self.task_names[k] for k in plan.tasks]
            outputs = task_outputs(self.model, list(zip(names, batches, strict=True)))
            task_losses = torch.stack([o.loss() for o in outputs])
            context = CombineContext(
                plan=plan, model=self.model, outputs=outputs, state=state, batches=batches
            )
            if scheduler is None:
                loss = weighted_sum(task_losses, plan)
            else:
                loss = scheduler.combine(task_losses, context)
            # the step's one transfer to the host: every task loss and the combined loss
            dtype = torch.promote_types(task_losses.dtype, loss.dtype)
            parts = [task_losses.detach().reshape(-1), loss.detach().reshape(1)]
            detached = torch.cat([p.to(dtype) for p in parts]).cpu().numpy()
            finite = bool(np.isfinite(detached).all())
            if finite:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            elif self.config.on_nonfinite == "raise":
                hint = "TrainerConfig(on_nonfinite='skip') skips such steps instead"
                raise NonFiniteLossError.of_training_step(names, detached, self.step_count, hint)

        task_values = detached[:-1]
        for k, n, value in zip(plan.tasks, sizes, task_values, strict=True):
            self.examples_per_task[k] += n
            if finite:
                self.train_losses[k] = float(value)
        self.examples_seen += sum(sizes)
        outcome = StepOutcome(
            step=self.step_count,
            plan=plan,
            task_losses=tuple(float(v) for v in task_values),
            loss=float(detached[-1]),
            batch_sizes=tuple(sizes),
            examples_seen=self.examples_seen,
            skipped=not finite,
        )
        self.skipped_steps += not finite
        self.step_count += 1
        return outcome

    # ----------------------------------------------------------------------- evaluation
    def probe_pool(self, k: int, config: ProbeConfig | None = None) -> np.ndarray:
        """Indices of task ``k``'s validation examples in its probe pool
        (`mtl_sched.training.evaluation.EvalBatches.probe_pool`).

        :param k: task index.
        :param config: probe settings (default: this trainer's).
        """
        return self._eval_batches.probe_pool(k, config or self.config.probe)

    def evaluate(self, split: str = "validation") -> EvalResult:
        """Mean unit loss and the metric of every task on ``split``
        (`mtl_sched.training.evaluation.evaluate_tasks`); a validation result becomes
        ``last_validation``.

        :param split: ``"validation"`` or ``"test"``.
        """
        result = evaluate_tasks(self.model, self._eval_batches, split, self.step_count)
        if split == "validation":
            self.last_validation = result
        return result

    def probe(
        self, config: ProbeConfig | None = None, tasks: Sequence[int] | None = None
    ) -> ProbeResult:
        """One probe pass over the tasks' validation probe pools (see
        `mtl_sched.observation.probing`; the pools are chosen by `probe_pool`).

        :param config: probe settings (default: this trainer's).
        :param tasks: the task indices to probe, in the order of the result's rows (``None``:
            every task).
        """
        config = config or self.config.probe
        indices = range(self.num_tasks) if tasks is None else tasks
        batches = [self._eval_batches.probe(k, config) for k in indices]
        names = [self.task_names[k] for k in indices]
        return probe(self.model, batches, config, names, step=self.step_count)

    # ------------------------------------------------------------------------------ run
    def run(
        self,
        scheduler: Scheduler,
        progress: bool = False,
        on_examples: Callable[[int], None] | None = None,
        observers: Sequence[RunObserver] = (),
    ) -> RunResult:
        """Train under ``scheduler`` until the budget is spent; return test metrics of the model
        selected on validation.

        :param scheduler: any scheduler; attached here (reset with this trainer's tasks and
            seed, its learnable terms added to the optimizer). Schedulers that need a
            benchmark's references or a search must have been given them (``prepare``).
        :param progress: show a progress bar over examples.
        :param on_examples: called with the examples seen so far after every step (progress
            reporting from worker processes).
        :param observers: told of every validation evaluation (with the task shares so far)
            and of the result (`RunObserver`); they only read, so the run is the same without.
        :raises NonFiniteLossError: at the first NaN or infinite training loss (unless
            ``on_nonfinite="skip"``), validation, test or probe loss, naming the step and task.
        """
        cfg = self.config
        self.attach(scheduler)
        probe_config = scheduler.probe_config if scheduler.requires_probe else None
        if scheduler.requires_probe and probe_config is None:
            raise ValueError(
                f"scheduler {scheduler.name!r} requires a probe but has no probe_config"
            )
        interval = cfg.eval_interval
        next_eval = self.examples_seen + interval
        record = RunRecorder(self.num_tasks)
        start, cpu_start = time.perf_counter(), time.process_time()
        bar = tqdm(total=cfg.budget, disable=not progress, unit="ex", desc=scheduler.name)
        rolling = RollingProbe(self.num_tasks, probe_config or cfg.probe)
        skipped_before = self.skipped_steps
        trained_since_probe: set[int] = set()
        try:
            while self.examples_seen < cfg.budget:
                probe_result = None
                if probe_config is not None and scheduler.wants_probe(self.step_count):
                    probe_result = rolling.update(
                        lambda tasks: self.probe(probe_config, tasks), sorted(trained_since_probe)
                    )
                    trained_since_probe.clear()
                    record.add_probe(self.examples_seen, probe_result.histograms)
                plan = scheduler.plan(self.state(probe_result))
                before = self.examples_seen
                outcome = self.train_step(
                    plan, scheduler, max_examples=cfg.budget - self.examples_seen
                )
                record.add_step(outcome)
                if not outcome.skipped:
                    trained_since_probe.update(outcome.plan.tasks)
                    scheduler.observe(outcome)
                bar.update(self.examples_seen - before)
                if on_examples is not None:
                    on_examples(self.examples_seen)
                if self.examples_seen >= next_eval or self.examples_seen >= cfg.budget:
                    result = self.evaluate("validation")
                    scheduler.observe(EvalOutcome(examples_seen=self.examples_seen, result=result))
                    for observer in observers:
                        observer.on_evaluation(
                            self.step_count, self.examples_seen, result, self.task_shares()
                        )
                    record.add_validation(self.examples_seen, result, self.model)
                    while next_eval <= self.examples_seen:
                        next_eval += interval
        finally:
            bar.close()
        record.restore_best(self.model)
        run_result = record.result(
            scheduler,
            seed=self.seed,
            task_names=self.task_names,
            test=self.evaluate("test"),
            examples_seen=self.examples_seen,
            steps=self.step_count,
            skipped_steps=self.skipped_steps - skipped_before,
            wall_time=time.perf_counter() - start,
            cpu_time=time.process_time() - cpu_start,
        )
        for observer in observers:
            observer.on_end(run_result)
        return run_result

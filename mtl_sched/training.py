"""The `Trainer`: one training loop for every scheduler.

It owns the optimizer, the example budget, the evaluation cadence and model selection.
Budgets are counted in training examples seen, so that selection schedulers (one minibatch per
step) and weighting schedulers (one minibatch of every task per step) are compared at equal
cost; a run stops at exactly ``budget`` examples (the last step's minibatches are shrunk to fit).
The model is selected on validation data only; test data are touched once, at the end.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm

from mtl_sched.data.task import Task
from mtl_sched.metrics import task_score
from mtl_sched.models.base import Batch, MTLModel, task_outputs, to_device
from mtl_sched.models.qmtl import QMTLHead
from mtl_sched.probing import ProbeConfig, ProbeResult, RollingProbe, probe, probe_pool_indices
from mtl_sched.scheduling import (
    CombineContext,
    EvalOutcome,
    EvalResult,
    NonFiniteLossError,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
    weighted_sum,
)

NonFinitePolicy = Literal["raise", "skip"]
NONFINITE_POLICIES: tuple[str, ...] = ("raise", "skip")

# Tags the per-step random stream of training, apart from the samplers' streams of [seed, k].
_DROPOUT_STREAM = 7919


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of a training run.

    :param budget: training examples to consume (all tasks together).
    :param batch_size: examples per task minibatch.
    :param eval_every: evaluate on validation every this many examples (and at the end);
        ``None`` evaluates ten times per run.
    :param learning_rate: optimizer learning rate.
    :param optimizer: ``"adam"`` or ``"sgd"``.
    :param weight_decay: L2 penalty of the optimizer.
    :param eval_batch_size: batch size of evaluation and probe passes.
    :param probe: probe-pass settings (observation histograms and reward losses).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    :param on_nonfinite: what a training step whose loss (a task's or the combined one) is NaN
        or infinite does: ``"raise"`` (the default) stops the run with a `NonFiniteLossError`
        naming the step and task, before the optimizer update; ``"skip"`` leaves the model and
        optimizer untouched, counts the step (`Trainer.skipped_steps`,
        `RunResult.skipped_steps`) and goes on; its examples still count toward the budget,
        and the scheduler does not observe it. A non-finite validation, test or probe loss
        raises either way.
    """

    budget: int = 10_000
    batch_size: int = 32
    eval_every: int | None = None
    learning_rate: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 0.0
    eval_batch_size: int = 1024
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    device: str = "auto"
    on_nonfinite: NonFinitePolicy = "raise"

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"TrainerConfig.budget must be positive; got {self.budget}")
        if self.batch_size < 1:
            raise ValueError(f"TrainerConfig.batch_size must be positive; got {self.batch_size}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"TrainerConfig.eval_every must be positive; got {self.eval_every}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"TrainerConfig.optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}"
            )
        if self.on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"TrainerConfig.on_nonfinite must be one of {NONFINITE_POLICIES}; "
                f"got {self.on_nonfinite!r}"
            )

    @property
    def eval_interval(self) -> int:
        """Examples between validation evaluations."""
        return self.eval_every if self.eval_every is not None else max(1, self.budget // 10)


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


Columns = dict[str, np.ndarray]


def _column_values(column: pa.ChunkedArray) -> np.ndarray:
    # np.array copies: Arrow's zero-copy views are read-only, which torch warns about
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        if pa.types.is_fixed_size_list(kind) and not pa.types.is_nested(kind.value_type):
            flat = np.array(pc.list_flatten(column).to_numpy(zero_copy_only=False))
            return flat.reshape(len(column), kind.list_size)
        return np.array(column.to_numpy(zero_copy_only=False))
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths == lengths[0]).all() and not pa.types.is_nested(kind.value_type):
        # equal-length vectors (e.g. dense features) stack into one 2-D array
        flat = np.array(pc.list_flatten(column).to_numpy(zero_copy_only=False))
        return flat.reshape(len(lengths), int(lengths[0]))
    values = np.empty(len(column), dtype=object)
    for i, row in enumerate(column.to_pylist()):
        values[i] = row
    return values


def materialize(dataset: datasets.Dataset) -> Columns:
    """Every column of ``dataset`` as one NumPy array: 2-D for equal-length vectors, an object
    array of Python lists for ragged columns (sentences, token ids, tags).

    Indexing these arrays is orders of magnitude faster than indexing the Arrow-backed
    dataset once per minibatch; reading the Arrow columns directly (rather than through the
    NumPy formatter) keeps this fast for tens of thousands of sentences.
    """
    table = dataset.with_format("arrow")[:]
    return {name: _column_values(table.column(name)) for name in table.column_names}


def take_rows(columns: Columns, indices: np.ndarray | slice) -> Columns:
    """The rows ``indices`` of every column."""
    return {name: values[indices] for name, values in columns.items()}


class TaskSampler:
    """Epoch-wise shuffled indices of one task's training set."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.order = rng.permutation(size)
        self.position = 0

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            if self.position == self.size:
                self.order = self.rng.permutation(self.size)
                self.position = 0
            chunk = self.order[self.position : self.position + n]
            self.position += len(chunk)
            n -= len(chunk)
            parts.append(chunk)
        return np.concatenate(parts)


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
        self.optimizer = self._make_optimizer()
        self._model_param_groups = len(self.optimizer.param_groups)
        self._train_sets = [materialize(t.split("train")) for t in tasks]
        self._samplers = [
            TaskSampler(t.size("train"), np.random.default_rng([seed, k]))
            for k, t in enumerate(tasks)
        ]
        self._eval_cache: dict[tuple[int, str, int | None], list[Batch]] = {}
        self._probe_cache: dict[tuple[int, int, str], list[Batch]] = {}
        self.step_count = 0
        self.skipped_steps = 0
        self.examples_seen = 0
        self.examples_per_task = np.zeros(len(tasks), dtype=np.int64)
        self.train_losses = np.full(len(tasks), np.nan)
        self.last_validation: EvalResult | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = list(self.model.parameters())
        cfg = self.config
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

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
            "samplers": [
                {"rng": s.rng.bit_generator.state, "order": s.order.copy(), "position": s.position}
                for s in self._samplers
            ],
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
            sampler.rng.bit_generator.state = stored["rng"]
            sampler.order = np.asarray(stored["order"]).copy()
            sampler.position = int(stored["position"])
        self.step_count = int(state["step_count"])
        self.skipped_steps = int(state["skipped_steps"])
        self.examples_seen = int(state["examples_seen"])
        self.examples_per_task = np.asarray(state["examples_per_task"]).copy()
        self.train_losses = np.asarray(state["train_losses"]).copy()
        self.last_validation = copy.deepcopy(state["last_validation"])

    # ------------------------------------------------------------------------- training
    def _batch_sizes(self, plan: Step, max_examples: int | None) -> list[int]:
        sizes = [self.config.batch_size] * len(plan.tasks)
        if max_examples is None or sum(sizes) <= max_examples:
            return sizes
        base, extra = divmod(max_examples, len(plan.tasks))
        return [
            min(self.config.batch_size, base + (1 if i < extra else 0)) for i in range(len(sizes))
        ]

    @contextmanager
    def _step_random_stream(self) -> Iterator[None]:
        """Run one training step on torch's global generator seeded from (seed, step).

        Dropout and other random layers draw from torch's global generator. Seeding it per step
        makes a run's masks a function of its seed and step alone, whatever else in the process
        draws random numbers (an agent, a second trainer, a probe); the global state is restored
        afterwards, so the caller's own random streams are left as they were.
        """
        step_seed = int(
            np.random.default_rng([self.seed, _DROPOUT_STREAM, self.step_count]).integers(2**62)
        )
        cuda = self.device.type == "cuda"
        index = (self.device.index or torch.cuda.current_device()) if cuda else None
        with torch.random.fork_rng(devices=[index] if cuda else []):
            torch.default_generator.manual_seed(step_seed)
            if cuda:
                torch.cuda.default_generators[index].manual_seed(step_seed)
            yield

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
        sizes = self._batch_sizes(plan, max_examples)
        kept = [i for i, n in enumerate(sizes) if n > 0]
        if not kept:
            raise ValueError("train_step was given no examples to draw (max_examples=0)")
        if len(kept) < len(sizes):
            plan = Step(tuple(plan.tasks[i] for i in kept), tuple(plan.weights[i] for i in kept))
            sizes = [sizes[i] for i in kept]
        state = self.state()
        self.model.train()
        batches: list[Batch] = []
        with self._step_random_stream():
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
                raise self._nonfinite_error(plan, detached)

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

    def _nonfinite_error(self, plan: Step, values: np.ndarray) -> NonFiniteLossError:
        """The error of a training step whose losses ``values`` (the planned tasks' then the
        combined one) are not all finite: it names the first task whose loss is not."""
        hint = "TrainerConfig(on_nonfinite='skip') skips such steps instead"
        for k, value in zip(plan.tasks, values[:-1], strict=True):
            if not np.isfinite(value):
                name = self.task_names[k]
                return NonFiniteLossError(
                    name, self.step_count, "training", float(value), hint=hint
                )
        return NonFiniteLossError(None, self.step_count, "training", float(values[-1]), hint=hint)

    # ----------------------------------------------------------------------- evaluation
    def _collated_chunks(self, k: int, columns: Columns, n: int) -> list[Batch]:
        """The first ``n`` rows of task ``k``'s ``columns`` as evaluation batches on the device."""
        step = self.config.eval_batch_size
        return [
            to_device(
                self.model.collate(
                    self.task_names[k], take_rows(columns, slice(i, min(i + step, n)))
                ),
                self.device,
            )
            for i in range(0, n, step)
        ]

    def _cached_batches(self, k: int, split: str, limit: int | None) -> list[Batch]:
        key = (k, split, limit)
        if key not in self._eval_cache:
            size = self.tasks[k].size(split)
            n = size if limit is None else min(limit, size)
            columns = materialize(self.tasks[k].split(split))
            self._eval_cache[key] = self._collated_chunks(k, columns, n)
        return self._eval_cache[key]

    def probe_pool(self, k: int, config: ProbeConfig | None = None) -> np.ndarray:
        """Indices of task ``k``'s validation examples in its probe pool (`probe_pool_indices`).

        A classification task whose validation split has an integer ``label`` column is
        stratified by it; other tasks (labels per token) get an evenly spread pool.

        :param k: task index.
        :param config: probe settings (default: this trainer's).
        """
        config = config or self.config.probe
        task = self.tasks[k]
        size = task.size("validation")
        labels = None
        if (
            config.selection == "stratified"
            and config.pool_size is not None
            and config.pool_size < size
            and task.kind == "classification"
        ):
            split = task.split("validation")
            if "label" in split.column_names:
                labels = np.asarray(split.with_format("numpy")["label"]).reshape(-1)
                if labels.shape[0] != size or not np.issubdtype(labels.dtype, np.integer):
                    labels = None
        return probe_pool_indices(size, config.pool_size, config.selection, labels)

    def _probe_batches(self, k: int, config: ProbeConfig) -> list[Batch]:
        size = self.tasks[k].size("validation")
        if config.pool_size is None or config.pool_size >= size:
            return self._cached_batches(k, "validation", None)
        if config.selection == "first":
            return self._cached_batches(k, "validation", config.pool_size)
        key = (k, config.pool_size, config.selection)
        if key not in self._probe_cache:
            pool = self.probe_pool(k, config)
            rows = take_rows(materialize(self.tasks[k].split("validation")), pool)
            self._probe_cache[key] = self._collated_chunks(k, rows, len(pool))
        return self._probe_cache[key]

    @torch.no_grad()
    def evaluate(self, split: str = "validation") -> EvalResult:
        """Mean unit loss and the metric of every task on ``split``.

        The metric is unit accuracy for ``"accuracy"`` tasks; for the others the model's
        ``decode`` predicts every example, scored against the task's reference column by
        `mtl_sched.metrics.task_score`.
        """
        was_training = self.model.training  # type: ignore[attr-defined]
        self.model.eval()
        losses, scores, unit_accuracies = [], [], []
        try:
            if split == "validation":
                self._select_heads()
            for k, (task, name) in enumerate(zip(self.tasks, self.task_names, strict=True)):
                decodes = task.metric != "accuracy"
                if decodes and not hasattr(self.model, "decode"):
                    raise TypeError(
                        f"task {name!r} is scored by {task.metric!r}, which needs the model's "
                        f"decode(task, batch); {type(self.model).__name__} has none"
                    )
                total_loss, correct, units = 0.0, 0, 0
                predictions: list = []
                for batch in self._cached_batches(k, split, None):
                    out = self.model.task_output(name, batch)
                    total_loss += float(out.losses().sum())
                    correct += int((out.logits.argmax(dim=-1) == out.targets).sum())
                    units += int(out.targets.numel())
                    if decodes:
                        predictions.extend(self.model.decode(name, batch))  # type: ignore[union-attr]
                if units == 0:
                    raise ValueError(
                        f"task {name!r}: split {split!r} has no prediction units to score"
                    )
                if not np.isfinite(total_loss):
                    raise NonFiniteLossError(name, self.step_count, split, total_loss)
                losses.append(total_loss / units)
                unit_accuracies.append(correct / units)
                if decodes:
                    references = task.split(split)[:][task.reference_column]
                    scores.append(task_score(task, predictions, references))
                else:
                    scores.append(unit_accuracies[-1])
        finally:
            self.model.train(was_training)
        result = EvalResult(
            split=split,
            losses=np.asarray(losses),
            scores=np.asarray(scores),
            metric_names=tuple(t.metric for t in self.tasks),
            unit_accuracies=np.asarray(unit_accuracies),
        )
        if split == "validation":
            self.last_validation = result
        return result

    def _select_heads(self) -> None:
        """Point every Q-MTL head with ``combine="select"`` at its head most accurate on the
        whole validation split (PTA's model selection), before validation is scored; the
        choice is a buffer of the head, so the model kept as best keeps its choice."""
        selecting = [
            m
            for m in getattr(self.model, "modules", lambda: [])()
            if isinstance(m, QMTLHead) and m.combine == "select"
        ]
        for head in selecting:
            k = next(
                (
                    k
                    for k, name in enumerate(self.task_names)
                    if any(p is head.W for p in self.model.task_parameters(name))
                ),
                None,
            )
            if k is None:
                raise ValueError("a Q-MTL head with combine='select' belongs to no task")
            correct = torch.zeros(head.k)
            for batch in self._cached_batches(k, "validation", None):
                out = self.model.task_output(self.task_names[k], batch)
                if out.head_log_probabilities is None:
                    raise TypeError(f"task {self.task_names[k]!r} reports no per-head outputs")
                guesses = out.head_log_probabilities.argmax(dim=-1)
                correct += (guesses == out.targets.unsqueeze(0)).sum(dim=1).cpu()
            head.selected.fill_(int(correct.argmax()))

    def probe(
        self, config: ProbeConfig | None = None, tasks: Sequence[int] | None = None
    ) -> ProbeResult:
        """One probe pass over the tasks' validation probe pools (see `mtl_sched.probing`; the
        pools are chosen by `probe_pool`).

        :param config: probe settings (default: this trainer's).
        :param tasks: the task indices to probe, in the order of the result's rows (``None``:
            every task).
        """
        config = config or self.config.probe
        indices = range(self.num_tasks) if tasks is None else tasks
        batches = [self._probe_batches(k, config) for k in indices]
        names = [self.task_names[k] for k in indices]
        return probe(self.model, batches, config, names, step=self.step_count)

    # ------------------------------------------------------------------------------ run
    def run(
        self,
        scheduler: Scheduler,
        progress: bool = False,
        on_examples: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Train under ``scheduler`` until the budget is spent; return test metrics of the model
        selected on validation.

        :param scheduler: any scheduler; attached here (reset with this trainer's tasks and
            seed, its learnable terms added to the optimizer). Schedulers that need a
            benchmark's references or a search must have been given them (``prepare``).
        :param progress: show a progress bar over examples.
        :param on_examples: called with the examples seen so far after every step (progress
            reporting from worker processes).
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
        history: list[tuple[int, EvalResult]] = []
        schedule: list[np.ndarray] = []
        losses: list[np.ndarray] = []
        probe_history: list[tuple[int, np.ndarray]] = []
        best: EvalResult | None = None
        best_state: dict[str, torch.Tensor] | None = None
        best_seen = 0
        start = time.perf_counter()
        bar = tqdm(total=cfg.budget, disable=not progress, unit="ex", desc=scheduler.name)
        rolling = RollingProbe(self.num_tasks, probe_config or cfg.probe)
        skipped_before = self.skipped_steps
        trained_since_probe: set[int] = set()
        try:
            while self.examples_seen < cfg.budget:
                wants_probe = probe_config is not None and scheduler.wants_probe(self.step_count)
                probe_result = None
                if wants_probe:
                    probe_result = rolling.update(
                        lambda tasks: self.probe(probe_config, tasks), sorted(trained_since_probe)
                    )
                    trained_since_probe.clear()
                    probe_history.append((self.examples_seen, probe_result.histograms))
                plan = scheduler.plan(self.state(probe_result))
                before = self.examples_seen
                outcome = self.train_step(
                    plan, scheduler, max_examples=cfg.budget - self.examples_seen
                )
                row = np.zeros(self.num_tasks, dtype=np.int64)
                row[list(outcome.plan.tasks)] = outcome.batch_sizes
                schedule.append(row)
                loss_row = np.full(self.num_tasks, np.nan)
                if not outcome.skipped:
                    trained_since_probe.update(outcome.plan.tasks)
                    loss_row[list(outcome.plan.tasks)] = outcome.task_losses
                    scheduler.observe(outcome)
                losses.append(loss_row)
                bar.update(self.examples_seen - before)
                if on_examples is not None:
                    on_examples(self.examples_seen)
                if self.examples_seen >= next_eval or self.examples_seen >= cfg.budget:
                    result = self.evaluate("validation")
                    history.append((self.examples_seen, result))
                    scheduler.observe(EvalOutcome(examples_seen=self.examples_seen, result=result))
                    if best is None or result.average_score > best.average_score:
                        best, best_seen = result, self.examples_seen
                        best_state = copy.deepcopy(self.model.state_dict())
                    while next_eval <= self.examples_seen:
                        next_eval += interval
        finally:
            bar.close()
        if best is None or best_state is None:
            raise RuntimeError(
                "the run ended without a validation evaluation (budget already spent)"
            )
        self.model.load_state_dict(best_state)
        test = self.evaluate("test")
        return RunResult(
            scheduler=scheduler.name,
            seed=self.seed,
            task_names=self.task_names,
            test=test,
            best_validation=best,
            best_examples_seen=best_seen,
            validation_history=history,
            schedule=np.stack(schedule) if schedule else np.zeros((0, self.num_tasks), np.int64),
            examples_seen=self.examples_seen,
            steps=self.step_count,
            wall_time=time.perf_counter() - start,
            preparation_examples=scheduler.preparation_examples,
            probe_history=probe_history,
            loss_history=np.stack(losses) if losses else np.zeros((0, self.num_tasks)),
            skipped_steps=self.skipped_steps - skipped_before,
            scheduler_notes=dict(scheduler.notes),
        )

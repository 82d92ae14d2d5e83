"""The scheduler contract shared by every scheduler, baseline or learned.

A scheduler acts on training in one of four ways (seed 002): pick the task of the next
minibatch, weight the task losses, change the gradients, or re-weight samples. One contract
covers all four:

- ``reset(tasks, seed)`` at the start of a run;
- ``plan(state) -> Step``: the task(s) whose minibatch this step draws and their loss weights;
- ``combine(losses, context) -> loss``: how the step's task losses become one loss (the default
  is the weighted sum; methods with learnable terms, gradient surgery or sample re-weighting
  override it);
- ``observe(outcome)``: feedback after every optimizer step and every evaluation.

Three optional hooks serve methods that need more than that:

- ``prepare(benchmark)``: fetch what a method needs from the benchmark before its runs (cached
  single-task references, a weight search on validation data). Runners call it; a scheduler used
  without a benchmark takes the same inputs as keyword arguments instead.
- ``parameters()`` and ``to(device)``: learnable scheduler terms (homoscedastic uncertainty's
  log-variances) that the trainer's optimizer trains together with the model.
- ``preparation_examples``: training examples spent before the run (a weight search, the
  single-task reference runs), reported
  beside the run's own budget so that comparisons can show the full cost.

The `Trainer` gives every scheduler all it can read. A training loop of your own
(`mtl_sched.hooks.SchedulerDriver`) gives what the scheduler declares in ``needs`` (see
`LoopNeed`); ``mtl_sched.scheduler_needs.needs_table()`` renders them for every scheduler.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import numpy as np
import torch

from mtl_sched.errors import NonFiniteLossError

if TYPE_CHECKING:
    from mtl_sched.data.task import Task
    from mtl_sched.models.base import Batch, MTLModel, TaskOutput
    from mtl_sched.observation.probing import ProbeConfig, ProbeResult
    from mtl_sched.training.config import TrainerConfig

__all__ = [
    "COMBINE_ARGUMENTS",
    "CombineContext",
    "EvalOutcome",
    "EvalResult",
    "LoopNeed",
    "NonFiniteLossError",
    "PreparationSource",
    "Scheduler",
    "SchedulerInfo",
    "SchedulerKind",
    "Step",
    "StepOutcome",
    "TrainState",
    "fit_to_budget",
    "weighted_sum",
]

SchedulerKind = Literal["selection", "weighting"]

LoopNeed = Literal[
    "combine",
    "outputs",
    "model",
    "batches",
    "evaluation",
    "parameters",
    "probe",
    "train_sizes",
    "budget",
    "references",
    "weights",
]
"""What a scheduler needs from a training loop of your own beyond ``next_step`` and
``report``; `mtl_sched.scheduler_needs.NEED_USAGE` says what each means and how to give it."""

# the needs that are arguments of ``combine``; each implies "combine"
COMBINE_ARGUMENTS: tuple[LoopNeed, ...] = ("outputs", "model", "batches")


@dataclass(frozen=True)
class Step:
    """One training step's plan: draw a minibatch of each listed task, weight its loss.

    :param tasks: task indices, unique, at least one.
    :param weights: one finite non-negative loss weight per listed task.
    """

    tasks: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("a Step must list at least one task")
        if len(self.tasks) != len(self.weights):
            raise ValueError(f"Step has {len(self.tasks)} tasks but {len(self.weights)} weights")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"Step lists a task twice: {self.tasks}")
        if any(t < 0 for t in self.tasks):
            raise ValueError(f"Step task indices must be non-negative: {self.tasks}")
        if any(not math.isfinite(w) or w < 0 for w in self.weights):
            raise ValueError(f"Step weights must be finite and non-negative: {self.weights}")

    @classmethod
    def select(cls, task: int) -> Step:
        """Train task ``task`` alone with weight 1 (a selection step)."""
        return cls(tasks=(int(task),), weights=(1.0,))

    @classmethod
    def weighted(cls, weights: Sequence[float]) -> Step:
        """Train every task, task ``k`` with loss weight ``weights[k]`` (a weighting step)."""
        return cls(tasks=tuple(range(len(weights))), weights=tuple(float(w) for w in weights))

    def validate(self, num_tasks: int) -> None:
        """Raise ``ValueError`` if a task index is out of range for ``num_tasks`` tasks."""
        bad = [t for t in self.tasks if t >= num_tasks]
        if bad:
            raise ValueError(f"Step names task(s) {bad} but there are only {num_tasks} tasks")


@dataclass
class EvalResult:
    """Per-task loss and score on one split.

    :param split: ``"validation"`` or ``"test"``.
    :param losses: mean loss per task, shape ``(K,)``.
    :param scores: the task metric per task (accuracy for classification), shape ``(K,)``.
    :param metric_names: metric name per task.
    :param unit_accuracies: accuracy per task over its prediction units (examples, tokens or
        target tokens under teacher forcing), shape ``(K,)``; equal to ``scores`` for accuracy
        tasks. ``None`` when the evaluation did not compute it.
    """

    split: str
    losses: np.ndarray
    scores: np.ndarray
    metric_names: tuple[str, ...]
    unit_accuracies: np.ndarray | None = None

    @property
    def average_score(self) -> float:
        """Unweighted mean of the task scores."""
        return float(np.mean(self.scores))

    @property
    def total_loss(self) -> float:
        """Sum of the task losses."""
        return float(np.sum(self.losses))


@dataclass
class TrainState:
    """What a scheduler sees when planning a step.

    :param step: optimizer steps taken so far.
    :param examples_seen: training examples consumed so far (all tasks).
    :param budget: the run's example budget (0 when training has no fixed budget).
    :param examples_per_task: training examples consumed per task, shape ``(K,)``.
    :param train_losses: loss of each task's latest training minibatch (NaN before its first).
    :param validation: the latest validation evaluation, if any.
    :param probe: the current probe pass, for schedulers with ``requires_probe``.
    """

    step: int
    examples_seen: int
    budget: int
    examples_per_task: np.ndarray
    train_losses: np.ndarray
    validation: EvalResult | None = None
    probe: ProbeResult | None = None


@dataclass
class StepOutcome:
    """Feedback after one optimizer step.

    :param step: index of the step just taken (0-based).
    :param plan: the plan that was executed.
    :param task_losses: unweighted mean training loss of each planned task, in plan order.
    :param loss: the combined loss that was back-propagated.
    :param batch_sizes: examples drawn from each planned task, in plan order.
    :param examples_seen: total examples consumed after this step.
    :param skipped: whether the step's loss was not finite and the optimizer update was skipped
        (``TrainerConfig.on_nonfinite="skip"``); its examples still count as drawn.
    """

    step: int
    plan: Step
    task_losses: tuple[float, ...]
    loss: float
    batch_sizes: tuple[int, ...]
    examples_seen: int
    skipped: bool = False


@dataclass
class EvalOutcome:
    """Feedback after a validation evaluation.

    :param examples_seen: examples consumed when the evaluation ran.
    :param result: the validation result.
    """

    examples_seen: int
    result: EvalResult


@dataclass
class CombineContext:
    """What ``Scheduler.combine`` may use besides the task losses.

    :param plan: the step's plan.
    :param model: the model being trained (for methods that need shared-layer gradients).
    :param outputs: the planned tasks' outputs on their minibatches, in plan order.
    :param state: the training state before this step.
    :param batches: the planned tasks' minibatches, in plan order, so that a method measuring
        learning progress can re-evaluate the same examples after the update (Exp3.S's
        prediction gain); empty when the caller has none to give.
    """

    plan: Step
    model: MTLModel
    outputs: Sequence[TaskOutput]
    state: TrainState
    batches: Sequence[Batch] = ()


@dataclass
class SchedulerInfo:
    """Registry facts about a scheduler class (shown by ``mtl-sched list schedulers``)."""

    name: str
    description: str
    source: str
    kind: SchedulerKind
    extra: dict[str, str] = field(default_factory=dict)


def fit_to_budget(plan: Step, batch_size: int, examples_left: int | None) -> tuple[Step, list[int]]:
    """The plan and per-task minibatch sizes of a step that may draw ``examples_left`` more
    examples: the run stops at exactly its budget.

    Every planned task draws ``batch_size`` examples while they fit; otherwise the examples
    left are split evenly, the first tasks of the plan taking one more each, and tasks left
    with none are dropped from the plan (their weights with them).

    :param plan: the scheduler's plan.
    :param batch_size: examples per task minibatch, at least 1.
    :param examples_left: examples the budget still allows (``None``: no budget), at least 1.
    :return: the plan narrowed to the tasks that draw examples, and their sizes in plan order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if examples_left is not None and examples_left < 1:
        raise ValueError(
            f"examples_left must be at least 1 (the budget is spent); got {examples_left}"
        )
    count = len(plan.tasks)
    if examples_left is None or count * batch_size <= examples_left:
        return plan, [batch_size] * count
    base, extra = divmod(examples_left, count)
    sizes = [min(batch_size, base + (1 if i < extra else 0)) for i in range(count)]
    kept = [i for i, n in enumerate(sizes) if n > 0]
    if len(kept) < count:
        plan = Step(tuple(plan.tasks[i] for i in kept), tuple(plan.weights[i] for i in kept))
    return plan, [sizes[i] for i in kept]


class PreparationSource(Protocol):
    """What `Scheduler.prepare` may read of the benchmark of the coming runs: its ``name`` and
    ``fingerprint()`` (keys of cached preparations), ``num_tasks``, ``trainer_config`` (budget,
    optimizer and probe settings) and ``decision_steps`` (minibatches per agent decision). A
    `mtl_sched.benchmarks.Benchmark` is one; a scheduler whose preparation trains on the
    benchmark (single-task references, a weight search) takes a whole ``Benchmark``, which the
    runners always pass."""

    name: str
    trainer_config: TrainerConfig
    decision_steps: int

    @property
    def num_tasks(self) -> int: ...

    def fingerprint(self) -> str: ...


def weighted_sum(losses: torch.Tensor, plan: Step) -> torch.Tensor:
    """``sum_i w_i L_i`` over the planned tasks (``losses`` in plan order)."""
    weights = torch.as_tensor(plan.weights, dtype=losses.dtype, device=losses.device)
    return (weights * losses).sum()


class Scheduler(ABC):
    """Base class of every scheduler.

    Subclasses set the class attributes ``name``, ``description``, ``source`` and ``kind``, and
    implement ``plan``. ``requires_probe`` schedulers get the current probe pass (uncertainty
    histograms) in ``TrainState.probe``, computed with their ``probe_config``.
    ``requires_references`` schedulers need single-task reference accuracies: a ``references``
    keyword argument, or ``prepare(benchmark)``, which reads the benchmark's cached ones.
    ``task_symmetric`` schedulers treat tasks alike (relabelling the tasks relabels the plan);
    the property tests check it. It is off by default: order-dependent methods (round-robin, a
    coordinate search, a trained policy) need not say so. ``needs`` declares what a training
    loop of your own must provide under the default hyperparameters (see `LoopNeed`);
    schedulers whose hyperparameters change that override ``loop_needs``. ``version`` is bumped
    whenever a change of defaults or behaviour changes results: result stores key trials by it
    (from version 2 on), so trials run under an older version are run again, not reused.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    kind: ClassVar[SchedulerKind] = "selection"
    requires_probe: ClassVar[bool] = False
    requires_references: ClassVar[bool] = False
    task_symmetric: ClassVar[bool] = False
    needs: ClassVar[frozenset[LoopNeed]] = frozenset()
    version: ClassVar[int] = 1

    def __init__(self) -> None:
        self.task_names: tuple[str, ...] = ()
        self.rng: np.random.Generator = np.random.default_rng(0)

    @property
    def num_tasks(self) -> int:
        """Number of tasks of the current run (0 before ``reset``)."""
        return len(self.task_names)

    @property
    def probe_config(self) -> ProbeConfig | None:
        """The probe settings this scheduler's observation needs (``requires_probe`` only)."""
        return None

    @classmethod
    def default_needs(cls) -> frozenset[LoopNeed]:
        """What a training loop of your own must provide under the default hyperparameters:
        ``needs``, with ``"probe"`` for ``requires_probe`` schedulers."""
        probe: frozenset[LoopNeed] = frozenset({"probe"}) if cls.requires_probe else frozenset()
        return cls.needs | probe

    def loop_needs(self) -> frozenset[LoopNeed]:
        """What a training loop of your own must provide for this scheduler as configured
        (``default_needs`` unless a hyperparameter changes what the scheduler reads)."""
        return self.default_needs()

    def wants_probe(self, step: int) -> bool:
        """Whether ``plan`` at optimizer step ``step`` will read ``state.probe`` (a probe pass
        is only computed then)."""
        return self.requires_probe

    def prepare(self, benchmark: PreparationSource) -> None:  # noqa: B027
        """Fetch, once and before any run, what this scheduler needs from ``benchmark``.

        Runners (`mtl_sched.registry.prepared_scheduler`, used by ``mtl-sched run``, ``compare`` and
        the demo) call it before training; the default
        needs nothing. Results that cost training (single-task references, a weight search) are
        cached on disk per benchmark configuration, so calling it for every run is cheap.
        """

    @property
    def preparation_examples(self) -> int:
        """Training examples spent before the run (e.g. a weight search); 0 for most methods.

        It is not part of the run's budget; ``RunResult.preparation_examples`` reports it.
        """
        return 0

    @property
    def notes(self) -> dict[str, str]:
        """Facts about this scheduler worth keeping with a run's result (e.g. the task sets a
        learned scheduler was trained on); empty for most methods.
        ``RunResult.scheduler_notes`` reports them."""
        return {}

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        """Start a run on ``tasks``; all randomness of the run derives from ``seed``."""
        self.task_names = tuple(t.name for t in tasks)
        self.rng = np.random.default_rng(seed)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Learnable terms the trainer's optimizer trains together with the model.

        Created by ``reset``; the trainer calls ``to(device)`` and then adds them to its
        optimizer as their own parameter group (without weight decay) at the start of each run.
        """
        return []

    def to(self, device: torch.device) -> None:  # noqa: B027
        """Move learnable terms and other tensors to ``device`` (called after ``reset``)."""

    @abstractmethod
    def plan(self, state: TrainState) -> Step:
        """The next step's task(s) and loss weights."""

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        """Combine the planned tasks' mean losses (shape ``(n,)``, plan order) into one loss."""
        return weighted_sum(losses, context.plan)

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:  # noqa: B027
        """Feedback after each optimizer step and each validation evaluation."""

    @classmethod
    def info(cls) -> SchedulerInfo:
        """Registry facts about this scheduler."""
        return SchedulerInfo(
            name=cls.name, description=cls.description, source=cls.source, kind=cls.kind
        )

"""Gradient aggregation through TorchJD: every task every step, and the shared parameters move
along an aggregation of the per-task gradients instead of their sum (Jacobian descent).

The methods themselves live in `mtl_sched.baselines.aggregator_methods`; this module holds
what they share: the Jacobian of the task losses with respect to the shared parameters, the
loss that writes the aggregated update into ``.grad``, and the check for the optional ``jd``
extra (``pip install "mtl-sched[jd]"``), without which the registry still lists them.
"""

from __future__ import annotations

import importlib
import math
from abc import abstractmethod
from collections.abc import Sequence
from importlib.util import find_spec
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.scheduling import CombineContext, Scheduler, Step, TrainState, weighted_sum

if TYPE_CHECKING:
    from torchjd.aggregation import Aggregator
    from torchjd.linalg import QuadprogProjector

JD_EXTRA_HINT = 'pip install "mtl-sched[jd]"'
# the projection onto the dual cone of the gradients (UPGrad, DualProj) solves a quadratic
# program with these; TorchJD imports them only when such an aggregator is built
QUADPROG_PACKAGES = ("numpy", "qpsolvers", "quadprog")


def torchjd_aggregation() -> ModuleType:
    """The ``torchjd.aggregation`` module.

    :raises ImportError: naming the ``jd`` extra when TorchJD is not installed.
    """
    try:
        return importlib.import_module("torchjd.aggregation")
    except ImportError as err:
        raise ImportError(
            f"the gradient-aggregation schedulers need TorchJD: {JD_EXTRA_HINT}"
        ) from err


def require_packages(scheduler: str, packages: Sequence[str]) -> None:
    """Raise ``ImportError`` naming the missing ``packages`` and the ``jd`` extra.

    :param scheduler: the scheduler's registered name, for the message.
    :param packages: importable names its TorchJD aggregator needs besides TorchJD.
    """
    missing = [name for name in packages if find_spec(name) is None]
    if missing:
        raise ImportError(
            f"scheduler {scheduler!r} needs {', '.join(missing)} (a solver TorchJD uses for "
            f"it): {JD_EXTRA_HINT}"
        )


def check_preference_vector(
    name: str, values: Sequence[float] | None, low: float = 0.0, high: float = math.inf
) -> tuple[float, ...] | None:
    """``values`` as a tuple after checking that each is finite and in ``[low, high]``.

    :param name: the hyperparameter's name, for the message.
    :param values: one value per task, or ``None``.
    :param low: the smallest allowed value.
    :param high: the largest allowed value.
    :raises ValueError: naming ``name`` when a value is out of range or there is none.
    """
    if values is None:
        return None
    checked = tuple(float(v) for v in values)
    if not checked:
        raise ValueError(f"{name} must list one value per task; got none")
    if any(not (math.isfinite(v) and low <= v <= high) for v in checked):
        raise ValueError(f"{name} values must be finite and in [{low}, {high}]; got {checked}")
    return checked


def task_jacobian(
    losses: torch.Tensor, shared: Sequence[nn.Parameter], own: Sequence[Sequence[nn.Parameter]]
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """Each loss's gradient with respect to the shared parameters and to its task's own.

    One backward pass per loss; the graph is kept until the last one. A parameter a loss does
    not reach gets a zero gradient.

    :param losses: the planned tasks' losses, shape ``(K,)``.
    :param shared: the shared parameters.
    :param own: per loss, its task's own parameters (none of them shared).
    :return: the Jacobian, shape ``(K, n)`` with ``n`` the shared parameters' entries
        flattened and concatenated in order, and per loss the gradients of its own parameters.
    """
    rows: list[torch.Tensor] = []
    own_gradients: list[list[torch.Tensor]] = []
    last = len(losses) - 1
    for index, (loss, task_parameters) in enumerate(zip(losses, own, strict=True)):
        parameters = [*shared, *task_parameters]
        grads = torch.autograd.grad(loss, parameters, retain_graph=index < last, allow_unused=True)
        filled = [
            torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads, strict=True)
        ]
        rows.append(torch.cat([g.reshape(-1) for g in filled[: len(shared)]]))
        own_gradients.append(filled[len(shared) :])
    return torch.stack(rows), own_gradients


def gradient_loss(
    value: torch.Tensor, gradients: Sequence[tuple[nn.Parameter, torch.Tensor]]
) -> torch.Tensor:
    """A loss whose value is ``value`` and whose ``backward()`` writes exactly ``gradients``
    into the parameters' ``.grad``.

    ``surrogate = sum_p <p, g_p>`` has gradient ``g_p`` with respect to ``p``; subtracting its
    own detached value leaves that gradient and makes the reported loss ``value``. A scaled
    backward pass (a loss scaler) scales the gradients as it would a plain loss's.

    :param value: the value to report (detached here).
    :param gradients: ``(parameter, gradient)`` pairs; a parameter listed twice gets the sum.
    """
    if not gradients:
        return value.detach()
    surrogate = torch.stack([(p * g.detach()).sum() for p, g in gradients]).sum()
    return surrogate - surrogate.detach() + value.detach().to(surrogate.dtype)


class AggregatorScheduler(Scheduler):
    """Every task every step; the shared parameters' update is a TorchJD aggregation of the
    per-task gradients.

    At each step, with ``J`` the ``K x n`` Jacobian whose row ``k`` is the gradient of task
    ``k``'s loss with respect to the model's shared parameters (all of them flattened), the
    shared parameters get ``A(J)``, the aggregator's vector of ``n``; each task's own
    parameters get the gradient of its own loss. That takes K backward passes per step (one
    per task, `task_jacobian`) instead of one. The returned loss is the summed task loss in
    value, and its ``backward()`` writes exactly those gradients (`gradient_loss`), so the
    trainer's optimizer applies them as it would any gradient.

    Parameters in neither the model's ``shared_parameters()`` nor a planned task's
    ``task_parameters(name)`` get no gradient. A parameter that several tasks list as their own
    (one row of a shared table) gets the sum of their gradients.

    Subclasses set ``name``, ``description`` and ``source``, may list in ``solver_packages``
    what their aggregator needs besides TorchJD, and implement `build_aggregator`.
    """

    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"model"})
    solver_packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        torchjd_aggregation()
        require_packages(self.name, self.solver_packages)
        self._aggregators: dict[tuple[int, ...], Aggregator] = {}

    @abstractmethod
    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        """A fresh TorchJD aggregator for a Jacobian with one row per task of ``tasks``.

        :param tasks: the planned task indices, in row order (all tasks but on a run's last
            step, which may leave out tasks with no examples left to draw).
        """

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        # stateful aggregators (Nash-MTL's previous weights) start afresh each run
        self._aggregators = {}

    def plan(self, state: TrainState) -> Step:
        return Step.weighted([1.0] * self.num_tasks)

    def aggregate(self, jacobian: torch.Tensor, tasks: tuple[int, ...]) -> torch.Tensor:
        """The shared parameters' update: the aggregation of ``jacobian``'s rows.

        :param jacobian: shape ``(len(tasks), n)``, row ``i`` the gradient of task
            ``tasks[i]``'s loss with respect to the shared parameters.
        :param tasks: the planned task indices, in row order.
        :return: a vector of ``n``.
        """
        if tasks not in self._aggregators:
            self._aggregators[tasks] = self.build_aggregator(tasks)
        return self._aggregators[tasks](jacobian).to(jacobian.dtype)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        if context.model is None:
            raise ValueError(f"{self.name} needs the model being trained: context.model is None")
        if not self.task_names:
            raise RuntimeError(f"{type(self).__name__}.combine before reset")
        model = context.model
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        if not shared:
            raise ValueError(f"{self.name} needs a model with trainable shared parameters")
        shared_ids = {id(p) for p in shared}
        own = [
            [
                p
                for p in model.task_parameters(self.task_names[k])
                if p.requires_grad and id(p) not in shared_ids
            ]
            for k in context.plan.tasks
        ]
        jacobian, own_gradients = task_jacobian(losses, shared, own)
        update = self.aggregate(jacobian, context.plan.tasks)
        gradients = list(zip(shared, update.split([p.numel() for p in shared]), strict=True))
        gradients = [(p, g.view_as(p)) for p, g in gradients]
        for task_parameters, task_gradients in zip(own, own_gradients, strict=True):
            gradients += zip(task_parameters, task_gradients, strict=True)
        return gradient_loss(weighted_sum(losses, context.plan), gradients)


class PerTaskValuesScheduler(AggregatorScheduler):
    """An aggregation with an optional value per task (a preference vector, a leak), checked
    against the run's tasks at ``reset`` and narrowed to the planned tasks at each step.

    :param per_task: one value per task, or ``None``; named ``per_task_name`` in messages.
    :param low: the smallest allowed value.
    :param high: the largest allowed value.
    """

    per_task_name: ClassVar[str] = "pref_vector"

    def __init__(self, per_task: Sequence[float] | None, low: float, high: float) -> None:
        self.per_task = check_preference_vector(self.per_task_name, per_task, low, high)
        super().__init__()

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        if self.per_task is not None and len(self.per_task) != len(tasks):
            raise ValueError(
                f"{self.per_task_name} has {len(self.per_task)} values but the run has "
                f"{len(tasks)} tasks"
            )
        super().reset(tasks, seed)

    def per_task_tensor(self, tasks: tuple[int, ...]) -> torch.Tensor | None:
        """The planned tasks' values, in row order (``None`` when none were given)."""
        if self.per_task is None:
            return None
        return torch.tensor([self.per_task[k] for k in tasks])


class DualConeScheduler(PerTaskValuesScheduler):
    """UPGrad and DualProj: a projection onto the dual cone of the task gradients, solved as a
    quadratic program with ``norm_eps`` and ``reg_eps`` as TorchJD's ``QuadprogProjector``.

    :param pref_vector: one non-negative weight per task (``None``: the mean).
    :param norm_eps: added before normalizing the Gramian ``J J^T`` (avoids dividing by zero).
    :param reg_eps: added to the Gramian's diagonal so that the quadratic program stays
        positive definite despite rounding.
    """

    solver_packages = QUADPROG_PACKAGES
    # the name of the TorchJD aggregator class (``UPGrad`` or ``DualProj``)
    torchjd_class: ClassVar[str]

    def __init__(
        self,
        pref_vector: tuple[float, ...] | None = None,
        norm_eps: float = 1e-4,
        reg_eps: float = 1e-4,
    ) -> None:
        for key, value in (("norm_eps", norm_eps), ("reg_eps", reg_eps)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be finite and non-negative; got {value}")
        self.norm_eps = norm_eps
        self.reg_eps = reg_eps
        super().__init__(pref_vector, low=0.0, high=math.inf)

    def projector(self) -> QuadprogProjector:
        """TorchJD's quadratic-program projector with this scheduler's ``norm_eps``/``reg_eps``."""
        from torchjd import linalg

        return linalg.QuadprogProjector(norm_eps=self.norm_eps, reg_eps=self.reg_eps)

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        aggregator = getattr(torchjd_aggregation(), self.torchjd_class)
        return aggregator(pref_vector=self.per_task_tensor(tasks), projector=self.projector())

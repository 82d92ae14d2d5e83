"""The gradient-aggregation schedulers: one TorchJD aggregator each (see
`mtl_sched.baselines.aggregators` for what they share).

Each needs ``pip install "mtl-sched[jd]"``: TorchJD, and the solvers its aggregators use
(quadprog for UPGrad's and DualProj's projection, cvxpy for CAGrad and Nash-MTL).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Literal

import torch

from mtl_sched.baselines.aggregators import (
    AggregatorScheduler,
    DualConeScheduler,
    PerTaskValuesScheduler,
    torchjd_aggregation,
)
from mtl_sched.registry import register_scheduler

if TYPE_CHECKING:
    from torchjd.aggregation import Aggregator


@register_scheduler
class UPGradScheduler(DualConeScheduler):
    """Unconflicting projection of gradients (UPGrad): ``A(J) = sum_k u_k pi_J(g_k)``, where
    ``pi_J(g)`` projects ``g`` onto the dual cone ``{x : J x >= 0}`` of the task gradients
    ``g_k`` (the rows of ``J``, the gradients of the task losses with respect to the shared
    parameters) and ``u`` is ``pref_vector`` (default: ``1/K`` each, the mean). The update
    conflicts with no task (``<g_k, A(J)> >= 0``) and equals the mean when no two gradients
    conflict. Needs K backward passes per step (one per task).

    Source: Quinton & Rey 2024, Jacobian Descent for Multi-Objective Optimization
    (arXiv:2406.16232).

    :param pref_vector: one non-negative weight per task (``None``: the mean).
    :param norm_eps: added before normalizing the Gramian ``J J^T`` (avoids dividing by zero).
    :param reg_eps: added to the Gramian's diagonal so that the quadratic program stays
        positive definite despite rounding.
    """

    name = "upgrad"
    description = (
        "every task every step; shared update: mean of gradients projected onto the dual cone"
    )
    source = "Quinton & Rey 2024 (Jacobian descent, UPGrad); via TorchJD"

    torchjd_class = "UPGrad"


@register_scheduler
class DualProjScheduler(DualConeScheduler):
    """Dual projection (DualProj): ``A(J) = pi_J(J^T u)``, the weighted mean of the task
    gradients (``u`` is ``pref_vector``, default ``1/K`` each) projected onto the dual cone
    ``{x : J x >= 0}`` of the task gradients (the rows of ``J``, the gradients of the task
    losses with respect to the shared parameters). Needs K backward passes per step.

    Source: Lopez-Paz & Ranzato 2017 (GEM's projection), as defined in Quinton & Rey 2024,
    Jacobian Descent for Multi-Objective Optimization (arXiv:2406.16232).

    :param pref_vector: one non-negative weight per task (``None``: the mean).
    :param norm_eps: added before normalizing the Gramian ``J J^T`` (avoids dividing by zero).
    :param reg_eps: added to the Gramian's diagonal so that the quadratic program stays
        positive definite despite rounding.
    """

    name = "dualproj"
    description = "every task every step; shared update: mean gradient projected onto the dual cone"
    source = "Lopez-Paz & Ranzato 2017 (GEM); Quinton & Rey 2024; via TorchJD"

    torchjd_class = "DualProj"


@register_scheduler
class MGDAScheduler(AggregatorScheduler):
    """Multiple-gradient descent (MGDA): ``A(J) = J^T w`` with ``w`` minimizing ``||J^T w||``
    over the simplex: the minimum-norm point of the convex hull of the task gradients (the
    rows of ``J``, the gradients of the task losses with respect to the shared parameters),
    found by Frank-Wolfe iterations. Needs K backward passes per step.

    Source: Désidéri 2012; Sener & Koltun 2018, Multi-Task Learning as Multi-Objective
    Optimization (Algorithm 2).

    :param epsilon: Frank-Wolfe stops when an iteration changes the weights by less.
    :param max_iters: the most Frank-Wolfe iterations per step.
    """

    name = "mgda"
    description = "every task every step; shared update: min-norm point of the gradients' hull"
    source = "Désidéri 2012; Sener & Koltun 2018 (MGDA); via TorchJD"

    def __init__(self, epsilon: float = 1e-3, max_iters: int = 100) -> None:
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be finite and positive; got {epsilon}")
        if max_iters < 1:
            raise ValueError(f"max_iters must be at least 1; got {max_iters}")
        self.epsilon = epsilon
        self.max_iters = max_iters
        super().__init__()

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().MGDA(epsilon=self.epsilon, max_iters=self.max_iters)


@register_scheduler
class PCGradScheduler(AggregatorScheduler):
    """Projecting conflicting gradients (PCGrad): ``A(J) = sum_i g_i'``, where each task
    gradient ``g_i`` (a row of ``J``: the gradient of task ``i``'s loss with respect to the
    shared parameters) starts as ``g_i' = g_i`` and, for every other task ``j`` in a random
    order, loses its conflicting component:
    ``g_i' <- g_i' - min(0, <g_i', g_j>) / ||g_j||^2 g_j``. Needs K backward passes per step.

    The order is drawn from torch's global generator, which the trainer seeds per step, so
    seeded runs repeat exactly; relabelling the tasks changes the draws, hence the
    ``task_symmetric`` flag is off.

    Source: Yu et al. 2020, Gradient Surgery for Multi-Task Learning (Algorithm 1).
    """

    name = "pcgrad"
    description = (
        "every task every step; shared update: sum of gradients with conflicts projected out"
    )
    source = "Yu et al. 2020 (PCGrad); via TorchJD"
    task_symmetric = False

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().PCGrad()


@register_scheduler
class CAGradScheduler(AggregatorScheduler):
    """Conflict-averse gradient descent (CAGrad): with ``g0`` the mean of the task gradients
    (the rows of ``J``, the gradients of the task losses with respect to the shared
    parameters), the update ``d`` maximizes the worst task's improvement ``min_k <g_k, d>``
    within the ball ``||d - g0|| <= c ||g0||``: ``d = g0 + c ||g0|| / ||g_w|| g_w`` with
    ``g_w = J^T w`` and ``w`` on the simplex minimizing ``<g_w, g0> + c ||g0|| ||g_w||``
    (solved by cvxpy on the Gramian). Needs K backward passes per step.

    Source: Liu et al. 2021, Conflict-Averse Gradient Descent for Multi-task Learning.

    :param c: the ball's radius relative to ``||g0||``; 0 gives the mean gradient.
    :param norm_eps: added before normalizing the Gramian ``J J^T`` (avoids dividing by zero).
    """

    name = "cagrad"
    description = (
        "every task every step; shared update: best worst-task gain near the mean gradient"
    )
    source = "Liu et al. 2021 (CAGrad); via TorchJD"
    solver_packages = ("numpy", "cvxpy", "clarabel")

    def __init__(self, c: float = 0.5, norm_eps: float = 1e-4) -> None:
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be finite and non-negative; got {c}")
        if not (math.isfinite(norm_eps) and norm_eps >= 0):
            raise ValueError(f"norm_eps must be finite and non-negative; got {norm_eps}")
        self.c = c
        self.norm_eps = norm_eps
        super().__init__()

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().CAGrad(c=self.c, norm_eps=self.norm_eps)


@register_scheduler
class NashMTLScheduler(AggregatorScheduler):
    """Nash-MTL: ``A(J) = J^T a`` with ``a > 0`` the Nash bargaining solution
    ``(J J^T) a = 1 / a`` (elementwise) over the task gradients (the rows of ``J``, the
    gradients of the task losses with respect to the shared parameters), approximated by
    ``optim_niter`` sequential convex programs (cvxpy with ECOS) and recomputed every
    ``update_weights_every`` steps; the update's norm is clipped to ``max_norm``. Needs K
    backward passes per step. The previous weights warm-start the next solve; they start
    afresh at each run.

    Source: Navon et al. 2022, Multi-Task Learning as a Bargaining Game.

    :param max_norm: the largest norm of the update; 0 disables the clipping.
    :param update_weights_every: recompute the weights every this many steps.
    :param optim_niter: iterations of the sequential convex optimization.
    """

    name = "nash-mtl"
    description = "every task every step; shared update: Nash bargaining solution over gradients"
    source = "Navon et al. 2022 (Nash-MTL); via TorchJD"
    solver_packages = ("numpy", "cvxpy", "ecos")

    def __init__(
        self, max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20
    ) -> None:
        if not (math.isfinite(max_norm) and max_norm >= 0):
            raise ValueError(f"max_norm must be finite and non-negative; got {max_norm}")
        if update_weights_every < 1:
            raise ValueError(f"update_weights_every must be at least 1; got {update_weights_every}")
        if optim_niter < 1:
            raise ValueError(f"optim_niter must be at least 1; got {optim_niter}")
        self.max_norm = max_norm
        self.update_weights_every = update_weights_every
        self.optim_niter = optim_niter
        super().__init__()

    def aggregate(self, jacobian: torch.Tensor, tasks: tuple[int, ...]) -> torch.Tensor:
        with warnings.catch_warnings():
            # TorchJD's problem is not parameterized the way cvxpy caches (DPP); cvxpy says so
            # on the first solve of every run, and re-solving from scratch is what it does anyway
            warnings.filterwarnings("ignore", message=".*not DPP", category=UserWarning)
            return super().aggregate(jacobian, tasks)

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().NashMTL(
            n_tasks=len(tasks),
            max_norm=self.max_norm,
            update_weights_every=self.update_weights_every,
            optim_niter=self.optim_niter,
        )


@register_scheduler
class IMTLGScheduler(AggregatorScheduler):
    """Impartial MTL, gradient part (IMTL-G): ``A(J) = J^T w`` with ``w`` summing to 1 and
    making the update's projections onto every unit task gradient equal,
    ``w ∝ pinv(J J^T) d`` with ``d_k = ||g_k||``; the task gradients ``g_k`` are the rows of
    ``J``, the gradients of the task losses with respect to the shared parameters. Needs K
    backward passes per step.

    Source: Liu et al. 2021, Towards Impartial Multi-task Learning (ICLR); the
    pseudo-inverse form of Quinton & Rey 2024.
    """

    name = "imtl-g"
    description = "every task every step; shared update: equal projection onto each task gradient"
    source = "Liu et al. 2021 (IMTL-G); via TorchJD"

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().IMTLG()


@register_scheduler
class AlignedMTLScheduler(PerTaskValuesScheduler):
    """Aligned-MTL: ``A(J) = J^T B u``, where ``B = sqrt(s) V S^-1/2 V^T`` from the
    eigendecomposition ``J J^T = V S V^T`` makes the task gradients (the rows of ``J``, the
    gradients of the task losses with respect to the shared parameters) orthogonal with equal
    norms, ``s`` being the smallest, median or mean eigenvalue (``scale_mode``), and ``u`` is
    ``pref_vector`` (default ``1/K`` each). Needs K backward passes per step.

    Source: Senushkin et al. 2023, Independent Component Alignment for Multi-Task Learning
    (Algorithm 1).

    :param pref_vector: one non-negative weight per task (``None``: the mean).
    :param scale_mode: the eigenvalue that sets the update's scale: ``"min"``, ``"median"``
        or ``"rmse"`` (the mean).
    """

    name = "aligned-mtl"
    description = (
        "every task every step; shared update: gradients aligned to equal orthogonal norms"
    )
    source = "Senushkin et al. 2023 (Aligned-MTL); via TorchJD"

    def __init__(
        self,
        pref_vector: tuple[float, ...] | None = None,
        scale_mode: Literal["min", "median", "rmse"] = "min",
    ) -> None:
        if scale_mode not in ("min", "median", "rmse"):
            raise ValueError(f"scale_mode must be 'min', 'median' or 'rmse'; got {scale_mode!r}")
        self.scale_mode = scale_mode
        super().__init__(pref_vector, low=0.0, high=math.inf)

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        aligned = torchjd_aggregation().AlignedMTL
        return aligned(pref_vector=self.per_task_tensor(tasks), scale_mode=self.scale_mode)


@register_scheduler
class GradDropScheduler(PerTaskValuesScheduler):
    """Gradient sign dropout (GradDrop): per shared-parameter entry, with the task gradients
    ``g_k`` (the rows of ``J``, the gradients of the task losses with respect to the shared
    parameters), ``P = (1 + sum_k g_k / sum_k |g_k|) / 2`` and ``U ~ Uniform(0, 1)``: keep the
    positive entries where ``P > U`` and the negative ones where ``P < U``;
    ``A(J) = sum_k (l_k + (1 - l_k) M_k) g_k`` with ``M_k`` that mask and ``l_k`` the
    task's leak. Needs K backward passes per step. The paper drops signs of a layer's
    activation gradients; TorchJD applies it to the parameters' gradients.

    ``U`` is drawn from torch's global generator, which the trainer seeds per step, so seeded
    runs repeat exactly; two runs with other draws agree in distribution only, hence the
    ``task_symmetric`` flag is off.

    Source: Chen et al. 2020, Just Pick a Sign: Optimizing Deep Multitask Models with Gradient
    Sign Dropout.

    :param leak: per task, the share of its gradient that always passes, in ``[0, 1]``
        (``None``: no leak).
    """

    name = "graddrop"
    description = (
        "every task every step; shared update: gradient entries dropped by sign consistency"
    )
    source = "Chen et al. 2020 (GradDrop); via TorchJD"
    task_symmetric = False
    per_task_name = "leak"

    def __init__(self, leak: tuple[float, ...] | None = None) -> None:
        super().__init__(leak, low=0.0, high=1.0)

    def build_aggregator(self, tasks: tuple[int, ...]) -> Aggregator:
        return torchjd_aggregation().GradDrop(leak=self.per_task_tensor(tasks))


AGGREGATOR_SCHEDULERS: tuple[type[AggregatorScheduler], ...] = (
    UPGradScheduler,
    MGDAScheduler,
    PCGradScheduler,
    CAGradScheduler,
    NashMTLScheduler,
    IMTLGScheduler,
    AlignedMTLScheduler,
    GradDropScheduler,
    DualProjScheduler,
)

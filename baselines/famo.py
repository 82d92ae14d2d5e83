"""Fast adaptive multitask optimization (Liu et al. 2023): balance the tasks' rates of improvement
from loss values alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import softmax

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import (
    CombineContext,
    EvalOutcome,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
)

# added to every loss before its logarithm, as in the official implementation
LOG_EPSILON = 1e-8


def log_losses(losses: np.ndarray) -> np.ndarray:
    """``log(L_k + eps)``, a rounding ``-0.0`` loss clamped to 0."""
    return np.log(np.clip(np.asarray(losses, dtype=float), 0.0, None) + LOG_EPSILON)


def softmax_vjp(weights: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``J^T delta`` for the softmax Jacobian ``J = diag(z) - z z^T`` at weights ``z``:
    ``z_k (delta_k - sum_j z_j delta_j)``."""
    return weights * (delta - np.dot(weights, delta))


@register_scheduler
class FAMOScheduler(Scheduler):
    """Train every task every step on FAMO's loss (Liu, Feng, Stone and Liu 2023, "FAMO:
    Fast adaptive multitask optimization", NeurIPS; the paper's algorithm and official code):

    ``L = c sum_k z_k log(L_k + eps)``, ``z = softmax(xi)``,
    ``c = (sum_k z_k / (L_k + eps))^-1`` (a constant of the loss, ``eps = 1e-8``),

    so the shared layers follow ``sum_k (c z_k / (L_k + eps)) grad L_k``, a convex combination of
    the task gradients. After each step the logits ``xi`` take one step of their own Adam
    optimizer (learning rate ``w_lr``, L2 decay ``decay``, as in the official code) along

    ``g = J_z(xi)^T delta``, ``delta_k = log(L_k^before + eps) - log(L_k^after + eps)``:

    a task whose log loss fell more than the ``z``-weighted average loses weight, so that all
    tasks improve at about the same rate. The paper and its code measure ``delta`` on the same
    minibatch before and after the update, which costs a second forward pass; here ``delta``
    compares the training minibatch losses of consecutive steps (``StepOutcome.task_losses``
    of step ``t - 1`` and of step ``t``, as reported to ``observe``), which is free but noisier
    and lags by one step. A task missing from either step has ``delta_k = 0``; the first step
    makes no update; a skipped (non-finite) step is not reported and is bridged over.

    Plans report ``z``, which sums to 1; the effective gradient weights ``c z_k / (L_k + eps)``
    also sum to 1 but depend on the step's own losses. The logits are updated by this scheduler,
    not by the trainer's optimizer, so ``parameters()`` is empty.
    ``torchjd.scalarization.FAMO`` implements the same-minibatch form.

    :param w_lr: learning rate of the logits' Adam optimizer (the paper's 0.025).
    :param decay: L2 weight decay of the logits, pulling ``z`` back to uniform (the paper's
        ``gamma = 1e-3``).
    """

    name = "famo"
    description = "every task every step on c sum_k z_k log L_k; z balances the loss decrease rates"
    source = "Liu et al. 2023 (FAMO: fast adaptive multitask optimization, NeurIPS)"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"combine"})

    def __init__(self, w_lr: float = 0.025, decay: float = 1e-3) -> None:
        super().__init__()
        if not w_lr > 0:
            raise ValueError(f"w_lr must be positive; got {w_lr}")
        if not decay >= 0:
            raise ValueError(f"decay must be non-negative; got {decay}")
        self.w_lr = w_lr
        self.decay = decay
        self.logits = torch.zeros(0, dtype=torch.float64)
        self.current_weights = np.zeros(0)
        self._previous_log_losses = np.zeros(0)
        self._logit_optimizer: torch.optim.Adam | None = None

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        # kept on the host in float64: K numbers updated from host floats after each step
        self.logits = torch.zeros(self.num_tasks, dtype=torch.float64, requires_grad=True)
        self._logit_optimizer = torch.optim.Adam(
            [self.logits], lr=self.w_lr, weight_decay=self.decay
        )
        self.current_weights = np.full(self.num_tasks, 1.0 / self.num_tasks)
        self._previous_log_losses = np.full(self.num_tasks, np.nan)

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.current_weights)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        weights = torch.as_tensor(context.plan.weights, dtype=losses.dtype, device=losses.device)
        shifted = losses.clamp_min(0.0) + LOG_EPSILON
        normalizer = (weights / shifted).sum().detach()
        return (weights * torch.log(shifted)).sum() / normalizer

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:
        if not isinstance(outcome, StepOutcome) or outcome.skipped:
            return
        if self._logit_optimizer is None:
            raise ValueError("famo: observe was called before reset")
        tasks = list(outcome.plan.tasks)
        current = np.full(self.num_tasks, np.nan)
        current[tasks] = log_losses(np.asarray(outcome.task_losses))
        delta = self._previous_log_losses - current
        known = np.isfinite(delta)
        self._previous_log_losses[tasks] = current[tasks]
        if not known.any():
            return
        gradient = softmax_vjp(self.current_weights, np.where(known, delta, 0.0))
        self.logits.grad = torch.as_tensor(gradient, dtype=self.logits.dtype)
        self._logit_optimizer.step()
        self.logits.grad = None
        self.current_weights = softmax(self.logits.detach().numpy())

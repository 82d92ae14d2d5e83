"""`StackedOptimizer`: Adam (or plain SGD) over stacked replica parameters.

It applies the update elementwise with per-replica state: the moments and the bias-correction
step count of each replica's encoder and of each replica's task head are its own, and a head
that a replica did not train in a step is left untouched, as ``torch.optim.Adam`` skips a
parameter without gradient. With `mtl_sched.models.stacked.StackedSharedMLP`, replica ``i``
therefore follows the trajectory of the same model trained alone by
`mtl_sched.training.Trainer`, up to floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

__all__ = ["OptimizerKind", "StackedOptimizer"]

OptimizerKind = Literal["adam", "sgd"]


class StackedOptimizer:
    """Adam or SGD over stacked replica parameters, with each replica's state its own.

    Reproduces ``torch.optim.Adam`` (and ``torch.optim.SGD`` without momentum) on every
    replica. Parameters come in groups trained together (a model's encoder layers; its task
    heads); the leading ``unit_dims`` dimensions of a group's parameters index independent
    units (a replica's encoder; a replica's head of one task), each with its own
    bias-correction step count. The moments are elementwise. A unit left out of a step (a head
    its replica did not train) is not updated at all, as ``torch.optim.Adam`` skips a parameter
    without gradient.

    :param groups: the stacked parameters, group by group.
    :param unit_dims: for each group, how many leading dimensions index its units.
    :param kind: ``"adam"`` or ``"sgd"``.
    :param lr: learning rate.
    :param weight_decay: L2 penalty added to the gradient (as ``torch.optim.Adam`` does).
    :param betas: Adam's moment decays.
    :param eps: Adam's denominator term.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[torch.Tensor]],
        unit_dims: Sequence[int],
        kind: OptimizerKind = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if kind not in ("adam", "sgd"):
            raise ValueError(f"kind must be 'adam' or 'sgd'; got {kind!r}")
        if len(unit_dims) != len(groups):
            raise ValueError("give one unit_dims entry per group")
        self.kind: OptimizerKind = kind
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.groups = [list(group) for group in groups]
        self.unit_dims = [int(d) for d in unit_dims]
        self.exp_avg = [[torch.zeros_like(p) for p in group] for group in self.groups]
        self.exp_avg_sq = [[torch.zeros_like(p) for p in group] for group in self.groups]
        self.steps = [
            np.zeros(group[0].shape[:d], dtype=np.int64)
            for group, d in zip(self.groups, self.unit_dims, strict=True)
        ]
        """Per group, the Adam step count of each unit."""

    def state_dict(self) -> dict[str, Any]:
        """Copies of the moments and of every unit's step count (see `load_state_dict`)."""
        return {
            "exp_avg": [[m.detach().clone() for m in ms] for ms in self.exp_avg],
            "exp_avg_sq": [[v.detach().clone() for v in vs] for vs in self.exp_avg_sq],
            "steps": [steps.copy() for steps in self.steps],
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict` of an optimizer of the same parameter shapes, in place.

        :param state: the stored state.
        """
        for ms, stored in zip(self.exp_avg, state["exp_avg"], strict=True):
            for m, value in zip(ms, stored, strict=True):
                m.copy_(value)
        for vs, stored in zip(self.exp_avg_sq, state["exp_avg_sq"], strict=True):
            for v, value in zip(vs, stored, strict=True):
                v.copy_(value)
        for steps, stored in zip(self.steps, state["steps"], strict=True):
            steps[...] = stored

    @torch.no_grad()
    def reset_replica(self, index: int) -> None:
        """Forget replica ``index``'s optimizer state (a fresh optimizer for a fresh model).

        :param index: the replica.
        """
        for ms, vs, steps in zip(self.exp_avg, self.exp_avg_sq, self.steps, strict=True):
            for m, v in zip(ms, vs, strict=True):
                m[index] = 0.0
                v[index] = 0.0
            steps[index] = 0

    @torch.no_grad()
    def step(
        self,
        grads: Sequence[Sequence[torch.Tensor]],
        units: Sequence[tuple[np.ndarray, ...] | None],
    ) -> None:
        """Update every group's trained units.

        :param grads: for each group, the gradient of each of its parameters; of the trained
            units only (``(n, ...)``, in the order of ``units``) where ``units`` are given.
        :param units: for each group, the trained units as index arrays into its leading
            ``unit_dims`` dimensions (each unit at most once; e.g. ``(replicas, tasks)`` for
            heads), or ``None`` when every unit trained.
        """
        beta1, beta2 = self.betas
        params, gs, ms, vs, step_sizes, corrections = [], [], [], [], [], []
        written = []
        for g, (group, group_grads, chosen) in enumerate(
            zip(self.groups, grads, units, strict=True)
        ):
            steps = self.steps[g]
            if chosen is None:
                steps += 1
                counts = steps.astype(np.float64)
                index = None
            else:
                steps[chosen] += 1
                counts = steps[chosen].astype(np.float64)
                index = tuple(torch.as_tensor(u, device=group[0].device) for u in chosen)
            # as torch.optim.Adam: corrections in double precision, applied in float32
            step_size = torch.as_tensor(-self.lr / (1 - beta1**counts), dtype=group[0].dtype)
            correction = torch.as_tensor(np.sqrt(1 - beta2**counts), dtype=group[0].dtype)
            for p, grad, m, v in zip(
                group, group_grads, self.exp_avg[g], self.exp_avg_sq[g], strict=True
            ):
                p = p.detach()
                if index is not None:
                    written.append((p, m, v, index, len(params)))
                    p, m, v = p[index], m[index], v[index]
                shape = counts.shape + (1,) * (p.dim() - counts.ndim)
                params.append(p)
                gs.append(grad)
                ms.append(m)
                vs.append(v)
                step_sizes.append(step_size.to(p.device).view(shape))
                corrections.append(correction.to(p.device).view(shape))
        for p, grad, m, v, step_size, correction in zip(
            params, gs, ms, vs, step_sizes, corrections, strict=True
        ):
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.kind == "sgd":
                p.add_(grad, alpha=-self.lr)
                continue
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = v.sqrt().div_(correction).add_(self.eps)
            p.add_(m.mul(step_size).div_(denom))
        for p, m, v, index, position in written:
            p[index] = params[position]
            m[index] = ms[position]
            v[index] = vs[position]

"""Focal loss (Lin et al. 2017) as a sample scheduler: easy examples are down-weighted."""

from __future__ import annotations

import torch

from mtl_sched.baselines.common import focal_unit_losses
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import CombineContext, Scheduler, Step, TrainState


@register_scheduler
class FocalLossScheduler(Scheduler):
    """Train every task every step; each task's loss is its mean per-unit focal loss
    ``-(1 - p)^gamma log p``, ``p`` the probability of the gold label.

    Well-classified units (``p`` near 1) contribute little, so training focuses on the hard
    units of every task. The reported training losses stay the plain ones.

    :param gamma: focusing parameter; 2 is the paper's default, 0 the plain loss.
    """

    name = "focal"
    description = "every task every step; examples re-weighted by focal loss (1 - p)^gamma"
    source = "Lin et al. 2017 (focal loss); seed 002, Table 2"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"outputs"})

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative; got {gamma}")
        self.gamma = gamma

    def plan(self, state: TrainState) -> Step:
        return Step.weighted([1.0] * self.num_tasks)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        focal = torch.stack([focal_unit_losses(o, self.gamma).mean() for o in context.outputs])
        weights = torch.as_tensor(context.plan.weights, dtype=focal.dtype, device=focal.device)
        return (weights * focal).sum()

"""Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import CombineContext, Scheduler, Step, TrainState


@register_scheduler
class UncertaintyWeighting(Scheduler):
    """Train every task every step with learnable log-variances ``s_k = log sigma_k^2``.

    ``form="classification"`` (default): ``L = sum_k exp(-s_k) L_k + s_k``;
    ``form="regression"``: ``L = sum_k 1/2 exp(-s_k) L_k + 1/2 s_k``, the paper's Gaussian form.
    Both have their minimum over ``s_k`` at ``exp(s_k) = L_k``: a task with a large loss gets a
    small weight ``exp(-s_k)``. Implementations differ (some use ``log sigma_k`` or drop the
    1/2 factors); the classification form is the one seed 002 lists for its classifiers.
    The ``s_k`` start at 0 (weight 1) and are trained by the trainer's optimizer together with
    the model (``parameters``); plans report the current weights ``exp(-s_k)``.

    :param form: ``"classification"`` or ``"regression"`` (see above).
    :param initial_log_variance: starting value of every ``s_k``.
    """

    name = "uncertainty"
    description = "every task every step, weighted by learned homoscedastic uncertainty"
    source = "Kendall, Gal and Cipolla 2018; seed 002, Tables 2, 5, 6"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"combine", "parameters"})

    def __init__(
        self,
        form: Literal["classification", "regression"] = "classification",
        initial_log_variance: float = 0.0,
    ) -> None:
        super().__init__()
        if form not in ("classification", "regression"):
            raise ValueError(f"form must be 'classification' or 'regression'; got {form!r}")
        self.form = form
        self.initial_log_variance = initial_log_variance
        self.log_variances = nn.Parameter(torch.zeros(0))

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self.log_variances = nn.Parameter(
            torch.full((self.num_tasks,), float(self.initial_log_variance))
        )

    def to(self, device: torch.device) -> None:
        self.log_variances = nn.Parameter(self.log_variances.detach().to(device))

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_variances]

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(torch.exp(-self.log_variances.detach()).cpu().tolist())

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        index = torch.as_tensor(context.plan.tasks, device=self.log_variances.device)
        s = self.log_variances.index_select(0, index).to(losses.device)
        total = (torch.exp(-s) * losses + s).sum()
        return 0.5 * total if self.form == "regression" else total

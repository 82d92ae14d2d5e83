"""Dynamic task prioritization (Guo et al. 2018): harder tasks, by a KPI, weigh more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from mtl_sched.baselines.common import focal_unit_losses
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import (
    CombineContext,
    EvalOutcome,
    LoopNeed,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
)


def dtp_weights(kpis: np.ndarray, gamma: float, min_kpi: float = 1e-3) -> np.ndarray:
    """``w_k = -(1 - kbar_k)^gamma log(kbar_k)``, the KPI clipped to ``[min_kpi, 1]``.

    Decreasing in the KPI for ``gamma >= 0``: 0 for a perfect task, large for a failing one.

    :param kpis: smoothed KPI per task, in ``(0, 1]``.
    :param gamma: task-level focusing parameter.
    :param min_kpi: floor that keeps ``log`` finite when a task scores 0.
    """
    k = np.clip(np.asarray(kpis, dtype=float), min_kpi, 1.0)
    return -((1.0 - k) ** gamma) * np.log(k)


@register_scheduler
class DTPScheduler(Scheduler):
    """Train every task every step with ``w_k = -(1 - kbar_k)^gamma log(kbar_k)``.

    ``kbar_k`` is the task's KPI (accuracy) smoothed as ``kbar <- a kappa + (1 - a) kbar``; the
    first KPI of a task is taken as is, and every task weighs 1 until its first KPI. The weights
    are constants of the loss (no gradient flows into them). With ``kpi="train"`` the KPI is the
    accuracy on each step's own minibatch, so a step's weights use the KPIs up to the previous
    step; with ``kpi="validation"`` it is the validation accuracy, updated at each evaluation.
    Guo et al. also apply example-level focal loss inside each task: ``example_gamma > 0`` does.

    As accuracies approach 1 the raw weights fall by three orders of magnitude (a KPI of 0.97
    weighs 0.0009 against about 2 at 0.1), faster than Adam's second-moment average follows,
    so the effective step size shrinks with them (docs: results on real data). By default the
    weights are rescaled to sum to the number of tasks, which keeps their ratios (the
    priorities) and uniform weighting's loss scale; ``normalize=False`` gives Guo et al.'s raw
    weights.

    :param gamma: task-level focusing parameter (ALGORITHMS.md: around 0.5 to 2).
    :param smoothing: ``a``, weight of the newest KPI in the moving average.
    :param kpi: ``"train"`` (minibatch accuracy, every step) or ``"validation"`` (accuracy at
        each evaluation).
    :param example_gamma: focal-loss focusing parameter inside each task (0 disables it).
    :param min_kpi: KPI floor keeping ``log(kbar)`` finite.
    :param normalize: rescale each step's weights to sum to the number of tasks (``False``:
        Guo et al.'s raw weights).
    """

    name = "dtp"
    description = "every task every step; weight -(1 - kpi)^gamma log(kpi) favours hard tasks"
    source = "Guo et al. 2018 (dynamic task prioritization); seed 002, Tables 2, 5, 6"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"outputs"})
    version = 2  # 2: weights normalized by default

    def __init__(
        self,
        gamma: float = 1.0,
        smoothing: float = 0.1,
        kpi: Literal["train", "validation"] = "train",
        example_gamma: float = 0.0,
        min_kpi: float = 1e-3,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if gamma < 0 or example_gamma < 0:
            raise ValueError(
                f"gamma and example_gamma must be non-negative; got {gamma}, {example_gamma}"
            )
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1]; got {smoothing}")
        if kpi not in ("train", "validation"):
            raise ValueError(f"kpi must be 'train' or 'validation'; got {kpi!r}")
        if not 0 < min_kpi < 1:
            raise ValueError(f"min_kpi must be in (0, 1); got {min_kpi}")
        self.gamma = gamma
        self.smoothing = smoothing
        self.kpi = kpi
        self.example_gamma = example_gamma
        self.min_kpi = min_kpi
        self.normalize = normalize
        self.smoothed_kpis = np.zeros(0)

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self.smoothed_kpis = np.full(self.num_tasks, np.nan)

    def update_kpis(self, tasks: Sequence[int], kpis: Sequence[float]) -> None:
        """Fold new KPI values of ``tasks`` into their moving averages."""
        for k, value in zip(tasks, kpis, strict=True):
            previous = self.smoothed_kpis[k]
            if np.isnan(previous):
                self.smoothed_kpis[k] = value
            else:
                self.smoothed_kpis[k] = self.smoothing * value + (1.0 - self.smoothing) * previous

    def weights(self) -> np.ndarray:
        """Current task weights (1 for a task without a KPI yet)."""
        known = ~np.isnan(self.smoothed_kpis)
        weights = np.ones(self.num_tasks)
        weights[known] = dtp_weights(self.smoothed_kpis[known], self.gamma, self.min_kpi)
        if self.normalize:
            total = weights.sum()
            # every task perfect: nothing to prioritize, so fall back to equal weights
            weights = weights * (self.num_tasks / total) if total > 0 else np.ones(self.num_tasks)
        return weights

    def loop_needs(self) -> frozenset[LoopNeed]:
        # the minibatch KPI and the example-level focal loss read the task outputs
        needs: set[LoopNeed] = set()
        if self.kpi == "train" or self.example_gamma > 0:
            needs.add("outputs")
        if self.kpi == "validation":
            needs.add("evaluation")
        return frozenset(needs)

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.weights())

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        if self.kpi == "train":
            with torch.no_grad():
                accuracies = [
                    float((o.logits.argmax(dim=-1) == o.targets).float().mean())
                    for o in context.outputs
                ]
            self.update_kpis(context.plan.tasks, accuracies)
        if self.example_gamma > 0:
            losses = torch.stack(
                [focal_unit_losses(o, self.example_gamma).mean() for o in context.outputs]
            )
        weights = torch.as_tensor(context.plan.weights, dtype=losses.dtype, device=losses.device)
        return (weights * losses).sum()

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:
        if self.kpi == "validation" and isinstance(outcome, EvalOutcome):
            self.update_kpis(range(self.num_tasks), outcome.result.scores.tolist())

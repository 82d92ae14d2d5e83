"""Self-paced multi-task learning (Li et al. 2017): easy tasks (or examples) first.

Self-paced learning alternates between the model and weights ``v`` that minimize
``sum_i v_i l_i + f(v; lambda)``; for the usual regularizers the weights have a closed form given
the current losses ``l_i``:

- ``regularizer="hard"`` (``f = -lambda sum_i v_i``): ``v_i = 1[l_i < lambda]``;
- ``regularizer="linear"`` (``f = lambda sum_i (v_i^2 / 2 - v_i)``):
  ``v_i = max(0, 1 - l_i / lambda)``.

``lambda`` (the "age") grows geometrically with the optimizer step, ``lambda_t = lambda_0 *
growth^t``, so harder tasks enter later. The weights are computed from the step's own losses
(treated as constants) at the task level (``l_k`` = task ``k``'s minibatch loss) or the example
level (``l_i`` = each unit's loss). Li et al.'s exact regularizer couples tasks and instances;
ALGORITHMS.md marks it unconfirmed, so the regularizer, the level, ``lambda_0`` and the growth are
parameters. At the task level, a step in which no task is admitted trains the easiest one, so
that no step of the budget is wasted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import CombineContext, LoopNeed, Scheduler, Step, TrainState


def self_paced_weights(
    losses: torch.Tensor, threshold: float, regularizer: Literal["hard", "linear"]
) -> torch.Tensor:
    """Closed-form self-paced weights of (detached) ``losses`` at age ``threshold``."""
    if regularizer == "hard":
        return (losses < threshold).to(losses.dtype)
    return (1.0 - losses / threshold).clamp_min(0.0)


@register_scheduler
class SelfPacedScheduler(Scheduler):
    """Train every task every step; tasks (or examples) whose loss exceeds the growing
    threshold ``lambda`` are left out (see the module docstring).

    :param regularizer: ``"hard"`` (0/1 weights) or ``"linear"`` (weights falling linearly with
        the loss).
    :param level: ``"task"`` weights each task's minibatch loss, ``"example"`` each unit's loss.
    :param initial_threshold: ``lambda_0``; ``None`` sets it to the median of the first step's
        losses (task or unit losses, by ``level``), admitting about half of them at first.
    :param growth: factor by which ``lambda`` grows per optimizer step (> 1).
    """

    name = "self-paced"
    description = "every task every step; tasks admitted easy first as a loss threshold grows"
    source = "Li et al. 2017 (self-paced multi-task learning); seed 002, Table 2"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"combine"})

    def __init__(
        self,
        regularizer: Literal["hard", "linear"] = "hard",
        level: Literal["task", "example"] = "task",
        initial_threshold: float | None = None,
        growth: float = 1.01,
    ) -> None:
        super().__init__()
        if regularizer not in ("hard", "linear"):
            raise ValueError(f"regularizer must be 'hard' or 'linear'; got {regularizer!r}")
        if level not in ("task", "example"):
            raise ValueError(f"level must be 'task' or 'example'; got {level!r}")
        if initial_threshold is not None and not initial_threshold > 0:
            raise ValueError(f"initial_threshold must be positive; got {initial_threshold}")
        if not growth >= 1:
            raise ValueError(f"growth must be at least 1; got {growth}")
        self.regularizer = regularizer
        self.level = level
        self.initial_threshold = initial_threshold
        self.growth = growth
        self._lambda0: float | None = initial_threshold

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._lambda0 = self.initial_threshold

    def threshold(self, step: int) -> float:
        """``lambda`` at optimizer step ``step`` (after the first step fixed ``lambda_0``)."""
        if self._lambda0 is None:
            raise RuntimeError("the threshold is set by the first combine of the run")
        return self._lambda0 * self.growth**step

    def loop_needs(self) -> frozenset[LoopNeed]:
        # example-level weights are computed from each unit's loss in the task outputs
        return frozenset({"outputs"}) if self.level == "example" else self.needs

    def plan(self, state: TrainState) -> Step:
        return Step.weighted([1.0] * self.num_tasks)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        plan_weights = torch.as_tensor(
            context.plan.weights, dtype=losses.dtype, device=losses.device
        )
        if self.level == "task":
            values = losses.detach()
            if self._lambda0 is None:
                self._lambda0 = max(float(values.median()), 1e-8)
            v = self_paced_weights(values, self.threshold(context.state.step), self.regularizer)
            if not bool((v > 0).any()):
                v = torch.zeros_like(values)
                v[int(values.argmin())] = 1.0
            return (plan_weights * v * losses).sum()
        unit_losses = [o.losses() for o in context.outputs]
        if self._lambda0 is None:
            self._lambda0 = max(float(torch.cat(unit_losses).detach().median()), 1e-8)
        threshold = self.threshold(context.state.step)
        task_losses = torch.stack(
            [
                (self_paced_weights(u.detach(), threshold, self.regularizer) * u).mean()
                for u in unit_losses
            ]
        )
        return (plan_weights * task_losses).sum()

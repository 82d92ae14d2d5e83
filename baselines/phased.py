"""A schedule in stages: each stage takes a fraction of the budget and its own task distribution.

Some task sets want a schedule that changes during the run: a task that becomes learnable only
once another task has built the shared features it reads should wait for them, and a small task
that overfits should stop before the large one has used its budget. ``phased`` runs such a
schedule given by hand. The budget is cut into consecutive stages; stage ``i`` covers the
fraction ``fractions[i]`` of the run's example budget, and while it lasts every step's task is
drawn from that stage's weights (tasks a stage does not name are not trained in it)::

    phased(stages=[{"base": 1}, {"base": 1, "composed": 1}], fractions=[0.6, 0.4])

trains only ``base`` for the first 60% of the examples, then both tasks equally. The stage of a
step is decided by the examples seen before it, so the run needs a budget (the trainer's always
has one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mtl_sched.baselines.common import SamplingScheduler
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import LoopNeed, TrainState


def _check_stage(index: int, stage: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(stage, Mapping) or not stage:
        raise ValueError(
            f"phased: stage {index} must be a non-empty mapping task name -> weight; got {stage!r}"
        )
    weights = {}
    for name, weight in stage.items():
        if not isinstance(name, str):
            raise ValueError(f"phased: stage {index} names a task by {name!r}, not a string")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(
                f"phased: stage {index} weight of {name!r} must be a number; got {weight!r}"
            )
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"phased: stage {index} weight of {name!r} must be finite and non-negative; "
                f"got {weight}"
            )
        weights[name] = float(weight)
    if sum(weights.values()) <= 0:
        raise ValueError(f"phased: stage {index} needs a positive weight; got {weights}")
    return weights


@register_scheduler
class PhasedScheduler(SamplingScheduler):
    """Consecutive stages over the budget, each sampling tasks from its own weights.

    :param stages: one mapping per stage, task name -> sampling weight (finite, non-negative,
        at least one positive); tasks a stage leaves out have weight 0 in it. ``None``: a single
        stage weighting every task by its training-set size (``proportional`` sampling).
    :param fractions: share of the example budget of each stage, in stage order; positive and
        summing to 1. ``None``: equal shares.
    """

    name = "phased"
    description = "consecutive stages over the budget, each sampling from its own task weights"
    source = "staged curricula (e.g. pre-train on one task, then add another); weights by hand"
    task_symmetric = True  # tasks are named, so relabelling the tasks relabels the plan
    needs = frozenset({"budget", "train_sizes"})

    def __init__(
        self,
        stages: Sequence[Mapping[str, float]] | None = None,
        fractions: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if stages is not None and (isinstance(stages, (str, Mapping)) or not stages):
            raise ValueError(
                "phased: stages must be a non-empty list of mappings task -> weight; "
                f"got {stages!r}"
            )
        self.stages = None if stages is None else [_check_stage(i, s) for i, s in enumerate(stages)]
        count = 1 if self.stages is None else len(self.stages)
        if fractions is None:
            shares = [1.0 / count] * count
        else:
            shares = [float(f) for f in fractions]
            if len(shares) != count:
                raise ValueError(f"phased: {len(shares)} fractions for {count} stage(s)")
            if any(not (math.isfinite(f) and f > 0) for f in shares):
                raise ValueError(f"phased: fractions must be positive and finite; got {shares}")
            if abs(sum(shares) - 1.0) > 1e-6:
                raise ValueError(f"phased: fractions must sum to 1; got {sum(shares)} ({shares})")
        self.fractions = tuple(shares)
        # stage i covers [ends[i-1], ends[i]) of the budget; the last one runs to the end
        self._ends = np.cumsum(self.fractions)
        self._distributions = np.zeros((0, 0))

    def loop_needs(self) -> frozenset[LoopNeed]:
        # only the default single stage weights the tasks by their training-set sizes
        return self.needs if self.stages is None else frozenset({"budget"})

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        if self.stages is None:
            sizes = np.asarray([t.size("train") for t in tasks], dtype=float)
            self._distributions = (sizes / sizes.sum())[None]
            return
        rows = []
        for i, stage in enumerate(self.stages):
            unknown = [n for n in stage if n not in self.task_names]
            if unknown:
                raise ValueError(
                    f"phased: stage {i} names unknown task(s) {unknown}; tasks: "
                    f"{list(self.task_names)}"
                )
            row = np.asarray([stage.get(n, 0.0) for n in self.task_names])
            rows.append(row / row.sum())
        self._distributions = np.stack(rows)

    def stage_index(self, state: TrainState) -> int:
        """The stage of the next step: where the examples seen so far fall in the budget."""
        if state.budget <= 0:
            raise ValueError("phased: the run has no example budget to divide into stages")
        progress = state.examples_seen / state.budget
        index = int(np.searchsorted(self._ends, progress, side="right"))
        return min(index, len(self.fractions) - 1)

    def probabilities(self, state: TrainState) -> np.ndarray:
        return self._distributions[self.stage_index(state)].copy()

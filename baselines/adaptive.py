"""Adaptive scheduling (Jean, Firat and Johnson 2019): favour the tasks furthest below their
single-task baselines.

At each validation evaluation, task ``k`` gets ``w_k = (1 / max(s_k / b_k, eps))^alpha``, with
``s_k`` its current validation score and ``b_k`` its single-task reference score. The explicit
variant samples tasks with ``p_k = w_k / sum_j w_j``; the implicit variant trains every task and
scales its loss (hence its gradient) by ``K p_k`` (weights averaging 1, as uniform weighting).
This form is the one ALGORITHMS.md gives, not confirmed against the paper: ``alpha`` and
``eps`` are parameters. Before the first evaluation every task counts the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtl_sched.baselines.common import ReferenceScheduler, SamplingScheduler, task_distribution
from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import EvalResult, Step, TrainState

SOURCE = "Jean, Firat and Johnson 2019 (adaptive scheduling); seed 002, Tables 2, 5, 6"


def adaptive_distribution(
    scores: np.ndarray, references: np.ndarray, alpha: float, epsilon: float
) -> np.ndarray:
    """``p_k ∝ (1 / max(s_k / b_k, eps))^alpha``.

    :param scores: current validation score per task.
    :param references: single-task reference score per task (floored at ``eps`` so that a
        task whose reference is 0 does not divide by zero).
    :param alpha: sharpness; 0 is uniform.
    :param epsilon: floor of the score ratio, capping a task's weight at ``eps^-alpha``.
    """
    ratio = np.maximum(scores / np.maximum(references, epsilon), epsilon)
    return task_distribution(ratio ** (-alpha), "adaptive")


class _Adaptive(ReferenceScheduler):
    """The task distribution shared by both variants (see the module docstring).

    :param references: single-task validation accuracy per task, in task order; ``None`` takes
        the benchmark's cached references in ``prepare``.
    :param alpha: exponent of the inverse score ratio (sharpness of the preference).
    :param epsilon: floor of the score ratio ``s_k / b_k``.
    :param reference_seed: seed of the single-task reference runs read by ``prepare``.
    """

    task_symmetric = True
    needs = frozenset({"references", "evaluation"})

    def __init__(
        self,
        references: Sequence[float] | None = None,
        alpha: float = 1.0,
        epsilon: float = 0.01,
        reference_seed: int = 0,
    ) -> None:
        super().__init__(references, reference_seed)
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative; got {alpha}")
        if not 0 < epsilon <= 1:
            raise ValueError(f"epsilon must be in (0, 1]; got {epsilon}")
        self.alpha = alpha
        self.epsilon = epsilon
        self._distribution = np.zeros(0)
        self._distribution_source: EvalResult | None = None

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._distribution_source = None

    def probabilities(self, state: TrainState) -> np.ndarray:
        """The task distribution from the latest validation evaluation (uniform before it)."""
        if state.validation is None:
            return np.full(self.num_tasks, 1.0 / self.num_tasks)
        if state.validation is not self._distribution_source:  # changes at evaluations only
            scores = np.asarray(state.validation.scores, dtype=float)
            self._distribution = adaptive_distribution(
                scores, self.references, self.alpha, self.epsilon
            )
            self._distribution_source = state.validation
        return self._distribution.copy()


@register_scheduler
class AdaptiveScheduler(_Adaptive, SamplingScheduler):
    """Sample tasks more the further they are below their single-task references (the
    parameters are `_Adaptive`'s: ``references``, ``alpha``, ``epsilon``, ``reference_seed``)."""

    name = "adaptive"
    description = "sample tasks more the further their validation score is below single-task"
    source = SOURCE
    kind = "selection"


@register_scheduler
class AdaptiveImplicitScheduler(_Adaptive):
    """Train every task, its loss scaled by ``K p_k`` of the adaptive distribution (the
    parameters are `_Adaptive`'s: ``references``, ``alpha``, ``epsilon``, ``reference_seed``)."""

    name = "adaptive-implicit"
    description = "weight task losses more the further their validation score is below single-task"
    source = SOURCE
    kind = "weighting"

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.num_tasks * self.probabilities(state))

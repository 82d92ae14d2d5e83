"""Reading `mtl_sched.envs.MTLSchedulingEnv` observations of either kind in tests."""

from __future__ import annotations

import numpy as np

from mtl_sched.envs import MTLSchedulingEnv

# a "task-features" row past its histogram: 7 features, the task's identity (written by
# default), then the mask column
TASK_ROW_EXTRA_COLUMNS = 9


def observation_shape(kind: str, num_tasks: int, bins: int) -> tuple[int, ...]:
    """The observation shape of ``num_tasks`` tasks with ``bins``-bin histograms (no recency
    features, no padded task slots, the default task identities).

    :param kind: ``"histogram"`` or ``"task-features"``.
    :param num_tasks: the number of tasks ``K``.
    :param bins: histogram bins per task.
    """
    if kind == "histogram":
        return (num_tasks * bins,)
    return (num_tasks, bins + TASK_ROW_EXTRA_COLUMNS)


def task_histograms(env: MTLSchedulingEnv, observation: np.ndarray) -> np.ndarray:
    """The ``(K, bins)`` uncertainty histograms inside one of ``env``'s observations: the flat
    vector's per-task blocks, or the first ``bins`` columns of the real task rows.

    :param env: the environment that produced ``observation``.
    :param observation: one observation.
    """
    num_tasks, bins = env.num_tasks, env.probe_config.bins
    if env.observation_kind == "histogram":
        return observation[: num_tasks * bins].reshape(num_tasks, bins)
    return observation[:num_tasks, :bins]

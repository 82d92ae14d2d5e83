"""Gymnasium environments. Importing this package registers ``mtl_sched/MTLScheduling-v0``
(`ENV_ID`) and ``mtl_sched/TaskBandit-v0`` (`BANDIT_ENV_ID`).

A process that has not imported this package does not know those ids: a worker of a subprocess
vector environment (SB3's ``SubprocVecEnv``, Gymnasium's ``AsyncVectorEnv``) started with
``spawn`` or ``forkserver`` calls ``gym.make`` on a bare interpreter. `ENV_ID_WITH_MODULE` and
`BANDIT_ENV_ID_WITH_MODULE` name the module too (Gymnasium's ``"module:env_id"`` form), so
``gym.make`` imports it first and they work in any process::

    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec_env = make_vec_env(BANDIT_ENV_ID_WITH_MODULE, n_envs=4, vec_env_cls=SubprocVecEnv)

``gym.make_vec(ENV_ID, vectorization_mode="async")`` works with either form: it hands its
workers the registered spec, whose entry point is a module path.
"""

import gymnasium as gym

from mtl_sched.envs.bandit import TaskBanditEnv
from mtl_sched.envs.batched import (
    BatchedSchedulingVecEnv,
    benchmark_batches,
    make_scheduling_vec_env,
)
from mtl_sched.envs.replica import ReplicaTrainer
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv
from mtl_sched.envs.task_sets import TaskSetSamplingEnv, task_subsets

ENV_ID = "mtl_sched/MTLScheduling-v0"
BANDIT_ENV_ID = "mtl_sched/TaskBandit-v0"
ENV_ID_WITH_MODULE = f"{__name__}:{ENV_ID}"
BANDIT_ENV_ID_WITH_MODULE = f"{__name__}:{BANDIT_ENV_ID}"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="mtl_sched.envs.scheduling_env:MTLSchedulingEnv")
if BANDIT_ENV_ID not in gym.registry:
    gym.register(id=BANDIT_ENV_ID, entry_point="mtl_sched.envs.bandit:TaskBanditEnv")

__all__ = [
    "BANDIT_ENV_ID",
    "BANDIT_ENV_ID_WITH_MODULE",
    "ENV_ID",
    "ENV_ID_WITH_MODULE",
    "BatchedSchedulingVecEnv",
    "MTLSchedulingEnv",
    "ReplicaTrainer",
    "TaskBanditEnv",
    "TaskSetSamplingEnv",
    "benchmark_batches",
    "make_scheduling_vec_env",
    "task_subsets",
]

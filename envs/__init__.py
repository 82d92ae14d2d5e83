"""Gymnasium environments. Importing this package registers ``mtl_sched/MTLScheduling-v0`` and
``mtl_sched/TaskBandit-v0``."""

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

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="mtl_sched.envs.scheduling_env:MTLSchedulingEnv")
if BANDIT_ENV_ID not in gym.registry:
    gym.register(id=BANDIT_ENV_ID, entry_point="mtl_sched.envs.bandit:TaskBanditEnv")

__all__ = [
    "BANDIT_ENV_ID",
    "ENV_ID",
    "BatchedSchedulingVecEnv",
    "MTLSchedulingEnv",
    "ReplicaTrainer",
    "TaskBanditEnv",
    "TaskSetSamplingEnv",
    "benchmark_batches",
    "make_scheduling_vec_env",
    "task_subsets",
]

"""Gymnasium environments. Importing this package registers ``mtl_sched/MTLScheduling-v0``."""

import gymnasium as gym

from mtl_sched.envs.scheduling_env import MTLSchedulingEnv

ENV_ID = "mtl_sched/MTLScheduling-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="mtl_sched.envs.scheduling_env:MTLSchedulingEnv")

__all__ = ["ENV_ID", "MTLSchedulingEnv"]

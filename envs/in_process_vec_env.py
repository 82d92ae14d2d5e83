"""`InProcessVecEnv`: the part of a stable-baselines3 ``VecEnv`` that only forwards to
environments held in this process (attribute and method access, closing, rendering).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

__all__ = ["InProcessVecEnv"]


class InProcessVecEnv(VecEnv):
    """A ``VecEnv`` whose environments are the unwrapped Gymnasium environments of ``envs``.

    Subclasses set ``envs`` and implement ``reset``, ``step_async`` and ``step_wait``; this class
    forwards ``get_attr``, ``set_attr``, ``env_method`` and ``close`` to the environments, and
    renders no images (the environments have no render modes).
    """

    envs: Sequence[gym.Env]

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in self.envs]

    def _targets(self, indices: VecEnvIndices) -> list[gym.Env]:
        return [self.envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(env, attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._targets(indices):
            setattr(env, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        return [
            getattr(env, method_name)(*method_args, **method_kwargs)
            for env in self._targets(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._targets(indices)]

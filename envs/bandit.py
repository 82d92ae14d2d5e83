"""`TaskBanditEnv`: a contextual bandit shaped like the scheduling problem, with a known optimum.

It has the spaces of `MTLSchedulingEnv` (K tasks, one histogram of B bins per task) but a reward
that is known in closed form, so an agent's result can be checked against the optimum in seconds.

Problem
    ``num_contexts`` contexts are fixed at construction by ``context_seed`` (like a benchmark's
    data). In context ``c`` task ``k`` has a mean uncertainty ``u[c, k]``; each context's
    ``u[c]`` is a random permutation of the ``num_tasks`` levels evenly spaced from
    ``low_level`` to ``high_level``, so every context has exactly one best task.

Spaces
    - Action: ``Discrete(K)``, the task to train.
    - Observation: ``Box(0, 1, (K * B,), float32)``, task after task, a histogram over ``[0, 1]``
      that sums to 1: a Gaussian bump of width ``bump_width`` centred on ``u[c, k]`` and
      discretized to the bin centres. The context is drawn uniformly at every step.

Reward
    ``u[c, a] + reward_noise * Z`` with ``Z`` standard normal: training the most uncertain task
    pays most. The optimal action in context ``c`` is ``argmax_k u[c, k]``
    (`TaskBanditEnv.optimal_actions`); its expected reward is ``high_level`` in every context
    (`TaskBanditEnv.optimal_expected_reward`), against the mean of the levels for a uniformly
    random choice (`TaskBanditEnv.random_expected_reward`). Actions do not affect later contexts,
    so the optimal policy is the same for every discount factor.

Episodes
    Never ``terminated``; ``truncated`` after ``episode_steps`` steps.

Seeding
    ``reset(seed=s)`` seeds the environment's generator, from which the contexts and the reward
    noise are drawn: the same seed and actions reproduce the same observations and rewards.
    The context table depends only on ``context_seed``.

``info`` keys
    - ``context`` (int): the context of the returned observation (``reset`` and ``step``).
    - ``optimal_action`` (int): the best task for the returned observation (``reset`` and
      ``step``).
    - ``expected_reward`` (float, ``step`` only): the noise-free reward of the action taken.
    - ``regret`` (float, ``step`` only): the optimal minus the action's expected reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def bump_histogram(center: float, width: float, bins: int) -> np.ndarray:
    """A Gaussian bump centred on ``center`` over the ``bins`` bin centres of ``[0, 1]``,
    normalized to sum to 1.

    :param center: the bump's centre in ``[0, 1]``.
    :param width: its standard deviation (positive).
    :param bins: number of bins.
    """
    centres = (np.arange(bins) + 0.5) / bins
    weights = np.exp(-0.5 * ((centres - center) / width) ** 2)
    return weights / weights.sum()


class TaskBanditEnv(gym.Env[np.ndarray, np.int64]):
    """Pick the task whose uncertainty histogram sits highest; the reward is that uncertainty.

    :param num_tasks: number of tasks ``K`` (actions), at least 2.
    :param bins: histogram bins ``B`` per task.
    :param num_contexts: number of distinct contexts.
    :param episode_steps: steps per episode.
    :param low_level: mean uncertainty (and expected reward) of the worst task of a context.
    :param high_level: that of the best task: the optimal expected reward.
    :param bump_width: standard deviation of each histogram's bump.
    :param reward_noise: standard deviation of the Gaussian noise added to the reward.
    :param context_seed: seed of the context table.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_tasks: int = 4,
        bins: int = 20,
        num_contexts: int = 8,
        episode_steps: int = 20,
        low_level: float = 0.2,
        high_level: float = 0.8,
        bump_width: float = 0.1,
        reward_noise: float = 0.0,
        context_seed: int = 0,
    ) -> None:
        super().__init__()
        if num_tasks < 2:
            raise ValueError(f"num_tasks must be at least 2; got {num_tasks}")
        for name, value in (
            ("bins", bins),
            ("num_contexts", num_contexts),
            ("episode_steps", episode_steps),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive; got {value}")
        if not 0.0 <= low_level < high_level <= 1.0:
            raise ValueError(
                f"need 0 <= low_level < high_level <= 1; got {low_level} and {high_level}"
            )
        if bump_width <= 0:
            raise ValueError(f"bump_width must be positive; got {bump_width}")
        if reward_noise < 0:
            raise ValueError(f"reward_noise must be non-negative; got {reward_noise}")
        self.num_tasks = num_tasks
        self.bins = bins
        self.episode_steps = episode_steps
        self.reward_noise = float(reward_noise)
        levels = np.linspace(low_level, high_level, num_tasks)
        table_rng = np.random.default_rng(context_seed)
        self.levels = np.stack([table_rng.permutation(levels) for _ in range(num_contexts)])
        self.observations = np.stack(
            [
                np.concatenate([bump_histogram(u, bump_width, bins) for u in row])
                for row in self.levels
            ]
        ).astype(np.float32)
        self.action_space = spaces.Discrete(num_tasks)
        self.observation_space = spaces.Box(
            low=0.0, high=1.0, shape=(num_tasks * bins,), dtype=np.float32
        )
        self._context: int | None = None
        self._episode_step = 0

    @property
    def num_contexts(self) -> int:
        return len(self.levels)

    @property
    def optimal_actions(self) -> np.ndarray:
        """The best task of each context, shape ``(num_contexts,)``."""
        return self.levels.argmax(axis=1)

    @property
    def optimal_expected_reward(self) -> float:
        """Expected reward per step of the optimal policy (``high_level``)."""
        return float(self.levels.max(axis=1).mean())

    @property
    def random_expected_reward(self) -> float:
        """Expected reward per step of a uniformly random choice."""
        return float(self.levels.mean())

    def expected_reward(self, context: int, action: int) -> float:
        """The noise-free reward of ``action`` in ``context``."""
        return float(self.levels[context, action])

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        self._context = int(self.np_random.integers(self.num_contexts))
        best = int(self.optimal_actions[self._context])
        info = {"context": self._context, "optimal_action": best}
        return self.observations[self._context].copy(), info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._episode_step = 0
        return self._observe()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._context is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not a task index in [0, {self.num_tasks})")
        expected = self.expected_reward(self._context, int(action))
        regret = float(self.levels[self._context].max()) - expected
        reward = expected
        if self.reward_noise:
            reward += self.reward_noise * float(self.np_random.standard_normal())
        self._episode_step += 1
        observation, info = self._observe()
        info.update(expected_reward=expected, regret=regret)
        truncated = self._episode_step >= self.episode_steps
        return observation, float(reward), False, truncated, info

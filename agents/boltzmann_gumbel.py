"""DQN with Boltzmann-Gumbel exploration (Cesa-Bianchi et al. 2017), as used by seed 002.

Warm-up
    During the first ``learning_starts`` environment steps (SB3's warm-up, before the first
    gradient update) actions are drawn uniformly at random, as SB3's own off-policy algorithms
    do: the untrained network's arbitrary Q differences would otherwise pick the warm-up actions
    and fill the replay buffer with the transitions of one or two tasks.

After the warm-up the action is ``argmax_a Q(s, a) + beta_a * Z_a`` with ``Z_a`` i.i.d. standard
Gumbel and ``beta_a = C * temperature(t) * sigma(s) / sqrt(N_a)``: ``N_a`` counts how often
action ``a`` was taken in training (warm-up included; with several environments, the counts
before the step), an action never taken has an infinite index (it is tried first), and the
temperature is annealed from ``temperature_initial`` to ``temperature_final`` (nearly greedy).
``sigma(s)`` is the scale of the Q-values the noise is measured against: with
``exploration_scale="q-spread"`` (the default) the standard deviation of ``Q(s, .)`` over the
actions (at least ``MIN_Q_SPREAD``), so that the draw does not depend on the units of the
reward and ``C`` is a multiplier of the Q-values' own spread; with
``exploration_scale="absolute"`` (seed 002's form) ``sigma = 1`` and ``C`` is in reward units,
to be matched by hand to the scale of Q. With a common ``beta`` this samples exactly from
``softmax(Q / beta)`` (the Gumbel-max trick). Epsilon-greedy is off; ``predict`` is greedy.
The draws themselves are in `mtl_sched.agents.exploration` (importable from here too).

``exploration="boltzmann"`` gives plain Boltzmann (softmax) exploration under the same annealed
temperature: actions are drawn from ``softmax(Q / (C * temperature(t) * sigma(s)))``, the counts
play no part (they are still kept, for the logged action shares). It is the Boltzmann-Gumbel
draw with every count taken as 1, which isolates what the count scaling contributes.

Task-shared observations
    With ``policy="TaskSharedPolicy"`` (`mtl_sched.agents.task_shared`) the observation is a
    table of task slots whose last column masks padding, and only the real tasks' slots are
    valid actions: the warm-up draws uniformly among them, ``sigma(s)`` is the spread of their
    Q-values, the Boltzmann-Gumbel draw and the untried-actions rule consider them alone, and
    ``predict`` (greedy on Q-values that are ``-inf`` on padding) never returns a padded slot.
    With flat observations every action is valid and the behaviour is that of the plain agent.

The counts, the temperature schedule's state and the noise generator are attributes, so they
survive ``save``/``load``; the schedule is a function of ``num_timesteps`` over a horizon fixed at
the first ``learn`` call, so a resumed ``learn(..., reset_num_timesteps=False)`` continues it.

Logging
    Without a logger of its own (``set_logger``) and without ``tensorboard_log``, ``learn`` logs
    to standard output when ``verbose >= 1`` and nowhere otherwise, as SB3 does, but without the
    empty ``SB3-<date>`` folder SB3 would make in the temporary directory on every call.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

from mtl_sched.agents.exploration import (
    EXPLORATION_KINDS,
    EXPLORATION_SCALES,
    ExplorationKind,
    ExplorationScale,
    TemperatureSchedule,
    annealed_temperature,
    boltzmann_gumbel_choice,
    q_spread,
)
from mtl_sched.agents.task_shared import TaskSharedDQNPolicy, task_mask

__all__ = ["DEFAULT_NET_ARCH", "DQN_DEFAULTS", "BoltzmannGumbelDQN"]

_EPSILON_KWARGS = ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps")

# DQN settings of a scheduler agent unless given: the measured ones (README, "The agent"),
# shared with `mtl_sched.agents.AgentSettings` and ``train-agent`` (SB3's own defaults, e.g.
# gamma 0.99 and 100 warm-up steps, are tuned for Atari-length episodes)
DQN_DEFAULTS: dict[str, Any] = {
    "gamma": 0.9,
    "learning_rate": 1e-3,
    "learning_starts": 500,
    "buffer_size": 100_000,
    "batch_size": 32,
    "train_freq": 4,
    "target_update_interval": 500,
}
DEFAULT_NET_ARCH: tuple[int, ...] = (64, 64)


class BoltzmannGumbelDQN(DQN):
    """SB3 ``DQN`` whose training-time action choice is Boltzmann-Gumbel exploration.

    Takes every ``DQN`` argument except the epsilon-greedy ones, with the scheduler agent's
    defaults (`DQN_DEFAULTS`, ``net_arch`` `DEFAULT_NET_ARCH`; those of `AgentSettings` and
    ``train-agent`` too) where not given, plus:

    :param exploration: ``"boltzmann-gumbel"`` (count-scaled noise, the default) or
        ``"boltzmann"`` (plain softmax on ``Q / (C * temperature * sigma(s))``, counts ignored).
    :param exploration_c: the constant ``C`` of ``beta_a = C * temperature * sigma(s) /
        sqrt(N_a)``: a multiplier of the Q-values' spread (``"q-spread"``) or, with
        ``exploration_scale="absolute"``, a noise scale in reward units.
    :param exploration_scale: ``"q-spread"`` (``sigma(s)`` the standard deviation of ``Q(s, .)``)
        or ``"absolute"`` (``sigma = 1``, seed 002's form).
    :param temperature_initial: temperature at the start of training.
    :param temperature_final: temperature at the end of annealing (0 allowed for ``"linear"``).
    :param temperature_fraction: fraction of the first ``learn`` call's timesteps over which the
        temperature is annealed; it stays at ``temperature_final`` afterwards.
    :param temperature_schedule: ``"linear"`` or ``"exponential"`` interpolation.

    ``policy`` may also be ``"TaskSharedPolicy"`` (`TaskSharedDQNPolicy`), for task-table
    observations with a mask column; exploration then keeps to the real tasks' slots.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **DQN.policy_aliases,
        "TaskSharedPolicy": TaskSharedDQNPolicy,
    }

    def __init__(
        self,
        policy: Any,
        env: Any,
        exploration: ExplorationKind = "boltzmann-gumbel",
        exploration_c: float = 1.0,
        exploration_scale: ExplorationScale = "q-spread",
        temperature_initial: float = 1.0,
        temperature_final: float = 0.05,
        temperature_fraction: float = 0.8,
        temperature_schedule: TemperatureSchedule = "exponential",
        **kwargs: Any,
    ) -> None:
        given = [k for k in _EPSILON_KWARGS if k in kwargs]
        if given:
            raise TypeError(
                f"BoltzmannGumbelDQN explores by Boltzmann-Gumbel, not epsilon-greedy; "
                f"remove {given}"
            )
        if exploration not in EXPLORATION_KINDS:
            raise ValueError(f"exploration must be one of {EXPLORATION_KINDS}; got {exploration!r}")
        if exploration_scale not in EXPLORATION_SCALES:
            raise ValueError(
                f"exploration_scale must be one of {EXPLORATION_SCALES}; got {exploration_scale!r}"
            )
        if exploration_c < 0:
            raise ValueError(f"exploration_c must be non-negative; got {exploration_c}")
        if temperature_initial < 0 or temperature_final < 0:
            raise ValueError("temperatures must be non-negative")
        if temperature_schedule == "exponential" and (
            temperature_initial <= 0 or temperature_final <= 0
        ):
            raise ValueError("the exponential temperature schedule needs positive temperatures")
        if not 0 < temperature_fraction <= 1:
            raise ValueError(f"temperature_fraction must be in (0, 1]; got {temperature_fraction}")
        annealed_temperature(0.0, temperature_initial, temperature_final, temperature_schedule)
        kwargs = {**DQN_DEFAULTS, **kwargs}
        policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
        policy_kwargs.setdefault("net_arch", list(DEFAULT_NET_ARCH))
        kwargs["policy_kwargs"] = policy_kwargs
        self.exploration: ExplorationKind = exploration
        self.exploration_c = float(exploration_c)
        self.exploration_scale: ExplorationScale = exploration_scale
        self.temperature_initial = float(temperature_initial)
        self.temperature_final = float(temperature_final)
        self.temperature_fraction = float(temperature_fraction)
        self.temperature_schedule: TemperatureSchedule = temperature_schedule
        self.temperature_horizon: int | None = None
        self.temperature = float(temperature_initial)
        super().__init__(
            policy,
            env,
            exploration_fraction=1.0,
            exploration_initial_eps=0.0,
            exploration_final_eps=0.0,
            **kwargs,
        )
        # ``load`` builds the object without an environment, then restores the saved counts.
        action_space = getattr(self, "action_space", None)
        self.action_counts = np.zeros(self._num_actions(action_space), dtype=np.int64)
        self.exploration_rng = np.random.default_rng(self.seed)

    @staticmethod
    def _num_actions(action_space: spaces.Space | None) -> int:
        if action_space is None:
            return 0
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError("BoltzmannGumbelDQN needs a Discrete action space")
        return int(action_space.n)

    def _setup_learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> Any:
        if self._custom_logger or self.tensorboard_log is not None:
            result = super()._setup_learn(total_timesteps, *args, **kwargs)
        else:
            # SB3's default logger would make an empty folder under the temporary directory on
            # every call; this one has SB3's outputs without it and is chosen again next call
            outputs = [HumanOutputFormat(sys.stdout)] if self.verbose >= 1 else []
            self._logger = Logger(folder=None, output_formats=outputs)
            self._custom_logger = True
            try:
                result = super()._setup_learn(total_timesteps, *args, **kwargs)
            finally:
                self._custom_logger = False
        if self.temperature_horizon is None:
            remaining = self._total_timesteps - self.num_timesteps
            self.temperature_horizon = max(1, int(self.temperature_fraction * remaining))
        self._update_temperature()
        return result

    def _update_temperature(self) -> None:
        horizon = self.temperature_horizon or 1
        self.temperature = annealed_temperature(
            self.num_timesteps / horizon,
            self.temperature_initial,
            self.temperature_final,
            self.temperature_schedule,
        )

    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values of a batch of observations, shape ``(n, A)``."""
        obs_tensor, _ = self.policy.obs_to_tensor(observation)
        with torch.no_grad():
            return self.q_net(obs_tensor).cpu().numpy()

    def valid_actions(self, observation: np.ndarray, n_actions: int) -> np.ndarray:
        """Which actions may be taken in each state: the real tasks' slots of a batch of task
        tables ``(n, M, D)`` under the task-shared policy, else every action.

        :param observation: a batch of observations, ``n`` first.
        :param n_actions: the number of actions ``A``.
        :return: boolean array of shape ``(n, A)``.
        """
        observation = np.asarray(observation)
        if observation.ndim == 3 and isinstance(self.policy, TaskSharedDQNPolicy):
            mask = task_mask(observation)
            if mask.shape[1] != n_actions:
                raise ValueError(
                    f"n_actions is {n_actions} but the observation has {mask.shape[1]} task slots"
                )
            return mask
        return np.ones((len(observation), n_actions), dtype=bool)

    def _sample_action(
        self,
        learning_starts: int,
        action_noise: ActionNoise | None = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._last_obs is not None, "self._last_obs was not set"
        n_actions = len(self.action_counts)
        valid = self.valid_actions(self._last_obs, n_actions)  # type: ignore[arg-type]
        if self.num_timesteps < learning_starts:
            actions = self._uniform_valid_actions(valid)
            np.add.at(self.action_counts, actions, 1)
            return actions, actions
        q = self.q_values(self._last_obs)  # type: ignore[arg-type]
        scale = np.full(n_envs, self.exploration_c * self.temperature)
        if self.exploration_scale == "q-spread":
            scale *= q_spread(q, None if valid.all() else valid)
        untried = (self.action_counts == 0)[None, :] & valid
        if self.exploration == "boltzmann-gumbel" and untried.any():
            # untried actions win outright: one environment after the other, so that two
            # environments of one step do not both take the same untried action
            actions = np.empty(n_envs, dtype=np.int64)
            for i in range(n_envs):
                actions[i] = boltzmann_gumbel_choice(
                    q[i], self.action_counts, scale[i], self.exploration_rng, valid[i]
                )
                self.action_counts[actions[i]] += 1
            return actions, actions
        noise_scale = scale[:, None]
        if self.exploration == "boltzmann-gumbel":
            # every valid action was tried; a padded slot never taken keeps a finite scale
            # so that its -inf Q-value is not turned into nan by infinite noise
            tried = np.maximum(self.action_counts, 1)
            noise_scale = noise_scale / np.sqrt(tried)[None, :]
        gumbel = self.exploration_rng.gumbel(size=q.shape)
        scores = np.where(valid, q + noise_scale * gumbel, -np.inf)
        actions = np.argmax(scores, axis=1).astype(np.int64)
        np.add.at(self.action_counts, actions, 1)
        return actions, actions

    def _uniform_valid_actions(self, valid: np.ndarray) -> np.ndarray:
        """One action per state, uniform among its valid actions."""
        if valid.all():
            return self.exploration_rng.integers(valid.shape[1], size=len(valid))
        draws = self.exploration_rng.integers(valid.sum(axis=1))
        # the draws-th valid action of each row: the first column whose running count passes it
        return np.argmax(np.cumsum(valid, axis=1) > draws[:, None], axis=1).astype(np.int64)

    def collect_rollouts(
        self, env: Any, callback: Any, train_freq: TrainFreq, *args: Any, **kwargs: Any
    ) -> Any:
        # SB3 collects whole ``train_freq`` rounds, overshooting a total that is not a multiple
        # of it; a resumed run starts anywhere, so the last round is cut to end exactly (to the
        # step of all ``n_envs`` environments that reaches it, with several).
        # Rounds end at multiples of ``train_freq`` steps counted from the start of training,
        # so a run resumed in the middle of a round finishes that round first.
        if train_freq.unit == TrainFrequencyUnit.STEP:
            steps = self._steps_to_round_end(train_freq.frequency)
            if steps != train_freq.frequency:
                train_freq = TrainFreq(steps, train_freq.unit)
        return super().collect_rollouts(env, callback, train_freq, *args, **kwargs)

    def _steps_to_round_end(self, frequency: int) -> int:
        """Steps (of all ``n_envs`` environments) left in the current round of collection."""
        steps = frequency - (self.num_timesteps // self.n_envs) % frequency
        remaining = -(-(self._total_timesteps - self.num_timesteps) // self.n_envs)
        return remaining if 0 < remaining < steps else steps

    def complete_step(self, step: dict[str, Any]) -> None:
        """Finish a step whose callbacks ran but whose transition was not stored yet (a
        checkpoint written from a callback; see `mtl_sched.agents.training`): store it, count it
        as ``collect_rollouts`` does and, when it ended a round, make the round's gradient
        updates, so that training continues as if it had not stopped.

        :param step: the step's ``new_obs``, ``rewards``, ``dones``, ``infos`` and
            ``buffer_actions``, as the callbacks saw them.
        """
        assert self.replay_buffer is not None
        dones = step["dones"]
        self._update_info_buffer(step["infos"], dones)
        self._store_transition(
            self.replay_buffer,
            step["buffer_actions"],
            step["new_obs"],
            step["rewards"],
            dones,
            step["infos"],
        )
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._on_step()
        self._episode_num += int(np.sum(dones))
        assert isinstance(self.train_freq, TrainFreq)
        frequency = self.train_freq.frequency
        if self.train_freq.unit == TrainFrequencyUnit.STEP:
            ended = (self.num_timesteps // self.n_envs) % frequency == 0
            ended = ended or self.num_timesteps >= self._total_timesteps
        else:
            ended = bool(np.any(dones))
        if ended and self.num_timesteps > 0 and self.num_timesteps > self.learning_starts:
            gradient_steps = self.gradient_steps
            if gradient_steps < 0:
                gradient_steps = frequency * self.n_envs
            if gradient_steps > 0:
                self.train(batch_size=self.batch_size, gradient_steps=gradient_steps)

    def _on_step(self) -> None:
        super()._on_step()
        self._update_temperature()
        self.logger.record("rollout/temperature", self.temperature)
        total = max(int(self.action_counts.sum()), 1)
        for action, count in enumerate(self.action_counts):
            self.logger.record(f"rollout/action_share_{action}", count / total)

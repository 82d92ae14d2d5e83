"""The cost of preparing a scheduler agent, and what it is saved with.

A learned scheduler is only cheap at run time: training it consumed training examples, in its
episodes and in its greedy evaluations. `PreparationLedger` keeps that count in a run's progress
state (so a checkpoint stores it and a resume continues it exactly) and records it on the agent
with the rest of its context (`mtl_sched.agents.context.attach_context`) before each save, so
that `mtl_sched.agents.QLSScheduler` reports it as its ``preparation_examples``.

Episodes are counted from each step's ``info["examples_seen"]`` (the examples of the episode so
far): a step adds its increase over the environment's previous step, and an episode that ends
makes the environment's next one start from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents.context import AgentContext, attach_context

PREPARATION_KEY = "preparation_examples"
EPISODE_KEY = "episode_examples"


class PreparationLedger:
    """Training examples consumed by an agent's training so far, kept in ``progress_state``
    (``"preparation_examples"``, and ``"episode_examples"``: each environment's examples of its
    episode in progress).

    :param progress_state: the run's progress state (stored with every checkpoint).
    :param context_env: an environment of the training settings, for the agent's context (an
        `MTLSchedulingEnv` or a `TaskSetSamplingEnv`; it is not stepped).
    :param n_envs: environments the agent steps at once.
    """

    def __init__(self, progress_state: dict[str, Any], context_env: Any, n_envs: int) -> None:
        self.progress_state = progress_state
        self.context_env = context_env
        progress_state.setdefault(PREPARATION_KEY, 0)
        if len(progress_state.get(EPISODE_KEY, ())) != n_envs:
            self.new_episodes(n_envs)

    @property
    def total(self) -> int:
        """Training examples consumed so far."""
        return int(self.progress_state[PREPARATION_KEY])

    def add(self, examples: int) -> None:
        """Count ``examples`` more (e.g. those of a greedy evaluation run).

        :param examples: training examples consumed.
        """
        self.progress_state[PREPARATION_KEY] = self.total + int(examples)

    def new_episodes(self, n_envs: int) -> None:
        """Every environment starts a new episode (a fresh start, or environments reset on a
        resume that could not restore them).

        :param n_envs: environments the agent steps at once.
        """
        self.progress_state[EPISODE_KEY] = [0] * n_envs

    def count_step(self, infos: Sequence[dict[str, Any]], dones: np.ndarray) -> None:
        """Count the examples of one step of every environment.

        :param infos: the step's ``info`` of each environment (of the step that ended an
            episode, not of the next episode's reset).
        :param dones: whether each environment's episode ended.
        """
        episode = self.progress_state[EPISODE_KEY]
        for i, (info, done) in enumerate(zip(infos, dones, strict=True)):
            seen = int(info["examples_seen"])
            self.add(seen - episode[i])
            episode[i] = 0 if done else seen

    def attach(self, agent: BaseAlgorithm) -> AgentContext:
        """Record the agent's context with its steps and preparation examples so far.

        :param agent: the agent being trained.
        """
        return attach_context(
            agent,
            self.context_env,
            training_steps=agent.num_timesteps,
            preparation_examples=self.total,
        )


class ExamplesSeenCallback(BaseCallback):
    """Count each step's training examples into a `PreparationLedger` (placed before the
    checkpoint callback, so a checkpoint of a step includes that step).

    :param ledger: where the count is kept.
    """

    def __init__(self, ledger: PreparationLedger) -> None:
        super().__init__()
        self.ledger = ledger

    def _on_step(self) -> bool:
        self.ledger.count_step(self.locals["infos"], self.locals["dones"])
        return True

"""`QLSScheduler`: a trained Q-network used greedily as a scheduler (seed 002's QLS)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stable_baselines3.common.base_class import BaseAlgorithm

from mtl_sched.data.task import Task
from mtl_sched.probing import ProbeConfig
from mtl_sched.recency import ChoiceTrace, check_recency_decay
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState

if TYPE_CHECKING:
    from mtl_sched.envs.scheduling_env import MTLSchedulingEnv


@register_scheduler
class QLSScheduler(Scheduler):
    """Pick ``argmax_a Q(s, a)`` where ``s`` is the current uncertainty-histogram observation.

    :param agent: a trained SB3 agent (e.g. `BoltzmannGumbelDQN`), the path of a saved one, or a
        ``train-agent`` output directory (its best agent, probe settings and steps per action).
    :param probe: probe settings; must match those the agent was trained with (default: the
        directory's, else ``ProbeConfig()``).
    :param steps_per_action: optimizer steps each choice lasts; must match the environment's
        ``steps_per_action`` during agent training (default: the directory's, else 1).
    :param recency_decay: the decay of the recency features the agent was trained with
        (`mtl_sched.recency`; default: the directory's, else none). `from_env` takes all three
        settings from the training environment.
    """

    name = "qls"
    description = "learned Q-learning scheduler: greedy task choice from uncertainty histograms"
    source = "seed 002 (QLS)"
    kind = "selection"
    requires_probe = True

    def __init__(
        self,
        agent: BaseAlgorithm | str | Path,
        probe: ProbeConfig | None = None,
        steps_per_action: int | None = None,
        recency_decay: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(agent, (str, Path)) and Path(agent).is_dir():
            from mtl_sched.agents.training import load_trained_agent

            trained = load_trained_agent(agent)
            agent = trained.agent
            probe = probe or trained.probe
            steps_per_action = steps_per_action or trained.settings.steps_per_action
            recency_decay = recency_decay or trained.settings.recency_decay
        elif isinstance(agent, (str, Path)):
            from mtl_sched.agents.training import load_agent_file

            agent = load_agent_file(agent)
        steps_per_action = 1 if steps_per_action is None else steps_per_action
        if steps_per_action < 1:
            raise ValueError(f"steps_per_action must be at least 1; got {steps_per_action}")
        self.steps_per_action = steps_per_action
        self.recency_decay = check_recency_decay(recency_decay)
        self._current: Step | None = None
        self._trace = ChoiceTrace(0, self.recency_decay)
        self.agent = agent
        self._probe = probe or ProbeConfig()

    @classmethod
    def from_env(cls, agent: BaseAlgorithm, env: MTLSchedulingEnv) -> QLSScheduler:
        """The scheduler of an agent trained on ``env``, with its probe settings, steps per
        action and recency features.

        :param agent: the agent.
        :param env: the environment it was trained on.
        """
        return cls(agent, env.probe_config, env.steps_per_action, env.recency.decay)

    @property
    def probe_config(self) -> ProbeConfig:
        return self._probe

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._current = None
        self._trace = ChoiceTrace(self.num_tasks, self.recency_decay)
        expected = self.num_tasks * self._probe.bins + self._trace.size
        obs_shape = self.agent.observation_space.shape
        n_actions = getattr(self.agent.action_space, "n", None)
        if obs_shape != (expected,) or n_actions != self.num_tasks:
            recency = f" + {self._trace.size} recency features" if self._trace.size else ""
            raise ValueError(
                f"the agent was trained for observations of shape {obs_shape} and {n_actions} "
                f"actions, but this run has {self.num_tasks} tasks x {self._probe.bins} bins"
                f"{recency} = ({expected},) and {self.num_tasks} actions"
            )

    def _keeps_choice(self, step: int) -> bool:
        return self._current is not None and step % self.steps_per_action != 0

    def wants_probe(self, step: int) -> bool:
        return not self._keeps_choice(step)

    def plan(self, state: TrainState) -> Step:
        if self._keeps_choice(state.step):
            return self._current
        if state.probe is None:
            raise ValueError("QLSScheduler.plan needs state.probe (the trainer provides it)")
        observation = self._trace.extend(state.probe.observation)
        action, _ = self.agent.predict(observation, deterministic=True)
        self._trace.record(int(action))
        self._current = Step.select(int(action))
        return self._current

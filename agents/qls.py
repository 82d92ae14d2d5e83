"""`QLSScheduler`: a trained Q-network used greedily as a scheduler (seed 002's QLS).

The agent's observation is rebuilt from the run exactly as the training environment built it
(`mtl_sched.envs.observation.SchedulingObservation`, shared with `MTLSchedulingEnv`): the same
probe settings, the same decisions of ``steps_per_action`` minibatches, the same recency features.
An agent saved by ``train-agent`` or attached to its environment (`mtl_sched.agents.context`)
carries those settings and the task sets it was trained on:

- an agent with seed 002's flat network (``"histogram"`` observation) runs only on a task set it
  was trained on, tasks in the same order; any other run is refused with a message naming both;
- an agent with the task-shared network (``"task-features"`` observation) runs on any task set,
  any ``K`` and order; on a task set it was trained on it uses that set's settings, on another the
  benchmark's own probe settings and ``decision_steps`` (given to `prepare`), else those of the
  first task set it was trained on.
- an agent whose network reads task identities (``task_identity``) gets each run task's identity
  from the vocabulary it stores (`mtl_sched.envs.observation.vocabulary_ids`): the same task
  keeps its identity in any order, and a task outside the vocabulary gets identity 0.

Settings passed explicitly must agree with the stored ones of a trained task set (a mismatch is an
error, never silently replaced); agents without a stored context take them as given. With
``transfer=True`` every run is treated as a task set the agent never saw: an agent trained on a
cheaper version of a benchmark (same task names, other probe pools or decision steps) runs with the
run's settings, and its result says so (``scheduler_notes["transfer"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from mtl_sched.agents.context import (
    AgentContext,
    agent_context,
    attach_context,
    read_vocabulary,
)
from mtl_sched.data.task import Task
from mtl_sched.envs.observation import ObservationKind, SchedulingObservation
from mtl_sched.errors import AgentMismatchError
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.observation.recency import check_recency_decay
from mtl_sched.observation.task_features import task_feature_size
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState

if TYPE_CHECKING:
    from mtl_sched.benchmarks.base import Benchmark
    from mtl_sched.envs.scheduling_env import MTLSchedulingEnv


def _observation_kind(agent: BaseAlgorithm, context: AgentContext | None) -> ObservationKind:
    if context is not None:
        return context.observation  # type: ignore[return-value]
    shape = agent.observation_space.shape
    return "task-features" if shape is not None and len(shape) == 2 else "histogram"


def _probe_mismatch(stored: ProbeConfig, given: ProbeConfig) -> str:
    """Why an agent refuses a run's probe settings, and the options that would match it."""
    from mtl_sched.benchmarks.base import probe_option_differences

    message = f"the agent was trained on these tasks with probe={stored}; got probe={given}"
    options = probe_option_differences(stored, given)
    if options and stored.bins == given.bins:
        flags = " ".join(f"--option {option}" for option in options)
        message += (
            f". Run with the agent's probe ({flags}), run it with this run's probe as on tasks "
            "it never saw (--param qls.transfer=true), or train an agent with this run's probe "
            "settings"
        )
    return message


@register_scheduler
class QLSScheduler(Scheduler):
    """Pick ``argmax_a Q(s, a)`` where ``s`` is the agent's observation of the run.

    :param agent: a trained SB3 agent (`BoltzmannGumbelDQN`, or any algorithm whose
        ``predict`` picks a discrete action: DQN, PPO, A2C, ...), the path of a saved one, or a
        ``train-agent`` output directory (its best agent).
    :param probe: probe settings (default: those the agent was trained with, else
        ``ProbeConfig()``); for a task set the agent was trained on, they must match.
    :param steps_per_action: optimizer steps each choice lasts (default: the agent's, else 1);
        for a task set the agent was trained on, it must match.
    :param recency_decay: decay of the recency features (default: the agent's, else none); must
        match the agent's when it stores one.
    :param algorithm: for a saved agent's path, the SB3 algorithm class that saved it, or its name
        (``"PPO"``); by default it is read from the file
        (`mtl_sched.agents.loading.saved_algorithm`).
    :param transfer: schedule every run as a task set the agent was not trained on: its probe
        settings and decision steps are the run's (given here, else the benchmark's) even where
        the agent stores others for the same task names, instead of refusing them. For an agent
        trained on a cheaper version of a benchmark (``fdu-mtl --small`` used on ``fdu-mtl``,
        whose probe pools and decisions differ); a flat agent is still refused on other tasks.
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
        algorithm: type[BaseAlgorithm] | str | None = None,
        transfer: bool = False,
    ) -> None:
        super().__init__()
        if algorithm is not None and (not isinstance(agent, (str, Path)) or Path(agent).is_dir()):
            raise ValueError(
                "algorithm applies only when agent is the path of a saved agent file (a "
                "train-agent directory holds a BoltzmannGumbelDQN)"
            )
        self.training_record: dict[str, str] = {}
        if isinstance(agent, (str, Path)) and Path(agent).is_dir():
            from mtl_sched.agents.loading import load_trained_agent, training_summary

            self.training_record = training_summary(agent)
            trained = load_trained_agent(agent)
            agent = trained.agent
            if agent_context(agent) is None:
                # saved before agents carried their settings: the directory's
                probe = probe or trained.probe
                steps_per_action = steps_per_action or trained.settings.steps_per_action
                recency_decay = recency_decay or trained.settings.recency_decay
        elif isinstance(agent, (str, Path)):
            from mtl_sched.agents.loading import load_agent_file

            agent = load_agent_file(agent, algorithm)
        if steps_per_action is not None and steps_per_action < 1:
            raise ValueError(f"steps_per_action must be at least 1; got {steps_per_action}")
        self.agent = agent
        self.context = agent_context(agent)
        self.observation_kind = _observation_kind(agent, self.context)
        self._given_probe = probe
        self._given_steps = steps_per_action
        self.transfer = transfer
        check_recency_decay(recency_decay)
        if self.context is not None:
            stored = self.context.recency_decay
            if recency_decay is not None and recency_decay != stored:
                raise AgentMismatchError(
                    f"the agent was trained with recency_decay={stored}; got {recency_decay}"
                )
            recency_decay = stored
        self.recency_decay = recency_decay
        self._benchmark_defaults: tuple[ProbeConfig, int] | None = None
        # until a run's tasks pick a trained task set: the first one's settings
        first = None if self.context is None else self.context.task_sets[0]
        self._probe = probe or (first.probe if first else ProbeConfig())
        self.steps_per_action = steps_per_action or (first.steps_per_action if first else 1)
        self._current: Step | None = None
        self._observation: SchedulingObservation | None = None
        self._started = False

    @classmethod
    def from_env(cls, agent: BaseAlgorithm, env: MTLSchedulingEnv) -> QLSScheduler:
        """The scheduler of an agent trained on ``env``: the env's settings and tasks are
        stored on the agent (see `mtl_sched.agents.context`) and restored from there.

        :param agent: the agent.
        :param env: the environment it was trained on (or one holding several in ``envs``).
        """
        if agent_context(agent) is None:
            attach_context(agent, env)
        return cls(agent)

    @property
    def probe_config(self) -> ProbeConfig:
        return self._probe

    @property
    def trained_tasks(self) -> str:
        """The task sets the agent was trained on (``""`` when it does not say)."""
        return "" if self.context is None else self.context.describe()

    @property
    def preparation_examples(self) -> int:
        """Training examples spent training the agent (0 when it does not say)."""
        return 0 if self.context is None else self.context.preparation_examples

    @property
    def notes(self) -> dict[str, str]:
        notes = {"trained_on": self.trained_tasks} if self.trained_tasks else {}
        if self.context is not None and self.context.training_steps:
            notes["training_steps"] = str(self.context.training_steps)
        notes.update(self.training_record)
        if self.transfer:
            notes["transfer"] = "the run's probe settings and decision steps"
        return notes

    def prepare(self, benchmark: Benchmark) -> None:
        """Remember the benchmark's probe settings and ``decision_steps``: a task-shared agent
        uses them on task sets it was not trained on.

        :param benchmark: the benchmark of the coming runs.
        """
        self._benchmark_defaults = (benchmark.trainer_config.probe, benchmark.decision_steps)

    def _resolve_settings(self, names: tuple[str, ...]) -> None:
        context = self.context
        if context is None:
            return
        trained = context.task_set(names)
        if trained is None and not context.any_task_set:
            raise AgentMismatchError(
                f"the agent was trained on the tasks {context.describe()} (in that order) with "
                f"a flat network tied to them; this run has {','.join(names)}. Train an agent "
                "on these tasks, or one with the task-shared network (observation "
                "'task-features'), which schedules any task set"
            )
        if trained is not None and not self.transfer:
            if self._given_probe is not None and self._given_probe != trained.probe:
                raise AgentMismatchError(_probe_mismatch(trained.probe, self._given_probe))
            if self._given_steps is not None and self._given_steps != trained.steps_per_action:
                raise AgentMismatchError(
                    f"the agent was trained on these tasks with steps_per_action="
                    f"{trained.steps_per_action}; got {self._given_steps} (benchmark option "
                    f"decision_steps={trained.steps_per_action} matches it; "
                    "--param qls.transfer=true keeps this run's)"
                )
            self._probe, self.steps_per_action = trained.probe, trained.steps_per_action
            return
        fallback = self._benchmark_defaults or (
            context.task_sets[0].probe,
            context.task_sets[0].steps_per_action,
        )
        self._probe = self._given_probe or fallback[0]
        self.steps_per_action = self._given_steps or fallback[1]

    @property
    def _scores_each_task(self) -> bool:
        """Whether the agent's Q-network scores task rows one by one, so any number of tasks
        will do; other agents act through ``predict``, on their observation space's shape."""
        return self.observation_kind == "task-features" and hasattr(self.agent.policy, "q_net")

    def _check_shapes(self) -> None:
        shape = self.agent.observation_space.shape
        bins = self._probe.bins
        if self.observation_kind == "task-features":
            assert self._observation is not None
            identity = self._observation.task_ids is not None
            width = task_feature_size(bins) + 1 + int(identity)
            if shape is None or len(shape) != 2 or shape[1] != width:
                raise AgentMismatchError(
                    f"the agent reads task rows of shape {shape}, but {bins}-bin probes give "
                    f"rows of {width} values"
                )
            if not self._scores_each_task and shape[0] != self.num_tasks:
                raise AgentMismatchError(
                    f"the agent's policy reads exactly {shape[0]} task rows (it has no "
                    f"Q-network scoring each task); this run has {self.num_tasks} tasks"
                )
            return
        assert self._observation is not None
        expected = self._observation.space.shape
        n_actions = getattr(self.agent.action_space, "n", None)
        if shape != expected or n_actions != self.num_tasks:
            recency = self._observation.recency.size
            extra = f" + {recency} recency features" if recency else ""
            raise AgentMismatchError(
                f"the agent was trained for observations of shape {shape} and {n_actions} "
                f"actions, but this run has {self.num_tasks} tasks x {bins} bins{extra} = "
                f"{expected} and {self.num_tasks} actions"
            )

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self._resolve_settings(self.task_names)
        self._current = None
        self._observation = SchedulingObservation(
            self.observation_kind,
            self.num_tasks,
            self._probe.bins,
            self.recency_decay,
            task_names=self.task_names,
            task_vocabulary=read_vocabulary(self.context),
        )
        self._check_shapes()
        self._started = False

    def _keeps_choice(self, step: int) -> bool:
        return self._current is not None and step % self.steps_per_action != 0

    def wants_probe(self, step: int) -> bool:
        return not self._keeps_choice(step)

    def _choose(self, observation: np.ndarray) -> int:
        if not self._scores_each_task:
            action, _ = self.agent.predict(observation, deterministic=True)
            return int(action)
        # the task-shared network scores any number of rows, not only its space's
        q_net = self.agent.policy.q_net
        device = next(q_net.parameters()).device
        with torch.no_grad():
            q_values = q_net(torch.as_tensor(observation[None], device=device))
        return int(torch.argmax(q_values[0]).item())

    def plan(self, state: TrainState) -> Step:
        if self._keeps_choice(state.step):
            return self._current
        if state.probe is None:
            raise ValueError("QLSScheduler.plan needs state.probe (the trainer provides it)")
        assert self._observation is not None
        if self._started:
            observation = self._observation.observe(state.probe, state)
        else:
            observation = self._observation.reset(state.probe, state)
            self._started = True
        action = self._choose(observation)
        self._observation.record(action)
        self._current = Step.select(action)
        return self._current


def greedy_scheduler(agent: BaseAlgorithm, benchmark: Benchmark) -> Scheduler:
    """The greedy scheduler of ``agent`` on ``benchmark``'s runs, with the settings the agent
    carries (see `mtl_sched.agents.context`) and the benchmark's own for task sets it was not
    trained on.

    :param agent: the agent under evaluation.
    :param benchmark: the benchmark of the evaluation runs.
    """
    scheduler = QLSScheduler(agent)
    scheduler.prepare(benchmark)
    return scheduler

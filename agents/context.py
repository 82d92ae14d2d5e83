"""What a scheduling agent was trained with, saved inside the agent itself.

An agent's Q-values only mean something under the observation it was trained on: the same tasks in
the same order for the flat network of seed 002, the same probe settings, decisions of the same
number of minibatches, the same recency features. `AgentContext` records all of that from the
training environment; `attach_context` stores it as the agent's ``scheduling_context`` attribute,
which SB3's ``save`` writes into the agent's zip file and ``load`` restores, so a saved agent
carries it wherever it goes. `mtl_sched.agents.QLSScheduler` reads it back to restore the settings
and to refuse (flat network) or allow (task-shared network) a run on other tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mtl_sched.observation.probing import ProbeConfig

CONTEXT_ATTRIBUTE = "scheduling_context"


@dataclass(frozen=True)
class TaskSetSettings:
    """One task set an agent was trained on, with the settings of its environment.

    :param task_names: the tasks, in the order of the observation's rows (or blocks).
    :param probe: the probe settings of the observation.
    :param steps_per_action: minibatches each decision trained.
    :param benchmark: the benchmark's name, when it came from one.
    """

    task_names: tuple[str, ...]
    probe: ProbeConfig
    steps_per_action: int
    benchmark: str | None = None


@dataclass(frozen=True)
class AgentContext:
    """The observation and task sets of an agent's training.

    :param observation: ``"histogram"`` (seed 002's flat vector, tied to ``K`` and the task order)
        or ``"task-features"`` (per-task rows, for the task-shared network).
    :param recency_decay: decay of the recency features (``None``: none).
    :param max_tasks: rows (task slots) of the training observation.
    :param reward: the environment's reward.
    :param task_sets: every task set trained on.
    :param training_steps: environment steps of the agent's training so far.
    :param preparation_examples: training examples the agent's training consumed so far (its
        episodes and its greedy evaluations): what a run scheduled by the agent cost beforehand.
    :param task_vocabulary: the task names whose identities the observation carried (empty:
        none; see `mtl_sched.agents.task_shared`); a run's tasks get their identities from it.
    """

    observation: str
    recency_decay: float | None
    max_tasks: int
    reward: str
    task_sets: tuple[TaskSetSettings, ...]
    training_steps: int = 0
    preparation_examples: int = 0
    task_vocabulary: tuple[str, ...] = ()

    @property
    def any_task_set(self) -> bool:
        """Whether the agent scores tasks from their own features, so any task set will do."""
        return self.observation == "task-features"

    @classmethod
    def from_env(cls, env: Any) -> AgentContext:
        """The context of training on ``env``: an `MTLSchedulingEnv` or an env holding several
        of them in ``envs`` (`mtl_sched.envs.task_sets.TaskSetSamplingEnv`).

        :param env: the training environment.
        """
        envs = list(getattr(env, "envs", None) or [env])
        first = envs[0]
        return cls(
            observation=first.observation_kind,
            recency_decay=first.recency_decay,
            max_tasks=int(first.max_tasks),
            reward=first.reward_kind,
            task_sets=tuple(
                TaskSetSettings(
                    task_names=tuple(e.task_names),
                    probe=e.probe_config,
                    steps_per_action=int(e.steps_per_action),
                    benchmark=None if e.benchmark is None else e.benchmark.name,
                )
                for e in envs
            ),
            task_vocabulary=tuple(getattr(first, "task_vocabulary", None) or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (SB3 writes the agent's attributes as JSON)."""
        values = dataclasses.asdict(self)
        for task_set in values["task_sets"]:
            task_set["task_names"] = list(task_set["task_names"])
        values["task_sets"] = list(values["task_sets"])
        values["task_vocabulary"] = list(values["task_vocabulary"])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AgentContext:
        """The context `to_dict` wrote.

        :param values: the stored values.
        """
        task_sets = tuple(
            TaskSetSettings(
                task_names=tuple(t["task_names"]),
                probe=ProbeConfig(**t["probe"]),
                steps_per_action=int(t["steps_per_action"]),
                benchmark=t.get("benchmark"),
            )
            for t in values["task_sets"]
        )
        return cls(
            observation=values["observation"],
            recency_decay=values["recency_decay"],
            max_tasks=int(values["max_tasks"]),
            reward=values["reward"],
            task_sets=task_sets,
            training_steps=int(values.get("training_steps", 0)),
            preparation_examples=int(values.get("preparation_examples", 0)),
            task_vocabulary=tuple(values.get("task_vocabulary", ())),
        )

    def task_set(self, task_names: Sequence[str]) -> TaskSetSettings | None:
        """The trained task set of exactly these tasks in this order, if any.

        :param task_names: a run's tasks.
        """
        names = tuple(task_names)
        return next((t for t in self.task_sets if t.task_names == names), None)

    def describe(self) -> str:
        """One line naming the trained task sets (``a,b,c | d,e``)."""
        return " | ".join(",".join(t.task_names) for t in self.task_sets)


def attach_context(
    agent: Any, env: Any, training_steps: int = 0, preparation_examples: int = 0
) -> AgentContext:
    """Record on ``agent`` what it is trained with on ``env`` (saved with the agent).

    :param agent: an SB3 agent.
    :param env: its training environment (see `AgentContext.from_env`).
    :param training_steps: environment steps trained so far.
    :param preparation_examples: training examples the training consumed so far.
    """
    context = dataclasses.replace(
        AgentContext.from_env(env),
        training_steps=int(training_steps),
        preparation_examples=int(preparation_examples),
    )
    setattr(agent, CONTEXT_ATTRIBUTE, context.to_dict())
    return context


def agent_context(agent: Any) -> AgentContext | None:
    """The context stored on ``agent`` (``None`` for agents saved without one).

    :param agent: an SB3 agent.
    """
    values = getattr(agent, CONTEXT_ATTRIBUTE, None)
    return None if values is None else AgentContext.from_dict(values)


def read_vocabulary(context: AgentContext | None) -> tuple[str, ...] | None:
    """The task names whose identities an agent's observation carried, or ``None`` when it read
    no identities (or was saved without a context): the ``task_vocabulary`` to rebuild that
    observation with.

    :param context: the agent's context (`agent_context`).
    """
    return (context.task_vocabulary or None) if context is not None else None

"""Reinforcement-learning schedulers on stable-baselines3."""

from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.context import AgentContext, TaskSetSettings, agent_context, attach_context
from mtl_sched.agents.exploration import (
    EXPLORATION_KINDS,
    EXPLORATION_SCALES,
    annealed_temperature,
    boltzmann_choice,
    boltzmann_gumbel_choice,
    q_spread,
)
from mtl_sched.agents.progress import TqdmCallback
from mtl_sched.agents.qls import QLSScheduler
from mtl_sched.agents.task_shared import (
    TaskRowsExtractor,
    TaskSharedDQNPolicy,
    TaskSharedQNetwork,
)
from mtl_sched.agents.training import (
    AgentSettings,
    TrainAgentConfig,
    load_trained_agent,
    train_agent,
)

__all__ = [
    "EXPLORATION_KINDS",
    "EXPLORATION_SCALES",
    "AgentContext",
    "AgentSettings",
    "BoltzmannGumbelDQN",
    "QLSScheduler",
    "TaskRowsExtractor",
    "TaskSetSettings",
    "TaskSharedDQNPolicy",
    "TaskSharedQNetwork",
    "TqdmCallback",
    "TrainAgentConfig",
    "agent_context",
    "annealed_temperature",
    "attach_context",
    "boltzmann_choice",
    "boltzmann_gumbel_choice",
    "load_trained_agent",
    "q_spread",
    "train_agent",
]

"""Reinforcement-learning schedulers on stable-baselines3."""

from mtl_sched.agents.boltzmann_gumbel import (
    BoltzmannGumbelDQN,
    annealed_temperature,
    boltzmann_gumbel_choice,
)
from mtl_sched.agents.progress import TqdmCallback
from mtl_sched.agents.qls import QLSScheduler

__all__ = [
    "BoltzmannGumbelDQN",
    "QLSScheduler",
    "TqdmCallback",
    "annealed_temperature",
    "boltzmann_gumbel_choice",
]

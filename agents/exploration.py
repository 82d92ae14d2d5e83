"""The action draws of Boltzmann and Boltzmann-Gumbel exploration (Cesa-Bianchi et al. 2017),
on plain arrays: the annealed temperature, the scale ``sigma(s)`` of the Q-values, and one draw.

`mtl_sched.agents.boltzmann_gumbel.BoltzmannGumbelDQN` explores with them; its module
docstring says how they combine.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "EXPLORATION_KINDS",
    "EXPLORATION_SCALES",
    "MIN_Q_SPREAD",
    "ExplorationKind",
    "ExplorationScale",
    "TemperatureSchedule",
    "annealed_temperature",
    "boltzmann_choice",
    "boltzmann_gumbel_choice",
    "q_spread",
]

TemperatureSchedule = Literal["linear", "exponential"]
ExplorationKind = Literal["boltzmann-gumbel", "boltzmann"]
EXPLORATION_KINDS: tuple[str, ...] = ("boltzmann-gumbel", "boltzmann")
ExplorationScale = Literal["q-spread", "absolute"]
EXPLORATION_SCALES: tuple[str, ...] = ("q-spread", "absolute")

# Q-values that are all (nearly) equal still get noise that breaks their ties at random.
MIN_Q_SPREAD = 1e-6


def annealed_temperature(
    progress: float,
    initial: float,
    final: float,
    schedule: TemperatureSchedule,
) -> float:
    """Temperature after ``progress`` in ``[0, 1]`` of the annealing horizon (clipped beyond).

    :param progress: fraction of the annealing horizon elapsed.
    :param initial: temperature at progress 0.
    :param final: temperature at progress 1 and beyond.
    :param schedule: ``"linear"`` or ``"exponential"`` interpolation between them.
    """
    p = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return initial + p * (final - initial)
    if schedule == "exponential":
        return initial * (final / initial) ** p
    raise ValueError(f"temperature schedule must be 'linear' or 'exponential'; got {schedule!r}")


def q_spread(q_values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The scale ``sigma(s)`` of Q-values: their standard deviation over the actions (the last
    axis), at least ``MIN_Q_SPREAD``.

    :param q_values: estimated values, shape ``(A,)`` for one state or ``(n, A)`` for ``n``.
    :param valid: which actions count, boolean of ``q_values``' shape; ``None`` for all. The
        others (padded task slots, with ``-inf`` Q-values) are left out.
    """
    if valid is None:
        return np.maximum(np.std(q_values, axis=-1), MIN_Q_SPREAD)
    finite = np.where(valid, q_values, 0.0)
    return np.maximum(np.std(finite, axis=-1, where=valid), MIN_Q_SPREAD)


def boltzmann_choice(
    q_values: np.ndarray,
    scale: float | np.ndarray,
    rng: np.random.Generator,
) -> int:
    """One draw from ``softmax(q / scale)`` by the Gumbel-max trick: ``argmax_a q_a + scale Z_a``.

    :param q_values: estimated values, shape ``(A,)``.
    :param scale: the temperature, common or one per action (shape ``(A,)``); 0 gives the
        greedy action.
    :param rng: source of the Gumbel noise.
    """
    gumbel = rng.gumbel(size=q_values.shape)
    return int(np.argmax(q_values + scale * gumbel))


def boltzmann_gumbel_choice(
    q_values: np.ndarray,
    counts: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    valid: np.ndarray | None = None,
) -> int:
    """One Boltzmann-Gumbel draw: ``argmax_a q_a + scale / sqrt(N_a) * Z_a``.

    Actions with ``N_a = 0`` win outright (uniformly at random among them).

    :param q_values: estimated values, shape ``(A,)``.
    :param counts: times each action was taken, shape ``(A,)``.
    :param scale: ``C * temperature * sigma(s)``; 0 gives the greedy action.
    :param rng: source of the Gumbel noise.
    :param valid: which actions may be drawn, boolean of shape ``(A,)``; ``None`` for all.
    """
    if valid is not None:
        candidates = np.flatnonzero(valid)
        if candidates.size == 0:
            raise ValueError("valid must allow at least one action")
        return int(
            candidates[
                boltzmann_gumbel_choice(q_values[candidates], counts[candidates], scale, rng)
            ]
        )
    untried = np.flatnonzero(counts == 0)
    if untried.size:
        return int(rng.choice(untried))
    return boltzmann_choice(q_values, scale / np.sqrt(counts), rng)

"""The reward of `mtl_sched.envs.scheduling_env.MTLSchedulingEnv`: its kinds, the checks of its
settings, and the reward of one step (the Reward section of that module's docstring says what
each kind measures and when the accuracy penalty replaces it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from mtl_sched.observation.probing import ProbeResult

__all__ = [
    "ACCURACY_WEIGHT",
    "PENALTY_MODES",
    "REWARD_KINDS",
    "EpisodeReward",
    "PenaltyMode",
    "RewardKind",
    "RunningRewardScale",
    "check_reference_accuracies",
    "check_reward_settings",
    "relative_loss_decrease",
    "step_reward",
]

RewardKind = Literal[
    "loss",
    "loss-decrease",
    "relative-loss-decrease",
    "scaled-loss-decrease",
    "accuracy-increase",
    "loss-and-accuracy",
]
PenaltyMode = Literal["always", "drop"]
REWARD_KINDS: tuple[str, ...] = get_args(RewardKind)
PENALTY_MODES: tuple[str, ...] = get_args(PenaltyMode)

# weight of the average accuracy's rise in ``"loss-and-accuracy"``: on the synthetic family a
# step's summed loss fall and its accuracy rise, times 3, are of one order
ACCURACY_WEIGHT = 3.0


def check_reward_settings(
    reward: str, penalty_mode: str, reward_scale: float, accuracy_weight: float = ACCURACY_WEIGHT
) -> None:
    """Refuse reward settings the environment does not know.

    :param reward: the reward kind, one of `REWARD_KINDS`.
    :param penalty_mode: when the penalty applies, one of `PENALTY_MODES`.
    :param reward_scale: the factor on every reward but the penalty; positive and finite.
    :param accuracy_weight: the weight of the accuracy rise in ``"loss-and-accuracy"``; finite
        and not negative.
    :raises ValueError: naming the first setting that is wrong.
    """
    if reward not in REWARD_KINDS:
        raise ValueError(f"reward must be one of {REWARD_KINDS}; got {reward!r}")
    if penalty_mode not in PENALTY_MODES:
        raise ValueError(f"penalty_mode must be 'always' or 'drop'; got {penalty_mode!r}")
    if not (math.isfinite(reward_scale) and reward_scale > 0):
        raise ValueError(f"reward_scale must be positive; got {reward_scale}")
    if not (math.isfinite(accuracy_weight) and accuracy_weight >= 0):
        raise ValueError(f"accuracy_weight must be at least 0; got {accuracy_weight}")


def check_reference_accuracies(
    value: Sequence[float] | str | None, num_tasks: int
) -> np.ndarray | str | None:
    """``value`` as the environment keeps it: ``None``, ``"auto"`` (computed on first use) or
    one accuracy per task as an array.

    :param value: the ``reference_accuracies`` argument.
    :param num_tasks: the environment's task count.
    :raises ValueError: for another string or another number of values than of tasks.
    """
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    if isinstance(value, str):
        raise ValueError(f"reference_accuracies must be 'auto', None or numbers; got {value!r}")
    refs = np.asarray(value, dtype=float)
    if refs.shape != (num_tasks,):
        raise ValueError(f"reference_accuracies has {refs.size} values for {num_tasks} tasks")
    return refs


def step_reward(
    kind: RewardKind,
    previous_total_loss: float,
    previous_accuracy: float,
    result: ProbeResult,
    accuracy_weight: float = ACCURACY_WEIGHT,
) -> float:
    """The reward of a step before scaling and penalty.

    :param kind: the reward kind.
    :param previous_total_loss: the summed probe loss of the tasks before the step.
    :param previous_accuracy: the average probe accuracy before the step.
    :param result: the probe pass after the step.
    :param accuracy_weight: the weight of the accuracy rise in ``"loss-and-accuracy"``.
    """
    if kind == "loss":
        return -float(result.losses.sum())
    loss_fall = previous_total_loss - float(result.losses.sum())
    accuracy_rise = float(result.accuracies.mean()) - previous_accuracy
    if kind in ("loss-decrease", "scaled-loss-decrease"):
        return loss_fall
    if kind == "loss-and-accuracy":
        return loss_fall + accuracy_weight * accuracy_rise
    return accuracy_rise


def relative_loss_decrease(
    previous_losses: np.ndarray, losses: np.ndarray, initial_losses: np.ndarray
) -> float:
    """``mean_k (Lprev_k - L_k) / L0_k``: each task's loss fall in units of its loss at the start
    of the episode, averaged over the tasks, so that every task counts alike (as in the average
    accuracy schedules are judged by) whatever its number of classes, and the reward's size does
    not grow with the number of tasks.

    :param previous_losses: each task's probe loss before the step.
    :param losses: each task's probe loss after the step.
    :param initial_losses: each task's probe loss after ``reset`` (floored at 1e-8).
    """
    scale = np.maximum(np.asarray(initial_losses, dtype=float), 1e-8)
    falls = (np.asarray(previous_losses, dtype=float) - np.asarray(losses, dtype=float)) / scale
    return float(falls.mean())


class RunningRewardScale:
    """Divides each reward of an episode by the running mean magnitude of the episode's earlier
    rewards, so that a step late in the run, when every loss moves little, counts as much as one
    at the start: ``r_t / m_{t-1}``, clipped to ``[-limit, limit]``, with
    ``m_t = decay m_{t-1} + (1 - decay) |r_t|`` and ``m_0 = |r_1|`` (the first reward is +-1).

    :param decay: weight of the past in the running mean, in ``(0, 1)``.
    :param limit: bound on the scaled reward's magnitude.
    """

    _FLOOR = 1e-12

    def __init__(self, decay: float = 0.9, limit: float = 10.0) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1); got {decay}")
        if not limit > 0:
            raise ValueError(f"limit must be positive; got {limit}")
        self.decay = decay
        self.limit = limit
        self.magnitude: float | None = None

    def reset(self) -> None:
        """Forget the episode's rewards."""
        self.magnitude = None

    def __call__(self, reward: float) -> float:
        """``reward`` scaled by the running magnitude before it; then fold it into that mean.

        :param reward: the unscaled reward of the step.
        """
        size = abs(reward)
        scale = size if self.magnitude is None else self.magnitude
        self.magnitude = self.decay * scale + (1.0 - self.decay) * size
        return float(np.clip(reward / max(scale, self._FLOOR), -self.limit, self.limit))


class EpisodeReward:
    """The reward of each step of one episode, with what the reward kinds remember between
    steps: the previous probe pass's losses and accuracy, the losses after ``reset`` and the
    running magnitude of ``"scaled-loss-decrease"``.

    :param kind: the reward kind, one of `REWARD_KINDS`.
    :param scale: factor on every reward but the penalty.
    :param num_tasks: the number of tasks.
    :param accuracy_weight: the weight of the accuracy rise in ``"loss-and-accuracy"``.
    """

    def __init__(
        self,
        kind: RewardKind,
        scale: float,
        num_tasks: int,
        accuracy_weight: float = ACCURACY_WEIGHT,
    ) -> None:
        self.kind: RewardKind = kind
        self.scale = scale
        self.accuracy_weight = accuracy_weight
        self.total_loss = 0.0
        self.accuracy = 0.0
        self.losses = np.zeros(num_tasks)
        self.initial_losses = np.zeros(num_tasks)
        self.running = RunningRewardScale()

    def _remember(self, result: ProbeResult) -> None:
        self.total_loss = float(result.losses.sum())
        self.accuracy = float(result.accuracies.mean())
        self.losses = np.asarray(result.losses, dtype=float).copy()

    def reset(self, result: ProbeResult) -> None:
        """Start an episode from the probe pass of the fresh model.

        :param result: the probe pass after ``reset``.
        """
        self._remember(result)
        self.initial_losses = self.losses.copy()
        self.running.reset()

    def step(self, result: ProbeResult, penalty: float | None = None) -> float:
        """The reward of the step that ended with ``result`` (``penalty`` when given, which
        does not enter the running magnitude), then remember ``result`` for the next step.

        :param result: the probe pass after the step.
        :param penalty: the penalty, when the step is penalized.
        """
        if penalty is not None:
            reward = float(penalty)
        else:
            if self.kind == "relative-loss-decrease":
                reward = relative_loss_decrease(self.losses, result.losses, self.initial_losses)
            else:
                reward = step_reward(
                    self.kind, self.total_loss, self.accuracy, result, self.accuracy_weight
                )
            if self.kind == "scaled-loss-decrease":
                reward = self.running(reward)
            reward *= self.scale
        self._remember(result)
        return reward

    def get_state(self) -> dict[str, Any]:
        """What `set_state` needs to continue the episode exactly."""
        return {
            "last_total_loss": self.total_loss,
            "last_accuracy": self.accuracy,
            "last_losses": self.losses.copy(),
            "initial_losses": self.initial_losses.copy(),
            "reward_magnitude": self.running.magnitude,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state`; states saved before the per-task losses and the running
        magnitude were kept restore them as they are (only the kinds added with them read them).

        :param state: a `get_state` dictionary (other keys are ignored).
        """
        self.total_loss = float(state["last_total_loss"])
        self.accuracy = float(state["last_accuracy"])
        self.losses = np.array(state.get("last_losses", self.losses), dtype=float)
        self.initial_losses = np.array(
            state.get("initial_losses", self.initial_losses), dtype=float
        )
        magnitude = state.get("reward_magnitude")
        self.running.magnitude = None if magnitude is None else float(magnitude)

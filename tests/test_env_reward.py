"""The scheduling environment's reward kinds and trainer source, on hand-made inputs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import tiny_synthetic
from mtl_sched.envs.reward import (
    REWARD_KINDS,
    RunningRewardScale,
    check_reference_accuracies,
    check_reward_settings,
    relative_loss_decrease,
    step_reward,
)
from mtl_sched.envs.trainer_source import TrainerSource
from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.training import TrainerConfig


def probe_result(losses: list[float], accuracies: list[float]) -> ProbeResult:
    return ProbeResult(np.zeros((len(losses), 4)), np.array(losses), np.array(accuracies))


def test_step_reward_of_each_kind_by_hand():
    after = probe_result([0.5, 1.0, 0.25], [0.6, 0.9, 0.3])
    assert step_reward("loss", 9.0, 0.1, after) == pytest.approx(-1.75)
    assert step_reward("loss-decrease", 2.5, 0.1, after) == pytest.approx(0.75)
    assert step_reward("accuracy-increase", 9.0, 0.5, after) == pytest.approx(0.1)
    # summed loss fall 0.75 plus 3 times the accuracy rise of 0.1 (the default weight)
    assert step_reward("loss-and-accuracy", 2.5, 0.5, after) == pytest.approx(1.05)
    assert step_reward("loss-and-accuracy", 2.5, 0.5, after, 10.0) == pytest.approx(1.75)
    assert step_reward("loss-and-accuracy", 2.5, 0.5, after, 0.0) == pytest.approx(0.75)


def test_loss_decrease_rewards_telescope_to_initial_minus_final_loss():
    losses = [[3.0, 2.0], [2.5, 1.5], [2.75, 0.5], [1.0, 0.25]]
    previous, total = sum(losses[0]), 0.0
    for step in losses[1:]:
        total += step_reward("loss-decrease", previous, 0.0, probe_result(step, [0.0, 0.0]))
        previous = sum(step)
    assert total == pytest.approx(sum(losses[0]) - sum(losses[-1]))


def test_relative_loss_decrease_by_hand():
    # falls of 0.5 (of 2.0), 0.1 (of 0.5) and -0.3 (of 3.0): 0.25, 0.2, -0.1, mean 0.35 / 3
    reward = relative_loss_decrease(
        np.array([1.5, 0.4, 2.0]), np.array([1.0, 0.3, 2.3]), np.array([2.0, 0.5, 3.0])
    )
    assert reward == pytest.approx(0.35 / 3)
    # the same falls on twice as many tasks give the same reward
    doubled = relative_loss_decrease(
        np.tile([1.5, 0.4, 2.0], 2), np.tile([1.0, 0.3, 2.3], 2), np.tile([2.0, 0.5, 3.0], 2)
    )
    assert doubled == pytest.approx(reward)


def test_running_reward_scale_by_hand():
    scale = RunningRewardScale(decay=0.9, limit=10.0)
    # the first reward is its own scale; the mean then moves by a tenth towards each |r|
    assert scale(0.5) == pytest.approx(1.0)
    assert scale.magnitude == pytest.approx(0.5)
    assert scale(0.25) == pytest.approx(0.5)
    assert scale.magnitude == pytest.approx(0.475)
    assert scale(-0.1) == pytest.approx(-0.1 / 0.475)
    assert scale.magnitude == pytest.approx(0.4375)
    assert scale(100.0) == 10.0  # clipped
    scale.reset()
    assert scale(-0.002) == pytest.approx(-1.0)


def test_running_reward_scale_makes_late_small_steps_count():
    # losses that fall geometrically (by 3% a step): raw decreases shrink a hundredfold, scaled
    # ones settle at 0.97 / c with m = c d, c = 0.1 / (1 - 0.9 / 0.97), i.e. 0.70
    scale = RunningRewardScale()
    decreases = [0.5 * 0.97**t for t in range(150)]
    scaled = [scale(d) for d in decreases]
    assert decreases[-1] / decreases[0] < 0.02
    assert all(0.69 < r <= 1.0 for r in scaled)
    assert scaled[-1] == pytest.approx(0.97 * (1 - 0.9 / 0.97) / 0.1, abs=1e-3)
    assert scale(-decreases[-1]) < -0.69  # a step that raised the loss late is clearly negative


@pytest.mark.parametrize(("decay", "limit"), [(0.0, 1.0), (1.0, 1.0), (0.5, 0.0)])
def test_running_reward_scale_refuses_bad_settings(decay, limit):
    with pytest.raises(ValueError, match="must be"):
        RunningRewardScale(decay, limit)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (("accuracy", "always", 1.0), "reward"),
        (("loss", "sometimes", 1.0), "penalty_mode"),
        (("loss", "drop", 0.0), "reward_scale"),
        (("loss", "drop", math.inf), "reward_scale"),
        (("loss-and-accuracy", "drop", 1.0, -1.0), "accuracy_weight"),
        (("loss-and-accuracy", "drop", 1.0, math.nan), "accuracy_weight"),
    ],
)
def test_unknown_reward_settings_are_refused_by_name(settings, named):
    with pytest.raises(ValueError, match=f"^{named} must be"):
        check_reward_settings(*settings)


def test_every_reward_kind_is_accepted():
    for kind in REWARD_KINDS:
        check_reward_settings(kind, "drop", 100.0)


def test_reference_accuracies_are_kept_as_given_or_checked_per_task():
    assert check_reference_accuracies(None, 3) is None
    assert check_reference_accuracies("auto", 3) == "auto"
    refs = check_reference_accuracies([0.5, 0.75, 1], 3)
    assert refs.dtype == float and refs.tolist() == [0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="2 values for 3 tasks"):
        check_reference_accuracies([0.5, 0.5], 3)
    with pytest.raises(ValueError, match="reference_accuracies must be 'auto'"):
        check_reference_accuracies("computed", 3)


class CountingFactory:
    """Trainers of 1,000 examples in minibatches of 32, counting how many were built."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, seed: int) -> SimpleNamespace:
        self.calls += 1
        config = TrainerConfig(budget=1_000, batch_size=32, probe=ProbeConfig(bins=7))
        return SimpleNamespace(task_names=("a", "b"), config=config)


def test_factory_source_reads_its_defaults_off_one_trainer():
    factory = CountingFactory()
    source = TrainerSource.resolve(None, trainer_factory=factory, steps_per_action=4)
    # 1000 // 32 = 31 minibatches, 4 per decision: 8 decisions spend the budget once
    assert (source.episode_steps, source.steps_per_action) == (8, 4)
    assert source.task_names == ("a", "b") and source.probe_config.bins == 7
    assert source.benchmark is None and source.factory is factory and factory.calls == 1


def test_factory_source_builds_no_trainer_when_everything_is_given():
    factory = CountingFactory()
    source = TrainerSource.resolve(
        "synthetic",
        trainer_factory=factory,
        task_names=["x"],
        episode_steps=5,
        probe=ProbeConfig(bins=3),
    )
    assert factory.calls == 0 and source.benchmark is None
    assert (source.task_names, source.episode_steps, source.steps_per_action) == (("x",), 5, 1)


def test_benchmark_source_spends_the_budget_once_per_episode():
    benchmark = tiny_synthetic()
    source = TrainerSource.resolve(benchmark, steps_per_action=3)
    assert source.benchmark is benchmark and source.task_names == benchmark.task_names
    assert source.episode_steps == math.ceil(benchmark.env_episode_steps / 3)
    assert source.probe_config == benchmark.trainer_config.probe


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a benchmark or a trainer_factory"),
        ({"steps_per_action": 0}, "steps_per_action must be at least 1"),
        ({"trainer_factory": CountingFactory(), "episode_steps": -2}, "episode_steps must be"),
    ],
)
def test_source_refuses_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainerSource.resolve(None, **kwargs)

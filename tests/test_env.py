import importlib
import math
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from observation_checks import observation_shape, task_histograms
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mtl_sched.envs
import mtl_sched.envs.scheduling_env
import mtl_sched.references
from conftest import tiny_synthetic
from mtl_sched.envs import ENV_ID, MTLSchedulingEnv
from mtl_sched.observation.probing import ProbeConfig

K, BINS = 4, 20


def make_env(benchmark, **kwargs):
    kwargs.setdefault("reference_accuracies", None)
    return MTLSchedulingEnv(benchmark, **kwargs)


def documented_info_keys():
    """``(all keys, keys marked *)`` from the module docstring's ``info`` list."""
    doc = mtl_sched.envs.scheduling_env.__doc__
    entries = re.findall(r"^\s*- ``(\w+)``( \*)? \(", doc, flags=re.MULTILINE)
    return {key for key, _ in entries}, {key for key, star in entries if star}


# ------------------------------------------------------------------------------- checkers
@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_gymnasium_env_checker_passes_without_warnings(tiny_benchmark, observation):
    # Made through gymnasium.make so the env has a spec: without one the checker's render
    # test only warns "Not able to test alternative render modes ... not having a spec".
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(
            ENV_ID,
            benchmark=tiny_benchmark,
            episode_steps=5,
            reference_accuracies=None,
            observation=observation,
        )
        gym_check_env(env.unwrapped)
        # the env declares no render modes, so a spec-less env skips only the render check
        gym_check_env(
            make_env(tiny_benchmark, episode_steps=5, observation=observation),
            skip_render_check=True,
        )


def test_sb3_env_checker_passes_without_warnings(tiny_benchmark):
    # SB3's checker warns on any observation that is neither an image nor a vector, so it only
    # applies to the flat histograms; the task-features rows are checked by gymnasium's above.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(make_env(tiny_benchmark, episode_steps=5, observation="histogram"))


@pytest.mark.parametrize("observation", [None, "histogram"])
def test_gymnasium_make_and_idempotent_registration(tiny_benchmark, observation):
    kwargs = {} if observation is None else {"observation": observation}
    env = gym.make(ENV_ID, benchmark=tiny_benchmark, reference_accuracies=None, **kwargs)
    assert isinstance(env.unwrapped, MTLSchedulingEnv)
    obs, _ = env.reset(seed=0)
    assert obs.shape == observation_shape(observation or "task-features", K, BINS)
    env.step(0)
    module = importlib.reload(mtl_sched.envs)
    assert module.ENV_ID == ENV_ID and ENV_ID in gym.registry


# ----------------------------------------------------------------------------- determinism
def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.asarray(rewards)


def test_same_seed_and_actions_reproduce_observations_and_rewards(tiny_benchmark):
    actions = [0, 1, 2, 3, 2]
    obs_a, rew_a = _rollout(make_env(tiny_benchmark), 3, actions)
    obs_b, rew_b = _rollout(make_env(tiny_benchmark), 3, actions)
    assert np.array_equal(obs_a, obs_b)
    assert np.array_equal(rew_a, rew_b)
    obs_c, rew_c = _rollout(make_env(tiny_benchmark), 4, actions)
    assert not np.array_equal(obs_a[0], obs_c[0]) or not np.array_equal(rew_a, rew_c)


# -------------------------------------------------------------------------- spaces, flags
@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_observations_are_normalized_histograms_and_episodes_truncate(tiny_benchmark, observation):
    env = make_env(tiny_benchmark, episode_steps=3, observation=observation)
    assert env.action_space == gym.spaces.Discrete(K)
    assert env.observation_space.shape == observation_shape(observation, K, BINS)
    obs, _ = env.reset(seed=0)
    observations, truncations = [obs], []
    for action in (3, 0, 1):
        obs, reward, terminated, truncated, _ = env.step(action)
        assert terminated is False
        assert isinstance(reward, float)
        observations.append(obs)
        truncations.append(truncated)
    assert truncations == [False, False, True]
    for obs in observations:
        assert obs.dtype == np.float32
        assert env.observation_space.contains(obs)
        histograms = task_histograms(env, obs)
        np.testing.assert_allclose(histograms.sum(axis=1), np.ones(K), rtol=1e-5)
        if observation == "task-features":
            np.testing.assert_array_equal(obs[:, -1], np.ones(K))  # every row is a real task
    # a new episode starts over
    env.reset()
    assert env.step(0)[3] is False


def test_steps_per_action_trains_that_many_minibatches(tiny_benchmark):
    env = make_env(tiny_benchmark, steps_per_action=3)
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)
    assert info["examples_seen"] == 3 * 32 == env.trainer.examples_per_task[2]
    assert info["episode_step"] == 1


def test_an_episode_spends_the_benchmark_budget_once_whatever_the_steps_per_action(
    tiny_benchmark,
):
    budget, batch = tiny_benchmark.trainer_config.budget, tiny_benchmark.trainer_config.batch_size
    for steps_per_action in (1, 3):
        env = make_env(tiny_benchmark, steps_per_action=steps_per_action)
        assert env.episode_steps == math.ceil(budget / (batch * steps_per_action))
        env.reset(seed=0)
        truncated, info = False, {}
        while not truncated:
            _, _, _, truncated, info = env.step(0)
        assert budget <= info["examples_seen"] < budget + batch * steps_per_action


# --------------------------------------------------------------------------------- reward
def test_reward_is_minus_the_summed_validation_loss_of_the_probe_pass(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="loss")
    env.reset(seed=0)
    for action in (0, 3):
        _, reward, _, _, info = env.step(action)
        assert info["penalized"] is False
        assert reward == -float(np.sum(info["validation_losses"]))
        # the probe pool is the whole validation split, so it matches a full evaluation
        evaluation = env.trainer.evaluate("validation")
        np.testing.assert_allclose(info["validation_losses"], evaluation.losses, rtol=1e-5)
        np.testing.assert_allclose(info["validation_accuracies"], evaluation.scores, atol=1e-6)


def test_references_of_zero_never_penalize(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="loss", reference_accuracies=[0.0] * K)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)
    assert info["penalized"] is False
    assert reward == -float(np.sum(info["validation_losses"]))


@pytest.mark.parametrize(("kwargs", "expected"), [({}, -10.0), ({"penalty": -3.5}, -3.5)])
def test_below_the_reference_threshold_the_reward_is_the_penalty(tiny_benchmark, kwargs, expected):
    env = make_env(tiny_benchmark, reference_accuracies=[1.0] * K, **kwargs)
    _, info = env.reset(seed=0)
    assert info["penalized"] is True
    for action in (0, 1, 2):
        _, reward, _, _, info = env.step(action)
        assert info["penalized"] is True
        assert info["average_accuracy"] < 0.95
        assert reward == expected


# ----------------------------------------------------------------------------------- info
def test_documented_info_keys_are_present(tiny_benchmark):
    documented, at_reset = documented_info_keys()
    # the docstring was parsed (it lists at least these)
    assert {"task", "task_name", "train_loss"} <= documented - at_reset
    assert {"validation_losses", "penalized", "examples_seen", "episode_step"} <= at_reset
    env = make_env(tiny_benchmark)
    _, reset_info = env.reset(seed=0)
    assert at_reset <= set(reset_info)
    _, _, _, _, info = env.step(2)
    assert documented <= set(info)

    assert info["task"] == 2 and info["task_name"] == tiny_benchmark.task_names[2]
    assert isinstance(info["train_loss"], float) and info["train_loss"] > 0
    assert info["validation_losses"].shape == info["validation_accuracies"].shape == (K,)
    assert info["average_accuracy"] == pytest.approx(info["validation_accuracies"].mean())
    assert info["examples_seen"] == 32 and info["episode_step"] == 1
    assert reset_info["examples_seen"] == 0 and reset_info["episode_step"] == 0


# --------------------------------------------------------------------------------- errors
def test_invalid_use_raises(tiny_benchmark):
    env = make_env(tiny_benchmark)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for action in (7, -1, K):
        with pytest.raises(ValueError, match="not a task index"):
            env.step(action)
    with pytest.raises(ValueError, match="3 values for 4 tasks"):
        make_env(tiny_benchmark, reference_accuracies=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="reference_accuracies"):
        make_env(tiny_benchmark, reference_accuracies="best")
    with pytest.raises(ValueError, match="needs a benchmark or a trainer_factory"):
        MTLSchedulingEnv(None)
    with pytest.raises(ValueError, match="episode_steps"):
        make_env(tiny_benchmark, episode_steps=-1)


# ----------------------------------------------------------------------------- references
def test_auto_references_are_computed_once_and_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_SCHED_CACHE", str(tmp_path))
    calls = []
    original = mtl_sched.references.compute_single_task_references

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(mtl_sched.references, "compute_single_task_references", counting)
    env = MTLSchedulingEnv(tiny_synthetic(), reference_accuracies="auto")
    first = env.reference_accuracies
    assert first.shape == (K,) and ((first >= 0) & (first <= 1)).all()
    assert env.reference_accuracies is first  # computed once per env
    assert len(calls) == 1
    assert len(list((tmp_path / "references").glob("*.json"))) == 1

    def forbidden(*args, **kwargs):
        raise AssertionError("references should have been read from the cache")

    monkeypatch.setattr(mtl_sched.references, "compute_single_task_references", forbidden)
    # a new benchmark object
    again = MTLSchedulingEnv(tiny_synthetic(), reference_accuracies="auto").reference_accuracies
    assert np.array_equal(again, first)


# ------------------------------------------------------------------------ trainer factory
@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_a_user_trainer_factory_defines_tasks_and_spaces(tiny_benchmark, observation):
    env = MTLSchedulingEnv(
        None,
        trainer_factory=tiny_benchmark.make_trainer,
        reference_accuracies=None,
        observation=observation,
    )
    assert env.task_names == tiny_benchmark.task_names
    assert env.action_space == gym.spaces.Discrete(K)
    assert env.observation_space.shape == observation_shape(observation, K, BINS)
    # one episode spends the factory trainer's budget once: 640 examples / 32 per minibatch
    config = tiny_benchmark.trainer_config
    assert (config.budget, config.batch_size) == (640, 32)
    assert env.episode_steps == 20
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    _, _, _, _, info = env.step(1)
    assert info["task_name"] == tiny_benchmark.task_names[1]


@pytest.mark.parametrize(
    ("observation", "shape"), [("task-features", (K, 5 + 7 + 2)), ("histogram", (K * 5,))]
)
def test_a_factory_whose_tasks_differ_from_the_given_names_is_rejected(
    tiny_benchmark, observation, shape
):
    env = MTLSchedulingEnv(
        None,
        trainer_factory=tiny_benchmark.make_trainer,
        task_names=("a", "b", "c", "d"),
        probe=ProbeConfig(bins=5),
        reference_accuracies=None,
        observation=observation,
    )
    assert env.observation_space.shape == shape
    with pytest.raises(ValueError, match="differ"):
        env.reset(seed=0)


def test_loss_decrease_reward_telescopes_to_initial_minus_final_loss(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="loss-decrease", reference_accuracies=None)
    _, info = env.reset(seed=5)
    initial = info["validation_losses"].sum()
    previous, rewards = initial, []
    for action in [0, 1, 2, 3, 0, 2]:
        _, reward, _, _, info = env.step(action)
        assert reward == pytest.approx(previous - info["validation_losses"].sum())
        previous = info["validation_losses"].sum()
        rewards.append(reward)
    assert sum(rewards) == pytest.approx(initial - previous)


def test_accuracy_increase_reward_telescopes_to_final_minus_initial_accuracy(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="accuracy-increase")
    _, info = env.reset(seed=5)
    initial = previous = info["average_accuracy"]
    rewards = []
    for action in [0, 1, 2, 3, 0, 2]:
        _, reward, _, _, info = env.step(action)
        assert reward == pytest.approx(info["average_accuracy"] - previous)
        assert info["average_accuracy"] == pytest.approx(info["validation_accuracies"].mean())
        previous = info["average_accuracy"]
        rewards.append(reward)
    assert sum(rewards) == pytest.approx(previous - initial)


@pytest.mark.parametrize("weight", [3.0, 0.5])
def test_loss_and_accuracy_reward_adds_the_weighted_accuracy_rise(tiny_benchmark, weight):
    env = make_env(tiny_benchmark, reward="loss-and-accuracy", accuracy_weight=weight)
    _, info = env.reset(seed=5)
    loss, accuracy = info["validation_losses"].sum(), info["average_accuracy"]
    for action in [0, 1, 2, 3, 0, 2]:
        _, reward, _, _, info = env.step(action)
        rise = info["average_accuracy"] - accuracy
        assert reward == pytest.approx(loss - info["validation_losses"].sum() + weight * rise)
        loss, accuracy = info["validation_losses"].sum(), info["average_accuracy"]


def test_scaled_loss_decrease_divides_by_the_running_magnitude(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="scaled-loss-decrease")
    _, info = env.reset(seed=5)
    previous, magnitude = info["validation_losses"].sum(), None
    for action in [0, 1, 2, 3, 0, 2, 1, 1]:
        _, reward, _, _, info = env.step(action)
        decrease = previous - info["validation_losses"].sum()
        scale = abs(decrease) if magnitude is None else magnitude
        assert reward == pytest.approx(np.clip(decrease / scale, -10, 10))
        magnitude = 0.9 * scale + 0.1 * abs(decrease)
        previous = info["validation_losses"].sum()


def test_relative_loss_decrease_averages_each_tasks_fall_over_its_initial_loss(tiny_benchmark):
    env = make_env(tiny_benchmark, reward="relative-loss-decrease")
    _, info = env.reset(seed=5)
    initial = previous = info["validation_losses"].copy()
    total = 0.0
    for action in [0, 1, 2, 3, 0, 2]:
        _, reward, _, _, info = env.step(action)
        losses = info["validation_losses"]
        assert reward == pytest.approx(np.mean((previous - losses) / initial))
        previous = losses.copy()
        total += reward
    # the rewards telescope to the mean relative fall over the episode
    assert total == pytest.approx(np.mean(1 - previous / initial))


@pytest.mark.parametrize("reward", ["scaled-loss-decrease", "relative-loss-decrease"])
def test_reward_state_round_trip_continues_exactly(tiny_benchmark, reward):
    env = make_env(tiny_benchmark, reward=reward)
    env.reset(seed=3)
    for action in [0, 1, 2]:
        env.step(action)
    state = env.get_state()
    expected = [env.step(action)[1] for action in [3, 1, 0]]
    fresh = make_env(tiny_benchmark, reward=reward)
    fresh.set_state(state)
    assert [fresh.step(action)[1] for action in [3, 1, 0]] == expected


def test_a_state_saved_before_the_per_task_reward_keys_still_restores(tiny_benchmark):
    env = make_env(tiny_benchmark)
    env.reset(seed=3)
    for action in [0, 1, 2]:
        env.step(action)
    state = env.get_state()
    expected = [env.step(action)[1] for action in [3, 1, 0]]
    for key in ("last_losses", "initial_losses", "reward_magnitude"):
        del state[key]
    fresh = make_env(tiny_benchmark)
    fresh.set_state(state)
    assert [fresh.step(action)[1] for action in [3, 1, 0]] == expected


def test_drop_penalty_waits_until_the_threshold_was_reached(tiny_benchmark):
    # Untrained accuracy is near chance (mean ~0.33), under 0.95 * 0.5 = 0.475.
    refs = [0.5, 0.5, 0.5, 0.5]
    always = make_env(tiny_benchmark, reward="loss", reference_accuracies=refs)
    drop = make_env(tiny_benchmark, reward="loss", reference_accuracies=refs, penalty_mode="drop")
    always.reset(seed=0)
    drop.reset(seed=0)
    assert always.step(0)[1] == -10.0
    _, reward, _, _, info = drop.step(0)
    assert not info["penalized"] and reward == pytest.approx(-info["validation_losses"].sum())
    # Once the episode has been above the threshold, falling under it is punished.
    drop._reached_threshold = True
    _, reward, _, _, info = drop.step(0)
    assert info["average_accuracy"] < 0.475 and info["penalized"] and reward == -10.0


def test_unknown_reward_or_penalty_mode_is_rejected(tiny_benchmark):
    with pytest.raises(ValueError, match="reward must be"):
        make_env(tiny_benchmark, reward="accuracy")
    with pytest.raises(ValueError, match="penalty_mode must be"):
        make_env(tiny_benchmark, penalty_mode="sometimes")


def test_reward_scale_multiplies_rewards_but_not_the_penalty(tiny_benchmark):
    def rewards(**kwargs):
        env = make_env(tiny_benchmark, reward="loss-decrease", **kwargs)
        env.reset(seed=0)
        return [env.step(k)[1] for k in (0, 1, 2)]

    plain, scaled = rewards(), rewards(reward_scale=100.0)
    assert scaled == pytest.approx([100 * r for r in plain])
    penalized = rewards(reward_scale=100.0, reference_accuracies=[1.0] * K)
    assert penalized == [-10.0] * 3
    with pytest.raises(ValueError, match="reward_scale"):
        make_env(tiny_benchmark, reward_scale=0.0)

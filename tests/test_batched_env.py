"""N scheduling environments as one VecEnv: the batched model against single environments,
determinism, auto-reset, the VecEnv interface and the subprocess fallback."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from observation_checks import observation_shape
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from mtl_sched.envs import (
    BatchedSchedulingVecEnv,
    MTLSchedulingEnv,
    benchmark_batches,
    make_scheduling_vec_env,
)
from mtl_sched.models import SharedMLP
from mtl_sched.models.stacked import StackedSharedMLP, can_stack
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.observation.uncertainty import padded_uncertainty, uncertainty

K, BINS = 4, 20

SETTINGS = {
    "default": {},
    "everything": {
        "reward": "accuracy-increase",
        "reward_scale": 100.0,
        "steps_per_action": 2,
        "recency_decay": 0.8,
        "reference_accuracies": [0.5] * K,
        "penalty_mode": "drop",
        "probe": ProbeConfig(bins=10, pool_size=40, hard_size=25, measure="entropy", refresh=1),
    },
    "least-confidence": {
        "reward": "loss",
        "reference_accuracies": [0.9] * K,
        "probe": ProbeConfig(bins=7, measure="least_confidence"),
    },
    # probe pools of different sizes (the validation split of task 1 cut to 35 examples)
    "unequal-pools": {"probe": ProbeConfig(hard_size=30, refresh=2)},
    "unequal-pools-all": {"probe": ProbeConfig(measure="entropy")},
    # the benchmark's trainer with another optimizer
    "adam-weight-decay": {},
    "sgd-weight-decay": {},
}

OPTIMIZERS = {
    "adam-weight-decay": {"weight_decay": 0.01},
    "sgd-weight-decay": {"optimizer": "sgd", "learning_rate": 0.05, "weight_decay": 0.01},
}


def with_trainer(benchmark, **changes):
    changed = dataclasses.replace(
        benchmark, trainer_config=dataclasses.replace(benchmark.trainer_config, **changes)
    )
    changed._tasks = benchmark.tasks
    return changed


def unequal_pools(benchmark):
    tasks = list(benchmark.tasks)
    cut = tasks[1].split("validation").select(range(35))
    tasks[1] = dataclasses.replace(tasks[1], splits={**tasks[1].splits, "validation": cut})
    changed = dataclasses.replace(benchmark, build_tasks=lambda: tasks)
    changed._tasks = tasks
    return changed


def env_kwargs(name):
    kwargs = {"reference_accuracies": None, "reward": "loss-decrease", **SETTINGS[name]}
    return kwargs


def assert_same_step(batched, single, pool, bins):
    """Observations, rewards and info of a batched env and of single envs agree up to rounding.

    A rounding difference may move one probe unit across a histogram bin edge, which changes
    two bins by ``1 / pool``; the observations may differ by that much, no more.
    """
    obs, rewards, infos = batched
    for i, (s_obs, s_reward, s_info) in enumerate(single):
        assert np.abs(obs[i] - s_obs).sum() <= 2.0 / pool + 1e-5
        assert rewards[i] == pytest.approx(s_reward, rel=1e-4, abs=1e-4)
        info = infos[i]
        for key in ("validation_losses",):
            np.testing.assert_allclose(info[key], s_info[key], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(
            info["validation_accuracies"], s_info["validation_accuracies"], atol=1.0 / pool + 1e-6
        )
        for key in ("task", "task_name", "examples_seen", "episode_step", "penalized"):
            assert info[key] == s_info[key], key
        np.testing.assert_array_equal(info["probe_age"], s_info["probe_age"])
        assert info["train_loss"] == pytest.approx(s_info["train_loss"], rel=1e-5)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_replicas_follow_single_environments_of_the_same_seeds(tiny_benchmark, name):
    n, seed = 3, 11
    kwargs = env_kwargs(name)
    benchmark = unequal_pools(tiny_benchmark) if name.startswith("unequal") else tiny_benchmark
    if name in OPTIMIZERS:
        benchmark = with_trainer(tiny_benchmark, **OPTIMIZERS[name])
    venv = BatchedSchedulingVecEnv(benchmark, n, **kwargs)
    singles = [MTLSchedulingEnv(benchmark, **kwargs) for _ in range(n)]
    pool = venv.probe_config.pool_size or 35
    bins = venv.probe_config.bins
    assert venv.episode_steps == singles[0].episode_steps
    assert venv.observation_space == singles[0].observation_space
    venv.seed(seed)
    obs = venv.reset()
    for i, env in enumerate(singles):
        s_obs, s_info = env.reset(seed=seed + i)
        np.testing.assert_allclose(obs[i], s_obs, atol=2.0 / pool + 1e-6)
        assert venv.reset_infos[i]["examples_seen"] == s_info["examples_seen"] == 0
    rng = np.random.default_rng(0)
    # one whole episode and a bit (auto-reset), and replica 1 reset alone half-way
    for t in range(venv.episode_steps + 4):
        if t == 5:
            venv.env_method("reset", indices=[1])
            singles[1].reset()
        actions = rng.integers(0, K, size=n)
        obs, rewards, dones, infos = venv.step(actions)
        expected = []
        for i, env in enumerate(singles):
            s_obs, s_reward, _, truncated, s_info = env.step(int(actions[i]))
            assert dones[i] == truncated
            if truncated:
                np.testing.assert_allclose(infos[i]["terminal_observation"], s_obs, atol=0.1)
                s_obs, _ = env.reset()
            expected.append((s_obs, s_reward, s_info))
        assert_same_step((obs, rewards, infos), expected, pool, bins)
    # the weights themselves: replica i is the model of single env i
    for i, env in enumerate(singles):
        state = venv.model.replica_state_dict(i)
        for key, value in env.trainer.model.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-4, atol=1e-5)


def test_same_seed_gives_identical_runs(tiny_benchmark):
    def run(seed):
        venv = BatchedSchedulingVecEnv(tiny_benchmark, 4, reference_accuracies=None)
        venv.seed(seed)
        observations, rewards = [venv.reset()], []
        actions = np.random.default_rng(1).integers(0, K, size=(25, 4))
        for action in actions:
            obs, reward, _, _ = venv.step(action)
            observations.append(obs)
            rewards.append(reward)
        return np.stack(observations), np.stack(rewards)

    obs_a, rew_a = run(5)
    obs_b, rew_b = run(5)
    assert np.array_equal(obs_a, obs_b) and np.array_equal(rew_a, rew_b)
    obs_c, _ = run(6)
    assert not np.array_equal(obs_a, obs_c)


def test_finished_episodes_reset_as_sb3_vec_envs_do(tiny_benchmark):
    venv = BatchedSchedulingVecEnv(tiny_benchmark, 2, reference_accuracies=None, episode_steps=3)
    venv.seed(0)
    venv.reset()
    for _ in range(2):
        _, _, dones, infos = venv.step(np.array([0, 1]))
        assert not dones.any()
        assert all("terminal_observation" not in info for info in infos)
    obs, rewards, dones, infos = venv.step(np.array([2, 3]))
    assert dones.tolist() == [True, True] and rewards.dtype == np.float32
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["episode_step"] == 3 and info["examples_seen"] == 3 * 32
        assert venv.observation_space.contains(info["terminal_observation"])
        assert not np.array_equal(info["terminal_observation"], obs[i])
        # the returned observation starts the next episode
        assert venv.reset_infos[i]["episode_step"] == 0
        assert venv.reset_infos[i]["examples_seen"] == 0
    _, _, dones, infos = venv.step(np.array([0, 0]))
    assert not dones.any() and [info["episode_step"] for info in infos] == [1, 1]


def test_every_documented_info_key_is_there(tiny_benchmark):
    from test_env import documented_info_keys

    documented, at_reset = documented_info_keys()
    venv = BatchedSchedulingVecEnv(tiny_benchmark, 2, reference_accuracies=None, episode_steps=2)
    venv.seed(0)
    venv.reset()
    assert all(at_reset <= set(info) for info in venv.reset_infos)
    _, _, _, infos = venv.step(np.array([0, 1]))
    assert all(documented | {"TimeLimit.truncated"} <= set(info) for info in infos)
    _, _, _, infos = venv.step(np.array([0, 1]))
    assert all("terminal_observation" in info for info in infos)


@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_vec_env_interface(tiny_benchmark, observation):
    venv = make_scheduling_vec_env(
        tiny_benchmark, 3, seed=2, reference_accuracies=None, observation=observation
    )
    assert isinstance(venv, BatchedSchedulingVecEnv)
    assert venv.num_envs == 3
    assert venv.action_space == gym.spaces.Discrete(K)
    shape = observation_shape(observation, K, BINS)
    assert venv.observation_space.shape == shape
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.array([0, 0, 0]))
    obs = venv.reset()
    assert obs.shape == (3, *shape) and obs.dtype == np.float32
    assert all(venv.observation_space.contains(o) for o in obs)
    assert venv.get_attr("task_names") == [tiny_benchmark.task_names] * 3
    assert venv.get_attr("episode_steps", indices=[0]) == [venv.episode_steps]
    venv.set_attr("penalty", -3.0, indices=1)
    assert venv.get_attr("penalty") == [-10.0, -3.0, -10.0]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 3
    assert venv.env_method("reset", indices=[2])[0][1]["episode_step"] == 0
    obs, rewards, dones, infos = venv.step(np.array([0, 1, 2]))
    assert obs.shape == (3, *shape) and rewards.shape == dones.shape == (3,)
    assert [info["task"] for info in infos] == [0, 1, 2]
    for bad in (np.array([0, 1, K]), np.array([0, -1, 0]), np.array([0.5, 1, 1])):
        with pytest.raises(ValueError, match="task indices"):
            venv.step(bad)
    with pytest.raises(ValueError, match="3 actions"):
        venv.step(np.array([0, 1]))
    venv.close()


def test_padded_uncertainty_is_the_uncertainty_of_each_task(tiny_benchmark):
    torch.manual_seed(0)
    classes = [2, 3, 4, 4, 2]
    probs = torch.zeros(3, 4, len(classes))
    for u, c in enumerate(classes):
        probs[:, :c, u] = torch.softmax(torch.randn(3, c), dim=1)
    probs[0, :2, 0] = 0.5  # ties
    probs[1, :4, 2] = torch.tensor([0.1, 0.45, 0.45, 0.0])
    log_classes = torch.log(torch.tensor(classes, dtype=torch.float32))
    for measure in ("margin", "least_confidence", "entropy"):
        values, best = padded_uncertainty(probs, log_classes, measure)
        for u, c in enumerate(classes):
            own = probs[:, :c, u]
            torch.testing.assert_close(values[:, u], uncertainty(own, measure))
            assert torch.equal(best[:, u], own.argmax(dim=1))


def _dropout_benchmark(benchmark):
    def build_model(tasks):
        names = {t.name: t.num_classes for t in tasks}
        return SharedMLP(16, names, hidden_sizes=(16,), dropout=0.1)

    changed = dataclasses.replace(benchmark, build_model=build_model)
    changed._tasks = benchmark.tasks
    return changed


def test_models_that_do_not_stack_fall_back_to_separate_environments(tiny_benchmark):
    assert benchmark_batches(tiny_benchmark)
    assert can_stack(tiny_benchmark.make_model(0))
    dropout = _dropout_benchmark(tiny_benchmark)
    assert not benchmark_batches(dropout)
    with pytest.raises(TypeError, match="Dropout"):
        BatchedSchedulingVecEnv(dropout, 2, reference_accuracies=None)
    with pytest.raises(TypeError, match="Dropout"):
        StackedSharedMLP(dropout.make_model(0), 2)
    venv = make_scheduling_vec_env(
        dropout, 2, seed=4, fallback="dummy", reference_accuracies=None, steps_per_action=2
    )
    assert isinstance(venv, DummyVecEnv)
    single = MTLSchedulingEnv(dropout, reference_accuracies=None, steps_per_action=2)
    np.testing.assert_array_equal(venv.reset()[1], single.reset(seed=5)[0])
    obs, rewards, _, infos = venv.step(np.array([0, 3]))
    s_obs, s_reward, _, _, _ = single.step(3)
    np.testing.assert_array_equal(obs[1], s_obs)
    assert rewards[1] == np.float32(s_reward) and infos[1]["examples_seen"] == 64
    # the batched env can also be refused for a model that stacks
    assert isinstance(
        make_scheduling_vec_env(tiny_benchmark, 2, batched=False, fallback="dummy"), DummyVecEnv
    )


@pytest.mark.serial
def test_subprocess_fallback(tiny_benchmark):
    venv = make_scheduling_vec_env(
        _dropout_benchmark(tiny_benchmark), 2, seed=0, reference_accuracies=None
    )
    try:
        assert isinstance(venv, SubprocVecEnv)
        assert venv.reset().shape == (2, *observation_shape("task-features", K, BINS))
        _, _, _, infos = venv.step(np.array([1, 2]))
        assert [info["task"] for info in infos] == [1, 2]
    finally:
        venv.close()

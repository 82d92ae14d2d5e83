"""Exploration: the shipped task bandit, plain Boltzmann exploration and the comparison script."""

import dataclasses
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from agent_callbacks import StopAt
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import DQN
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from mtl_sched.agents import (
    AgentSettings,
    BoltzmannGumbelDQN,
    annealed_temperature,
    boltzmann_choice,
    boltzmann_gumbel_choice,
    q_spread,
)
from mtl_sched.envs import BANDIT_ENV_ID, TaskBanditEnv
from mtl_sched.envs.bandit import bump_histogram

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "exploration.py"


def softmax(x):
    z = np.exp(x - x.max())
    return z / z.sum()


def bandit_agent(exploration, seed=0, steps=600, **kwargs):
    options = {
        "exploration": exploration,
        "gamma": 0.0,
        "learning_rate": 3e-3,
        "learning_starts": 50,
        "train_freq": 2,
        "target_update_interval": 50,
        "buffer_size": steps,
        "exploration_c": 1.0,
        "policy_kwargs": {"net_arch": [64]},
        "seed": seed,
    }
    options.update(kwargs)
    return BoltzmannGumbelDQN("MlpPolicy", TaskBanditEnv(reward_noise=0.1), **options)


# ------------------------------------------------------------------------------ bandit env
def test_bandit_passes_the_gymnasium_and_sb3_env_checkers():
    gym_check_env(TaskBanditEnv(), skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(TaskBanditEnv(num_tasks=3, bins=10, reward_noise=0.5), warn=True)


def test_bandit_is_registered():
    env = gym.make(BANDIT_ENV_ID, num_tasks=3, bins=5)
    assert env.observation_space.shape == (15,)
    assert env.action_space.n == 3
    assert isinstance(env.unwrapped, TaskBanditEnv)


def test_bump_histogram_by_hand():
    hist = bump_histogram(0.5, 0.1, 4)  # bin centres 0.125, 0.375, 0.625, 0.875
    far, near = np.exp(-0.5 * 3.75**2), np.exp(-0.5 * 1.25**2)
    np.testing.assert_allclose(hist, np.array([far, near, near, far]) / (2 * far + 2 * near))
    assert bump_histogram(0.93, 0.05, 20).argmax() == 18  # 0.93 lies in [0.9, 0.95)


def test_bandit_levels_optimum_and_observations():
    env = TaskBanditEnv(num_tasks=3, bins=8, num_contexts=5, low_level=0.0, high_level=0.9)
    for row in env.levels:
        np.testing.assert_allclose(np.sort(row), [0.0, 0.45, 0.9])
    assert env.optimal_expected_reward == pytest.approx(0.9)
    assert env.random_expected_reward == pytest.approx(0.45)
    np.testing.assert_array_equal(env.optimal_actions, env.levels.argmax(axis=1))
    blocks = env.observations.reshape(5, 3, 8)
    np.testing.assert_allclose(blocks.sum(axis=2), 1.0, rtol=1e-6)
    # each task's histogram peaks in the bin of its mean uncertainty (bins of width 1/8)
    np.testing.assert_array_equal(blocks.argmax(axis=2), np.minimum(env.levels * 8, 7).astype(int))
    assert env.observation_space.contains(env.observations[0])


def test_bandit_rewards_regret_info_and_truncation():
    env = TaskBanditEnv(episode_steps=5)
    obs, info = env.reset(seed=3)
    np.testing.assert_array_equal(obs, env.observations[info["context"]])
    for step in range(1, 6):
        context, best = info["context"], info["optimal_action"]
        assert best == env.levels[context].argmax()
        worst = int(env.levels[context].argmin())
        action = best if step % 2 else worst
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward == pytest.approx(env.levels[context, action])
        assert info["expected_reward"] == pytest.approx(reward)
        assert info["regret"] == pytest.approx(0.0 if action == best else 0.6)
        assert not terminated and truncated == (step == 5)
        np.testing.assert_array_equal(obs, env.observations[info["context"]])


def test_bandit_noise_has_the_documented_mean():
    env = TaskBanditEnv(reward_noise=0.1)
    _, info = env.reset(seed=0)
    rewards = []
    for _ in range(2_000):
        _, reward, _, truncated, info = env.step(info["optimal_action"])
        rewards.append(reward)
        if truncated:
            _, info = env.reset()
    # standard error 0.1 / sqrt(2000) = 0.0022: six of them
    assert np.mean(rewards) == pytest.approx(env.optimal_expected_reward, abs=0.0135)
    assert np.std(rewards) == pytest.approx(0.1, abs=0.01)


def test_bandit_seeding_reproduces_contexts_and_rewards():
    def rollout(seed):
        env = TaskBanditEnv(reward_noise=0.2)
        _, info = env.reset(seed=seed)
        trace = [info["context"]]
        for action in [0, 1, 2, 3] * 5:
            _, reward, _, _, info = env.step(action)
            trace += [reward, info["context"]]
        return trace

    assert rollout(5) == rollout(5)
    assert rollout(5) != rollout(6)
    np.testing.assert_array_equal(TaskBanditEnv().levels, TaskBanditEnv(context_seed=0).levels)
    assert not np.array_equal(TaskBanditEnv().levels, TaskBanditEnv(context_seed=1).levels)


def test_bandit_refuses_misuse():
    with pytest.raises(RuntimeError, match="reset"):
        TaskBanditEnv().step(0)
    env = TaskBanditEnv(num_tasks=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action 3"):
        env.step(3)
    for kwargs, match in [
        ({"num_tasks": 1}, "num_tasks"),
        ({"bins": 0}, "bins"),
        ({"low_level": 0.5, "high_level": 0.5}, "low_level"),
        ({"bump_width": 0.0}, "bump_width"),
        ({"reward_noise": -1.0}, "reward_noise"),
    ]:
        with pytest.raises(ValueError, match=match):
            TaskBanditEnv(**kwargs)


@pytest.fixture(scope="module", params=["boltzmann-gumbel", "boltzmann"])
def bandit_trained(request):
    # 600 steps find every context's optimum for agent seeds 0, 1 and 2 with either method
    agent = bandit_agent(request.param)
    agent.learn(600)
    return agent


def test_agent_reaches_the_optimal_reward_on_the_bandit(bandit_trained):
    env = TaskBanditEnv(reward_noise=0.1)
    actions, _ = bandit_trained.predict(env.observations, deterministic=True)
    np.testing.assert_array_equal(actions, env.optimal_actions)
    env.reset(seed=123)
    mean, _ = evaluate_policy(bandit_trained, Monitor(env), n_eval_episodes=20, deterministic=True)
    # 20 episodes of 20 steps, optimal expected 0.8 per step: an episode's return has standard
    # deviation 0.1 * sqrt(20), the mean of 20 returns 0.1; allow five of them
    assert mean == pytest.approx(20 * env.optimal_expected_reward, abs=0.5)
    assert mean > 20 * env.random_expected_reward + 3


# ----------------------------------------------------------------------- Boltzmann draw
def test_boltzmann_choice_samples_the_softmax_at_the_temperature():
    rng = np.random.default_rng(2)
    q = np.array([0.0, 0.5, 1.0, -1.0])
    draws = [boltzmann_choice(q, 0.5, rng) for _ in range(20_000)]
    frequencies = np.bincount(draws, minlength=4) / 20_000
    # binomial standard error at most 0.0035; the T = 1 softmax differs by more than 0.09
    np.testing.assert_allclose(frequencies, softmax(q / 0.5), atol=0.015)
    assert {boltzmann_choice(q, 0.0, rng) for _ in range(50)} == {2}


def test_boltzmann_gumbel_is_boltzmann_with_per_action_scales():
    q = np.array([0.3, 0.1, 0.2])
    counts = np.array([1, 4, 9])
    first, second = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(200):
        expected = boltzmann_choice(q, 0.6 / np.sqrt(counts), second)
        assert boltzmann_gumbel_choice(q, counts, 0.6, first) == expected


def frequencies_of_agent_draws(agent, observation, draws):
    agent._last_obs = observation[None]
    chosen = [int(agent._sample_action(learning_starts=0)[0][0]) for _ in range(draws)]
    return np.bincount(chosen, minlength=agent.action_space.n) / draws


def test_plain_boltzmann_agent_ignores_counts_and_draws_the_softmax():
    env = TaskBanditEnv()
    agent = BoltzmannGumbelDQN(
        "MlpPolicy",
        env,
        exploration="boltzmann",
        exploration_c=0.5,
        exploration_scale="absolute",
        seed=1,
    )
    q = np.array([0.1, 0.4, 0.2, 0.0])
    agent.q_values = lambda observation: q[None]  # known values; the network is tested elsewhere
    agent.temperature = 0.4
    expected = softmax(q / 0.2)  # C * temperature = 0.2
    observation = env.observations[0]
    # one never-taken action (it would win every Boltzmann-Gumbel draw) and a lopsided count
    agent.action_counts[:] = [0, 1, 1, 10_000]
    frequencies = frequencies_of_agent_draws(agent, observation, 20_000)
    # binomial standard error at most 0.0035
    np.testing.assert_allclose(frequencies, expected, atol=0.015)
    assert int(agent.action_counts.sum()) == 10_002 + 20_000  # counts are still kept

    # the same counts under Boltzmann-Gumbel: the never-taken action is drawn first
    agent.exploration = "boltzmann-gumbel"
    for _ in range(20):
        agent.action_counts[:] = [0, 1, 1, 10_000]
        assert frequencies_of_agent_draws(agent, observation, 1)[0] == 1.0


def test_warm_up_actions_are_uniform_on_a_sixteen_task_bandit():
    env = gym.make(BANDIT_ENV_ID, num_tasks=16)
    agent = BoltzmannGumbelDQN(
        "MlpPolicy", env, learning_starts=4000, buffer_size=4000, exploration_c=0.1, seed=3
    )
    agent.learn(4000)
    shares = agent.action_counts / agent.action_counts.sum()
    # 250 expected draws per action, binomial standard deviation 15.3: 25% is four of them
    np.testing.assert_allclose(shares, 1 / 16, rtol=0.25)


def test_q_spread_scale_makes_the_draw_independent_of_the_reward_units():
    env = TaskBanditEnv()

    def draws(q, scale_kind):
        agent = BoltzmannGumbelDQN(
            "MlpPolicy", env, exploration_scale=scale_kind, learning_starts=0, seed=5
        )
        agent.q_values = lambda observation: q[None]
        agent.temperature = 0.7
        agent.action_counts[:] = [3, 1, 7, 2]
        agent._last_obs = env.observations[0][None]
        return [int(agent._sample_action(learning_starts=0)[0][0]) for _ in range(300)]

    q = np.array([0.1, 0.4, 0.2, 0.0])
    affine = 250.0 * q - 40.0
    # the same noise stream, Q in other units: the same actions
    assert draws(q, "q-spread") == draws(affine, "q-spread")
    # seed 002's absolute scale: C = 1 is noisy for Q in [0, 0.4], nearly greedy for Q x 250
    absolute = np.bincount(draws(affine, "absolute"), minlength=4)
    assert absolute.max() == 300
    assert np.bincount(draws(q, "absolute"), minlength=4).max() < 300
    assert q_spread(q) == pytest.approx(np.std(q))
    assert q_spread(np.zeros(4)) > 0


def test_unknown_exploration_is_refused():
    with pytest.raises(ValueError, match="'softmax'"):
        BoltzmannGumbelDQN("MlpPolicy", TaskBanditEnv(), exploration="softmax")
    with pytest.raises(ValueError, match=r"exploration_scale.*'reward'"):
        BoltzmannGumbelDQN("MlpPolicy", TaskBanditEnv(), exploration_scale="reward")


def test_save_load_keeps_the_exploration_kind_and_schedule(tmp_path):
    agent = bandit_agent(
        "boltzmann",
        learning_starts=20,
        temperature_schedule="linear",
        temperature_final=0.0,
        temperature_fraction=1.0,
        exploration_c=0.7,
    )
    agent.learn(400, callback=StopAt(100))
    agent.save(tmp_path / "agent.zip")
    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent.zip", env=TaskBanditEnv(), device="cpu")
    assert loaded.exploration == "boltzmann"
    assert loaded.exploration_c == 0.7
    assert loaded.temperature_horizon == 400
    assert loaded.temperature == pytest.approx(agent.temperature)
    np.testing.assert_array_equal(loaded.action_counts, agent.action_counts)
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.num_timesteps == 200 and loaded.exploration == "boltzmann"
    assert loaded.temperature == pytest.approx(annealed_temperature(0.5, 1.0, 0.0, "linear"))


def test_agent_settings_share_the_dqn_arguments_across_methods():
    # seed 002's flat network, the one stock DQN builds from "MlpPolicy" on the flat bandit
    settings = AgentSettings(
        observation="histogram",
        policy="flat",
        gamma=0.5,
        learning_rate=2e-3,
        batch_size=16,
        net_arch=(8,),
    )
    env = TaskBanditEnv()
    plain = dataclasses.replace(settings, exploration="boltzmann").make_agent(
        env, seed=3, total_steps=50
    )
    stock = DQN("MlpPolicy", env, **settings.dqn_kwargs(seed=3, total_steps=50))
    assert plain.exploration == "boltzmann"
    assert settings.make_agent(env, seed=3).exploration == "boltzmann-gumbel"
    for agent in (plain, stock):
        assert (agent.gamma, agent.learning_rate, agent.batch_size) == (0.5, 2e-3, 16)
        assert agent.buffer_size == 50 and agent.seed == 3
        assert agent.policy_kwargs["net_arch"] == [8]


# ------------------------------------------------------------------- comparison script
@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("exploration_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the script's annotations through sys.modules
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def tiny_args(script, out, **overrides):
    values = {
        "small": True,
        "steps": 20,
        "setting": ["learning_starts=10"],
        "seeds": "0",
        "eval_seeds": "7",
        "baselines": "uniform",
        "out": str(out),
    }
    values.update(overrides)
    return script.Args(**values)


def test_script_parses_its_flags(script):
    args = script.parse_args(
        ["--small", "--steps", "5", "--setting", "gamma=0.5", "--setting", "batch_size=8"]
    )
    assert args.small and args.steps == 5
    assert args.setting == ["gamma=0.5", "batch_size=8"]
    assert script.parse_args([]).small is False


def test_script_runs_writes_and_resumes(script, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    table = script.main(tiny_args(script, out))
    stored = json.loads((out / "results.json").read_text())
    assert sorted(stored["runs"]) == ["boltzmann-gumbel/0", "boltzmann/0", "epsilon-greedy/0"]
    assert stored["config"]["steps"] == 20
    for method in script.METHODS:
        run = stored["runs"][f"{method}/0"]
        assert len(run["eval_scores"]) == 1 and run["score"] == run["eval_scores"][0]
        assert 0.0 <= run["score"] <= 1.0
        assert f"{method:20}    1 {run['score']:7.4f}" in table
        evaluations = (out / "runs" / f"{method}-seed0" / "evaluations.csv").read_text()
        assert evaluations.splitlines()[1].startswith("20,")
    assert "uniform (fixed)" in table

    calls = []
    original = script.run_one

    def counting(method, seed, *args):
        calls.append((method, seed))
        return original(method, seed, *args)

    monkeypatch.setattr(script, "run_one", counting)
    assert script.main(tiny_args(script, out)) == table  # everything resumed, nothing rerun
    assert calls == []
    script.main(tiny_args(script, out, seeds="0,1", methods="boltzmann"))
    assert calls == [("boltzmann", 1)]
    assert "boltzmann/1" in json.loads((out / "results.json").read_text())["runs"]

    with pytest.raises(ValueError, match=r"results\.json.*steps"):
        script.main(tiny_args(script, out, steps=21))


def test_script_table_by_hand(script):
    runs = {
        f"boltzmann/{seed}": {
            "method": "boltzmann",
            "seed": seed,
            "score": score,
            "train_wall_s": 10.0,
            "train_cpu_s": 4.0,
            "eval_wall_s": 2.0,
            "eval_cpu_s": 1.0,
        }
        for seed, score in ((0, 0.5), (1, 0.7))
    }
    results = {
        "config": {"benchmark": "b", "benchmark_options": {}, "steps": 9, "eval_seeds": [1]},
        "runs": runs,
        "baselines": {"uniform": [0.6, 0.6]},
    }
    lines = script.format_table(results, ["boltzmann"], [0, 1], ["uniform"]).splitlines()
    assert lines[2].split() == ["boltzmann", "2", "0.6000", "0.1414", "0:0.5000", "1:0.7000"]
    assert lines[3].split() == ["uniform", "(fixed)", "-", "0.6000", "0.0000", "0.6000", "0.6000"]
    assert "train 10 s wall (4 s CPU)" in lines[4]


def test_script_refuses_unknown_methods(script, tmp_path):
    with pytest.raises(ValueError, match="softmax"):
        script.main(tiny_args(script, tmp_path, methods="boltzmann,softmax"))

"""Any stable-baselines3 algorithm's saved agent schedules: the algorithm is read from the file
(PPO told from A2C, `BoltzmannGumbelDQN` from DQN, though each pair shares its policies) or
given, and the loaded policy acts exactly as the saved one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.agents.loading import algorithm_class, load_agent_file, saved_algorithm
from mtl_sched.envs import TaskBanditEnv
from mtl_sched.observation.probing import ProbeConfig

# the bandit's observation is laid out as the scheduling environment's flat histograms: 4 tasks
# x 20 bins, as the small synthetic benchmark's run under ProbeConfig(bins=20)
BINS = 20


@pytest.fixture(scope="module")
def ppo_path(tmp_path_factory):
    agent = PPO(
        "MlpPolicy", TaskBanditEnv(bins=BINS), n_steps=64, batch_size=32, seed=0, device="cpu"
    )
    agent.learn(256)
    path = tmp_path_factory.mktemp("ppo") / "ppo.zip"
    agent.save(path)
    return agent, path


@pytest.mark.parametrize(
    "algorithm",
    [PPO, A2C, DQN, BoltzmannGumbelDQN],
    ids=lambda algorithm: algorithm.__name__,
)
def test_the_saving_algorithm_is_read_from_the_file(algorithm, tmp_path):
    options = {} if algorithm in (PPO, A2C) else {"buffer_size": 100}
    algorithm("MlpPolicy", TaskBanditEnv(bins=4), device="cpu", **options).save(tmp_path / "a")
    assert saved_algorithm(tmp_path / "a.zip") is algorithm
    assert type(load_agent_file(tmp_path / "a")) is algorithm


def test_a_policy_of_no_candidate_is_refused_naming_the_file(tmp_path):
    SAC("MlpPolicy", "Pendulum-v1", buffer_size=100, device="cpu").save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"sac\.zip.*none of PPO, A2C.*algorithm="):
        saved_algorithm(tmp_path / "sac.zip", candidates=(PPO, A2C))
    assert saved_algorithm(tmp_path / "sac.zip") is SAC


def test_algorithm_names_resolve_in_any_case():
    assert algorithm_class("ppo") is PPO and algorithm_class("BoltzmannGumbelDQN") is (
        BoltzmannGumbelDQN
    )
    with pytest.raises(ValueError, match="algorithm must be one of BoltzmannGumbelDQN, DQN"):
        algorithm_class("trpo")


def test_the_loaded_ppo_acts_as_the_saved_one(ppo_path):
    original, path = ppo_path
    loaded = load_agent_file(path)
    assert type(loaded) is PPO
    env = TaskBanditEnv(bins=BINS, episode_steps=64)
    first, _ = env.reset(seed=0)
    observations = np.stack([first] + [env.step(0)[0] for _ in range(63)])
    expected, _ = original.predict(observations, deterministic=True)
    actions, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    # the whole distribution, not only its argmax: the weights themselves were restored
    obs_tensor, _ = loaded.policy.obs_to_tensor(observations)
    with torch.no_grad():
        probs = loaded.policy.get_distribution(obs_tensor).distribution.probs
        original_probs = original.policy.get_distribution(obs_tensor).distribution.probs
    torch.testing.assert_close(probs, original_probs, rtol=0, atol=0)
    assert len(set(expected.tolist())) > 1, "a constant policy would not tell weights apart"


def test_a_saved_ppo_schedules_as_the_original(ppo_path, tiny_benchmark):
    original, path = ppo_path
    probe = ProbeConfig(bins=BINS)
    from_file = QLSScheduler(path, probe)
    assert type(from_file.agent) is PPO
    budget = 32 * 8
    loaded_run = tiny_benchmark.make_trainer(0, budget=budget).run(from_file)
    original_run = tiny_benchmark.make_trainer(0, budget=budget).run(QLSScheduler(original, probe))
    assert loaded_run.examples_seen == budget
    np.testing.assert_array_equal(loaded_run.schedule, original_run.schedule)
    assert type(QLSScheduler(path, probe, algorithm="ppo").agent) is PPO


def test_algorithm_is_refused_for_an_agent_object(ppo_path):
    original, _ = ppo_path
    with pytest.raises(ValueError, match="algorithm applies only when agent is the path"):
        QLSScheduler(original, algorithm=PPO)

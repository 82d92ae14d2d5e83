import re
import tempfile

import numpy as np
import pytest
from agent_callbacks import StopAt
from stable_baselines3.common.envs import IdentityEnv

from mtl_sched.agents import (
    BoltzmannGumbelDQN,
    QLSScheduler,
    annealed_temperature,
    boltzmann_gumbel_choice,
)
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.observation.probing import ProbeConfig

SMALL = {"buffer_size": 2000, "batch_size": 32}


def identity_agent(seed=0, **kwargs):
    options = {
        **SMALL,
        "learning_starts": 100,
        "target_update_interval": 100,
        "learning_rate": 1e-3,
        "gamma": 0.0,
        "exploration_c": 1.0,
        "seed": seed,
    }
    options.update(kwargs)
    return BoltzmannGumbelDQN("MlpPolicy", IdentityEnv(4), **options)


# ------------------------------------------------------------------- Boltzmann-Gumbel draw
def test_untried_actions_win_outright():
    rng = np.random.default_rng(0)
    q = np.array([5.0, -1.0, 3.0, -2.0])
    counts = np.array([3, 0, 7, 0])
    draws = {boltzmann_gumbel_choice(q, counts, 100.0, rng) for _ in range(200)}
    assert draws == {1, 3}


def test_zero_scale_is_greedy():
    rng = np.random.default_rng(0)
    q = np.array([0.1, 0.7, 0.3])
    for counts in (np.array([1, 1, 1]), np.array([100, 1, 5])):
        assert {boltzmann_gumbel_choice(q, counts, 0.0, rng) for _ in range(50)} == {1}


def test_common_beta_samples_the_softmax():
    """Gumbel-max trick: counts 4 and scale 2 give beta = 2 / sqrt(4) = 1 for every action."""
    rng = np.random.default_rng(1)
    q = np.array([0.0, 0.5, 1.0, -1.0])
    counts = np.full(4, 4)
    draws = [boltzmann_gumbel_choice(q, counts, 2.0, rng) for _ in range(20_000)]
    frequencies = np.bincount(draws, minlength=4) / 20_000
    softmax = np.exp(q) / np.exp(q).sum()
    np.testing.assert_allclose(frequencies, softmax, atol=0.015)


# ------------------------------------------------------------------------------ annealing
def test_annealed_temperature_by_hand():
    assert annealed_temperature(0.5, 1.0, 0.0, "linear") == pytest.approx(0.5)
    assert annealed_temperature(0.25, 2.0, 1.0, "linear") == pytest.approx(1.75)
    assert annealed_temperature(0.5, 1.0, 0.01, "exponential") == pytest.approx(0.1)
    assert annealed_temperature(0.0, 1.0, 0.01, "exponential") == pytest.approx(1.0)
    assert annealed_temperature(1.0, 1.0, 0.01, "exponential") == pytest.approx(0.01)
    for schedule in ("linear", "exponential"):
        assert annealed_temperature(-0.5, 1.0, 0.1, schedule) == pytest.approx(1.0)
        assert annealed_temperature(3.0, 1.0, 0.1, schedule) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="'cosine'"):
        annealed_temperature(0.5, 1.0, 0.1, "cosine")


# ---------------------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    "kwarg", ["exploration_initial_eps", "exploration_final_eps", "exploration_fraction"]
)
def test_epsilon_greedy_arguments_are_refused(kwarg):
    with pytest.raises(TypeError, match=kwarg):
        BoltzmannGumbelDQN("MlpPolicy", IdentityEnv(4), **{kwarg: 0.1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature_final": 0.0}, "exponential"),
        ({"temperature_schedule": "exponential", "temperature_initial": 0.0}, "exponential"),
        ({"exploration_c": -1.0}, "exploration_c"),
        ({"temperature_fraction": 0.0}, "temperature_fraction"),
        ({"temperature_fraction": 1.5}, "temperature_fraction"),
        ({"temperature_schedule": "cosine"}, "schedule"),
    ],
)
def test_bad_exploration_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BoltzmannGumbelDQN("MlpPolicy", IdentityEnv(4), **kwargs)


def test_linear_schedule_may_end_at_zero():
    agent = identity_agent(temperature_schedule="linear", temperature_final=0.0)
    assert agent.temperature == 1.0 and agent.temperature_horizon is None
    assert agent.action_counts.tolist() == [0, 0, 0, 0]


# ---------------------------------------------------------------------- learning (identity)
@pytest.fixture(scope="module")
def trained():
    agent = identity_agent()
    agent.learn(3000)
    return agent


def test_learns_the_identity_env(trained):
    obs = np.random.default_rng(0).integers(4, size=200)
    actions, _ = trained.predict(obs, deterministic=True)
    assert np.mean(actions == obs) >= 0.9


def test_counts_and_temperature_after_training(trained):
    assert trained.num_timesteps == 3000
    assert int(trained.action_counts.sum()) == trained.num_timesteps
    assert (trained.action_counts > 0).all()
    assert trained.temperature_horizon == int(0.8 * 3000)
    assert trained.num_timesteps >= trained.temperature_horizon
    assert trained.temperature == pytest.approx(trained.temperature_final)


def test_predict_is_the_argmax_of_the_q_values(trained):
    obs = np.arange(4)
    actions, _ = trained.predict(obs, deterministic=True)
    q = trained.q_values(obs)
    assert q.shape == (4, 4)
    assert np.array_equal(actions, q.argmax(axis=1))


def test_same_seed_same_counts():
    # Built and trained one after the other: SB3 seeds the global NumPy/torch generators at
    # construction and samples the replay buffer from them, so interleaving two agents'
    # constructions and learn calls would mix their random streams.
    first = identity_agent(seed=7)
    first.learn(300)
    second = identity_agent(seed=7)
    second.learn(300)
    assert int(first.action_counts.sum()) == 300
    assert np.array_equal(first.action_counts, second.action_counts)
    np.testing.assert_array_equal(first.q_values(np.arange(4)), second.q_values(np.arange(4)))


def test_learn_without_a_logger_makes_no_temporary_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    quiet = identity_agent(seed=1)
    quiet.learn(100)
    verbose = identity_agent(seed=1, verbose=1)
    verbose.learn(100, log_interval=1)
    assert [path.name for path in tmp_path.glob("SB3-*")] == []
    assert "total_timesteps" in capsys.readouterr().out
    assert not quiet._custom_logger  # chosen again at the next call, as SB3's default is


# ------------------------------------------------------------------------------ save/load
def test_save_load_resumes_counts_and_the_original_temperature_schedule(tmp_path):
    agent = identity_agent(
        learning_starts=20,
        exploration_c=0.7,
        temperature_schedule="linear",
        temperature_initial=1.0,
        temperature_final=0.0,
        temperature_fraction=1.0,
    )
    agent.learn(1000, callback=StopAt(100))  # horizon 1000, stopped after 100 steps
    assert agent.num_timesteps == 100 and agent.temperature_horizon == 1000
    # SB3 stops before the 100th step's _on_step, so the temperature is still that of step 99
    assert agent.temperature == pytest.approx(annealed_temperature(0.099, 1.0, 0.0, "linear"))
    agent.save(tmp_path / "agent.zip")

    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent.zip", env=IdentityEnv(4), device="cpu")
    assert np.array_equal(loaded.action_counts, agent.action_counts)
    assert loaded.temperature_horizon == 1000
    assert loaded.exploration_c == 0.7
    assert loaded.temperature_schedule == "linear"
    assert (loaded.temperature_initial, loaded.temperature_final) == (1.0, 0.0)
    assert loaded.temperature_fraction == 1.0
    assert loaded.num_timesteps == 100

    loaded.learn(48, reset_num_timesteps=False)  # a multiple of train_freq=4: no overshoot
    assert loaded.num_timesteps == 148
    assert int(loaded.action_counts.sum()) == 148
    assert loaded.temperature_horizon == 1000
    # 0.852 on the original horizon; a horizon recomputed from this call would give 0.0
    expected = annealed_temperature(148 / 1000, 1.0, 0.0, "linear")
    assert loaded.temperature == pytest.approx(expected)


def test_load_without_env_for_prediction(tmp_path):
    agent = identity_agent()
    agent.save(tmp_path / "agent.zip")
    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent.zip", device="cpu")
    obs = np.arange(4)
    expected, _ = agent.predict(obs, deterministic=True)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], expected)


# ------------------------------------------------------------------------------------ QLS
@pytest.fixture(scope="module")
def mtl_agent(tiny_benchmark):
    # seed 002's flat network reads the flat histograms, tied to K and the bins
    env = MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None, observation="histogram")
    return BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0, **SMALL)


def test_qls_accepts_a_matching_agent(tiny_benchmark, mtl_agent):
    scheduler = QLSScheduler(mtl_agent, ProbeConfig(bins=20))
    scheduler.reset(tiny_benchmark.tasks, 0)
    assert scheduler.num_tasks == 4 and scheduler.probe_config.bins == 20


@pytest.mark.parametrize(
    ("num_tasks", "bins", "run_shape"),
    [(3, 20, "(60,)"), (4, 10, "(40,)"), (5, 16, "(80,)")],
)
def test_qls_rejects_an_agent_of_another_observation_size(
    tiny_benchmark, mtl_agent, num_tasks, bins, run_shape
):
    tasks = (tiny_benchmark.tasks * 2)[:num_tasks]
    scheduler = QLSScheduler(mtl_agent, ProbeConfig(bins=bins))
    with pytest.raises(ValueError) as err:
        scheduler.reset(tasks, 0)
    message = str(err.value)
    assert "(80,)" in message and run_shape in message
    assert re.search(rf"{num_tasks} tasks x {bins} bins", message)


def test_qls_from_a_saved_agent_path(tiny_benchmark, mtl_agent, tmp_path):
    mtl_agent.save(tmp_path / "qls.zip")
    scheduler = QLSScheduler(str(tmp_path / "qls.zip"), ProbeConfig(bins=20))
    scheduler.reset(tiny_benchmark.tasks, 0)
    assert scheduler.agent.observation_space.shape == (80,)


def test_qls_keeps_each_choice_for_steps_per_action_steps(tiny_benchmark, mtl_agent):
    scheduler = QLSScheduler(mtl_agent, ProbeConfig(bins=20), steps_per_action=3)
    result = tiny_benchmark.make_trainer(0, budget=32 * 9).run(scheduler)
    chosen = result.schedule.argmax(axis=1)
    assert len(chosen) == 9
    for start in (0, 3, 6):
        assert len(set(chosen[start : start + 3].tolist())) == 1


def test_trainer_probes_only_when_qls_decides(tiny_benchmark, mtl_agent, monkeypatch):
    from mtl_sched.training import Trainer

    calls = []
    original = Trainer.probe

    def counting_probe(self, config=None, tasks=None):
        calls.append(self.step_count)
        return original(self, config, tasks)

    monkeypatch.setattr(Trainer, "probe", counting_probe)
    scheduler = QLSScheduler(mtl_agent, ProbeConfig(bins=20), steps_per_action=3)
    tiny_benchmark.make_trainer(0, budget=32 * 9).run(scheduler)
    assert calls == [0, 3, 6]

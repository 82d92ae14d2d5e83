"""Agents on N environments at once: learn, save/load, train_agent with checkpoints and resume."""

import gc
import json
import warnings

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.agents.training import (
    AgentSettings,
    TrainAgentConfig,
    complete_checkpoints,
    load_trained_agent,
    train_agent,
)
from mtl_sched.cli import main as cli_main
from mtl_sched.envs import BatchedSchedulingVecEnv

TINY = {"budget": 640, "train_size": 200, "validation_size": 60, "hidden_sizes": [16]}


def test_learn_on_four_batched_envs_then_save_and_load(tiny_benchmark, tmp_path):
    settings = AgentSettings(n_envs=4, learning_starts=16, steps_per_action=1)
    env = settings.make_vec_env(tiny_benchmark, seed=3)
    assert isinstance(env, VecMonitor) and isinstance(env.venv, BatchedSchedulingVecEnv)
    agent = settings.make_agent(env, seed=3, total_steps=96)
    agent.learn(96)
    assert agent.num_timesteps == 96 and agent.n_envs == 4
    assert int(agent.action_counts.sum()) == 96
    # 96 steps of 4 envs, gradient updates after the first 16: one per train_freq (4) vec steps
    assert agent._n_updates == 5
    assert agent.replay_buffer.size() == 24  # rows of 4 transitions
    # a total that is not a multiple of 4 stops at the first vec step past it
    agent.learn(10, reset_num_timesteps=False)
    assert agent.num_timesteps == 108
    agent.save(tmp_path / "agent.zip")
    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent.zip", env=env)
    assert np.array_equal(loaded.action_counts, agent.action_counts)
    obs = env.reset()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0]
    )
    loaded.learn(16, reset_num_timesteps=False)
    assert loaded.num_timesteps == 124
    # the agent schedules greedily with the settings of the environments it trained on
    scheduler = QLSScheduler.from_env(loaded, env)
    assert scheduler.probe_config == env.get_attr("probe_config")[0]
    result = tiny_benchmark.make_trainer(7).run(scheduler)
    assert result.examples_seen == tiny_benchmark.trainer_config.budget


class InterruptAfter(BaseCallback):
    """Raise ``KeyboardInterrupt`` (as Ctrl-C does) once at least ``at`` steps were taken."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def _on_step(self):
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt
        return True


def config(out, steps):
    return TrainAgentConfig(
        out=out,
        benchmark_options=TINY,
        steps=steps,
        eval_every=24,
        eval_seeds=(7,),
        checkpoint_every=20,
        agent=AgentSettings(n_envs=4, learning_starts=8, steps_per_action=2),
        progress=False,
    )


def test_train_agent_on_four_envs_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(out, 80), callbacks=[InterruptAfter(50)])
    # checkpoints at the first vec steps reaching 20 and 40, and at the interruption
    names = [p.name for p in complete_checkpoints(out)]
    assert names == ["step-000000040", "step-000000052"]
    assert json.loads((out / "settings.json").read_text())["agent"]["n_envs"] == 4

    result = train_agent(config(out, 80), resume=True)
    assert result.timesteps == result.agent.num_timesteps == 80
    assert int(result.agent.action_counts.sum()) == 80
    assert result.agent.n_envs == 4
    # every one of the 80 timesteps is stored: the interrupted vec step's transitions are
    # stored on resume, as in the uninterrupted run
    assert result.agent.replay_buffer.size() * 4 == 80
    evaluations = (out / "evaluations.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in evaluations] == [24, 48, 72, 80]
    # the default task-feature rows: 4 tasks x (20 histogram bins + 7 features + the task's
    # identity + the mask)
    assert load_trained_agent(out).agent.observation_space.shape == (4, 29)
    with pytest.raises(ValueError, match="agent"):
        other = config(out, 100)
        other.agent = AgentSettings(n_envs=2, learning_starts=8, steps_per_action=2)
        train_agent(other, resume=True)


def test_the_cli_passes_n_envs_to_the_agent_settings(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train-agent", "--small", "--steps", "16", "--out", str(out), "--eval-every", "0"]
    with warnings.catch_warnings():
        # the agent's logger keeps its progress.csv open until the agent is collected
        warnings.simplefilter("ignore", ResourceWarning)
        assert cli_main([*argv, "--setting", "n_envs=4", "--no-progress"]) == 0
        gc.collect()
    stored = json.loads((out / "settings.json").read_text())
    assert stored["agent"]["n_envs"] == 4
    assert "trained 16 steps" in capsys.readouterr().out

"""Exact resume of environments that do not batch, and signals during the final evaluation and
save of ``train-agent``.

Several environments of a benchmark whose model does not batch run as separate
`MTLSchedulingEnv` (in a ``SubprocVecEnv``, or a ``DummyVecEnv``); here the synthetic benchmark
is forced onto them with ``vec_env``. A run interrupted (or killed) and resumed from its
checkpoints must end as the uninterrupted run does, bit for bit on CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from agent_callbacks import InterruptAt
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor
from test_faults_kill import best, evaluated
from test_faults_resume import _assert_same_agent, _assert_same_final_run

from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.env_state import set_vec_env_state, vec_env_state
from mtl_sched.agents.qls import QLSScheduler
from mtl_sched.agents.training import (
    AgentSettings,
    Terminated,
    TrainAgentConfig,
    complete_checkpoints,
    train_agent,
)
from mtl_sched.benchmarks import Benchmark
from mtl_sched.envs import BatchedSchedulingVecEnv

TINY = {"budget": 640, "train_size": 200, "validation_size": 60, "hidden_sizes": [16]}
STEPS = 48


def config(out: Path, vec_env: str, steps: int = STEPS, **overrides: Any) -> TrainAgentConfig:
    values: dict[str, Any] = {
        "out": out,
        "benchmark_options": TINY,
        "steps": steps,
        "eval_every": 16,
        "eval_seeds": (7,),
        "checkpoint_every": 12,
        "agent": AgentSettings(
            n_envs=2,
            vec_env=vec_env,
            learning_starts=6,
            steps_per_action=2,
            batch_size=8,
            target_update_interval=8,
        ),
        "progress": False,
    }
    values.update(overrides)
    return TrainAgentConfig(**values)


def _assert_same_runs(whole: Path, resumed: Path) -> None:
    buffers = _assert_same_final_run(whole, resumed, STEPS)
    assert buffers[0].size() > 0


def test_vec_env_setting_chooses_the_separate_environments(tiny_benchmark) -> None:
    env = AgentSettings(n_envs=2, vec_env="dummy").make_vec_env(tiny_benchmark, seed=0)
    assert isinstance(env, VecMonitor) and type(env.venv) is DummyVecEnv
    env = AgentSettings(n_envs=2).make_vec_env(tiny_benchmark, seed=0)
    assert type(env.venv) is BatchedSchedulingVecEnv  # "auto" batches what batches
    with pytest.raises(TypeError, match="vec_env"):
        AgentSettings(vec_env="threads")


def test_separate_environments_continue_from_their_stored_state(tiny_benchmark) -> None:
    settings = AgentSettings(n_envs=2, vec_env="dummy", steps_per_action=1)
    source = settings.make_vec_env(tiny_benchmark, seed=3)
    source.reset()
    for _ in range(3):
        source.step(np.array([0, 1]))
    state = vec_env_state(source)
    assert state is not None and state["vec_monitor"]["episode_count"] == 0
    copy = settings.make_vec_env(tiny_benchmark, seed=99)
    copy.reset()
    set_vec_env_state(copy, state)
    # both go on with the same observations, rewards and episode ends (an episode ends within
    # the next steps: the VecMonitor's statistics must carry over too)
    episode_steps = source.get_attr("episode_steps")[0]
    ended = 0
    for step in range(episode_steps):
        actions = np.array([step % 2, 1])
        obs_a, rewards_a, dones_a, infos_a = source.step(actions)
        obs_b, rewards_b, dones_b, infos_b = copy.step(actions)
        assert np.array_equal(obs_a, obs_b) and np.array_equal(rewards_a, rewards_b)
        assert np.array_equal(dones_a, dones_b)
        # the monitor's episode return and length (its time is wall-clock)
        episodes = [
            [(i["episode"]["r"], i["episode"]["l"]) for i in infos if "episode" in i]
            for infos in (infos_a, infos_b)
        ]
        assert episodes[0] == episodes[1]
        ended += len(episodes[0])
    assert ended == 2 and source.episode_count == copy.episode_count == 2
    batched = AgentSettings(n_envs=2, vec_env="batched").make_vec_env(tiny_benchmark, seed=3)
    with pytest.raises(ValueError, match="fallback"):
        set_vec_env_state(batched, state)


@pytest.mark.parametrize("vec_env", ["dummy", pytest.param("subproc", marks=pytest.mark.slow)])
def test_an_interrupted_run_of_separate_environments_resumes_exactly(
    tmp_path: Path, vec_env: str
) -> None:
    whole = tmp_path / "whole"
    train_agent(config(whole, vec_env))
    resumed = tmp_path / "resumed"
    # mid-episode (episodes of 10 steps per environment) and mid-round of gradient updates
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(resumed, vec_env), callbacks=[InterruptAt(30)])
    assert complete_checkpoints(resumed)[-1].name == "step-000000030"
    result = train_agent(config(resumed, vec_env), resume=True)
    expected = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}[vec_env]
    assert type(result.agent.get_env().venv) is expected
    _assert_same_runs(whole, resumed)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from stable_baselines3.common.callbacks import BaseCallback
    from test_faults_fallback import config
    from mtl_sched.agents.training import train_agent

    out, kill_at, resume = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"

    class KillAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return True

    train_agent(config(out, "subproc"), resume=resume, callbacks=[KillAt()])
    """
)


def _run_killed(out: Path, kill_at: int, resume: bool) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", KILL_SCRIPT, str(out), str(kill_at), "1" if resume else "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, -9), done.stderr
    return done.returncode


@pytest.mark.serial
@pytest.mark.slow
def test_a_killed_run_of_subprocess_environments_ends_as_the_uninterrupted_one(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "whole"
    assert _run_killed(whole, kill_at=-1, resume=False) == 0
    killed = tmp_path / "killed"
    # mid-episode and mid-round (22), then at a checkpoint's own step (36, after its checkpoint)
    assert _run_killed(killed, kill_at=22, resume=False) == -9
    assert _run_killed(killed, kill_at=36, resume=True) == -9
    assert _run_killed(killed, kill_at=-1, resume=True) == 0
    _assert_same_runs(whole, killed)


# ------------------------------------------------------------- signals at the end of a run
EVAL_SEED = 4242
SCORES = {20: 0.5, 40: 0.9, 50: 0.7}


@pytest.fixture
def signalled_evaluations(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """Score a greedy evaluation at ``t`` timesteps ``SCORES[t]`` without training, sending
    this process ``signals[t]`` SIGTERMs while it runs (once); returns ``signals`` to fill."""
    signals: dict[int, int] = {}
    real_make_trainer = Benchmark.make_trainer

    class Trainer:
        def run(self, scheduler: QLSScheduler) -> SimpleNamespace:
            timesteps = scheduler.agent.num_timesteps
            for _ in range(signals.pop(timesteps, 0)):
                os.kill(os.getpid(), signal.SIGTERM)
            return SimpleNamespace(
                best_validation=SimpleNamespace(average_score=SCORES[timesteps]), examples_seen=0
            )

    def make_trainer(self: Benchmark, seed: int, **overrides: Any) -> Any:
        if seed == EVAL_SEED and not overrides:
            return Trainer()
        return real_make_trainer(self, seed, **overrides)

    monkeypatch.setattr(Benchmark, "make_trainer", make_trainer)
    return signals


def end_config(out: Path) -> TrainAgentConfig:
    # 50 steps: the final evaluation follows training; the last checkpoint due is at 40
    return TrainAgentConfig(
        out=out,
        benchmark_options=TINY,
        steps=50,
        eval_every=20,
        eval_seeds=(EVAL_SEED,),
        checkpoint_every=20,
        agent=AgentSettings(learning_starts=10, steps_per_action=2),
        progress=False,
    )


def test_a_sigterm_during_the_final_evaluation_lets_the_run_finish(
    tmp_path: Path, signalled_evaluations: dict[int, int]
) -> None:
    out = tmp_path / "run"
    signalled_evaluations[50] = 1
    result = train_agent(end_config(out))
    assert not signalled_evaluations  # the signal was sent, during the evaluation of step 50
    assert result.timesteps == 50 and (result.best_timesteps, result.best_score) == (40, 0.9)
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (50, 0.7)]
    assert best(out) == (40, 0.9)
    assert BoltzmannGumbelDQN.load(out / "agent.zip", device="cpu").num_timesteps == 50
    progress = json.loads((complete_checkpoints(out)[-1] / "progress.json").read_text())
    assert progress["timesteps"] == 50 and progress["last_evaluated"] == 50


def test_a_second_sigterm_during_the_final_evaluation_leaves_a_checkpoint_to_rerun_it(
    tmp_path: Path, signalled_evaluations: dict[int, int]
) -> None:
    out = tmp_path / "run"
    signalled_evaluations[50] = 2
    with pytest.raises(Terminated):
        train_agent(end_config(out))
    # the final checkpoint was written before the evaluation, which left no row
    assert complete_checkpoints(out)[-1].name == "step-000000050"
    assert evaluated(out) == [(20, 0.5), (40, 0.9)]
    assert not (out / "agent.zip").exists()
    result = train_agent(end_config(out), resume=True)
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (50, 0.7)]
    assert best(out) == (40, 0.9) and (result.best_timesteps, result.best_score) == (40, 0.9)
    assert BoltzmannGumbelDQN.load(out / "agent.zip", device="cpu").num_timesteps == 50


def test_sigterms_during_the_final_save_keep_the_final_checkpoint_whole(
    tmp_path: Path, signalled_evaluations: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    whole = train_agent(end_config(tmp_path / "whole"))
    save = BoltzmannGumbelDQN.save

    def signalled_save(self: BoltzmannGumbelDQN, path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).parent == out:  # agent.zip, not a checkpoint's or best/'s
            os.kill(os.getpid(), signal.SIGTERM)
            save(self, path, *args, **kwargs)  # written aside; the second signal comes before
            # it is renamed into place
            os.kill(os.getpid(), signal.SIGTERM)
        save(self, path, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(BoltzmannGumbelDQN, "save", signalled_save)
        with pytest.raises(Terminated):
            train_agent(end_config(out))
    assert not (out / "agent.zip").exists()  # never a half-written agent.zip
    final = complete_checkpoints(out)[-1]
    progress = json.loads((final / "progress.json").read_text())
    assert progress["timesteps"] == 50 and progress["last_evaluated"] == 50
    saved_at = (final / "agent.zip").stat().st_mtime_ns
    train_agent(end_config(out), resume=True)
    assert (final / "agent.zip").stat().st_mtime_ns == saved_at  # not rewritten on resume
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (50, 0.7)]
    _assert_same_agent(
        BoltzmannGumbelDQN.load(out / "agent.zip", device="cpu"),
        BoltzmannGumbelDQN.load(whole.out / "agent.zip", device="cpu"),
    )

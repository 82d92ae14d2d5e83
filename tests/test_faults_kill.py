"""Killed and interrupted commands: nothing lost, nothing silently wrong.

A killed ``compare`` takes its workers with it; an interrupted ``train-agent`` keeps every
evaluation and never replaces its best agent with a worse one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents import training as agent_training
from mtl_sched.agents.training import (
    AgentSettings,
    CheckpointCallback,
    TrainAgentConfig,
    complete_checkpoints,
    load_trained_agent,
    train_agent,
)
from mtl_sched.benchmarks import Benchmark

# ----------------------------------------------------------------------------- compare


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name (which may hold spaces) start with state, ppid
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.serial
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_killed_compare_takes_its_pool_workers_with_it(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    command = [
        sys.executable, "-m", "mtl_sched", "compare", "--benchmark", "synthetic",
        "--small", "--schedulers", "uniform,greedy,random", "--seeds", "0,1,2,3",
        "--db", str(db), "--workers", "2", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        # the pool's two workers (and the resource tracker) are children of the sweep process
        while len(workers) < 3 and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
            workers = _children(process.pid)
        assert len(workers) >= 3, f"the pool did not start: children {workers}"
        time.sleep(0.5)  # the workers are taking trials
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived the sweep"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever survived, so no test inherits it


# ----------------------------------------------------------------------------- train-agent
EVAL_SEED = 4242
TINY = {"budget": 640, "train_size": 200, "validation_size": 60, "hidden_sizes": [16]}


def config(out: Path, steps: int, **overrides: Any) -> TrainAgentConfig:
    values: dict[str, Any] = {
        "out": out,
        "benchmark_options": TINY,
        "steps": steps,
        "eval_every": 20,
        "eval_seeds": (EVAL_SEED,),
        "checkpoint_every": 20,
        "agent": AgentSettings(learning_starts=10, steps_per_action=2),
        "progress": False,
    }
    values.update(overrides)
    return TrainAgentConfig(**values)


class _Scripted:
    """Stands for the scheduler of an agent under greedy evaluation."""

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps


@pytest.fixture
def scripted_scores(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[int]]:
    """Make a greedy evaluation at ``t`` timesteps score ``scores[t]`` (without training),
    raising ``KeyboardInterrupt`` the first time it reaches a step of ``interrupt_at``; returns
    the timesteps of the evaluations started."""
    started: list[int] = []

    def script(scores: dict[int, float], interrupt_at: tuple[int, ...] = ()) -> list[int]:
        pending = set(interrupt_at)
        real_make_trainer = Benchmark.make_trainer

        def greedy_scheduler(agent: Any, benchmark: Benchmark) -> _Scripted:
            return _Scripted(agent.num_timesteps)

        class Trainer:
            def __init__(self, benchmark: Benchmark, seed: int) -> None:
                self.benchmark, self.seed = benchmark, seed

            def run(self, scheduler: Any, *args: Any, **kwargs: Any) -> Any:
                if not isinstance(scheduler, _Scripted):
                    trainer = real_make_trainer(self.benchmark, self.seed)
                    return trainer.run(scheduler, *args, **kwargs)
                started.append(scheduler.timesteps)
                if scheduler.timesteps in pending:
                    pending.discard(scheduler.timesteps)
                    raise KeyboardInterrupt
                score = scores[scheduler.timesteps]
                return SimpleNamespace(
                    best_validation=SimpleNamespace(average_score=score), examples_seen=0
                )

        def make_trainer(self: Benchmark, seed: int, **overrides: Any) -> Any:
            if seed == EVAL_SEED and not overrides:
                return Trainer(self, seed)
            return real_make_trainer(self, seed, **overrides)

        monkeypatch.setattr(agent_training, "greedy_scheduler", greedy_scheduler)
        monkeypatch.setattr(Benchmark, "make_trainer", make_trainer)
        return started

    return script


def evaluated(out: Path) -> list[tuple[int, float]]:
    with (out / "evaluations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [(int(r["timesteps"]), float(r["validation_average"])) for r in rows]


def best(out: Path) -> tuple[int, float]:
    stored = json.loads((out / "best" / "evaluation.json").read_text())
    return stored["timesteps"], stored["validation_average"]


class CrashAt(BaseCallback):
    """Raise ``RuntimeError`` (a killed process: no checkpoint) once ``at`` steps were taken,
    after the run's own callbacks."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            raise RuntimeError("killed")
        return True


def test_a_kill_after_an_evaluation_keeps_its_best_agent(tmp_path: Path, scripted_scores) -> None:
    out = tmp_path / "run"
    scripted_scores({20: 0.5, 40: 0.9, 60: 0.7})
    with pytest.raises(RuntimeError, match="killed"):
        train_agent(config(out, steps=60), callbacks=[CrashAt(40)])
    # the checkpoint of step 40 was written after its evaluation, with its best score
    assert complete_checkpoints(out)[-1].name == "step-000000040"
    progress = json.loads((complete_checkpoints(out)[-1] / "progress.json").read_text())
    assert progress["best_score"] == 0.9 and progress["last_evaluated"] == 40
    result = train_agent(config(out, steps=60), resume=True)
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (60, 0.7)]
    assert best(out) == (40, 0.9)  # not replaced by the worse agent of step 60
    assert (result.best_timesteps, result.best_score) == (40, 0.9)
    assert not (out / "best.tmp").exists() and not (out / "best.previous").exists()


def test_a_kill_before_the_checkpoint_beats_the_stored_best_agent(
    tmp_path: Path, scripted_scores, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    scripted_scores({20: 0.5, 40: 0.9, 60: 0.7})
    save = CheckpointCallback.save

    def killed_at_40(self: CheckpointCallback) -> Path:
        if self.model.num_timesteps == 40:
            raise RuntimeError("killed")
        return save(self)

    with monkeypatch.context() as patched:
        patched.setattr(CheckpointCallback, "save", killed_at_40)
        with pytest.raises(RuntimeError, match="killed"):
            train_agent(config(out, steps=60))
    assert complete_checkpoints(out)[-1].name == "step-000000020"  # best score 0.5 there
    assert evaluated(out) == [(20, 0.5), (40, 0.9)]
    result = train_agent(config(out, steps=60), resume=True)
    assert best(out) == (40, 0.9)
    assert (result.best_timesteps, result.best_score) == (40, 0.9)
    # step 40 was evaluated again from the checkpoint of step 20: one row per evaluation
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (60, 0.7)]


def test_an_interrupted_evaluation_runs_again_on_resume(tmp_path: Path, scripted_scores) -> None:
    out = tmp_path / "run"
    started = scripted_scores({20: 0.5, 40: 0.9, 60: 0.7}, interrupt_at=(40,))
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(out, steps=60))
    assert evaluated(out) == [(20, 0.5)]
    assert complete_checkpoints(out)[-1].name == "step-000000040"  # written on Ctrl-C
    train_agent(config(out, steps=60), resume=True)
    assert started == [20, 40, 40, 60]
    assert evaluated(out) == [(20, 0.5), (40, 0.9), (60, 0.7)]
    assert best(out) == (40, 0.9)


def test_an_interrupted_final_evaluation_runs_again_on_resume(
    tmp_path: Path, scripted_scores
) -> None:
    out = tmp_path / "run"
    # 50 steps: the final evaluation follows training, after the checkpoint of step 50
    started = scripted_scores({20: 0.5, 40: 0.6, 50: 0.8}, interrupt_at=(50,))
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(out, steps=50, checkpoint_every=10))
    assert complete_checkpoints(out)[-1].name == "step-000000050"
    assert evaluated(out) == [(20, 0.5), (40, 0.6)]
    result = train_agent(config(out, steps=50, checkpoint_every=10), resume=True)
    assert started == [20, 40, 50, 50]
    assert evaluated(out) == [(20, 0.5), (40, 0.6), (50, 0.8)]
    assert best(out) == (50, 0.8) and result.best_score == 0.8
    progress = json.loads((complete_checkpoints(out)[-1] / "progress.json").read_text())
    assert progress["last_evaluated"] == 50 and progress["best_timesteps"] == 50
    # a further resume has nothing left to do
    train_agent(config(out, steps=50, checkpoint_every=10), resume=True)
    assert started == [20, 40, 50, 50]


def test_a_half_replaced_best_agent_is_recovered(tmp_path: Path, scripted_scores) -> None:
    out = tmp_path / "run"
    scripted_scores({20: 0.5, 40: 0.9, 60: 0.7})
    train_agent(config(out, steps=40))
    # killed between the two renames of a replacement: best/ moved aside, best.tmp/ unfinished
    os.replace(out / "best", out / "best.previous")
    (out / "best.tmp").mkdir()
    assert load_trained_agent(out).path == out / "best.previous" / "agent.zip"
    train_agent(config(out, steps=60), resume=True)
    assert best(out) == (40, 0.9)
    assert not (out / "best.tmp").exists() and not (out / "best.previous").exists()

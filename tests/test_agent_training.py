"""The agent training workflow: output layout, greedy evaluation, checkpoints and resume."""

import csv
import json
import re

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents import QLSScheduler
from mtl_sched.agents.training import (
    AgentSettings,
    TrainAgentConfig,
    check_stored_settings,
    complete_checkpoints,
    load_trained_agent,
    train_agent,
)
from mtl_sched.sweeps.spec import result_series

TINY = {"budget": 640, "train_size": 200, "validation_size": 60, "hidden_sizes": [16]}


def config(out, steps=60, **overrides):
    settings = AgentSettings(learning_starts=10, steps_per_action=2)
    values = {
        "out": out,
        "benchmark_options": TINY,
        "steps": steps,
        "eval_every": 20,
        "eval_seeds": (7,),
        "checkpoint_every": 20,
        "agent": settings,
        "progress": False,
    }
    values.update(overrides)
    return TrainAgentConfig(**values)


class InterruptAt(BaseCallback):
    """Raise ``KeyboardInterrupt`` (as Ctrl-C does) once ``at`` steps were taken."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def _on_step(self):
        if self.num_timesteps == self.at:
            raise KeyboardInterrupt
        return True


def read_evaluations(out):
    with (out / "evaluations.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_writes_its_documented_layout_and_keeps_the_best_agent(tmp_path):
    out = tmp_path / "run"
    result = train_agent(config(out))
    assert result.timesteps == 60
    assert {p.name for p in out.iterdir()} >= {
        "settings.json",
        "agent.zip",
        "best",
        "checkpoints",
        "evaluations.csv",
        "logs",
        "cost.json",
    }
    rows = read_evaluations(out)
    assert [int(r["timesteps"]) for r in rows] == [20, 40, 60]
    scores = [float(r["validation_average"]) for r in rows]
    assert result.best_score == pytest.approx(max(scores), abs=1e-6)
    assert result.best_timesteps == 20 * (1 + int(np.argmax(scores)))
    best = json.loads((out / "best" / "evaluation.json").read_text())
    assert best["timesteps"] == result.best_timesteps
    # the two newest complete checkpoints are kept
    assert [p.name for p in complete_checkpoints(out)] == ["step-000000040", "step-000000060"]
    assert (out / "logs" / "run-000000000" / "progress.csv").is_file()


def test_the_best_agent_runs_as_a_scheduler_with_its_settings(tmp_path):
    out = tmp_path / "run"
    train_agent(config(out, steps=40))
    trained = load_trained_agent(out)
    assert trained.path == out / "best" / "agent.zip"
    scheduler = QLSScheduler(out)
    assert scheduler.steps_per_action == 2
    assert scheduler.probe_config == trained.probe
    from conftest import tiny_synthetic

    result = tiny_synthetic().make_trainer(7).run(scheduler)
    # the evaluation of the saved best agent is reproduced exactly by running it again
    best = json.loads((out / "best" / "evaluation.json").read_text())
    assert result.best_validation.average_score == pytest.approx(best["validation_average"])
    # how the agent was trained is noted with every run, and stored by a sweep
    notes = result.scheduler_notes
    assert notes["training_benchmark"] == (
        "synthetic (budget=640, hidden_sizes=[16], train_size=200, validation_size=60)"
    )
    assert notes["training_steps"] == str(best["timesteps"])
    assert re.fullmatch(r"\d+\.\d\d CPU hours, \d+\.\d\d wall hours", notes["training_time"])
    assert result_series(result)["scheduler_notes"] == notes


def test_an_interrupted_run_resumes_where_its_checkpoint_left_off(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(out, steps=80), callbacks=[InterruptAt(50)])
    # Ctrl-C writes a checkpoint of the step it interrupted
    assert complete_checkpoints(out)[-1].name == "step-000000050"
    interrupted = load_trained_agent(out, which="latest").agent
    horizon = interrupted.temperature_horizon
    assert horizon == int(0.8 * 80)

    result = train_agent(config(out, steps=80), resume=True)
    agent = result.agent
    assert result.timesteps == agent.num_timesteps == 80
    assert int(agent.action_counts.sum()) == 80
    # 49 transitions restored, the interrupted step 50 stored on resume, 30 new ones
    assert agent.replay_buffer.size() == 80
    assert agent.temperature_horizon == horizon  # the schedule continues, it does not restart
    assert agent.temperature == pytest.approx(agent.temperature_final)
    assert [int(r["timesteps"]) for r in read_evaluations(out)] == [20, 40, 60, 80]
    assert (out / "logs" / "run-000000050" / "progress.csv").is_file()


def read_cost(folder):
    return json.loads((folder / "cost.json").read_text())


def test_a_run_counts_its_cpu_and_wall_time_over_resumes(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(out, steps=80), callbacks=[InterruptAt(50)])
    at_50 = read_cost(complete_checkpoints(out)[-1])
    assert (at_50["timesteps"], at_50["complete"]) == (50, True)
    assert at_50["cpu_seconds"] > 0 and at_50["wall_seconds"] > 0
    assert read_cost(out) == at_50
    result = train_agent(config(out, steps=80), resume=True)
    final = read_cost(out)
    assert final == result.cost
    assert (final["timesteps"], final["complete"]) == (80, True)
    # the resumed process adds its own time to the checkpoint's
    assert final["cpu_seconds"] > at_50["cpu_seconds"]
    assert final["wall_seconds"] > at_50["wall_seconds"]
    # a checkpoint written before times were kept: counted from the resume on, and said so
    (complete_checkpoints(out)[-1] / "cost.json").unlink()
    resumed = train_agent(config(out, steps=100), resume=True)
    assert (resumed.cost["timesteps"], resumed.cost["complete"]) == (100, False)
    assert read_cost(complete_checkpoints(out)[-1])["complete"] is False


def test_a_killed_run_ignores_its_unfinished_checkpoint(tmp_path):
    out = tmp_path / "run"
    train_agent(config(out, steps=40, eval_every=0))
    # a process killed while writing leaves a checkpoint folder without progress.json
    unfinished = out / "checkpoints" / "step-000000050"
    unfinished.mkdir()
    (unfinished / "agent.zip").write_bytes(b"partial")
    assert complete_checkpoints(out)[-1].name == "step-000000040"
    # a settings file written before a setting existed resumes with that setting's default
    settings_file = out / "settings.json"
    stored = json.loads(settings_file.read_text())
    del stored["agent"]["exploration"]
    settings_file.write_text(json.dumps(stored))
    result = train_agent(config(out, steps=60, eval_every=0), resume=True)
    assert result.timesteps == 60
    assert int(result.agent.action_counts.sum()) == 60


def test_runs_refuse_to_overwrite_or_to_resume_with_other_settings(tmp_path):
    out = tmp_path / "run"
    train_agent(config(out, steps=20, eval_every=0))
    with pytest.raises(FileExistsError, match="--resume"):
        train_agent(config(out, steps=20, eval_every=0))
    with pytest.raises(ValueError, match=r"different \['seed'\]"):
        train_agent(config(out, steps=40, eval_every=0, seed=1), resume=True)
    with pytest.raises(FileNotFoundError, match=r"settings\.json"):
        train_agent(config(tmp_path / "empty", steps=20), resume=True)
    # a finished run is checked against the settings it would be taken for
    check_stored_settings(config(out, steps=20, eval_every=0))
    other_reward = AgentSettings(learning_starts=10, steps_per_action=2, reward="loss-decrease")
    with pytest.raises(ValueError, match=r"different \['agent.reward'\] \(stored \['loss-and"):
        check_stored_settings(config(out, steps=20, eval_every=0, agent=other_reward))
    with pytest.raises(ValueError, match="steps must be positive"):
        config(out, steps=0)

"""``train-agent`` on one or many task sets: the task-shared agent by default, the context saved
with every agent (task sets, cost of preparation), exact resume of a run of several task sets,
and old output directories of the flat agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_callbacks import InterruptAt
from test_faults_resume import _assert_same_agent

from mtl_sched.agents import QLSScheduler, TaskSharedDQNPolicy, agent_context
from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.training import (
    AgentSettings,
    TrainAgentConfig,
    complete_checkpoints,
    load_trained_agent,
    train_agent,
)
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli import main

# 320 examples per run: episodes of 10 minibatches of 32, 5 decisions of 2 minibatches
BUDGET, BATCH, STEPS_PER_ACTION = 320, 32, 2
OPTIONS = {"small": True, "budget": BUDGET}
TWO_SETS = "synthetic-harmful,synthetic-prerequisite"


def config(out: Path, steps: int = 40, **overrides: Any) -> TrainAgentConfig:
    agent = {"learning_starts": 10, "steps_per_action": STEPS_PER_ACTION, "batch_size": 8,
             "target_update_interval": 8, **overrides.pop("agent", {})}  # fmt: skip
    values: dict[str, Any] = {
        "out": out,
        "benchmark": TWO_SETS,
        "benchmark_options": OPTIONS,
        "steps": steps,
        "eval_every": 20,
        "eval_seeds": (5,),
        "checkpoint_every": 10,
        "agent": AgentSettings(**agent),
        "progress": False,
    }
    values.update(overrides)
    return TrainAgentConfig(**values)


def hand_count(steps: int, evaluations: int, benchmarks: int) -> int:
    """Examples of ``steps`` decisions of full minibatches plus whole evaluation runs."""
    return steps * STEPS_PER_ACTION * BATCH + evaluations * benchmarks * BUDGET


def test_default_settings_train_the_task_shared_agent(tmp_path: Path) -> None:
    assert (AgentSettings().observation, AgentSettings().policy) == ("task-features", "task-shared")
    out = tmp_path / "run"
    result = train_agent(config(out, steps=20, benchmark="synthetic-prerequisite", eval_every=0))
    assert isinstance(result.agent.policy, TaskSharedDQNPolicy)
    context = agent_context(BoltzmannGumbelDQN.load(out / "agent.zip", device="cpu"))
    assert context is not None and context.observation == "task-features"
    assert context.describe() == "base,composite" and context.training_steps == 20
    assert context.reward == "loss-and-accuracy" and context.task_sets[0].steps_per_action == 2


def test_an_agent_of_two_task_sets_schedules_unseen_and_permuted_task_sets(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_agent(config(out))
    context = agent_context(load_trained_agent(out, which="final").agent)
    assert context is not None and context.max_tasks == 4
    assert context.describe() == "easy,medium,hard,noise | base,composite"
    rows = list(csv_rows(out))
    assert rows[0][-2:] == ["benchmark_synthetic-harmful", "benchmark_synthetic-prerequisite"]
    for row in rows[1:]:  # the mean is that of the two benchmarks (one seed)
        assert float(row[1]) == pytest.approx((float(row[3]) + float(row[4])) / 2, abs=1e-5)

    harmful = get_benchmark("synthetic-harmful", **OPTIONS)
    for tasks in (["easy", "hard", "noise"], ["noise", "medium", "hard", "easy"]):
        scheduler = QLSScheduler(out / "agent.zip")
        benchmark = harmful.with_tasks(tasks)
        scheduler.prepare(benchmark)
        result = benchmark.make_trainer(0).run(scheduler)
        assert result.task_names == tuple(tasks) and result.examples_seen == BUDGET
        assert result.schedule.shape[1] == len(tasks)
        assert scheduler.preparation_examples == context.preparation_examples > 0


def csv_rows(out: Path) -> list[list[str]]:
    return [line.split(",") for line in (out / "evaluations.csv").read_text().splitlines()]


def test_a_flat_agent_is_refused_on_permuted_tasks(tmp_path: Path) -> None:
    out = tmp_path / "run"
    flat = {"observation": "histogram", "policy": "flat"}
    train_agent(config(out, steps=20, benchmark="synthetic-prerequisite", agent=flat))
    prerequisite = get_benchmark("synthetic-prerequisite", **OPTIONS)
    scheduler = QLSScheduler(out)
    with pytest.raises(ValueError, match=r"base,composite .*composite,base"):
        prerequisite.with_tasks(["composite", "base"]).make_trainer(0).run(scheduler)


@pytest.mark.parametrize("n_envs", [1, 2])
def test_a_resumed_run_of_two_task_sets_is_the_uninterrupted_one(
    tmp_path: Path, n_envs: int
) -> None:
    agent = {"n_envs": n_envs, "vec_env": "dummy"}
    whole = train_agent(config(tmp_path / "whole", agent=agent)).agent
    # 2 evaluations (steps 20 and 40) on 2 benchmarks; every episode ends with a full minibatch
    assert agent_context(whole).preparation_examples == hand_count(40, 2, 2)

    resumed_out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_agent(config(resumed_out, agent=agent), callbacks=[InterruptAt(26)])
    # in the middle of an episode (and, with 2 environments, of each of them)
    checkpoint = complete_checkpoints(resumed_out)[-1]
    assert checkpoint.name == "step-000000026"
    interrupted = BoltzmannGumbelDQN.load(checkpoint / "agent.zip", device="cpu")
    assert agent_context(interrupted).preparation_examples == hand_count(26, 1, 2)
    progress = json.loads((checkpoint / "progress.json").read_text())
    assert progress["preparation_examples"] == hand_count(26, 1, 2)
    # the best agent (step 20) costs the whole training so far: the run that chose it
    best = agent_context(load_trained_agent(resumed_out).agent)
    assert best.training_steps == 20 and best.preparation_examples == hand_count(26, 1, 2)

    resumed = train_agent(config(resumed_out, agent=agent), resume=True).agent
    _assert_same_agent(whole, resumed)
    assert agent_context(resumed) == agent_context(whole)
    assert (resumed_out / "evaluations.csv").read_text() == (
        tmp_path / "whole" / "evaluations.csv"
    ).read_text()
    buffers = whole.replay_buffer, resumed.replay_buffer
    assert buffers[0].size() == buffers[1].size() > 0
    for name in ("observations", "next_observations", "actions", "rewards", "dones"):
        assert np.array_equal(getattr(buffers[0], name), getattr(buffers[1], name)), name


def test_several_task_sets_are_refused_where_they_cannot_train(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'policy' 'flat'.*base,composite"):
        train_agent(config(tmp_path / "a", agent={"observation": "histogram", "policy": "flat"}))
    with pytest.raises(ValueError, match="'vec_env' 'batched'"):
        train_agent(config(tmp_path / "b", agent={"n_envs": 2, "vec_env": "batched"}))
    with pytest.raises(ValueError, match=r"'policy' 'task-shared'.*'task-features'"):
        AgentSettings(observation="histogram")
    with pytest.raises(ValueError, match="task_subsets"):
        config(tmp_path / "c", task_subsets=(3, 2))
    with pytest.raises(ValueError, match="benchmark: unknown"):
        config(tmp_path / "d", benchmark="synthetic,nonesuch")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_old_settings_file_loads_and_resumes_as_the_flat_agent(tmp_path: Path) -> None:
    out = tmp_path / "old"
    flat = {"observation": "histogram", "policy": "flat"}
    train_agent(config(out, steps=20, benchmark="synthetic-prerequisite", agent=flat))
    settings_file = out / "settings.json"
    stored = json.loads(settings_file.read_text())
    for key in ("observation", "policy", "max_tasks"):
        del stored["agent"][key]
    del stored["task_subsets"]
    settings_file.write_text(json.dumps(stored))

    settings = AgentSettings.from_dict(stored["agent"])
    assert (settings.observation, settings.policy) == ("histogram", "flat")
    assert load_trained_agent(out).settings == settings
    argv = ["train-agent", "--out", str(out), "--steps", "30", "--resume", "--no-progress"]
    assert main([*argv, "--eval-every", "20"]) == 0
    assert agent_context(load_trained_agent(out, which="final").agent).training_steps == 30


def test_the_cli_trains_on_task_subsets_and_refuses_bad_values(tmp_path: Path, capsys) -> None:
    out = tmp_path / "subsets"
    argv = ["train-agent", "--out", str(out), "--steps", "10", "--no-progress", "--small"]
    argv += ["--option", f"budget={BUDGET}", "--eval-every", "10", "--eval-seeds", "5"]
    argv += ["--setting", "learning_starts=5", "--option", "decision_steps=1"]
    assert main([*argv, "--benchmark", "synthetic-prerequisite", "--task-subsets", "1-2"]) == 0
    context = agent_context(load_trained_agent(out, which="final").agent)
    assert context.describe() == "base | composite | base,composite"
    # the evaluation runs the full task set only: 10 decisions of 1 minibatch, one run
    assert context.preparation_examples == 10 * BATCH + BUDGET
    assert json.loads((out / "settings.json").read_text())["task_subsets"] == [1, 2]
    for flag, value in [("--task-subsets", "3-"), ("--task-subsets", "4-2"), ("--benchmark", "x")]:
        with pytest.raises(SystemExit, match=flag):
            main([*argv, flag, value, "--out", str(tmp_path / "bad")])


def test_a_scoped_option_sets_one_benchmark_of_several(tmp_path: Path) -> None:
    options = {**OPTIONS, "synthetic-prerequisite.budget": 2 * BUDGET}
    built = config(tmp_path / "scoped", benchmark_options=options).benchmarks()
    assert [b.trainer_config.budget for b in built] == [BUDGET, 2 * BUDGET]
    with pytest.raises(ValueError, match=r"'synthetic\.budget'.*synthetic-harmful"):
        config(tmp_path / "bad", benchmark_options={"synthetic.budget": BUDGET})


def test_the_cli_takes_scoped_options_and_the_agent_keeps_them(tmp_path: Path, capsys) -> None:
    out = tmp_path / "scoped"
    argv = ["train-agent", "--out", str(out), "--steps", "10", "--no-progress", "--small"]
    argv += ["--benchmark", TWO_SETS, "--option", f"budget={BUDGET}", "--eval-every", "0"]
    argv += ["--option", f"synthetic-harmful.budget={2 * BUDGET}", "--setting", "learning_starts=5"]
    assert main(argv) == 0
    stored = json.loads((out / "settings.json").read_text())["benchmark_options"]
    assert stored["budget"] == BUDGET and stored["synthetic-harmful.budget"] == 2 * BUDGET
    # the saved agent schedules with its first benchmark's own settings
    assert load_trained_agent(out, which="final").benchmark == TWO_SETS
    bad = [*argv, "--out", str(tmp_path / "bad")]
    with pytest.raises(SystemExit, match=r"'synthetic-harmful': .*'budget' expects"):
        main([*bad, "--option", "synthetic-harmful.budget=many"])
    with pytest.raises(SystemExit, match=r"'fdu-mtl\.budget'"):
        main([*bad, "--option", "fdu-mtl.budget=12800"])
    assert not (tmp_path / "bad").exists()

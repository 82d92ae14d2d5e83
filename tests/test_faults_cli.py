"""Faults of the command line: nothing lost, nothing silently wrong.

Agent training keeps the logs of every start, refuses to mix eval seeds, checkpoints on SIGTERM
and checks every setting before it writes anything; bad arguments and unusable files end in one
clear line rather than a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents.training import (
    AgentSettings,
    TrainAgentConfig,
    complete_checkpoints,
    train_agent,
)
from mtl_sched.cli import main
from mtl_sched.results import ResultsStore, ResultsStoreError, TrialKey, config_hash
from mtl_sched.sweeps import plan_trials

TINY = ["--option", "budget=320", "--option", "train_size=100", "--option", "hidden_sizes=(8,)"]
TRAIN = ["train-agent", "--no-progress", "--setting", "learning_starts=5"]
TRAIN += ["--setting", "steps_per_action=2", "--checkpoint-every", "10"]
COMPARE = ["compare", "--benchmark", "synthetic", "--small", "--budget", "64", "--no-progress"]
COMPARE += ["--schedulers", "uniform"]


def exit_message(argv: list[str]) -> str:
    """The one-line message ``main(argv)`` exits with (status 1)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    message = exited.value.code
    assert isinstance(message, str), f"expected an error message, got exit status {message!r}"
    assert "\n" not in message.strip()
    return message


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The argparse error ``main(argv)`` exits with (status 2)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


class CrashAt(BaseCallback):
    """Raise ``RuntimeError`` (a crash, no checkpoint) once ``at`` steps were taken."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            raise RuntimeError("crash")
        return True


# item 4: train-agent


def test_a_resume_keeps_the_log_file_of_an_earlier_start(tmp_path: Path) -> None:
    out = tmp_path / "run"
    settings = AgentSettings(learning_starts=5, steps_per_action=2)
    options = {"budget": 320, "train_size": 100, "hidden_sizes": [8]}
    config = TrainAgentConfig(
        out=out, benchmark_options=options, steps=12, agent=settings, eval_every=0,
        checkpoint_every=100, progress=False,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="crash"):
        train_agent(config, callbacks=[CrashAt(6)])  # dies before its first checkpoint
    assert not complete_checkpoints(out)
    first = out / "logs" / "run-000000000" / "progress.csv"
    with first.open("a") as handle:
        handle.write("rows of the first start\n")
    before = first.read_text()
    assert train_agent(config, resume=True).timesteps == 12  # starts at 0 timesteps again
    assert first.read_text() == before
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["run-000000000", "run-000000000-2"]


def test_a_resume_with_other_eval_seeds_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = [*TRAIN, "--out", str(out), "--eval-every", "10"]
    assert main([*argv, "--steps", "10", "--eval-seeds", "3", *TINY]) == 0
    evaluations = (out / "evaluations.csv").read_text()
    resume = [*argv, "--steps", "20", "--resume"]
    message = exit_message([*resume, "--eval-seeds", "4,5"])
    assert "eval seeds [3]" in message and "--eval-seeds 3" in message
    # a directory written before settings.json named its eval seeds: read from evaluations.csv
    settings = json.loads((out / "settings.json").read_text())
    del settings["eval_seeds"]
    (out / "settings.json").write_text(json.dumps(settings))
    assert "eval seeds [3]" in exit_message([*resume, "--eval-seeds", "4"])
    assert (out / "evaluations.csv").read_text() == evaluations
    # without --eval-seeds, a resume evaluates on the run's own seeds
    capsys.readouterr()
    assert main(resume) == 0
    rows = (out / "evaluations.csv").read_text().splitlines()
    assert rows[0] == "timesteps,validation_average,seed_3" and len(rows) == 3


@pytest.mark.serial
def test_sigterm_writes_a_checkpoint_and_exits(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train-agent", "--benchmark", "synthetic", "--small", "--out", str(out)]
    argv += ["--steps", "1000000", "--eval-every", "0", "--checkpoint-every", "1000000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mtl_sched", *argv, "--no-progress"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # the logs folder appears once training is about to start (the handler is set by then)
        while not (out / "logs").is_dir() and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "a checkpoint was written" in err and "--resume" in err
    (checkpoint,) = complete_checkpoints(out)
    assert (checkpoint / "agent.zip").is_file()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--setting", "gamma=abc"], "'gamma' expects float; got 'abc'"),
        (["--setting", "reward=nope"], "'reward' expects one of"),
        (["--setting", "batch_size=0"], "'batch_size' must be at least 1"),
        (["--option", "budget=abc"], "'budget' expects int"),
        (["--option", "nope=1"], "nope"),
    ],
)
def test_bad_settings_leave_no_trace_in_the_output_directory(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    out = tmp_path / "run"
    argv = [*TRAIN, "--out", str(out), "--steps", "10", "--eval-every", "0", "--small"]
    assert named in exit_message([*argv, *flags])
    assert not out.exists()
    assert main(argv) == 0  # the corrected command is not refused


def test_bad_eval_seeds_are_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = [*TRAIN, "--out", str(out), "--steps", "10", "--small"]
    assert "non-negative" in usage_error([*argv, "--eval-seeds=-1"], capsys)
    assert "given twice" in usage_error([*argv, "--eval-seeds", "3,3"], capsys)
    assert not out.exists()
    with pytest.raises(ValueError, match="non-negative"):
        TrainAgentConfig(out=out, eval_seeds=(-1,))
    with pytest.raises(ValueError, match="differ"):
        TrainAgentConfig(out=out, eval_seeds=(2, 2))


def test_agent_settings_are_checked_against_their_types() -> None:
    with pytest.raises(TypeError, match="'gamma' expects float; got 'abc'"):
        AgentSettings(gamma="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'use_penalty' expects bool"):
        AgentSettings.from_dict({"use_penalty": 1})
    with pytest.raises(TypeError, match="'net_arch'"):
        AgentSettings.from_dict({"net_arch": "wide"})
    settings = AgentSettings.from_dict({"gamma": 1, "net_arch": [8, 4], "steps_per_action": None})
    assert settings.gamma == 1.0 and isinstance(settings.gamma, float)
    assert settings.net_arch == (8, 4)


# item 11: clear errors


def test_resume_of_a_missing_or_corrupt_run_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    argv = [*TRAIN, "--steps", "10", "--resume", "--out"]
    assert f"{missing} does not exist" in exit_message([*argv, str(missing)])
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "settings.json").write_text("{bad")
    assert "settings.json: not valid JSON" in exit_message([*argv, str(corrupt)])
    (corrupt / "settings.json").write_text("[1, 2]")
    assert "not the settings of an agent training run" in exit_message([*argv, str(corrupt)])
    (corrupt / "settings.json").write_text('{"agent": {"gamma": "abc"}}')
    assert "'gamma' expects float" in exit_message([*argv, str(corrupt)])


def test_negative_and_repeated_seeds_are_refused(tmp_path: Path, capsys) -> None:
    db = ["--db", str(tmp_path / "r.sqlite")]
    assert "seeds must be non-negative; got -1" in usage_error(
        [*COMPARE, *db, "--seeds=-1"], capsys
    )
    assert "seed 0 is given twice" in usage_error([*COMPARE, *db, "--seeds", "0,0"], capsys)
    assert not (tmp_path / "r.sqlite").exists()
    with pytest.raises(ValueError, match="names a seed twice"):
        plan_trials("synthetic", ["uniform"], [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        plan_trials("synthetic", ["uniform"], [-1])


def test_unwritable_output_paths_are_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "run"
    argv = [*TRAIN, "--out", str(out), "--steps", "10", "--small", "--eval-every", "0"]
    assert f"cannot create the output directory {out}" in exit_message(argv)
    db = blocker / "r.sqlite"
    assert str(db) in exit_message([*COMPARE, "--db", str(db), "--seeds", "0"])


def test_agent_is_refused_for_schedulers_other_than_qls(tmp_path: Path) -> None:
    agent = tmp_path / "agent.zip"
    agent.write_bytes(b"")
    run = ["run", "--benchmark", "synthetic", "--small", "--scheduler", "uniform"]
    assert "--agent is read by the qls scheduler only" in exit_message(
        [*run, "--agent", str(agent)]
    )
    db = ["--db", str(tmp_path / "r.sqlite"), "--seeds", "0", "--agent", str(agent)]
    assert "--agent is read by the qls scheduler only" in exit_message([*COMPARE, *db])
    assert not (tmp_path / "r.sqlite").exists()


def _valid_store(path: Path) -> None:
    with ResultsStore(path) as store:
        for seed in range(200):
            config = {"benchmark": "synthetic", "seed": seed, "padding": "x" * 400}
            key = TrialKey("synthetic", config_hash(config), "uniform", seed)
            store.write_trial(key, [], config=config, wall_time=1.0)
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode=DELETE")  # everything in the main file


def _unusable_store(kind: str, path: Path) -> Path:
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        _valid_store(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "another schema":
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE other (x)")
    elif kind == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["random bytes", "truncated", "another schema", "directory"])
@pytest.mark.parametrize("command", ["compare", "report"])
def test_unusable_results_stores_are_named(tmp_path: Path, kind: str, command: str) -> None:
    db = _unusable_store(kind, tmp_path / "results.sqlite")
    before = sorted(p.name for p in tmp_path.iterdir())
    if command == "compare":
        argv = [*COMPARE, "--db", str(db), "--seeds", "0"]
    else:
        argv = ["report", "--db", str(db), "--benchmark", "synthetic"]
    message = exit_message(argv)
    assert message.startswith(f"mtl-sched {command}: ") and str(db) in message
    if kind == "directory":
        assert "is a directory" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal or -shm files


def test_a_foreign_database_is_left_as_it_was(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE other (x)")
        raw.execute("INSERT INTO other VALUES (1)")
    before = foreign.read_bytes()
    with pytest.raises(ResultsStoreError, match=r"foreign\.sqlite"):
        ResultsStore(foreign)
    assert foreign.read_bytes() == before
    with sqlite3.connect(foreign) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

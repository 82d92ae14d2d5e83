"""A user's own model and tasks through ``--import`` / ``$MTL_SCHED_IMPORT``.

The plugin module is written into ``tmp_path``: a two-layer network of its own implementing the
`MTLModel` protocol over two small synthetic tasks, registered as the benchmark ``user-tiny``.
The command-line test runs ``mtl-sched`` in fresh processes, where nothing but the plugin
mechanism can make that name known, including the spawned workers of ``compare --workers 2``.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_sched import benchmarks, plugins, registry
from mtl_sched.benchmarks import benchmark_names, get_benchmark
from mtl_sched.models.base import MTLModel
from mtl_sched.plugins import IMPORT_ENV, export_plugins, import_plugins
from mtl_sched.registry import make_scheduler, scheduler_names

USER_TASKS = """
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_sched.benchmarks import Benchmark, register_benchmark
from mtl_sched.data.synthetic import SyntheticTaskSpec, make_synthetic_tasks
from mtl_sched.models.base import Batch, TaskModules, TaskOutput
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import TrainerConfig

INPUT_DIM = 6
# every import appends a line: the tests count how often the module was imported
with open(Path(__file__).with_suffix(".imports"), "a") as log:
    log.write("imported\\n")


class TinyNet(nn.Module):
    def __init__(self, task_classes: Mapping[str, int]) -> None:
        super().__init__()
        self.task_names = tuple(task_classes)
        self.shared = nn.Sequential(nn.Linear(INPUT_DIM, 8), nn.Tanh())
        self.heads = TaskModules({t: nn.Linear(8, c) for t, c in task_classes.items()})

    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        x = torch.as_tensor(np.asarray(rows["x"], dtype=np.float32))
        return {"x": x, "label": torch.as_tensor(np.asarray(rows["label"], dtype=np.int64))}

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        logits = self.heads[task](self.shared(batch["x"]))
        return TaskOutput(logits=logits, targets=batch["label"])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.shared.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()


def user_tiny(budget: int = 96) -> Benchmark:
    sizes = {"train_size": 64, "validation_size": 24, "test_size": 24}
    specs = (
        SyntheticTaskSpec("clean", num_classes=2, difficulty=0.1, **sizes),
        SyntheticTaskSpec("noisy", num_classes=3, harmful=True, **sizes),
    )

    def build_model(tasks: Sequence) -> TinyNet:
        return TinyNet({t.name: t.num_classes for t in tasks})

    return Benchmark(
        name="user-tiny",
        description="two tiny tasks under a network of the user's own",
        build_tasks=lambda: make_synthetic_tasks(specs, INPUT_DIM, 4, seed=0),
        build_model=build_model,
        trainer_config=TrainerConfig(
            budget=budget, batch_size=16, eval_every=48, probe=ProbeConfig(bins=4)
        ),
        config={"input_dim": INPUT_DIM},
    )


register_benchmark("user-tiny", user_tiny)
"""

USER_SCHEDULERS = """
from mtl_sched.baselines.uniform import UniformScheduler
from mtl_sched.registry import register_scheduler


@register_scheduler
class EvenScheduler(UniformScheduler):
    name = "user-even"
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` holding the plugin modules, importable, with the registries restored after."""
    (tmp_path / "user_tasks.py").write_text(USER_TASKS)
    (tmp_path / "user_schedulers.py").write_text(USER_SCHEDULERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(IMPORT_ENV, raising=False)
    monkeypatch.setattr(plugins, "_IMPORTED", set())
    monkeypatch.setattr(plugins, "_last_env_value", None)
    monkeypatch.setattr(benchmarks, "_BENCHMARKS", dict(benchmarks._BENCHMARKS))
    scheduler_names()  # the built-in ones, registered for good before the copy
    monkeypatch.setattr(registry, "_SCHEDULERS", dict(registry._SCHEDULERS))
    yield tmp_path
    for module in ("user_tasks", "user_schedulers"):
        sys.modules.pop(module, None)


def _import_count(plugin_dir: Path) -> int:
    return (plugin_dir / "user_tasks.imports").read_text().count("imported")


def test_lookups_import_the_modules_of_the_variable_once(plugin_dir, monkeypatch):
    assert "user-tiny" not in benchmark_names()
    monkeypatch.setenv(IMPORT_ENV, " user_tasks , user_schedulers ")
    assert "user-tiny" in benchmark_names()
    bench = get_benchmark("user-tiny", budget=32)
    assert bench.trainer_config.budget == 32 and bench.task_names == ("clean", "noisy")
    model = bench.build_model(bench.tasks)
    assert isinstance(model, MTLModel)
    assert make_scheduler("user-even").name == "user-even"
    assert "user-even" in scheduler_names()
    for _ in range(3):
        import_plugins()
        benchmark_names()
    assert _import_count(plugin_dir) == 1


def test_a_module_that_cannot_be_imported_names_itself_and_the_source(plugin_dir, monkeypatch):
    monkeypatch.setenv(IMPORT_ENV, "user_tasks,no_such_plugin")
    with pytest.raises(ValueError, match=r"\$MTL_SCHED_IMPORT.*'no_such_plugin'"):
        benchmark_names()
    # the failure is not remembered as success: every lookup reports it
    with pytest.raises(ValueError, match="no_such_plugin"):
        scheduler_names()
    with pytest.raises(ValueError, match=r"--import.*'broken'"):
        (plugin_dir / "broken.py").write_text("raise RuntimeError('half-written')\n")
        export_plugins(["broken"])
    assert _import_count(plugin_dir) == 1


def test_export_adds_modules_to_the_variable_once(plugin_dir, monkeypatch):
    monkeypatch.setenv(IMPORT_ENV, "user_schedulers")
    export_plugins(["user_tasks", "user_schedulers", "user_tasks"])
    assert os.environ[IMPORT_ENV] == "user_schedulers,user_tasks"
    assert "user-tiny" in benchmark_names() and "user-even" in scheduler_names()
    export_plugins([])
    assert os.environ[IMPORT_ENV] == "user_schedulers,user_tasks"


def _mtl_sched(
    plugin_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mtl-sched ARGS`` in a fresh process that finds the plugin on ``PYTHONPATH`` only, run
    in ``plugin_dir`` so that what a command writes by default (TensorBoard events under
    ``runs/``) stays out of the repository."""
    environment = {**os.environ, "PYTHONPATH": str(plugin_dir), "OMP_NUM_THREADS": "1"}
    environment.pop(IMPORT_ENV, None)
    environment.update(env or {})
    command = [sys.executable, "-c", "from mtl_sched.cli import main; raise SystemExit(main())"]
    return subprocess.run(
        [*command, *args],
        env=environment,
        cwd=plugin_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _succeeds(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _stored_scores(db: Path) -> dict[tuple, float]:
    """(scheduler, seed, split, task, metric) -> value of every trial in a results store."""
    query = (
        "SELECT t.scheduler, t.seed, m.split, m.task, m.metric, m.value "
        "FROM trials t JOIN metrics m ON m.trial_id = t.trial_id"
    )
    with sqlite3.connect(db) as connection:
        return {tuple(row[:5]): row[5] for row in connection.execute(query)}


@pytest.fixture(scope="module")
def trained_agent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The plugin's directory and a 12-step agent trained there by ``train-agent`` on it."""
    plugin_dir = tmp_path_factory.mktemp("plugin")
    (plugin_dir / "user_tasks.py").write_text(USER_TASKS)
    out = plugin_dir / "agent"
    first = _mtl_sched(
        plugin_dir, *IMPORTS, *TRAIN, str(out), "--benchmark", "user-tiny", "--steps", "12",
        "--seed", "0", "--eval-seeds", "3", "--setting", "learning_starts=4",
    )  # fmt: skip
    assert "trained 12 steps" in _succeeds(first)
    return plugin_dir, out


IMPORTS = ("--import", "user_tasks")
TRAIN = ("train-agent", "--eval-every", "6", "--checkpoint-every", "6", "--no-progress", "--out")


def test_train_agent_resumes_a_plugged_in_run(trained_agent, tmp_path):
    plugin_dir, trained = trained_agent
    out = tmp_path / "agent"
    shutil.copytree(trained, out)
    resumed = _mtl_sched(plugin_dir, *IMPORTS, *TRAIN, str(out), "--steps", "24", "--resume")
    assert "trained 24 steps" in _succeeds(resumed)
    with open(out / "evaluations.csv") as rows:
        assert [int(row["timesteps"]) for row in csv.DictReader(rows)] == [6, 12, 18, 24]
    assert (out / "agent.zip").is_file()


def test_run_finds_the_benchmark_through_the_plugin_only(trained_agent):
    plugin_dir, out = trained_agent
    run = ("run", "--benchmark", "user-tiny", "--scheduler", "qls", "--agent", str(out))
    run += ("--no-tensorboard",)
    printed = _succeeds(_mtl_sched(plugin_dir, *IMPORTS, *run))
    assert "clean:" in printed and "noisy:" in printed
    unknown = _mtl_sched(plugin_dir, *run)
    assert unknown.returncode != 0 and "unknown benchmark 'user-tiny'" in unknown.stderr


@pytest.mark.serial
@pytest.mark.parametrize("named_by", ["option", "variable"])
def test_compare_workers_see_the_plugged_in_benchmark(trained_agent, tmp_path, named_by):
    plugin_dir, out = trained_agent
    compare = ("compare", "--benchmark", "user-tiny", "--schedulers", "uniform,qls")
    compare += ("--agent", str(out), "--seeds", "0,1", "--workers", "2", "--no-progress")
    compare += ("--no-tensorboard",)
    compare += ("--db", str(tmp_path / "results.sqlite"))
    if named_by == "option":
        result = _mtl_sched(plugin_dir, *IMPORTS, *compare)
    else:
        result = _mtl_sched(plugin_dir, *compare, env={IMPORT_ENV: "user_tasks"})
    assert "4 run now, 0 failed" in _succeeds(result)
    scores = _stored_scores(tmp_path / "results.sqlite")
    assert {key[:2] for key in scores} == {(s, seed) for s in ("uniform", "qls") for seed in (0, 1)}
    test_scores = [value for key, value in scores.items() if key[2] == "test" and key[4] == "score"]
    assert len(test_scores) == 4 * 3 and all(0 <= score <= 1 for score in test_scores)


@pytest.mark.parametrize("named_by", ["option", "variable"])
def test_a_bad_module_is_a_one_line_error(tmp_path, named_by):
    if named_by == "option":
        failed = _mtl_sched(tmp_path, "--import", "no_such_plugin", "list", "benchmarks")
    else:
        failed = _mtl_sched(tmp_path, "list", "benchmarks", env={IMPORT_ENV: "no_such_plugin"})
    assert failed.returncode != 0
    assert failed.stderr.strip().count("\n") == 0 and "'no_such_plugin'" in failed.stderr

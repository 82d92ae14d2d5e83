"""Scheduler-comparison sweeps: what a trial stores, resuming, killed sweeps, and backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli import main
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.registry import make_scheduler, scheduler_class
from mtl_sched.results import ResultsStore
from mtl_sched.scheduling import Scheduler, Step, TrainState
from mtl_sched.sweeps import plan_trials, run_sweep, trial_config, trial_key
from mtl_sched.sweeps.spec import result_rows, result_series

SMALL = {"small": True}
TASKS = get_benchmark("synthetic", small=True).task_names
# rows of a plain trial: score and loss per task and average, on two splits; examples per
# task; five run numbers
ROWS_PER_TRIAL = 2 * 2 * (len(TASKS) + 1) + len(TASKS) + 5
TIMES = ("wall_time", "cpu_time")


def stored_rows(store: ResultsStore) -> dict[tuple, list[tuple]]:
    by_trial: dict[tuple, list[tuple]] = {}
    for row in store.rows():
        key = (row.key.scheduler, row.key.seed)
        by_trial.setdefault(key, []).append((row.split, row.task, row.metric, row.value))
    return by_trial


def test_plan_is_seed_major_and_checks_names() -> None:
    specs = plan_trials("synthetic", ["uniform", "greedy"], [0, 1], benchmark_options=SMALL)
    assert [(s.seed, s.scheduler) for s in specs] == [
        (0, "uniform"), (0, "greedy"), (1, "uniform"), (1, "greedy")
    ]  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        plan_trials("synthetic", ["uniform", "uniform"], [0])
    with pytest.raises(ValueError, match="random"):
        plan_trials("synthetic", ["uniform"], [0], scheduler_params={"random": {}})
    loo = plan_trials("synthetic", ["uniform"], [0], left_out=["easy", "hard"])
    assert [s.left_out for s in loo] == ["easy", "hard"]


def test_trial_rows_and_series_describe_the_run() -> None:
    benchmark = get_benchmark("synthetic", small=True)
    result = benchmark.make_trainer(3).run(make_scheduler("greedy"))
    rows = {(r.split, r.task, r.metric): r.value for r in result_rows(result)}
    assert len(rows) == ROWS_PER_TRIAL
    for split, evaluation in (("test", result.test), ("validation", result.best_validation)):
        scores = [rows[(split, name, "score")] for name in TASKS]
        np.testing.assert_allclose(scores, evaluation.scores)
        assert rows[(split, "average", "score")] == pytest.approx(np.mean(scores))
    examples = [rows[("train", name, "examples")] for name in TASKS]
    assert sum(examples) == result.examples_seen == benchmark.trainer_config.budget
    assert rows[("run", "all", "steps")] == result.steps
    assert 0 < rows[("run", "all", "cpu_time")] == result.cpu_time
    series = result_series(result)
    counts = np.array(series["schedule"]["counts"])
    assert counts.shape == (result.steps, len(TASKS))
    assert ((counts > 0).sum(axis=1) == 1).all()  # greedy picks one task per step
    np.testing.assert_array_equal(counts.sum(axis=0), examples)
    curve = series["validation_curve"]
    assert curve["examples"] == [seen for seen, _ in result.validation_history]
    assert max(curve["average"]) == pytest.approx(rows[("validation", "average", "score")])
    assert "probe_histograms" not in series  # greedy reads no probe


class ProbeReadingCycle(Scheduler):
    """Cycles through the tasks and reads the probe every step, as ``qls`` does."""

    name = "probe-reading-cycle"
    requires_probe = True

    @property
    def probe_config(self) -> ProbeConfig:
        return ProbeConfig()

    def plan(self, state: TrainState) -> Step:
        assert state.probe is not None
        return Step.select(state.step % self.num_tasks)


def test_probe_histograms_are_kept_for_probe_readers() -> None:
    benchmark = get_benchmark("synthetic", small=True, budget=32 * 300)
    result = benchmark.make_trainer(0).run(ProbeReadingCycle())
    assert len(result.probe_history) == result.steps == 300
    series = result_series(result)["probe_histograms"]
    assert len(series["examples"]) == 200
    assert series["examples"] == sorted(series["examples"])
    hist = np.array(series["histograms"])
    assert hist.shape[1:] == (len(TASKS), benchmark.trainer_config.probe.bins)
    np.testing.assert_allclose(hist.sum(axis=2), 1.0, atol=1e-6)


def test_second_run_adds_nothing_and_seeds_reproduce(tmp_path: Path) -> None:
    specs = plan_trials("synthetic", ["uniform", "random"], [0, 1], benchmark_options=SMALL)
    first = run_sweep(specs, tmp_path / "a.sqlite", progress=False)
    assert (first.total, first.already_stored, first.written, first.failures) == (4, 0, 4, [])
    again = run_sweep(specs, tmp_path / "a.sqlite", progress=False)
    assert (again.already_stored, again.written) == (4, 0)
    other = run_sweep(specs[:1], tmp_path / "b.sqlite", progress=False)
    assert other.written == 1
    with ResultsStore(tmp_path / "a.sqlite") as a, ResultsStore(tmp_path / "b.sqlite") as b:
        rows_a, rows_b = stored_rows(a), stored_rows(b)
        assert len(a.trials()) == 4
        assert all(len(rows) == ROWS_PER_TRIAL for rows in rows_a.values())
        # same seed, same scheduler, another store: the same numbers (times aside)
        timeless = [r for r in rows_a[("uniform", 0)] if r[2] not in TIMES]
        assert timeless == [r for r in rows_b[("uniform", 0)] if r[2] not in TIMES]
        assert rows_a[("uniform", 0)] != rows_a[("uniform", 1)]
        record = a.trials(scheduler="random")[0]
        assert record.config["comparison"] == a.trials(scheduler="uniform")[0].config["comparison"]
        assert record.examples_seen == record.config["budget"] == 640
        key = trial_key(specs[1], trial_config(specs[1], get_benchmark("synthetic", small=True)))
        assert a.series(key, "schedule")["tasks"] == list(TASKS)


def test_a_scheduler_version_keys_its_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    benchmark = get_benchmark("synthetic", small=True)
    (uniform,) = plan_trials("synthetic", ["uniform"], [0], benchmark_options=SMALL)
    (dtp,) = plan_trials("synthetic", ["dtp"], [0], benchmark_options=SMALL)
    # version 1 is not written, so keys from before versions existed still match
    assert "scheduler_version" not in trial_config(uniform, benchmark)
    assert trial_config(dtp, benchmark)["scheduler_version"] == scheduler_class("dtp").version
    before = trial_key(dtp, trial_config(dtp, benchmark))
    monkeypatch.setattr(scheduler_class("dtp"), "version", scheduler_class("dtp").version + 1)
    after = trial_key(dtp, trial_config(dtp, benchmark))
    assert after != before
    assert after.config_hash != before.config_hash


def test_a_failing_trial_is_reported_and_the_others_stored(tmp_path: Path) -> None:
    specs = plan_trials(
        "synthetic",
        ["uniform", "greedy"],
        [0],
        benchmark_options=SMALL,
        scheduler_params={"greedy": {"no_such_setting": 1}},
    )
    summary = run_sweep(specs, tmp_path / "r.sqlite", progress=False)
    assert summary.written == 1
    assert [label for label, _ in summary.failures] == ["greedy seed 0"]
    assert "no_such_setting" in summary.failures[0][1]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert [r.key.scheduler for r in store.trials()] == ["uniform"]


def _compare_command(db: Path, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "mtl_sched", "compare", "--benchmark", "synthetic",
        "--small", "--schedulers", "uniform,greedy,random", "--seeds", "0,1",
        "--db", str(db), "--workers", str(workers), "--no-progress",
    ]  # fmt: skip


@pytest.mark.serial
def test_sweep_killed_midway_resumes_to_one_row_set_per_trial(tmp_path: Path) -> None:
    """SIGKILL a pool sweep (main process and workers) after its first trial; the rerun (in
    one process) completes it with exactly one row set per trial."""
    db = tmp_path / "killed.sqlite"
    process = subprocess.Popen(
        _compare_command(db, workers=2),
        start_new_session=True,  # its own process group, pool workers included
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored_at_kill = 0
    try:
        while process.poll() is None and stored_at_kill == 0:
            time.sleep(0.05)
            if db.exists():
                with ResultsStore(db) as store:
                    stored_at_kill = len(store.trials())
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert 0 < stored_at_kill < 6, "the sweep should have been killed between trials"
    with ResultsStore(db) as store:
        before = {r.key: r.finished_at for r in store.trials()}
    assert main(_compare_command(db, 1)[3:]) == 0
    with ResultsStore(db) as store:
        records = store.trials()
        assert len(records) == len({r.key for r in records}) == 6
        assert all(before[r.key] == r.finished_at for r in records if r.key in before)
        assert all(len(rows) == ROWS_PER_TRIAL for rows in stored_rows(store).values())


def start_local_ray(cpus: int, attempts: int = 3) -> None:
    """Start a local Ray instance. Ray gives its processes fixed times (30 s for the node) to
    come up, which a loaded machine can miss; a failed start is shut down and tried again."""
    import ray

    for attempt in range(attempts):
        try:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception:
            ray.shutdown()
            if attempt == attempts - 1:
                raise
            time.sleep(5.0 * (attempt + 1))


@pytest.mark.serial
def test_ray_backend_runs_a_tiny_sweep(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "mtl-sched[ray]")')
    specs = plan_trials("synthetic", ["uniform", "greedy"], [0], benchmark_options=SMALL)
    start_local_ray(cpus=2)
    try:
        summary = run_sweep(specs, tmp_path / "ray.sqlite", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert (summary.written, summary.failures) == (2, [])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a Ray worker, so that sums run in the same order
    try:
        local = run_sweep(specs, tmp_path / "local.sqlite", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert local.written == 2
    with (
        ResultsStore(tmp_path / "ray.sqlite") as ray_store,
        ResultsStore(tmp_path / "local.sqlite") as local_store,
    ):
        on_ray, here = stored_rows(ray_store), stored_rows(local_store)
    assert set(on_ray) == set(here) == {("uniform", 0), ("greedy", 0)}
    for key in here:  # one torch thread on Ray, the same numbers as in this process
        test_scores = [r for r in here[key] if r[0] == "test" and r[2] == "score"]
        assert [r for r in on_ray[key] if r[0] == "test" and r[2] == "score"] == test_scores


def test_compare_command_errors_name_the_argument(tmp_path: Path) -> None:
    db = str(tmp_path / "r.sqlite")
    base = ["compare", "--benchmark", "synthetic", "--small", "--db", db]
    cases = [
        (["--schedulers", "uniform", "--left-out", "easy"], "--left-out needs --leave-one-out"),
        (["--schedulers", "uniform", "--leave-one-out", "--left-out", "nope"], "nope"),
        (["--schedulers", "qls"], "--agent"),
        (["--schedulers", "no-such"], "no-such"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit, match=message):
            main(base + extra + ["--no-progress"])


def test_leave_one_out_trial_stores_the_cross_validated_transfer(tmp_path: Path) -> None:
    specs = plan_trials(
        "synthetic", ["uniform"], [0], benchmark_options=SMALL, left_out=["easy"], folds=3
    )
    assert run_sweep(specs, tmp_path / "loo.sqlite", progress=False).written == 1
    with ResultsStore(tmp_path / "loo.sqlite") as store:
        (record,) = store.trials()
        rows = {(r.split, r.task, r.metric): r.value for r in store.rows()}
    assert record.config["kind"] == "leave-one-out" and record.config["left_out"] == "easy"
    folds = [rows[("transfer", "easy", f"fold{i}")] for i in range(3)]
    assert all(0.0 <= score <= 1.0 for score in folds)
    assert rows[("transfer", "easy", "score")] == pytest.approx(np.mean(folds))
    trained = {task for split, task, _ in rows if split == "test"}
    assert trained == {"medium", "hard", "noise", "average"}  # the model never saw "easy"
    assert run_sweep(specs, tmp_path / "loo.sqlite", progress=False).written == 0

"""The results store: round trips, first-writer-wins, atomic writes and concurrent writers."""

from __future__ import annotations

import math
import multiprocessing
import pickle
import queue
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mtl_sched.results import (
    SCHEMA_VERSION,
    MetricRow,
    ResultRow,
    ResultsStore,
    ResultsStoreError,
    TrialKey,
    config_hash,
    git_revision,
    package_version,
)

N_WORKERS, N_SHARED, N_OWN = 4, 20, 5


def make_key(config: dict[str, Any], scheduler: str = "uniform", seed: int = 0) -> TrialKey:
    return TrialKey(str(config.get("benchmark", "synthetic")), config_hash(config), scheduler, seed)


def rows_for(seed: int) -> list[MetricRow]:
    """Metric rows that differ from trial to trial, so that mixed-up rows are noticed."""
    return [
        MetricRow("test", "average", "accuracy", seed + 0.25),
        MetricRow("test", "pos", "accuracy", seed + 0.5),
        MetricRow("validation", "average", "loss", seed / 8),
    ]


def concurrent_writer(path: str, worker: int, barrier: Any, results: Any) -> None:
    """Write the shared keys (each worker in its own order) mixed with this worker's own keys."""
    order = [(seed + 5 * worker) % N_SHARED for seed in range(N_SHARED)]
    if worker % 2:
        order.reverse()
    plan = [(seed, "shared") for seed in order]
    for i in range(N_OWN):
        plan.insert(4 * i + worker, (1000 * (worker + 1) + i, f"own{worker}"))
    written = []
    with ResultsStore(path) as store:
        barrier.wait(timeout=900)
        for seed, scheduler in plan:
            config = {"benchmark": "concurrent", "seed": seed}
            key = make_key(config, scheduler, seed)
            fresh = store.write_trial(key, rows_for(seed), config=config, wall_time=1.0)
            written.append((scheduler, seed, fresh))
    results.put(written)


def test_round_trip_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "results.sqlite"
    config_a = {"benchmark": "synthetic", "lr": 0.001, "tasks": ["a", "b"]}
    config_b = {"benchmark": "fdu-mtl", "lr": 0.01}
    key_a, key_b = make_key(config_a, "uniform", 1), make_key(config_b, "dqn", 2)
    before = datetime.now(timezone.utc) - timedelta(seconds=2)
    with ResultsStore(path) as store:
        assert not store.has_trial(key_a)
        rows_a = rows_for(1)
        assert store.write_trial(
            key_a, iter(rows_a), config=config_a, wall_time=12.5, examples_seen=640
        )
        assert store.write_trial(
            key_b, rows_for(2)[:1], config=config_b, wall_time=3.0, optimizer_steps=7
        )
        assert store.has_trial(key_a) and store.has_trial(key_b)
    assert path.is_file()

    store = pickle.loads(pickle.dumps(ResultsStore(path)))  # reopens the same file
    assert store.finished_keys() == {key_a, key_b}
    assert store.finished_keys("synthetic") == {key_a}
    expected_a = [ResultRow(key_a, config_a, r.split, r.task, r.metric, r.value) for r in rows_a]
    expected_b = [ResultRow(key_b, config_b, "test", "average", "accuracy", 2.25)]
    # Ordered by benchmark first: "fdu-mtl" < "synthetic".
    assert store.rows() == expected_b + expected_a
    assert store.rows(benchmark="synthetic") == expected_a
    assert store.rows(config_hash=key_b.config_hash) == expected_b
    assert store.rows(scheduler="uniform", split="test", task="pos") == [expected_a[1]]
    assert store.rows(metric="accuracy") == [expected_b[0], *expected_a[:2]]
    assert store.rows(metric="loss", benchmark="fdu-mtl") == []

    (record_b, record_a) = store.trials()
    assert record_a.key == key_a and record_a.config == config_a
    assert (record_a.wall_time, record_a.examples_seen, record_a.optimizer_steps) == (12.5, 640, 0)
    assert (record_b.wall_time, record_b.examples_seen, record_b.optimizer_steps) == (3.0, 0, 7)
    assert record_a.package_version == package_version() != ""
    assert record_a.git_revision == git_revision()
    finished = datetime.fromisoformat(record_a.finished_at)
    assert finished.utcoffset() == timedelta(0)
    assert before <= finished <= datetime.now(timezone.utc)
    assert store.trials(scheduler="dqn") == [record_b]
    assert store.trials(benchmark="synthetic", scheduler="dqn") == []
    store.close()


def test_second_write_of_a_key_is_ignored(tmp_path: Path) -> None:
    config = {"benchmark": "synthetic", "budget": 100}
    key = make_key(config)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.write_trial(key, rows_for(1), config=config, wall_time=1.0, examples_seen=5)
        other_rows = [MetricRow("test", "average", "accuracy", 0.0), MetricRow("x", "y", "z", 1)]
        assert not store.write_trial(key, other_rows, config=config, wall_time=9.0)
        assert [(r.split, r.task, r.metric, r.value) for r in store.rows()] == [
            (r.split, r.task, r.metric, r.value) for r in rows_for(1)
        ]
        (record,) = store.trials()
        assert (record.wall_time, record.examples_seen) == (1.0, 5)


def test_failed_writes_leave_nothing(tmp_path: Path) -> None:
    config = {"benchmark": "synthetic"}
    key = make_key(config)

    def breaking_rows() -> Iterator[MetricRow]:
        yield from rows_for(1)
        raise RuntimeError("evaluation crashed")

    bad_value = MetricRow("test", "pos", "f1", "not a number")  # type: ignore[arg-type]
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        with pytest.raises(RuntimeError, match="evaluation crashed"):
            store.write_trial(key, breaking_rows(), config=config, wall_time=1.0)
        with pytest.raises(ValueError, match="'test', 'pos', 'accuracy'"):
            store.write_trial(key, [*rows_for(1), rows_for(2)[1]], config=config, wall_time=1.0)
        # Fails inside the transaction, after the trial row is inserted.
        with pytest.raises(ValueError, match="not a number"):
            store.write_trial(key, [*rows_for(1), bad_value], config=config, wall_time=1.0)
        assert not store.has_trial(key)
    with sqlite3.connect(path) as raw:
        count = "SELECT (SELECT count(*) FROM trials), (SELECT count(*) FROM metrics)"
        assert raw.execute(count).fetchone() == (0, 0)
    with ResultsStore(path) as store:
        assert store.write_trial(key, rows_for(1), config=config, wall_time=1.0)
        assert len(store.rows()) == 3 and store.finished_keys() == {key}


def test_config_hash(tmp_path: Path) -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert re.fullmatch("[0-9a-f]{16}", config_hash({"path": Path("/x")}))
    config = {"benchmark": "synthetic", "lr": 0.1}
    wrong = TrialKey("synthetic", config_hash({"lr": 0.2}), "uniform", 0)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match=f"{wrong.config_hash}.*{config_hash(config)}"):
            store.write_trial(wrong, rows_for(0), config=config, wall_time=1.0)
        assert store.trials() == []


def test_non_finite_values_round_trip(tmp_path: Path) -> None:
    config = {"benchmark": "synthetic"}
    values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "zero": 0.0}
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        rows = [MetricRow("test", "average", name, v) for name, v in values.items()]
        assert store.write_trial(make_key(config), rows, config=config, wall_time=math.nan)
        read = {row.metric: row.value for row in store.rows()}
        assert math.isnan(store.trials()[0].wall_time)
    assert math.isnan(read.pop("nan"))
    assert read == {"inf": math.inf, "-inf": -math.inf, "zero": 0.0}
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM metrics WHERE metric = 'nan'").fetchone() == (None,)


@pytest.mark.serial
def test_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(N_WORKERS), ctx.Queue()
    workers = [
        ctx.Process(target=concurrent_writer, args=(path, w, barrier, results))
        for w in range(N_WORKERS)
    ]
    for process in workers:
        process.start()
    written: list[tuple[str, int, bool]] = []
    deadline = time.monotonic() + 900  # a hang guard only: spawned imports are slow under load
    for _ in workers:
        while True:
            try:
                written += results.get(timeout=1)
                break
            except queue.Empty:
                assert all(p.exitcode in (None, 0) for p in workers), "a writer failed"
                assert time.monotonic() < deadline, "the writers did not finish"
    for process in workers:  # exiting can take long too on a loaded machine
        process.join(timeout=max(1.0, deadline - time.monotonic()))
        assert process.exitcode == 0
    # Each worker tried every shared key; exactly one write of each was fresh.
    shared = [(seed, fresh) for scheduler, seed, fresh in written if scheduler == "shared"]
    assert len(shared) == N_WORKERS * N_SHARED
    assert sorted(seed for seed, fresh in shared if fresh) == list(range(N_SHARED))
    own = [fresh for scheduler, _, fresh in written if scheduler != "shared"]
    assert len(own) == N_WORKERS * N_OWN and all(own)
    with ResultsStore(path) as store:
        records = store.trials()
        assert len(records) == len({r.key for r in records}) == N_SHARED + N_WORKERS * N_OWN
        rows = store.rows()
        assert len(rows) == 3 * len(records)
        for record in records:
            mine = [(r.split, r.task, r.metric, r.value) for r in rows if r.key == record.key]
            assert mine == [(r.split, r.task, r.metric, r.value) for r in rows_for(record.key.seed)]


def test_unusable_files_are_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(ResultsStoreError, match=re.escape(str(garbage))):
        ResultsStore(garbage)
    future = tmp_path / "future.sqlite"
    with sqlite3.connect(future) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ResultsStoreError, match=re.escape(str(future)) + ".*version"):
        ResultsStore(future)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE other (x)")
    with pytest.raises(ResultsStoreError, match=re.escape(str(foreign))):
        ResultsStore(foreign)


def test_series_round_trip_and_upgrade_of_version_1(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "old.sqlite"
    config = {"benchmark": "synthetic", "budget": 64}
    old_key = make_key(config, "uniform", 0)
    with ResultsStore(path) as store:
        store.write_trial(old_key, rows_for(0), config=config, wall_time=1.0)
    with sqlite3.connect(path) as raw:  # turn the file into a version-1 store
        raw.execute("DROP TABLE series")
        raw.execute("PRAGMA user_version = 1")
    curve = {"examples": np.array([16, 32]), "average": [0.5, math.nan], "step": np.int64(3)}
    new_key = make_key(config, "random", 0)
    with ResultsStore(path) as store:
        assert store.series(old_key, "curve") is None
        assert store.write_trial(
            new_key, rows_for(1), config=config, wall_time=1.0, series={"curve": curve}
        )
        got = store.series(new_key, "curve")
        assert got["examples"] == [16, 32] and got["step"] == 3
        assert got["average"][0] == 0.5 and math.isnan(got["average"][1])
        assert store.series(new_key, "other") is None
        assert not store.write_trial(  # a second writer of the key changes nothing
            new_key, rows_for(1), config=config, wall_time=1.0, series={"curve": {"x": 1}}
        )
        assert store.series(new_key, "curve")["examples"] == [16, 32]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_unencodable_series_writes_nothing(tmp_path: Path) -> None:
    config = {"benchmark": "synthetic"}
    key = make_key(config)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(TypeError, match="object"):
            store.write_trial(key, rows_for(0), config=config, wall_time=1.0,
                              series={"bad": object()})  # fmt: skip
        assert not store.has_trial(key) and store.rows() == []

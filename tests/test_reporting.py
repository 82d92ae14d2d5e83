"""The scheduler-comparison report on hand-made sweep trials (no training)."""

import argparse
import csv
import math
import re
import sqlite3

import numpy as np
import pytest

from mtl_sched.cli.report import add_report_parser, run_report
from mtl_sched.reporting import collect, figures
from mtl_sched.reporting.report import make_report, write_report
from mtl_sched.reporting.tables import AVERAGE, comparison_table, higher, to_csv, to_markdown
from mtl_sched.results import MetricRow, ResultsStore, TrialKey, config_hash

BENCH = "toy"
TASKS = ("a", "b")
SEEDS = (0, 1, 2)
PNG = b"\x89PNG\r\n\x1a\n"
# test scores per scheduler and task, one per seed; on task a greedy clearly beats uniform and
# hand-crafted is clearly worse (see test_marks_against_the_baseline for the same numbers)
TEST = {
    "uniform": {"a": (0.80, 0.82, 0.84), "b": (0.60, 0.60, 0.60)},
    "greedy": {"a": (0.90, 0.91, 0.92), "b": (0.61, 0.59, 0.60)},
    "hand-crafted": {"a": (0.70, 0.71, 0.72), "b": (0.60, 0.60, 0.60)},
}
# left-out task -> scheduler -> transfer score per seed (seeds 0 and 1)
TRANSFER = {
    "a": {"uniform": (0.7, 0.8), "greedy": (0.9, 0.9)},
    "b": {"uniform": (0.5, 0.6), "greedy": (0.7, 0.8)},
}


def trial_config(scheduler, comparison, kind="compare", left_out=None, params=None):
    config = {
        "kind": kind,
        "comparison": comparison,
        "benchmark": BENCH,
        "benchmark_fingerprint": "f" * 16,
        "benchmark_options": {},
        "budget": 1000,
        "scheduler": scheduler,
        "scheduler_params": params or {},
        "tasks": list(TASKS),
        "metrics": {task: "accuracy" for task in TASKS},
    }
    if left_out is not None:
        config["left_out"] = left_out
    return config


def write_trial(
    store,
    scheduler,
    seed,
    scores,
    *,
    comparison="c-main",
    kind="compare",
    left_out=None,
    transfer=None,
    series=None,
    prep=0.0,
    params=None,
    cpu=None,
):
    """One trial in the sweep's format; validation scores are the test scores minus 0.1."""
    config = trial_config(scheduler, comparison, kind, left_out, params)
    rows = []
    for split, shift in (("validation", 0.1), ("test", 0.0)):
        for task, value in scores.items():
            rows += [
                MetricRow(split, task, "score", value - shift),
                MetricRow(split, task, "loss", 1 - value),
            ]
        rows.append(MetricRow(split, "average", "score", np.mean(list(scores.values())) - shift))
        rows.append(MetricRow(split, "average", "loss", 0.5))
    rows += [MetricRow("train", task, "examples", 500) for task in scores]
    rows += [
        MetricRow("run", "all", "best_examples_seen", 900),
        MetricRow("run", "all", "preparation_examples", prep),
        MetricRow("run", "all", "steps", 100 + seed),
        MetricRow("run", "all", "wall_time", 10.0 + seed),
    ]
    if cpu is not None:
        rows.append(MetricRow("run", "all", "cpu_time", cpu + seed))
    if transfer is not None:
        rows.append(MetricRow("transfer", left_out, "score", transfer))
        rows += [MetricRow("transfer", left_out, f"fold{i}", transfer) for i in range(5)]
    key = TrialKey(BENCH, config_hash(config), scheduler, seed)
    store.write_trial(
        key,
        rows,
        config=config,
        wall_time=99.0,
        examples_seen=1000,
        optimizer_steps=100 + seed,
        series=series,
    )


def set_finished(path, comparison, when):
    """Back-date a comparison's trials (the store stamps whole seconds, too coarse for tests)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE trials SET finished_at = ? WHERE config_json LIKE ?",
            (when, f'%"comparison": "{comparison}"%'),
        )


def curve(examples, base):
    return {
        "examples": examples,
        "average": [base + 0.01 * i for i in range(len(examples))],
        "tasks": {task: [base] * len(examples) for task in TASKS},
    }


def schedule(selection):
    counts = [[2, 0], [0, 2], [2, 0]] if selection else [[1, 1], [1, 1], [1, 1]]
    return {"tasks": list(TASKS), "counts": counts}


def histograms(snapshots=3, bins=4):
    stack = [
        [[float(s + t + b) for b in range(bins)] for t in range(len(TASKS))]
        for s in range(snapshots)
    ]
    return {
        "examples": [100 * (s + 1) for s in range(snapshots)],
        "tasks": list(TASKS),
        "histograms": stack,
    }


@pytest.fixture
def store_path(tmp_path):
    """A store with the main comparison (with series), an older one and a leave-one-out one."""
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        for scheduler, per_task in TEST.items():
            for i, seed in enumerate(SEEDS):
                scores = {task: per_task[task][i] for task in TASKS}
                # greedy's seeds are evaluated at different points: one line per seed
                last = 1000 + 10 * seed * (scheduler == "greedy")
                series = {
                    "validation_curve": curve([0, 500, last], 0.5),
                    "schedule": schedule(selection=scheduler == "greedy"),
                }
                prep = 400.0 + 100 * seed if scheduler == "hand-crafted" else 0.0
                # greedy's seed 0 stands for a trial stored before CPU time was measured
                cpu = 8.0 if scheduler == "greedy" and seed > 0 else None
                write_trial(store, scheduler, seed, scores, series=series, prep=prep, cpu=cpu)
        for seed in SEEDS:
            write_trial(store, "uniform", seed, {"a": 0.1, "b": 0.1}, comparison="c-old")
        for left_out, per_scheduler in TRANSFER.items():
            for scheduler, values in per_scheduler.items():
                for seed, value in enumerate(values):
                    trained = {task: 0.5 for task in TASKS if task != left_out}
                    write_trial(
                        store,
                        scheduler,
                        seed,
                        trained,
                        comparison="c-loo",
                        kind="leave-one-out",
                        left_out=left_out,
                        transfer=value,
                    )
    set_finished(path, "c-old", "2024-01-01T00:00:00+00:00")
    set_finished(path, "c-main", "2024-06-01T00:00:00+00:00")
    set_finished(path, "c-loo", "2024-03-01T00:00:00+00:00")
    return path


# --- the rule, ranks and the average row -----------------------------------------------------


def test_rule_boundaries():
    # 4 - 1.5*2 = 1 = -2 + 1.5*2: touching intervals are not higher, either way
    assert not higher(4.0, 2.0, -2.0, 2.0)
    assert not higher(-2.0, 2.0, 4.0, 2.0)
    assert higher(4.25, 2.0, -2.0, 2.0)
    assert not higher(1.0, 0.0, 1.0, 0.0)  # equal means without spread
    assert higher(1.0, 0.0, 0.999, 0.0)
    assert higher(4.0, 2.0, -2.0, 2.0, k=1.0)  # 4 - 2 = 2 > -2 + 2 = 0
    assert not higher(4.0, 2.0, 0.0, 2.0)  # 1 > 3 fails at the default k = 1.5


def test_marks_against_the_baseline():
    values = {
        "uniform": {"a": [0.80, 0.82, 0.84]},  # 0.82 ± 0.01633: [0.7955, 0.8445]
        "good": {"a": [0.90, 0.91, 0.92]},  # 0.91 ± 0.00816: lower end 0.8978 > 0.8445
        "bad": {"a": [0.70, 0.71, 0.72]},  # 0.71 ± 0.00816: upper end 0.7222 < 0.7955
        "close": {"a": [0.83, 0.85, 0.87]},  # 0.85 ± 0.01633: lower end 0.8255 < 0.8445
    }
    table = comparison_table(values, ["a"], baseline="uniform")
    assert table.cell("a", "good").mark == "higher"
    assert table.cell("a", "bad").mark == "lower"
    assert table.cell("a", "close").mark is None
    assert table.cell("a", "uniform").mark is None
    uniform = table.cell("a", "uniform")
    assert uniform.mean == pytest.approx(0.82)
    assert uniform.std == pytest.approx(math.sqrt(2 * 0.02**2 / 3))  # population std, ddof=0
    assert uniform.n == 3
    assert [table.cell("a", s).rank for s in ("good", "close", "uniform", "bad")] == [1, 2, 3, None]
    unmarked = comparison_table(values, ["a"], baseline=None)
    assert all(cell.mark is None for cell in unmarked.cells.values())


def test_unknown_baseline_names_the_columns():
    with pytest.raises(ValueError, match=r"'nope'.*uniform, good"):
        comparison_table({"uniform": {"a": [1.0]}, "good": {"a": [1.0]}}, ["a"], baseline="nope")


def test_ranks_with_a_tie():
    values = {
        "w": {"t": [0.5, 0.5]},
        "x": {"t": [0.5, 0.5]},
        "y": {"t": [0.4, 0.4]},
        "z": {"t": [0.3, 0.3]},
        "empty": {},
    }
    table = comparison_table(values, ["t"], baseline=None)
    ranks = {s: table.cell("t", s).rank for s in values}
    assert ranks == {"w": 1, "x": 1, "y": 3, "z": None, "empty": None}
    assert table.cell("t", "empty").n == 0


def test_average_row_is_the_per_seed_task_average():
    # seed averages (0.8 + 0.4)/2 = 0.6 and (0.6 + 0.8)/2 = 0.7: mean 0.65, std 0.05; the mean
    # of the task stds (0.1 and 0.2) would be a different number
    values = {"s": {"t1": [0.8, 0.6], "t2": [0.4, 0.8]}}
    table = comparison_table(values, ["t1", "t2"], baseline=None)
    assert table.rows == ("t1", "t2", AVERAGE)
    average = table.cell(AVERAGE, "s")
    assert (average.mean, average.std, average.n) == (pytest.approx(0.65), pytest.approx(0.05), 2)
    given = comparison_table(
        {"s": {**values["s"], "average": [0.1, 0.3]}}, ["t1", "t2"], baseline=None
    )
    assert given.cell(AVERAGE, "s").mean == pytest.approx(0.2)
    assert given.cell(AVERAGE, "s").std == pytest.approx(0.1)


def test_a_missing_seed_drops_out_of_the_average():
    values = {"s": {"t1": [0.8, math.nan], "t2": [0.4, 0.8]}}
    table = comparison_table(values, ["t1", "t2"], baseline=None)
    assert table.cell("t1", "s").n == 1
    assert table.cell(AVERAGE, "s").n == 1
    assert table.cell(AVERAGE, "s").mean == pytest.approx(0.6)


def test_markdown_and_csv(tmp_path):
    values = {"uniform": {"a": [0.5, 0.5]}, "x": {"a": [0.901, 0.907]}}
    table = comparison_table(values, ["a"], baseline="uniform")
    text = to_markdown(table, split="test")
    assert "| task | uniform (baseline) | x |" in text
    assert "| a | 50.0 ± 0.0 ² | 90.4 ± 0.3 ¹ ▲ |" in text
    legend = text.strip().splitlines()[-1]
    for part in ("2 seeds", "test split", "ddof=0", "1.5·std", "baseline uniform", "▲", "¹"):
        assert part in legend
    path = to_csv(table, tmp_path / "t.csv")
    with path.open() as handle:
        lines = list(csv.DictReader(handle))
    assert [(r["task"], r["scheduler"]) for r in lines] == [
        ("a", "uniform"),
        ("a", "x"),
        (AVERAGE, "uniform"),
        (AVERAGE, "x"),
    ]
    for line in lines:
        cell = table.cell(line["task"], line["scheduler"])
        assert (float(line["mean"]), float(line["std"]), int(line["n"])) == (
            cell.mean,
            cell.std,
            cell.n,
        )
        assert line["rank"] == ("" if cell.rank is None else str(cell.rank))
        assert line["mark"] == (cell.mark or "")


# --- reading the store ------------------------------------------------------------------------


def test_latest_comparison_by_default_and_by_id(store_path):
    with ResultsStore(store_path) as store:
        found = collect.comparisons(store, BENCH)
        assert [c.id for c in found] == ["c-main", "c-loo", "c-old"]
        assert collect.pick_comparison(found).id == "c-main"
        assert collect.pick_comparison(found, kind="leave-one-out").id == "c-loo"
        assert collect.pick_comparison(found, "c-old").id == "c-old"
        with pytest.raises(collect.ReportError, match="'c-nope'") as err:
            collect.pick_comparison(found, "c-nope")
        assert all(name in str(err.value) for name in ("c-main", "c-old", "c-loo"))
    set_finished(store_path, "c-old", "2025-01-01T00:00:00+00:00")
    with ResultsStore(store_path) as store:
        assert collect.pick_comparison(collect.comparisons(store, BENCH)).id == "c-old"
        assert "score per task" in write_report(store_path, BENCH)
        assert "Comparison c-old" in write_report(store_path, BENCH)


def test_values_and_costs(store_path):
    with ResultsStore(store_path) as store:
        main = collect.pick_comparison(collect.comparisons(store, BENCH), "c-main")
        assert main.schedulers == ("greedy", "hand-crafted", "uniform")
        values = collect.split_values(store, main, "test")
        assert values["greedy"]["a"] == pytest.approx([0.90, 0.91, 0.92])
        assert values["uniform"]["average"] == pytest.approx([0.70, 0.71, 0.72])
        assert collect.split_values(store, main, "validation")["greedy"]["a"] == pytest.approx(
            [0.80, 0.81, 0.82]
        )
        cost = {c.scheduler: c for c in collect.costs(store, main)}
        # wall time comes from the run row (10 + seed), not the trial's 99 seconds
        assert cost["uniform"].wall_time == pytest.approx(11.0)
        # CPU time averages the runs that measured it: greedy's seeds 1 and 2 (8 + seed)
        assert cost["greedy"].cpu_time == pytest.approx(9.5)
        assert math.isnan(cost["uniform"].cpu_time)
        assert cost["uniform"].optimizer_steps == pytest.approx(101.0)
        assert cost["uniform"].examples_seen == 1000
        assert cost["hand-crafted"].preparation_examples == pytest.approx(500.0)
        assert cost["uniform"].preparation_examples == 0.0
        assert cost["greedy"].seeds == 3


def test_a_rerun_under_other_settings_replaces_the_older_trial(store_path):
    with ResultsStore(store_path) as store:
        write_trial(store, "uniform", SEEDS[0], {"a": 0.2, "b": 0.4}, params={"weight": 2})
    with sqlite3.connect(store_path) as conn:
        conn.execute(
            "UPDATE trials SET finished_at = ? WHERE config_json LIKE ?",
            ("2024-07-01T00:00:00+00:00", '%"weight": 2%'),
        )
    with ResultsStore(store_path) as store:
        main = collect.pick_comparison(collect.comparisons(store, BENCH), "c-main")
        assert main.superseded == 1
        assert "1 older trials of other settings left out" in main.describe()
        assert len([t for t in main.trials if t.key.scheduler == "uniform"]) == len(SEEDS)
        values = collect.split_values(store, main, "test")["uniform"]
        assert values["a"][0] == pytest.approx(0.2)
        assert values["average"][0] == pytest.approx(0.3)
        assert values["average"][1:] == pytest.approx([0.71, 0.72])
        assert collect.pick_comparison(collect.comparisons(store, BENCH), "c-old").superseded == 0


def test_unknown_benchmark_and_empty_store(store_path, tmp_path):
    with pytest.raises(ValueError, match=rf"{re.escape(str(store_path))}.*'nope'.*holds toy"):
        write_report(store_path, "nope")
    empty = tmp_path / "empty.sqlite"
    ResultsStore(empty).close()
    with pytest.raises(ValueError, match=rf"{re.escape(str(empty))}.*it is empty"):
        write_report(empty, BENCH)
    with pytest.raises(FileNotFoundError, match=r"missing\.sqlite"):
        write_report(tmp_path / "missing.sqlite", BENCH)
    assert not (tmp_path / "missing.sqlite").exists()


def test_leave_one_out_table(store_path):
    with ResultsStore(store_path) as store:
        loo = collect.pick_comparison(collect.comparisons(store, BENCH), kind="leave-one-out")
        values, tasks = collect.transfer_values(store, loo)
    assert tasks == ["a", "b"]
    assert values["uniform"] == {"a": pytest.approx([0.7, 0.8]), "b": pytest.approx([0.5, 0.6])}
    table = comparison_table(values, tasks, baseline="uniform")
    # per-seed averages: uniform 0.6 and 0.7, greedy 0.8 and 0.85
    assert table.cell(AVERAGE, "uniform").mean == pytest.approx(0.65)
    assert table.cell(AVERAGE, "uniform").std == pytest.approx(0.05)
    assert table.cell(AVERAGE, "greedy").mean == pytest.approx(0.825)
    # greedy on a: 0.9 ± 0 vs uniform 0.75 ± 0.05 (upper end 0.825): higher
    assert table.cell("a", "greedy").mark == "higher"
    # greedy's seed averages 0.8 and 0.85: 0.825 - 1.5 * 0.025 = 0.7875 > 0.65 + 1.5 * 0.05
    assert table.cell(AVERAGE, "greedy").mark == "higher"


# --- the report, figures and the command -----------------------------------------------------


def test_report_files_and_text(store_path, tmp_path):
    out = tmp_path / "report"
    report = make_report(store_path, BENCH, out)
    text = report.markdown
    assert "| task | uniform (baseline) | greedy | hand-crafted |" in text
    assert "| a | 82.0 ± 1.6 ² | 91.0 ± 0.8 ¹ ▲ | 71.0 ± 0.8 ³ ▼ |" in text
    assert "| left-out task | uniform (baseline) | greedy |" in text
    assert "| a | 75.0 ± 5.0 ² | 90.0 ± 0.0 ¹ ▲ |" in text
    assert "| hand-crafted | 3 | 11.0 | - | 1,000 | 101 | 500 |" in text
    assert "| greedy | 3 | 11.0 | 9.5 | 1,000 | 101 | 0 |" in text
    # the leave-one-out trials' own cost: seeds 0 and 1 on both left-out tasks, 10 + seed s
    assert "| uniform | 2 | 10.5 | - | 1,000 |" in text
    assert (
        text.index("Test score per task")
        < text.index("Cost per run")
        < text.index("Leave-one-out transfer")
        < text.index("Leave-one-out cost per run")
    )
    names = {path.name for path in report.paths}
    assert names == {
        "toy-test.md",
        "toy-test.csv",
        "toy-cost.csv",
        "toy-leave-one-out.csv",
        "toy-leave-one-out-cost.csv",
        "curves.png",
        "schedules.png",
    }
    for name in ("curves.png", "schedules.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    assert not (out / "histograms.png").exists()
    assert any("histograms.png skipped" in note for note in report.notes)
    assert any("leaves out hand-crafted, uniform" in note for note in report.notes)
    assert (out / "toy-test.md").read_text() == text
    with (out / "toy-cost.csv").open() as handle:
        cost = {row["scheduler"]: row for row in csv.DictReader(handle)}
    assert float(cost["uniform"]["wall_time"]) == pytest.approx(11.0)
    assert float(cost["greedy"]["cpu_time"]) == pytest.approx(9.5)
    assert "| uniform | 3 | 11.0 | - |" in text
    assert float(cost["hand-crafted"]["preparation_examples"]) == pytest.approx(500.0)


def test_each_schedulers_settings_and_notes_are_listed_once(tmp_path):
    path = tmp_path / "settings.sqlite"
    digest = "sha256:" + "0123456789abcdef" * 4
    notes = {"trained_on": "a,b", "training_time": "1.50 CPU hours, 2.00 wall hours"}
    with ResultsStore(path) as store:
        for seed in SEEDS:
            write_trial(store, "uniform", seed, {"a": 0.5, "b": 0.5})
            series = {"scheduler_notes": notes}
            params = {"agent": digest, "transfer": True}
            write_trial(store, "qls", seed, {"a": 0.4, "b": 0.4}, params=params, series=series)
        # one seed run under another setting is listed as a second line
        write_trial(store, "greedy", 0, {"a": 0.6, "b": 0.6}, params={"window": 3})
        write_trial(store, "greedy", 1, {"a": 0.6, "b": 0.6}, params={"window": 5})
    text = make_report(path, BENCH).markdown
    listed = [line for line in text.splitlines() if line.startswith("- ") and ": " in line]
    assert listed == [
        "- greedy: window=3",
        "- greedy: window=5",
        "- qls: agent=sha256:0123456789ab; transfer=True; trained_on: a,b; "
        "training_time: 1.50 CPU hours, 2.00 wall hours",
    ]
    assert text.index("Cost per run") < text.index("Scheduler settings")
    assert "- uniform" not in text


def test_report_on_validation_with_another_baseline(store_path):
    text = write_report(store_path, BENCH, split="validation", baseline="greedy")
    assert "| task | greedy (baseline) | hand-crafted | uniform |" in text
    assert "| a | 81.0 ± 0.8 ¹ | 61.0 ± 0.8 ³ ▼ | 72.0 ± 1.6 ² ▼ |" in text
    assert "validation split" in text
    with pytest.raises(ValueError, match=r"'nope'.*greedy, hand-crafted, uniform"):
        write_report(store_path, BENCH, baseline="nope")


def test_figures_with_histograms_and_without_series(tmp_path):
    written, notes = figures.write_figures(
        {"qls": [curve([0, 10], 0.4)]},
        {"qls": [schedule(selection=True)]},
        {"qls": [histograms()], "other": [{"examples": [], "tasks": [], "histograms": []}]},
        tmp_path / "with",
    )
    assert [p.name for p in written] == ["curves.png", "schedules.png", "histograms.png"]
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 1000 for p in written)
    assert notes == []
    written, notes = figures.write_figures(
        {}, {"uniform": [schedule(selection=False)]}, {}, tmp_path / "without"
    )
    assert written == []
    assert not (tmp_path / "without").exists() or not any((tmp_path / "without").iterdir())
    assert len(notes) == 4 and "curves.png skipped" in notes[0]
    assert "schedules.png skipped" in notes[1] and "leaves out uniform" in notes[2]
    assert "histograms.png skipped" in notes[3]


def test_is_selection():
    assert figures.is_selection([[0, 3], [1, 0]])
    assert not figures.is_selection([[1, 3], [1, 0]])
    assert not figures.is_selection([[0, 0], [1, 0]])
    assert not figures.is_selection([])


def test_cli(store_path, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="mtl-sched")
    commands = parser.add_subparsers(dest="command", required=True)
    add_report_parser(commands)
    out = tmp_path / "cli"
    args = parser.parse_args(
        [
            "report",
            "--db",
            str(store_path),
            "--benchmark",
            BENCH,
            "--out",
            str(out),
            "--comparison",
            "c-main",
        ]
    )
    assert (args.split, args.baseline) == ("test", None)
    print(run_report(args))
    printed = capsys.readouterr().out
    assert "| a | 82.0 ± 1.6 ² | 91.0 ± 0.8 ¹ ▲ | 71.0 ± 0.8 ³ ▼ |" in printed
    assert f"wrote {out / 'toy-test.csv'}" in printed
    assert (out / "toy-test.md").is_file() and (out / "curves.png").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["report", "--db", str(store_path), "--benchmark", BENCH, "--split", "train"]
        )

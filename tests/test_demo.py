"""The demo: a trained agent, the baselines and the documented schedule compared through the sweep
harness, printed as the report's table."""

import csv
import re
from collections import defaultdict

import numpy as np
import pytest

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.demo import DemoConfig, demo_schedulers, run_demo
from mtl_sched.reporting.report import make_report
from mtl_sched.results import ResultsStore

BENCH = "synthetic-prerequisite"
K = 1.5


def _csv_rows(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _rule_mark(mean, std, base_mean, base_std):
    """Seed 003's rule written out: higher when the k-std intervals do not touch."""
    if mean - K * std > base_mean + K * base_std:
        return "higher"
    if base_mean - K * base_std > mean + K * std:
        return "lower"
    return ""


def _table_cells(printed, tasks):
    """(row, column) -> cell text of the first Markdown table in ``printed``."""
    lines = [line for line in printed.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    columns = [name.removesuffix(" (baseline)") for name in header[1:]]
    cells = {}
    for line in lines[1:]:
        parts = [cell.strip() for cell in line.strip("|").split("|")]
        if parts[0] in (*tasks, "AVG"):
            cells.update({(parts[0], c): text for c, text in zip(columns, parts[1:], strict=True)})
    return columns, cells


def test_demo_compares_through_the_harness_and_prints_the_report_table(tmp_path):
    config = DemoConfig(
        agent_steps=100,
        eval_seeds=(100, 101),
        baselines=("uniform", "greedy"),
        out=tmp_path,
        progress=False,
    )
    printed = run_demo(config)
    benchmark = get_benchmark(BENCH)
    tasks = benchmark.task_names
    counts = re.search(r"action counts base (\d+), composite (\d+)", printed)
    assert counts is not None and int(counts[1]) + int(counts[2]) == config.agent_steps
    assert (tmp_path / "agent.zip").exists()
    assert (tmp_path / "schedules.png").read_bytes().startswith(b"\x89PNG")

    # the demo prints exactly what `mtl-sched report` makes of its store
    store_path = tmp_path / "results.sqlite"
    assert make_report(store_path, BENCH).markdown in printed

    # one column per scheduler (uniform, the marks' baseline, first), one row per task and AVG
    schedulers = {"qls", "uniform", "greedy", "phased"}
    columns, cells = _table_cells(printed, tasks)
    assert columns[0] == "uniform" and set(columns) == schedulers
    assert set(cells) == {(row, c) for row in (*tasks, "AVG") for c in schedulers}

    # each cell and mark recomputed from the stored per-seed scores by the rule
    with ResultsStore(store_path) as store:
        scores = defaultdict(list)
        for row in store.rows(benchmark=BENCH, split="test", metric="score"):
            scores[row.task if row.task != "average" else "AVG", row.key.scheduler].append(
                row.value
            )
        examples = {
            (row.key.scheduler, row.key.seed, row.task): row.value
            for row in store.rows(benchmark=BENCH, split="train", metric="examples")
        }
    table = {(r["task"], r["scheduler"]): r for r in _csv_rows(tmp_path / f"{BENCH}-test.csv")}
    assert set(table) == set(cells)
    assert any(r["mark"] for r in table.values())  # the seeded runs do separate some cells
    for (row, column), text in cells.items():
        values = np.asarray(scores[row, column])
        assert values.size == 2
        mean, std = values.mean(), values.std()
        assert text.startswith(f"{mean * 100:.1f} ± {std * 100:.1f}")
        base = np.asarray(scores[row, "uniform"])
        mark = "" if column == "uniform" else _rule_mark(mean, std, base.mean(), base.std())
        assert table[row, column]["mark"] == mark
        assert ("▲" in text) == (mark == "higher") and ("▼" in text) == (mark == "lower")

    # every run spends the budget; uniform trains both tasks on every step, equally; the
    # documented schedule trains only base in its first 30%, then mostly composite
    budget = benchmark.trainer_config.budget
    for seed in config.eval_seeds:
        for scheduler in schedulers:
            assert sum(examples[scheduler, seed, task] for task in tasks) == budget
        assert examples["uniform", seed, "base"] == examples["uniform", seed, "composite"]
        assert 0.3 * budget <= examples["phased", seed, "base"] < 0.5 * budget

    # the agent's training examples are qls's cost outside the budget, and nobody else's
    costs = {r["scheduler"]: r for r in _csv_rows(tmp_path / f"{BENCH}-cost.csv")}
    batch = benchmark.trainer_config.batch_size
    minibatches = config.agent_steps * benchmark.decision_steps
    assert float(costs["qls"]["preparation_examples"]) == minibatches * batch
    assert all(float(costs[s]["preparation_examples"]) == 0 for s in schedulers - {"qls"})


@pytest.mark.parametrize(
    ("baselines", "message"),
    [
        (("uniform", "qls"), "baselines must not name 'qls'"),
        (("phased",), "baselines must not name 'phased'"),
        (("uniform", "uniform"), "baselines names a scheduler twice"),
        (("uniform", "unifrom"), "baselines: unknown scheduler 'unifrom'"),
    ],
)
def test_demo_refuses_baselines_that_repeat_a_column(baselines, message):
    config = DemoConfig(baselines=baselines)
    with pytest.raises(ValueError, match=message):
        demo_schedulers(config, get_benchmark(BENCH))


def test_demo_refuses_no_seeds_before_training(tmp_path):
    with pytest.raises(ValueError, match="eval_seeds must hold"):
        run_demo(DemoConfig(eval_seeds=(), out=tmp_path, progress=False))
    assert not (tmp_path / "agent.zip").exists()


def test_demo_schedulers_add_the_documented_schedule_with_its_hyperparameters():
    benchmark = get_benchmark(BENCH)
    recipe = benchmark.better_schedule
    names, params = demo_schedulers(DemoConfig(baselines=("uniform",)), benchmark)
    assert names == ["qls", "uniform", recipe.scheduler]
    assert params == {recipe.scheduler: dict(recipe.kwargs)}


def test_schedule_shares_by_hand():
    from mtl_sched.reporting.figures import schedule_shares

    blocks = np.array([[32, 0], [32, 0], [0, 32], [0, 32]])
    assert np.array_equal(schedule_shares(blocks, 2), [[1.0, 0.0], [0.0, 1.0]])
    alternating = np.array([[32, 0], [0, 32], [32, 0], [0, 32]])
    assert np.array_equal(schedule_shares(alternating, 2), [[0.5, 0.5], [0.5, 0.5]])
    weighting = np.array([[32, 32], [32, 32]])
    assert np.array_equal(schedule_shares(weighting, 1), [[0.5], [0.5]])

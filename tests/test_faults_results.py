"""Results that must be neither lost nor silently wrong: the checkpoint of a single-task
reference run, the F1 of seed 004's majority baseline, and seed 003's marks with one seed."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import mtl_sched.references
from conftest import tiny_synthetic
from mtl_sched.references import (
    SingleTaskReferences,
    cache_dir,
    compute_single_task_references,
    reference_budget,
    single_task_references,
)
from mtl_sched.reporting.report import make_report
from mtl_sched.reporting.tables import comparison_table, to_markdown
from mtl_sched.results import MetricRow, ResultsStore, TrialKey, config_hash
from mtl_sched.scheduling import EvalResult
from mtl_sched.studies.gain.prediction import cross_validated_gain_prediction, scores_table
from mtl_sched.studies.relations.plan import Score, beneficial, oracle_sets
from mtl_sched.studies.relations.report import (
    all_but_one_table,
    pairwise_table,
    write_relations_report,
)
from mtl_sched.training import TrainerConfig

# ------------------------------------------------------------- 8: references select per task


def test_each_reference_is_its_tasks_best_validation_score() -> None:
    """Every reference run trains one head; the others stay untrained. The reference is the
    best validation score of the trained task over the run, not its score at the checkpoint
    with the best average over all heads (on this run, ``medium``: 0.400 against 0.383)."""
    bench = tiny_synthetic()
    runs = []

    def recording(seed: int):
        trainer = bench.make_trainer(seed)
        run = trainer.run

        def keep(scheduler, **kwargs):
            runs.append(run(scheduler, **kwargs))
            return runs[-1]

        trainer.run = keep
        return trainer

    references = compute_single_task_references(recording, bench.task_names, budget_per_task=640)
    assert len(runs) == bench.num_tasks
    own_best = [max(r.scores[k] for _, r in run.validation_history) for k, run in enumerate(runs)]
    np.testing.assert_array_equal(references.scores, own_best)
    np.testing.assert_array_equal(references.unit_accuracies, own_best)  # accuracy tasks
    # the average over the heads selects another checkpoint for at least one task here
    by_average = [run.best_validation.scores[k] for k, run in enumerate(runs)]
    assert not np.array_equal(by_average, own_best)


def _evaluation(scores: list[float], units: list[float]) -> EvalResult:
    return EvalResult(
        split="validation",
        losses=np.ones(len(scores)),
        scores=np.asarray(scores),
        metric_names=("span_f1", "span_f1"),
        unit_accuracies=np.asarray(units),
    )


def test_score_and_unit_accuracy_come_from_the_checkpoint_selected_on_the_task() -> None:
    """A stand-in trainer whose runs hold three validation evaluations of a two-task model;
    the second is best on the average (the untrained head's noise), the third on task 0 and
    the first on task 1. Scores and unit accuracies differ (span F1 and token accuracy)."""
    history = [
        (10, _evaluation([0.30, 0.50], [0.70, 0.75])),
        (20, _evaluation([0.40, 0.45], [0.72, 0.74])),  # best average: 0.425
        (30, _evaluation([0.42, 0.30], [0.80, 0.60])),
    ]

    class StandIn:
        config = TrainerConfig(budget=60, batch_size=2)

        def run(self, scheduler):
            return SimpleNamespace(validation_history=history, best_validation=history[1][1])

    references = compute_single_task_references(lambda seed: StandIn(), ["a", "b"])
    np.testing.assert_array_equal(references.scores, [0.42, 0.50])
    np.testing.assert_array_equal(references.unit_accuracies, [0.80, 0.75])


def test_references_cached_under_the_former_selection_are_not_read(monkeypatch, tmp_path) -> None:
    """A cache file written before selection per task (the former name, and a file without the
    version under any name) is ignored and the references are recomputed."""
    monkeypatch.setenv("MTL_SCHED_CACHE", str(tmp_path))
    bench = tiny_synthetic()
    budget = reference_budget(bench)
    stale = {
        "benchmark": bench.name,
        "fingerprint": bench.fingerprint(),
        "seed": 0,
        "budget_per_task": budget,
        "tasks": list(bench.task_names),
        "validation_score": [0.123] * bench.num_tasks,
        "validation_unit_accuracy": [0.123] * bench.num_tasks,
    }
    folder = cache_dir() / "references"
    folder.mkdir(parents=True)
    former = folder / f"{bench.name}-{bench.fingerprint()}-s0-b{budget}.json"
    former.write_text(json.dumps(stale))
    fresh = SingleTaskReferences(np.full(bench.num_tasks, 0.5), np.full(bench.num_tasks, 0.6))
    calls = []

    def computed(*args, **kwargs):
        calls.append(args)
        return fresh

    monkeypatch.setattr(mtl_sched.references, "compute_single_task_references", computed)
    np.testing.assert_array_equal(single_task_references(bench), fresh.scores)
    assert len(calls) == 1
    written = [path for path in folder.glob("*.json") if path != former]
    assert len(written) == 1
    # the new entry is read back; without its version it would be recomputed
    np.testing.assert_array_equal(single_task_references(bench, measure="unit-accuracy"), [0.6] * 4)
    assert len(calls) == 1
    payload = json.loads(written[0].read_text())
    payload.pop("version")
    written[0].write_text(json.dumps(payload))
    single_task_references(bench)
    assert len(calls) == 2


# ------------------------------------------------------ 9: seed 004's majority baseline F1


def test_majority_baseline_f1_is_that_of_always_predicting_gain() -> None:
    """40 gains of 90 pairs: the majority class is "no gain" (accuracy 50/90 = 0.556), and
    seed 004's baseline F1 is that of predicting "gain" for every pair, 2·40 / (40 + 90) =
    0.615 (each stratified fold of 18 holds 8 gains: the same F1 in every fold)."""
    features = np.random.default_rng(0).uniform(size=(90, 3))
    gains = np.arange(90) < 40
    scores = cross_validated_gain_prediction(features, gains, runs=2)
    assert scores.majority_accuracy == pytest.approx(50 / 90)
    assert scores.always_gain_f1 == pytest.approx(80 / 130)
    assert scores.always_gain_f1_std == pytest.approx(0.0, abs=1e-12)
    baseline = scores_table({"All features": scores}).splitlines()[2]
    assert baseline.startswith("| Majority baseline") and 'always "gain"' in baseline
    assert baseline.endswith("| 0.556 ± 0.000 | 0.615 ± 0.000 |")


# ----------------------------------------------------------- 10: no marks with one seed


ONE_SEED = {
    "uniform": {"a": [0.50], "b": [0.50]},
    "better": {"a": [0.90], "b": [0.10]},
}


def test_one_seed_gives_no_marks_and_the_legend_says_why() -> None:
    table = comparison_table(ONE_SEED, ["a", "b"], baseline="uniform")
    assert all(cell.mark is None for cell in table.cells.values())
    legend = to_markdown(table).splitlines()[-1]
    assert "No ▲/▼ marks" in legend and "fewer than 2 seeds" in legend


def test_a_cell_is_marked_only_when_it_and_the_baseline_have_two_seeds() -> None:
    values = {
        "uniform": {"a": [0.50, 0.51]},
        "two": {"a": [0.90, 0.91]},
        "one": {"a": [0.90, float("nan")]},  # one finite seed
    }
    table = comparison_table(values, ["a"], baseline="uniform")
    assert table.cell("a", "two").mark == "higher"
    assert table.cell("a", "one").mark is None and table.cell("a", "one").n == 1
    legend = to_markdown(table).splitlines()[-1]
    assert "▲ / ▼: higher / lower" in legend and "fewer than 2 seeds" in legend


def _one_seed_store(path: Path) -> Path:
    with ResultsStore(path) as store:
        for scheduler, per_task in ONE_SEED.items():
            config = {
                "kind": "compare",
                "comparison": "c-one",
                "benchmark": "toy",
                "benchmark_fingerprint": "f" * 16,
                "benchmark_options": {},
                "budget": 100,
                "scheduler": scheduler,
                "scheduler_params": {},
                "tasks": ["a", "b"],
                "metrics": {"a": "accuracy", "b": "accuracy"},
            }
            rows = [MetricRow("test", task, "score", v[0]) for task, v in per_task.items()]
            rows.append(MetricRow("test", "average", "score", 0.5))
            key = TrialKey("toy", config_hash(config), scheduler, 0)
            store.write_trial(
                key, rows, config=config, wall_time=1.0, examples_seen=100, optimizer_steps=10
            )
    return path


def test_report_of_one_seed_marks_nothing_and_notes_why(tmp_path) -> None:
    report = make_report(_one_seed_store(tmp_path / "one.sqlite"), "toy")
    table = report.markdown.split("## Cost per run")[0]
    assert "▲" not in table.replace("No ▲/▼", "") and "▼" not in table.replace("No ▲/▼", "")
    assert any("fewer than 2 seeds" in note for note in report.notes)
    assert "## Notes" in report.markdown


def _relations_stats(seeds: int) -> dict[tuple[tuple[str, ...], str], Score]:
    means = {
        (("a",), "a"): 0.80,
        (("b",), "b"): 0.70,
        (("a", "b"), "a"): 0.85,
        (("a", "b"), "b"): 0.60,
    }
    return {key: Score(mean, 0.0, seeds) for key, mean in means.items()}


def test_relations_tables_of_one_seed_mark_nothing_and_note_why(tmp_path) -> None:
    stats = _relations_stats(1)
    tables = pairwise_table(stats, ["a", "b"], {"a": ("a", "b")}) + all_but_one_table(
        stats, ["a", "b"]
    )
    assert not re.search(r"\d [↑↓]", tables)
    write_relations_report(stats, ["a", "b"], "multi-dec", {"a": ("a", "b")}, tmp_path)
    report = (tmp_path / "relations_report.md").read_text()
    assert "fewer than 2 seeds" in report
    # with two seeds the same means are marked (std 0 still: the rule's own judgement)
    marked = pairwise_table(_relations_stats(2), ["a", "b"], {"a": ("a", "b")})
    assert "85.00 ± 0.00 ↑" in marked and "60.00 ± 0.00 ↓" in marked


def test_oracle_sets_of_one_seed_count_no_pair_as_beneficial_and_say_why(caplog) -> None:
    from mtl_sched.studies.relations.plan import unjudged_pairs

    one, two = _relations_stats(1), _relations_stats(2)
    with caplog.at_level(logging.WARNING, logger="mtl_sched.studies.relations.plan"):
        assert oracle_sets(one, ["a", "b"]) == {}
    assert beneficial(one, ["a", "b"], "a") == []
    assert unjudged_pairs(one, ["a", "b"], "a") == ["b"]
    assert "2 pairwise results were not judged" in caplog.text
    assert "fewer than 2 seeds" in caplog.text
    # one seed on either side is enough to leave the pair unjudged
    mixed = {**two, (("a",), "a"): Score(0.80, 0.0, 1)}
    assert beneficial(mixed, ["a", "b"], "a") == [] and unjudged_pairs(mixed, ["a", "b"], "b") == []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mtl_sched.studies.relations.plan"):
        assert oracle_sets(two, ["a", "b"]) == {"a": ("a", "b")}
    assert caplog.text == ""


def test_tiny_references_in_the_cache_name_the_selection(monkeypatch, tmp_path) -> None:
    """The cache entry says how its checkpoints were selected."""
    monkeypatch.setenv("MTL_SCHED_CACHE", str(tmp_path))
    bench = tiny_synthetic()
    fresh = SingleTaskReferences(np.full(4, 0.5), np.full(4, 0.5))
    monkeypatch.setattr(
        mtl_sched.references, "compute_single_task_references", lambda *a, **k: fresh
    )
    single_task_references(bench)
    (path,) = (tmp_path / "references").glob("*.json")
    payload = json.loads(path.read_text())
    assert payload["selection"] == "per-task validation score"

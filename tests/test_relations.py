"""The task-relation study (seed 003): the rule, the settings, Oracle sets, the tables and a
small end-to-end study on hand-made tagging tasks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mtl_sched.cli import main
from mtl_sched.data.conll import tagging_task
from mtl_sched.data.tagging_tasks import load_tagging_task, register_tagging_task
from mtl_sched.results import ResultsStore
from mtl_sched.studies.relations.figures import relation_edges
from mtl_sched.studies.relations.plan import (
    SETTINGS,
    Score,
    beneficial,
    compare,
    oracle_sets,
    ordered,
    setting_sets,
)
from mtl_sched.studies.relations.report import (
    all_but_one_table,
    metrics_note,
    pairwise_table,
    write_relations_report,
)
from mtl_sched.studies.relations.study import RelationsConfig, collect_study, run_relations_study

TASKS = ("a", "b", "c")


def test_the_rule_marks_only_separated_results() -> None:
    # 0.90 - 1.5*0.01 = 0.885 > 0.85 + 1.5*0.01 = 0.865
    assert compare(Score(0.90, 0.01, 3), Score(0.85, 0.01, 3)) == "higher"
    assert compare(Score(0.85, 0.01, 3), Score(0.90, 0.01, 3)) == "lower"
    # 0.90 - 1.5*0.02 = 0.87 < 0.85 + 1.5*0.02 = 0.88: overlapping intervals
    assert compare(Score(0.90, 0.02, 3), Score(0.85, 0.02, 3)) is None
    # k = 0 compares the means alone
    assert compare(Score(0.90, 0.02, 3), Score(0.85, 0.02, 3), k=0.0) == "higher"


def test_settings_list_each_task_set_once_in_study_order() -> None:
    sets = setting_sets(TASKS, SETTINGS)
    # with three tasks the all-but-one sets are the pairs, so they are not repeated
    assert sets == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]
    four = setting_sets(("a", "b", "c", "d"), ["all-but-one", "stl"])
    assert four == [("a",), ("b",), ("c",), ("d",), *[
        ("b", "c", "d"), ("a", "c", "d"), ("a", "b", "d"), ("a", "b", "c")
    ]]  # fmt: skip
    assert ordered(("c", "a"), TASKS) == ("a", "c")
    with pytest.raises(ValueError, match="distinct tasks"):
        ordered(("a", "a"), TASKS)
    with pytest.raises(ValueError, match="unknown settings"):
        setting_sets(TASKS, ["stl", "triples"])
    with pytest.raises(ValueError, match="at least two"):
        setting_sets(("a",), SETTINGS)


# Hand-made results (means over seeds, std 0.01 everywhere):
#   a alone 0.80; with b 0.85 (higher), with c 0.81 (neither)
#   b alone 0.70; with a 0.60 (lower),  with c 0.75 (higher)
#   c alone 0.50; with a 0.56 (higher), with b 0.56 (higher)
#   All: a 0.86 (higher than STL), b 0.70, c 0.40 (lower)
#   All - a ({b, c}) and All - c ({a, b}) come from the pairs; All - b = {a, c}
MEANS = {
    (("a",), "a"): 0.80, (("b",), "b"): 0.70, (("c",), "c"): 0.50,
    (("a", "b"), "a"): 0.85, (("a", "b"), "b"): 0.60,
    (("a", "c"), "a"): 0.81, (("a", "c"), "c"): 0.56,
    (("b", "c"), "b"): 0.75, (("b", "c"), "c"): 0.56,
    (("a", "b", "c"), "a"): 0.86, (("a", "b", "c"), "b"): 0.70, (("a", "b", "c"), "c"): 0.40,
}  # fmt: skip
STATS = {key: Score(mean, 0.01, 3) for key, mean in MEANS.items()}


def test_oracle_sets_hold_the_pairwise_beneficial_tasks() -> None:
    assert beneficial(STATS, TASKS, "a") == ["b"]
    assert beneficial(STATS, TASKS, "b") == ["c"]
    assert beneficial(STATS, TASKS, "c") == ["a", "b"]
    assert oracle_sets(STATS, TASKS) == {"a": ("a", "b"), "b": ("b", "c"), "c": ("a", "b", "c")}
    # a stricter rule leaves a task without beneficial partners out
    assert "a" not in oracle_sets(STATS, TASKS, k=3.0)  # 0.85 - 0.03 < 0.80 + 0.03


def _row(table: str, label: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_pairwise_table_marks_counts_and_averages() -> None:
    oracles = oracle_sets(STATS, TASKS)
    table = pairwise_table(STATS, TASKS, oracles)
    assert _row(table, "STL") == ["80.00 ± 1.00", "70.00 ± 1.00", "50.00 ± 1.00", "", ""]
    # row +A: a itself (STL), b with a (lower), c with a (higher): helps 1, harms 1
    assert _row(table, "+A") == ["80.00 ± 1.00", "60.00 ± 1.00 ↓", "56.00 ± 1.00 ↑", "1", "1"]
    assert _row(table, "+B") == ["85.00 ± 1.00 ↑", "70.00 ± 1.00", "56.00 ± 1.00 ↑", "2", "0"]
    assert _row(table, "+C") == ["81.00 ± 1.00", "75.00 ± 1.00 ↑", "50.00 ± 1.00", "1", "0"]
    assert _row(table, "#↑") == ["1", "1", "2", "", ""]
    assert _row(table, "#↓") == ["0", "1", "0", "", ""]
    # Average leaves out the diagonal: a (0.85 + 0.81) / 2, b (0.60 + 0.75) / 2
    assert _row(table, "Average") == ["83.00", "67.50", "56.00", "", ""]
    assert _row(table, "All") == ["86.00 ± 1.00 ↑", "70.00 ± 1.00", "40.00 ± 1.00 ↓", "1", "1"]
    # Oracle of a is the pair {a, b}, of b {b, c}, of c the three tasks (0.40: lower)
    assert _row(table, "Oracle") == ["85.00 ± 1.00 ↑", "75.00 ± 1.00 ↑", "40.00 ± 1.00 ↓", "2", "1"]


def test_all_but_one_table_compares_with_all() -> None:
    table = all_but_one_table(STATS, TASKS)
    assert _row(table, "All") == ["86.00 ± 1.00", "70.00 ± 1.00", "40.00 ± 1.00", "", ""]
    # without a: b 0.75 (higher than All's 0.70), c 0.56 (higher than 0.40)
    assert _row(table, "All - A") == ["", "75.00 ± 1.00 ↑", "56.00 ± 1.00 ↑", "2", "0"]
    # without b: a 0.81 (lower than 0.86), c 0.56 (higher)
    assert _row(table, "All - B") == ["81.00 ± 1.00 ↓", "", "56.00 ± 1.00 ↑", "1", "1"]
    assert _row(table, "#↑") == ["0", "1", "2", "", ""]


def test_report_header_says_what_each_tasks_score_measures(tmp_path: Path) -> None:
    metrics = {"upos": "accuracy", "chunk": "span-f1", "semtr": "tag-f1", "pos": "accuracy"}
    assert metrics_note(["upos", "chunk", "semtr", "pos"], metrics) == (
        "token accuracy for UPOS and POS; span F1 (IOB2) for CHUNK; "
        "F1 over the tokens not tagged O for SEMTR"
    )
    assert metrics_note(TASKS, None) == "each task's metric"
    with pytest.raises(ValueError, match=r"metrics names no metric for tasks \['c'\]"):
        metrics_note(TASKS, {"a": "accuracy", "b": "accuracy"})
    write_relations_report(
        STATS,
        TASKS,
        "multi-dec",
        {},
        tmp_path,
        metrics={"a": "accuracy", "b": "tag-f1", "c": "tag-f1"},
    )
    header = (tmp_path / "relations_report.md").read_text().splitlines()[2]
    assert header.startswith(
        "Test scores (%) as mean ± std over 3 seeds: token accuracy for A; "
        "F1 over the tokens not tagged O for B and C. ↑ / ↓"
    )


def test_graph_edges_pair_mutual_and_opposite_relations() -> None:
    edges = {(s, t): (kind, style) for s, t, kind, style in relation_edges(STATS, TASKS)}
    # a harms b while b helps a: asymmetric both ways
    assert edges[("a", "b")] == ("lower", "asymmetric")
    assert edges[("b", "a")] == ("higher", "asymmetric")
    # b and c help each other: one mutual edge
    assert edges[("b", "c")] == ("higher", "mutual") and ("c", "b") not in edges
    # a helps c, c does nothing to a
    assert edges[("a", "c")] == ("higher", "directed") and ("c", "a") not in edges


# ------------------------------------------------------------------ a small study, end to end
_TAG_RULES = {1: lambda i: i % 3, 2: lambda i: (2 * i) % 3, 3: lambda i: i // 4}


def _toy_task(name: str, rule: int, seed: int, metric: str = "accuracy") -> object:
    """Tags that depend on each word (``rule`` picks the mapping), so the tasks are learnable
    and related in different ways."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(12)]

    def sentences(n: int) -> list[dict[str, list[str]]]:
        out = []
        for _ in range(n):
            tokens = [rng.choice(words) for _ in range(rng.randint(3, 7))]
            # rule 1: the word's index mod 3; 2: twice it; 3: which third of the words
            tags = [f"T{_TAG_RULES[rule](int(w[1:]))}" for w in tokens]
            out.append({"word": tokens, "tag": tags})
        return out

    splits = {"train": sentences(60), "validation": sentences(20), "test": sentences(20)}
    return tagging_task(name, splits, "tag", metric)


@pytest.fixture
def toy_tasks() -> tuple[str, ...]:
    names = ("toy-a", "toy-b", "toy-c")
    for rule, name in enumerate(names, start=1):
        register_tagging_task(name, lambda _d, _l, n=name, r=rule: _toy_task(n, r, r))
    return names


def test_the_study_reads_each_tasks_metric_from_the_loaded_tasks(toy_tasks) -> None:
    register_tagging_task("toy-f1", lambda _d, _l: _toy_task("toy-f1", 1, 1, "tag-f1"))
    config = RelationsConfig((*toy_tasks[:2], "toy-f1"), options={"small": True})
    assert config.task_metrics() == {"toy-a": "accuracy", "toy-b": "accuracy", "toy-f1": "tag-f1"}


def test_registered_tasks_load_once_and_bad_names_are_named(toy_tasks) -> None:
    assert load_tagging_task("toy-a") is load_tagging_task("toy-a")
    with pytest.raises(KeyError, match=r"no-such.*register_tagging_task"):
        load_tagging_task("no-such")


def test_a_small_study_runs_resumes_and_reports(tmp_path: Path, toy_tasks) -> None:
    db = tmp_path / "r.sqlite"
    config = RelationsConfig(toy_tasks, "te-dec", (0, 1), options={"small": True})
    run = run_relations_study(config, db, progress=False)
    # 3 STL + 3 pairs + All (the all-but-one sets are the pairs), then the Oracle sets that
    # are new; two seeds each
    first = run.sweeps[0]
    assert (first.total, first.written, first.failures) == (14, 14, [])
    # with three tasks every Oracle set (the task and one or two partners) is a pair or All,
    # all trained already, so there is no second phase
    assert len(run.sweeps) == 1
    assert all(len(s) >= 2 for s in run.oracles.values())
    with ResultsStore(db) as store:
        assert len(store.trials()) == 14
    again = run_relations_study(config, db, progress=False)
    assert [s.written for s in again.sweeps] == [0] * len(again.sweeps)
    results = collect_study(db, config)
    assert set(results.loss_curves) == set(toy_tasks)
    assert all(len(curves) == 2 for curves in results.loss_curves.values())
    # the All model of each seed stored its three 25-d task embeddings
    assert len(results.embeddings) == 2
    assert all(len(v) == 25 for e in results.embeddings for v in e.values())
    assert all(len(v) == 2 for v in results.scores.values())
    # a study with other options reads none of these models
    other = RelationsConfig(
        toy_tasks, "te-dec", (0, 1), options={"small": True, "budget_per_task": 80}
    )
    assert collect_study(db, other).scores == {}


def test_relations_command_writes_tables_and_figures(tmp_path: Path, toy_tasks, capsys) -> None:
    out = tmp_path / "out"
    args = [
        "study", "relations", "--tasks", ",".join(toy_tasks), "--arch", "te-enc", "--small",
        "--seeds", "0", "--db", str(tmp_path / "r.sqlite"), "--out", str(out), "--no-progress",
        "--settings", "stl,pairwise",
    ]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "6 trials: 0 already" in text and "| +TOY-A |" in text
    assert (out / "relations_graph.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "task_embeddings_tsne.png").exists()  # te-enc learns no embedding table
    with pytest.raises(SystemExit, match="--tasks: unknown tasks"):
        main([*args[:3], "no-such,toy-a", *args[4:]])

"""Tables of the task-relation study in the shape of seed 003's Tables 3-6.

Pairwise table (Tables 3-5): one column per test task; the ``STL`` row; a ``+s`` row per task
whose cell in column ``t`` is ``t``'s score when learned with ``s`` (the diagonal repeats
STL), marked ↑ or ↓ when seed 003's rule puts it higher or lower than STL; per-row counts of
the tasks ``s`` helps (#↑) and harms (#↓), per-column counts of the tasks that help or harm
``t``; the ``Average`` of the pairwise rows (diagonal excluded); ``All`` and ``Oracle`` rows
marked against STL. All-but-one table (Table 6): the ``All`` row and an ``All - u`` row per
task, marked against All. Cells are ``mean ± std`` over seeds, in %. Two results are compared
only when each has at least two seeds (`mtl_sched.reporting.tables.rule_applies`): one seed has
std 0, under which the rule would mark every difference.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mtl_sched.reporting.tables import FEW_SEEDS_NOTE, MIN_RULE_SEEDS, markdown_table
from mtl_sched.studies.relations.plan import Score, Stats, TaskSet, marked, ordered, relation

_ARROWS = {"higher": " ↑", "lower": " ↓", None: ""}
# what each `mtl_sched.metrics` name measures on a tagging task
METRIC_DESCRIPTIONS: dict[str, str] = {
    "accuracy": "token accuracy",
    "span-f1": "span F1 (IOB2)",
    "tag-f1": "F1 over the tokens not tagged O",
}


def _text(score: Score | None) -> str:
    if score is None:
        return "–"
    return f"{100 * score.mean:.2f} ± {100 * score.std:.2f}"


def pairwise_table(
    stats: Stats, tasks: Sequence[str], oracles: Mapping[str, TaskSet], k: float = 1.5
) -> str:
    """The Markdown table of seed 003 Tables 3-5 (STL, pairwise, Average, All, Oracle).

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks, in column order.
    :param oracles: each test task's Oracle set.
    :param k: the rule's width.
    """
    header = ["", *(t.upper() for t in tasks), "#↑", "#↓"]
    alone = {t: stats.get(((t,), t)) for t in tasks}
    lines = [["STL", *(_text(alone[t]) for t in tasks), "", ""]]
    helped = {t: 0 for t in tasks}
    harmed = {t: 0 for t in tasks}
    for helper in tasks:
        cells, ups, downs = [], 0, 0
        for test in tasks:
            if test == helper:
                cells.append(_text(alone[test]))
                continue
            mark = relation(stats, tasks, helper, test, k)
            ups, downs = ups + (mark == "higher"), downs + (mark == "lower")
            helped[test] += mark == "higher"
            harmed[test] += mark == "lower"
            cells.append(_text(stats.get((ordered((helper, test), tasks), test))) + _ARROWS[mark])
        lines.append([f"+{helper.upper()}", *cells, str(ups), str(downs)])
    lines.append(["#↑", *(str(helped[t]) for t in tasks), "", ""])
    lines.append(["#↓", *(str(harmed[t]) for t in tasks), "", ""])
    averages = []
    for test in tasks:
        means = [
            stats[key].mean
            for helper in tasks
            if helper != test and (key := (ordered((helper, test), tasks), test)) in stats
        ]
        averages.append(f"{100 * np.mean(means):.2f}" if means else "–")
    lines.append(["Average", *averages, "", ""])
    all_sets = {"All": {t: tuple(tasks) for t in tasks}, "Oracle": dict(oracles)}
    for label, sets in all_sets.items():
        cells, ups, downs = [], 0, 0
        for test in tasks:
            score = stats.get((sets[test], test)) if test in sets else None
            mark = None if score is None or alone[test] is None else marked(score, alone[test], k)
            ups, downs = ups + (mark == "higher"), downs + (mark == "lower")
            cells.append(_text(score) + _ARROWS[mark])
        lines.append([label, *cells, str(ups), str(downs)])
    return markdown_table(header, lines)


def all_but_one_table(stats: Stats, tasks: Sequence[str], k: float = 1.5) -> str:
    """The Markdown table of seed 003 Table 6: All, then All minus each task, marked against
    All (↑: the task set does better on that column without the removed task).

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks, in column order.
    :param k: the rule's width.
    """
    every = tuple(tasks)
    header = ["", *(t.upper() for t in tasks), "#↑", "#↓"]
    lines = [["All", *(_text(stats.get((every, t))) for t in tasks), "", ""]]
    ups_per_column = {t: 0 for t in tasks}
    downs_per_column = {t: 0 for t in tasks}
    for removed in tasks:
        subset = tuple(t for t in tasks if t != removed)
        cells, ups, downs = [], 0, 0
        for test in tasks:
            if test == removed:
                cells.append("")
                continue
            score, full = stats.get((subset, test)), stats.get((every, test))
            mark = None if score is None or full is None else marked(score, full, k)
            ups, downs = ups + (mark == "higher"), downs + (mark == "lower")
            ups_per_column[test] += mark == "higher"
            downs_per_column[test] += mark == "lower"
            cells.append(_text(score) + _ARROWS[mark])
        lines.append([f"All - {removed.upper()}", *cells, str(ups), str(downs)])
    lines.append(["#↑", *(str(ups_per_column[t]) for t in tasks), "", ""])
    lines.append(["#↓", *(str(downs_per_column[t]) for t in tasks), "", ""])
    return markdown_table(header, lines)


def write_scores_csv(stats: Stats, path: str | os.PathLike[str]) -> Path:
    """Every (task set, test task) result as CSV: tasks, test task, mean, std, seeds.

    :param stats: ``(task set, test task) -> Score``.
    :param path: the file to write.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task_set", "test_task", "mean", "std", "seeds"])
        for (task_set, test), score in sorted(stats.items()):
            writer.writerow(["+".join(task_set), test, repr(score.mean), repr(score.std), score.n])
    return target


def few_seeds_note(stats: Stats) -> list[str]:
    """The report's note line when some results have fewer than two seeds (and so no marks),
    else nothing.

    :param stats: ``(task set, test task) -> Score``.
    """
    few = sum(score.n < MIN_RULE_SEEDS for score in stats.values())
    if not few:
        return []
    which = "all" if few == len(stats) else f"{few} of"
    return [
        f"Note: {which} {len(stats)} results have fewer than {MIN_RULE_SEEDS} seeds; "
        f"{FEW_SEEDS_NOTE}."
    ]


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def metrics_note(tasks: Sequence[str], metrics: Mapping[str, str] | None) -> str:
    """What the scores measure: the tasks grouped by metric, in the order the metrics first
    appear, e.g. ``"token accuracy for UPOS and POS; span F1 (IOB2) for NER"``.

    :param tasks: the study's tasks, in column order.
    :param metrics: ``task -> metric name`` (`mtl_sched.data.task.METRICS`); ``None`` when
        unknown, which gives ``"each task's metric"``.
    :raises ValueError: naming ``metrics`` when it lacks a task.
    """
    if metrics is None:
        return "each task's metric"
    missing = [t for t in tasks if t not in metrics]
    if missing:
        raise ValueError(f"metrics names no metric for tasks {missing}")
    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(metrics[task], []).append(task.upper())
    return "; ".join(
        f"{METRIC_DESCRIPTIONS.get(metric, metric)} for {_listed(names)}"
        for metric, names in groups.items()
    )


def write_relations_report(
    stats: Stats,
    tasks: Sequence[str],
    arch: str,
    oracles: Mapping[str, TaskSet],
    out: str | os.PathLike[str],
    *,
    embeddings: Sequence[Mapping[str, Sequence[float]]] = (),
    k: float = 1.5,
    settings_note: str = "",
    metrics: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``relations_report.md`` (both tables), ``relations_scores.csv``, the benefit/harm
    graph ``relations_graph.png`` and, given task embeddings, ``task_embeddings_tsne.png``.

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks, in column order.
    :param arch: the architecture, for the captions.
    :param oracles: each test task's Oracle set.
    :param out: the output directory.
    :param embeddings: per seed, ``task -> embedding`` of the All model (TE+DEC).
    :param k: the rule's width.
    :param settings_note: a line naming the data and model settings of the numbers.
    :param metrics: ``task -> metric name``, for the header's account of what the scores
        measure (`metrics_note`; e.g. ``RelationsConfig.task_metrics()``).
    """
    from mtl_sched.studies.relations.figures import plot_embedding_map, plot_relation_graph

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    seeds = sorted({score.n for score in stats.values()})
    oracle_text = "; ".join(f"{t}: {'+'.join(s)}" for t, s in oracles.items()) or "none"
    parts = [
        f"# Task relations, {arch.upper()}",
        "",
        f"Test scores (%) as mean ± std over {'/'.join(map(str, seeds)) or 0} seeds: "
        f"{metrics_note(tasks, metrics)}. ↑ / ↓: higher / lower than STL (All-but-one: than "
        f"All) by seed 003's rule with k = {k}.",
        *few_seeds_note(stats),
        settings_note,
        "",
        "## STL, pairwise, All and Oracle (seed 003 Tables 3-5)",
        "",
        pairwise_table(stats, tasks, oracles, k),
        "",
        f"Oracle sets: {oracle_text}.",
        "",
        "## All and All-but-one (seed 003 Table 6)",
        "",
        all_but_one_table(stats, tasks, k),
        "",
    ]
    report = root / "relations_report.md"
    report.write_text("\n".join(parts))
    paths = [report, write_scores_csv(stats, root / "relations_scores.csv")]
    paths.append(plot_relation_graph(stats, tasks, root / "relations_graph.png", k))
    if embeddings and all(len(e) >= 3 for e in embeddings):
        paths.append(plot_embedding_map(embeddings, root / "task_embeddings_tsne.png"))
    return paths

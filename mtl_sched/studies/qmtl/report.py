"""Report of the Q-MTL study: Markdown tables and `write_report`, from the results-store rows.

The rows are read as described in `mtl_sched.studies.qmtl.rows`; scores are fractions and are
printed as percentages. The PNG figures live in `mtl_sched.studies.qmtl.figures` and are
re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mtl_sched.reporting.tables import markdown_table
from mtl_sched.results import ResultRow
from mtl_sched.studies.qmtl.figures import (
    noise_figure,
    norms_figure,
    per_head_figure,
    selection_figure,
    time_figure,
)
from mtl_sched.studies.qmtl.rows import (
    NER,
    SPLITS,
    STL_AVG,
    UPOS,
    Cells,
    cell_values,
    grid_ks,
    head_norms,
    head_pairs,
    mean_of_means,
    noise_curves,
    ordered_tasks,
    select_cells,
    selection_data,
    settings_label,
    train_times,
)

__all__ = [
    "NER", "PAPER_NER", "PAPER_TABLE1", "SPLITS", "UPOS", "Cells", "accuracy_table", "ner_table",
    "noise_figure", "noise_table", "norms_figure", "norms_summary", "per_head_figure",
    "per_head_summary", "selection_figure", "selection_table", "time_figure", "time_table",
    "write_report",
]  # fmt: skip

#: dev accuracy (%) of STL (k = 1) and Q-MTL with k = 10 and k = 30 (seed paper, Table 1)
PAPER_TABLE1: dict[str, tuple[float, float, float]] = {
    "en_ewt": (94.99, 95.23, 95.21),
    "hu_szeged": (93.95, 94.25, 93.79),
    "eu_bdt_v1.4": (94.49, 94.81, 94.59),
}
#: test span F1 (%) of STL, Q-MTL and the ensemble, k = 10, per train fraction (Table 3)
PAPER_NER: dict[float, tuple[float, float, float]] = {
    1.0: (86.68, 86.88, 87.86),
    0.1: (77.54, 80.24, 78.52),
}


def _fmt(values: Sequence[float]) -> str:
    if len(values) == 0:
        return "-"
    array = np.asarray(values, dtype=float) * 100
    # the sample std is undefined for one seed; report 0 rather than nan
    std = float(array.std(ddof=1)) if array.size >= 2 else 0.0
    return f"{array.mean():.2f} ± {std:.2f} (n={array.size})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def _paper(known: Sequence[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in known) if known else "-"


def _table(caption: str, header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    return f"{caption}\n\n{markdown_table(header, lines)}\n"


def accuracy_table(rows: Sequence[ResultRow], split: str = "validation") -> str:
    """UPOS accuracy of STL, Q-MTL k and Ensemble k per treebank (seed paper, Table 1).

    Uses the ``qmtl-upos`` rows without label noise (train fraction 1); cells are
    ``mean ± std (n=seeds)`` in percent, the average line is the mean of the treebank means.

    :param rows: result rows of the study.
    :param split: ``"validation"`` (with the paper's dev numbers) or ``"test"``.
    :returns: a Markdown table, or ``""`` when there are no such rows.
    """
    cells = {
        k: s for k, s in select_cells(rows, UPOS, split, "score").items() if k[2:] == (0.0, 1.0)
    }
    if not cells:
        return ""
    columns = [("STL", "stl-0")]
    for k in grid_ks(cells):
        columns += [(f"Q-MTL {k}", f"qmtl-k{k}"), (f"Ensemble {k}", f"ensemble-k{k}")]
    paper = split == "validation"  # the paper reports dev accuracy only
    tasks = ordered_tasks(cells)
    lines = [
        [task, *(_fmt(cell_values(cells, task, s)) for _, s in columns)]
        + ([_paper(PAPER_TABLE1.get(task))] if paper else [])
        for task in tasks
    ]
    average = [_pct(mean_of_means([cell_values(cells, t, s) for t in tasks])) for _, s in columns]
    lines.append(["average", *average] + (["-"] if paper else []))
    header = ["treebank", *(name for name, _ in columns)] + (["paper (k=1/10/30)"] if paper else [])
    caption = (
        f"UPOS accuracy (%) on {split}, mean ± std over seeds; label noise 0; "
        f"{settings_label(rows, UPOS)}."
    )
    return _table(caption, header, lines)


def per_head_summary(rows: Sequence[ResultRow], split: str = "test") -> str:
    """Per treebank: Q-MTL heads compared with their STL counterparts (see `per_head_figure`).

    :param rows: result rows of the study.
    :param split: ``"validation"`` or ``"test"``.
    :returns: a Markdown table (pairs, heads strictly better than their STL model, mean
        difference in points), or ``""`` when there are no pairs.
    """
    k, pairs = head_pairs(rows, split)
    lines = []
    for task, points in pairs.items():
        stl, head = np.array(points).T
        wins = int((head > stl).sum())
        lines.append([task, str(len(points)), str(wins), f"{np.mean(head - stl) * 100:+.2f}"])
    caption = f"Q-MTL {k} head j vs STL model j on {split}, same treebank and seed; "
    header = ["treebank", "pairs", "Q-MTL head better", "mean difference (points)"]
    return _table(caption + settings_label(rows, UPOS) + ".", header, lines) if pairs else ""


def norms_summary(rows: Sequence[ResultRow]) -> str:
    """Mean Frobenius norms of V and W per treebank, Q-MTL heads vs STL models.

    :param rows: result rows of the study.
    :returns: a Markdown table, or ``""`` when there are no norm rows.
    """
    k, norms = head_norms(rows)
    lines = []
    for task in dict.fromkeys(task for _, task, _ in norms):
        line = [task]
        for key in ((m, task, name) for m in ("V", "W") for name in ("Q-MTL", "STL")):
            line.append(f"{np.mean(norms[key]):.3f} (n={len(norms[key])})" if key in norms else "-")
        lines.append(line)
    header = ["treebank", f"‖V‖ Q-MTL {k}", "‖V‖ STL", f"‖W‖ Q-MTL {k}", "‖W‖ STL"]
    caption = f"Mean Frobenius norms over heads (models) and seeds; {settings_label(rows, UPOS)}."
    return _table(caption, header, lines) if norms else ""


def noise_table(rows: Sequence[ResultRow], split: str = "test") -> str:
    """UPOS score against label noise for STL, Q-MTL k and Ensemble k (paper Fig. 5 as a table).

    k is the largest with Q-MTL rows at every noise level present; "STL" is the mean of the k
    single models stl-0..stl-(k-1) per seed. The average column is the mean of treebank means.

    :param rows: result rows of the study.
    :param split: ``"validation"`` or ``"test"``.
    :returns: a Markdown table, or ``""`` when there are no such rows.
    """
    curves = noise_curves(rows, split)
    if curves is None:
        return ""
    k, levels, tasks, values = curves
    lines = []
    for noise in levels:
        for method in (STL_AVG, f"Q-MTL {k}", f"Ensemble {k}"):
            groups = [values[method, t, noise] for t in tasks]
            lines.append([f"{noise:g}", method, _pct(mean_of_means(groups)), *map(_fmt, groups)])
    caption = (
        f"UPOS score (%) on {split} against label noise, k = {k}; {settings_label(rows, UPOS)}."
    )
    return _table(caption, ["label noise", "method", "average", *tasks], lines)


def time_table(rows: Sequence[ResultRow]) -> str:
    """Mean training seconds per treebank and the ratios to STL (paper Fig. 6/7).

    :param rows: result rows of the study (``model`` split, no label noise, full data).
    :returns: a Markdown table, or ``""`` when there are no timing rows.
    """
    timed = train_times(rows)
    if timed is None:
        return ""
    columns, tasks, means = timed
    header = ["treebank", "STL (s)"]
    for name, _ in columns[1:]:
        header += [f"{name} (s)", f"{name} / STL"]
    lines = []
    for task in tasks:
        stl = means.get((task, "stl-0"))
        line = [task, "-" if stl is None else f"{stl:.1f}"]
        for _, scheduler in columns[1:]:
            seconds = means.get((task, scheduler))
            line.append("-" if seconds is None else f"{seconds:.1f}")
            line.append("-" if seconds is None or not stl else f"{seconds / stl:.2f}")
        lines.append(line)
    caption = f"Training time, mean over seeds; {settings_label(rows, UPOS)}."
    return _table(caption, header, lines)


def selection_table(rows: Sequence[ResultRow], split: str = "test") -> str:
    """Model averaging vs model selection, with (Q-MTL) and without (PTA) the ReLU layer.

    :param rows: result rows of the study (the largest k with both qmtl and pta rows).
    :param split: ``"validation"`` or ``"test"``.
    :returns: a Markdown table per treebank and label noise, or ``""`` when there are no rows.
    """
    chosen = selection_data(rows, split)
    if chosen is None:
        return ""
    k, keys, names, values = chosen
    lines = [[t, f"{n:g}", *(_fmt(values[t, n, name]) for name in names)] for t, n in keys]
    caption = (
        f"UPOS score (%) on {split}, k = {k}: averaging the heads' distributions (score) vs the "
        f"head best on validation (score_select); {settings_label(rows, UPOS)}."
    )
    return _table(caption, ["treebank", "label noise", *names], lines)


def ner_table(rows: Sequence[ResultRow], split: str = "test") -> str:
    """CoNLL-2003 NER span F1 of STL, Q-MTL k and Ensemble k per train fraction (Table 3).

    :param rows: result rows of the study (``qmtl-ner``, no label noise; the largest k).
    :param split: ``"validation"`` or ``"test"`` (only the test table shows the paper's numbers).
    :returns: a Markdown table, or ``""`` when there are no such rows.
    """
    cells = {key: s for key, s in select_cells(rows, NER, split, "score").items() if key[2] == 0.0}
    if not cells:
        return ""
    columns = [("STL", "stl-0")]
    if ks := grid_ks(cells, fraction=None):
        columns += [
            (f"Q-MTL {ks[-1]}", f"qmtl-k{ks[-1]}"),
            (f"Ensemble {ks[-1]}", f"ensemble-k{ks[-1]}"),
        ]
    paper = split == "test"  # the paper reports test F1
    lines = []
    for fraction in sorted({key[3] for key in cells}, reverse=True):
        line = [f"{fraction * 100:g}%"]
        line += [_fmt(cell_values(cells, "ner", s, 0.0, fraction)) for _, s in columns]
        lines.append(line + ([_paper(PAPER_NER.get(fraction))] if paper else []))
    header = ["train data", *(name for name, _ in columns)]
    header += ["paper (STL/Q-MTL/ensemble, k=10)"] if paper else []
    caption = f"NER span F1 (%) on {split}, mean ± std over seeds; {settings_label(rows, NER)}."
    return _table(caption, header, lines)


def _section(
    rows: Sequence[ResultRow], out: Path, suffix: str, level: str
) -> tuple[list[str], list[Path]]:
    parts: list[tuple[str, list[str], Callable[..., Path | None] | None, str]] = [
        ("UPOS accuracy (Table 1)", [accuracy_table(rows, s) for s in SPLITS], None, ""),
        ("Q-MTL heads vs STL models (Fig. 3)", [per_head_summary(rows, s) for s in SPLITS],
         per_head_figure, "qmtl_per_head"),
        ("Frobenius norms (Fig. 4)", [norms_summary(rows)], norms_figure, "qmtl_norms"),
        ("Label noise (Fig. 5)", [noise_table(rows, s) for s in SPLITS],
         noise_figure, "qmtl_noise"),
        ("Training time (Fig. 6/7)", [time_table(rows)], time_figure, "qmtl_time"),
        ("Model averaging vs selection, with and without the ReLU layer",
         [selection_table(rows, s) for s in SPLITS], selection_figure, "qmtl_selection"),
        ("CoNLL-2003 NER (Table 3)", [ner_table(rows, s) for s in SPLITS], None, ""),
    ]  # fmt: skip
    lines: list[str] = []
    figures: list[Path] = []
    missing: list[str] = []
    for title, tables, figure, stem in parts:
        path = figure(rows, out / f"{stem}{suffix}.png") if figure else None
        tables = [table for table in tables if table]
        if not tables and path is None:
            missing.append(title)
            continue
        lines += [f"{level} {title}", ""] + [
            line for table in tables for line in (table.rstrip("\n"), "")
        ]
        if path is not None:
            figures.append(path)
            lines += [f"![{title}]({path.name})", ""]
    if missing:
        lines += [f"{level} Parts without rows", ""] + [f"- {title}" for title in missing] + [""]
    return lines, figures


def write_report(rows: Sequence[ResultRow], out_dir: str | Path) -> list[Path]:
    """Write ``qmtl_report.md`` and the PNG figures of every part that has rows.

    Rows of several settings (``config["settings"]``) get one section each, and their figures a
    ``_{settings}`` suffix, so that seeds of different settings are never pooled.

    :param rows: result rows (rows of other benchmarks are ignored).
    :param out_dir: output directory, created if missing.
    :returns: the written paths, the Markdown file first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ours = [row for row in rows if row.key.benchmark in (UPOS, NER)]
    groups = sorted({str(row.config.get("settings", "?")) for row in ours})
    lines = ["# Q-MTL study report", ""]
    if not groups:
        lines += ["No rows of the Q-MTL study (`qmtl-upos`, `qmtl-ner`).", ""]
    figures: list[Path] = []
    for settings in groups:
        subset = [row for row in ours if str(row.config.get("settings", "?")) == settings]
        suffix, level = "", "##"
        if len(groups) > 1:
            lines += [f"## settings: {settings}", ""]
            suffix, level = "_" + re.sub(r"[^A-Za-z0-9]+", "-", settings), "###"
        section, written = _section(subset, out_dir, suffix, level)
        lines += section
        figures += written
    markdown = out_dir / "qmtl_report.md"
    markdown.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [markdown, *figures]

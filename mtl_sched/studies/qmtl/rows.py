"""Row selection and aggregation for the Q-MTL study report.

The study stores one row per number (see `mtl_sched.results.ResultRow`): ``key.scheduler`` is
the method label (``stl-{j}``, ``qmtl-k{k}``, ``pta-k{k}``, ``ensemble-k{k}``), ``row.task`` the
treebank (or ``"ner"``), and ``row.config`` holds ``label_noise``, ``train_fraction`` and the
``settings`` name. Every function takes plain rows, so a report can be rebuilt from any subset
of the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from mtl_sched.results import ResultRow

UPOS = "qmtl-upos"
NER = "qmtl-ner"
SPLITS = ("validation", "test")
#: label of the mean of the k single models, in the label-noise table and figure
STL_AVG = "STL (mean of the k single models)"
_TREEBANK_ORDER = ("en_ewt", "en_lines", "hu_szeged", "eu_bdt_v1.4")
_METHOD = re.compile(r"^(qmtl|pta|ensemble)-k(\d+)$")

# (task, scheduler, label noise, train fraction) -> seed -> value
Cells = dict[tuple[str, str, float, float], dict[int, float]]


def select_cells(rows: Sequence[ResultRow], benchmark: str, split: str, metric: str) -> Cells:
    """Values of one benchmark, split and metric, by (task, scheduler, noise, fraction) and seed."""
    out: Cells = {}
    for row in rows:
        if row.key.benchmark == benchmark and row.split == split and row.metric == metric:
            noise = float(row.config["label_noise"])
            key = (row.task, row.key.scheduler, noise, float(row.config["train_fraction"]))
            out.setdefault(key, {})[row.key.seed] = float(row.value)
    return out


def _seeds(
    cells: Cells, task: str, scheduler: str, noise: float = 0.0, fraction: float = 1.0
) -> dict[int, float]:
    return cells.get((task, scheduler, noise, fraction), {})


def cell_values(
    cells: Cells, task: str, scheduler: str, noise: float = 0.0, fraction: float = 1.0
) -> list[float]:
    """The values over seeds of one cell, empty when the cell is missing."""
    return list(_seeds(cells, task, scheduler, noise, fraction).values())


def _ks(
    cells: Cells, method: str, noise: float | None = 0.0, fraction: float | None = 1.0
) -> list[int]:
    found = set()
    for _, scheduler, n, f in cells:
        match = _METHOD.match(scheduler)
        if match and match[1] == method and noise in (None, n) and fraction in (None, f):
            found.add(int(match[2]))
    return sorted(found)


def grid_ks(cells: Cells, fraction: float | None = 1.0) -> list[int]:
    """The k > 1 with Q-MTL or ensemble cells at noise 0 and ``fraction`` (None: any), ascending."""
    # k = 1 would repeat the STL column
    found = set(_ks(cells, "qmtl", fraction=fraction)) | set(
        _ks(cells, "ensemble", fraction=fraction)
    )
    return [k for k in sorted(found) if k > 1]


def ordered_tasks(cells: Cells) -> list[str]:
    """The tasks of the cells, known treebanks first in their usual order, then the rest sorted."""
    names = {task for task, *_ in cells}
    known = [name for name in _TREEBANK_ORDER if name in names]
    return known + sorted(names - set(known))


def mean_of_means(groups: Sequence[Sequence[float]]) -> float | None:
    """The mean of the group means, or None when there are no groups or any group is empty."""
    # an average over only some treebanks would not be comparable across columns
    if not groups or any(len(values) == 0 for values in groups):
        return None
    return float(np.mean([np.mean(values) for values in groups]))


def settings_label(rows: Sequence[ResultRow], benchmark: str) -> str:
    """``"settings: ..."`` with the sorted settings names of the benchmark's rows, and their
    sentence limits when the splits were cut."""
    names = set()
    for row in rows:
        if row.key.benchmark != benchmark:
            continue
        name = str(row.config.get("settings", "?"))
        cuts = [
            f"first {row.config[limit]} {split} sentences"
            for limit, split in (("train_sentences", "training"), ("eval_sentences", "dev/test"))
            if row.config.get(limit) is not None
        ]
        names.add(name + (f" ({', '.join(cuts)})" if cuts else ""))
    return "settings: " + ", ".join(sorted(names))


def head_pairs(
    rows: Sequence[ResultRow], split: str
) -> tuple[int, dict[str, list[tuple[float, float]]]]:
    """k and, per treebank, (stl-j score, Q-MTL k head j score) pairs of the same seed."""
    cells = select_cells(rows, UPOS, split, "score")
    ks = _ks(select_cells(rows, UPOS, split, "head0_score"), "qmtl")
    pairs: dict[str, list[tuple[float, float]]] = {}
    for j in range(ks[-1] if ks else 0):
        heads = select_cells(rows, UPOS, split, f"head{j}_score")
        for task in ordered_tasks(heads):
            stl = _seeds(cells, task, f"stl-{j}")
            for seed, value in _seeds(heads, task, f"qmtl-k{ks[-1]}").items():
                if seed in stl:
                    pairs.setdefault(task, []).append((stl[seed], value))
    return (ks[-1] if ks else 0), pairs


def head_norms(rows: Sequence[ResultRow]) -> tuple[int, dict[tuple[str, str, str], list[float]]]:
    """k and the Frobenius norms by (matrix, treebank, ``"Q-MTL"`` or ``"STL"``)."""
    # the norms are pooled over heads (or models) and seeds
    out: dict[tuple[str, str, str], list[float]] = {}
    ks = _ks(select_cells(rows, UPOS, "model", "head0_frobenius_W"), "qmtl")
    for matrix in ("V", "W") if ks else ():
        stl = select_cells(rows, UPOS, "model", f"frobenius_{matrix}")
        for j in range(ks[-1]):
            heads = select_cells(rows, UPOS, "model", f"head{j}_frobenius_{matrix}")
            for name, cells, scheduler in (
                ("Q-MTL", heads, f"qmtl-k{ks[-1]}"),
                ("STL", stl, f"stl-{j}"),
            ):
                for task in ordered_tasks(cells):
                    if values := cell_values(cells, task, scheduler):
                        out.setdefault((matrix, task, name), []).extend(values)
    return (ks[-1] if ks else 0), out


_Curves = tuple[int, list[float], list[str], dict[tuple[str, str, float], list[float]]]


def noise_curves(rows: Sequence[ResultRow], split: str) -> _Curves | None:
    """k, noise levels, treebanks and scores by (method, treebank, noise), or None without rows."""
    cells = {key: s for key, s in select_cells(rows, UPOS, split, "score").items() if key[3] == 1.0}
    levels = sorted({key[2] for key in cells})
    present = {key[1:3] for key in cells}
    ks = [k for k in _ks(cells, "qmtl", None) if all((f"qmtl-k{k}", n) in present for n in levels)]
    if not ks:
        return None
    k, tasks = ks[-1], ordered_tasks(cells)
    values: dict[tuple[str, str, float], list[float]] = {}
    for task in tasks:
        for noise in levels:
            singles = [_seeds(cells, task, f"stl-{j}", noise) for j in range(k)]
            # a seed counts only when all k single models finished for it
            common = sorted(set.intersection(*(set(s) for s in singles)))
            values[STL_AVG, task, noise] = [float(np.mean([s[i] for s in singles])) for i in common]
            values[f"Q-MTL {k}", task, noise] = cell_values(cells, task, f"qmtl-k{k}", noise)
            values[f"Ensemble {k}", task, noise] = cell_values(cells, task, f"ensemble-k{k}", noise)
    return k, levels, tasks, values


_Times = tuple[list[tuple[str, str]], list[str], dict[tuple[str, str], float]]


def train_times(rows: Sequence[ResultRow]) -> _Times | None:
    """(name, scheduler) columns, treebanks and mean training seconds, or None without rows."""
    cells = select_cells(rows, UPOS, "model", "train_seconds")
    cells = {key: seeds for key, seeds in cells.items() if key[2:] == (0.0, 1.0)}
    if not cells:
        return None
    columns = [("STL", "stl-0")]
    for k in grid_ks(cells):
        columns += [(f"Q-MTL {k}", f"qmtl-k{k}"), (f"Ensemble {k}", f"ensemble-k{k}")]
    means = {
        (task, s): float(np.mean(cell_values(cells, task, s)))
        for task in ordered_tasks(cells)
        for _, s in columns
        if cell_values(cells, task, s)
    }
    return columns, ordered_tasks(cells), means


_Selection = tuple[
    int, list[tuple[str, float]], list[str], dict[tuple[str, float, str], list[float]]
]


def selection_data(rows: Sequence[ResultRow], split: str) -> _Selection | None:
    """k, (treebank, noise) keys, variant names and their scores, or None without rows."""
    score = select_cells(rows, UPOS, split, "score")
    select = select_cells(rows, UPOS, split, "score_select")
    both = sorted(set(_ks(score, "qmtl", None)) & set(_ks(score, "pta", None)))
    if not both:
        return None
    k = both[-1]
    variants = [
        ("Q-MTL averaging", score, f"qmtl-k{k}"),
        ("Q-MTL selection", select, f"qmtl-k{k}"),
        ("PTA averaging", score, f"pta-k{k}"),
        ("PTA selection", select, f"pta-k{k}"),
    ]
    order = {task: i for i, task in enumerate(ordered_tasks(score))}
    keys = {(t, n) for t, s, n, f in score if f == 1.0 and s in (f"qmtl-k{k}", f"pta-k{k}")}
    keys = sorted(keys, key=lambda key: (order[key[0]], key[1]))
    values = {
        (task, noise, name): cell_values(cells, task, scheduler, noise)
        for task, noise in keys
        for name, cells, scheduler in variants
    }
    return k, keys, [name for name, *_ in variants], values

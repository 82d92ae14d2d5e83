"""PNG figures of the Q-MTL study report, drawn from the results-store rows.

Scores are fractions and are plotted as percentages; each function writes nothing and returns
None when the rows it needs are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mtl_sched.reporting.figures import save_figure
from mtl_sched.results import ResultRow
from mtl_sched.studies.qmtl.rows import (
    STL_AVG,
    UPOS,
    head_norms,
    head_pairs,
    mean_of_means,
    noise_curves,
    selection_data,
    settings_label,
    train_times,
)


def _plot_against_noise(
    ax: plt.Axes, levels: Sequence[float], scores: Sequence[float | None], label: str
) -> None:
    """Draw one curve of scores against label noise, a gap where a score is missing.

    :param ax: the panel.
    :param levels: the label-noise levels (x axis).
    :param scores: the score (a fraction) at each level, or ``None``.
    :param label: the curve's legend entry.
    """
    ax.plot(levels, [np.nan if s is None else s * 100 for s in scores], "o-", label=label)
    ax.set_xlabel("label noise")


def per_head_figure(
    rows: Sequence[ResultRow], path: str | Path, split: str = "test"
) -> Path | None:
    """Scatter of each Q-MTL head's score against its STL counterpart's (paper Fig. 3).

    Head j of Q-MTL with the largest k having head scores (no label noise) is paired with
    ``stl-{j}`` of the same treebank and seed; points above the diagonal are heads that beat
    their STL model.

    :param rows: result rows of the study.
    :param path: output PNG path.
    :param split: ``"validation"`` or ``"test"``.
    :returns: the path, or None (nothing written) when there are no pairs.
    """
    k, pairs = head_pairs(rows, split)
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    values = np.array([v for points in pairs.values() for p in points for v in p]) * 100
    pad = max(float(np.ptp(values)) * 0.05, 0.05)
    ends = [values.min() - pad, values.max() + pad]
    ax.plot(ends, ends, "k--", lw=1, label="y = x")
    for task, points in pairs.items():
        stl, head = np.array(points).T * 100
        ax.scatter(stl, head, s=18, alpha=0.8, label=task)
    ax.set_xlabel(f"STL model j, {split} score (%)")
    ax.set_ylabel(f"Q-MTL {k}, head j, {split} score (%)")
    ax.set_title(f"Q-MTL heads vs STL models ({settings_label(rows, UPOS)})")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def norms_figure(rows: Sequence[ResultRow], path: str | Path) -> Path | None:
    """Box plots of the Frobenius norms of V and W, Q-MTL heads vs STL models (paper Fig. 4).

    :param rows: result rows of the study (Q-MTL with the largest k; STL models 0..k-1).
    :param path: output PNG path.
    :returns: the path, or None (nothing written) when there are no norm rows.
    """
    k, norms = head_norms(rows)
    if not norms:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, matrix in zip(axes, ("V", "W"), strict=True):
        tasks = list(dict.fromkeys(task for m, task, _ in norms if m == matrix))
        for i, task in enumerate(tasks):
            for offset, name, colour in ((0, "Q-MTL", "tab:orange"), (1, "STL", "tab:blue")):
                if values := norms.get((matrix, task, name)):
                    box = ax.boxplot([values], positions=[3 * i + offset], patch_artist=True)
                    box["boxes"][0].set_facecolor(colour)
        ax.set_xticks([3 * i + 0.5 for i in range(len(tasks))], tasks)
        ax.set_title(f"‖{matrix}‖_F" if tasks else f"‖{matrix}‖_F: no rows")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:orange", "tab:blue")]
    axes[1].legend(handles, [f"Q-MTL {k} heads", "STL models"], fontsize=8)
    fig.suptitle(f"Frobenius norms of the output layers ({settings_label(rows, UPOS)})")
    return save_figure(fig, path)


def noise_figure(rows: Sequence[ResultRow], path: str | Path, split: str = "test") -> Path | None:
    """Score against label noise, averaged over treebanks and seeds (paper Fig. 5).

    :param rows: result rows of the study.
    :param path: output PNG path.
    :param split: ``"validation"`` or ``"test"``.
    :returns: the path, or None (nothing written) when there are no such rows.
    """
    curves = noise_curves(rows, split)
    if curves is None:
        return None
    k, levels, tasks, values = curves
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method in (STL_AVG, f"Q-MTL {k}", f"Ensemble {k}"):
        means = [mean_of_means([values[method, t, n] for t in tasks]) for n in levels]
        _plot_against_noise(ax, levels, means, method)
    ax.set_ylabel(f"{split} score (%), mean over treebanks")
    ax.set_title(f"Label noise, k = {k} ({settings_label(rows, UPOS)})")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def time_figure(rows: Sequence[ResultRow], path: str | Path) -> Path | None:
    """Bars of the mean training seconds per treebank on a log scale (paper Fig. 6/7).

    :param rows: result rows of the study.
    :param path: output PNG path.
    :returns: the path, or None (nothing written) when there are no timing rows.
    """
    timed = train_times(rows)
    if timed is None:
        return None
    columns, tasks, means = timed
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(tasks) * len(columns)), 4.5))
    width = 0.8 / len(columns)
    for c, (name, scheduler) in enumerate(columns):
        heights = [means.get((t, scheduler), np.nan) for t in tasks]
        ax.bar(np.arange(len(tasks)) + c * width, heights, width, label=name)
    ax.set_xticks(np.arange(len(tasks)) + width * (len(columns) - 1) / 2, tasks)
    ax.set_yscale("log")
    ax.set_ylabel("training time (s)")
    ax.set_title(f"Training time ({settings_label(rows, UPOS)})")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def selection_figure(
    rows: Sequence[ResultRow], path: str | Path, split: str = "test"
) -> Path | None:
    """One panel per treebank: the four variants of `selection_table` against label noise.

    :param rows: result rows of the study.
    :param path: output PNG path.
    :param split: ``"validation"`` or ``"test"``.
    :returns: the path, or None (nothing written) when there are no such rows.
    """
    chosen = selection_data(rows, split)
    if chosen is None:
        return None
    k, keys, names, values = chosen
    tasks = list(dict.fromkeys(task for task, _ in keys))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        levels = [noise for t, noise in keys if t == task]
        for name in names:
            groups = [values[task, n, name] for n in levels]
            _plot_against_noise(
                ax, levels, [float(np.mean(g)) if g else None for g in groups], name
            )
        ax.set_title(task)
    axes[0, 0].set_ylabel(f"{split} score (%)")
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(f"Averaging vs selection, k = {k} ({settings_label(rows, UPOS)})")
    return save_figure(fig, path)

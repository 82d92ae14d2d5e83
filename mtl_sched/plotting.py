"""Figures of what schedulers did."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mtl_sched.training import RunResult


def schedule_shares(schedule: np.ndarray, windows: int) -> np.ndarray:
    """Share of the examples each task received in each of ``windows`` equal spans of examples.

    :param schedule: examples per task at each step, shape ``(steps, K)``.
    :param windows: number of spans of the example budget.
    :returns: shape ``(K, windows)``; each column sums to 1 (or 0 for an empty span).
    """
    counts = schedule.astype(float)
    cumulative = np.cumsum(counts.sum(axis=1))
    total = cumulative[-1] if len(cumulative) else 0.0
    shares = np.zeros((schedule.shape[1], windows))
    if total == 0:
        return shares
    span = np.minimum((cumulative - 1e-9) / total * windows, windows - 1).astype(int)
    for w in range(windows):
        in_span = counts[span == w].sum(axis=0)
        if in_span.sum() > 0:
            shares[:, w] = in_span / in_span.sum()
    return shares


class SchedulePanel(NamedTuple):
    """One scheduler's schedule as `plot_schedule_counts` draws it.

    :param counts: examples per task at each step, shape ``(steps, K)``.
    :param task_names: the K task names.
    :param examples_seen: training examples of the run (the x axis extent).
    """

    counts: np.ndarray
    task_names: Sequence[str]
    examples_seen: int


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG to ``path`` (creating its folder) and close it.

    :param fig: the figure.
    :param path: output PNG path.
    :param dpi: resolution.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_schedule_counts(
    panels: Mapping[str, SchedulePanel],
    path: str | Path,
    windows: int = 60,
    title: str = "Share of each window's examples given to each task",
) -> Path:
    """Write a PNG with one panel per label: which task got the examples over training.

    :param panels: label -> its schedule counts.
    :param path: output PNG path.
    :param windows: time resolution (spans of the example budget).
    :param title: the figure title.
    """
    labels = list(panels)
    fig, axes = plt.subplots(
        len(labels), 1, figsize=(9, 1.1 + 0.9 * len(labels)), squeeze=False, sharex=True
    )
    image = None
    for ax, label in zip(axes[:, 0], labels, strict=True):
        panel = panels[label]
        shares = schedule_shares(np.asarray(panel.counts), windows)
        image = ax.imshow(
            shares,
            aspect="auto",
            cmap="viridis",
            vmin=0,
            vmax=1,
            extent=(0, panel.examples_seen, len(panel.task_names) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(panel.task_names)), panel.task_names, fontsize=7)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1, 0].set_xlabel("training examples seen")
    fig.suptitle(title)
    if image is not None:
        fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.8, label="share")
    return save_figure(fig, path)


def plot_schedules(runs: Mapping[str, RunResult], path: str | Path, windows: int = 60) -> Path:
    """Write a PNG with one panel per scheduler: which task got the examples over training.

    :param runs: scheduler label -> one of its runs.
    :param path: output PNG path.
    :param windows: time resolution (spans of the example budget).
    """
    panels = {
        label: SchedulePanel(run.schedule, run.task_names, run.examples_seen)
        for label, run in runs.items()
    }
    return plot_schedule_counts(panels, path, windows)

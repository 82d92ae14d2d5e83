"""The figures of the package, and the plotting helpers they share.

Schedules (`plot_schedules`, `plot_schedule_counts`): which task each scheduler trained over
time, drawn from a run's schedule counts (`schedule_shares`); `save_figure` writes any figure.

Figures of a scheduler comparison (`write_figures`), drawn from the series its trials stored:
each takes ``scheduler -> [series data, one per seed in seed order]`` as
`mtl_sched.reporting.collect.seed_series` returns it (the formats are those the sweep writes:
``validation_curve``, ``schedule`` and ``probe_histograms``) and returns the PNG it wrote, or
``None`` when nothing feeds the figure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "SchedulePanel",
    "ScheduledRun",
    "curves_figure",
    "histograms_figure",
    "is_selection",
    "plot_schedule_counts",
    "plot_schedules",
    "save_figure",
    "schedule_shares",
    "schedules_figure",
    "write_figures",
]


class ScheduledRun(Protocol):
    """What `plot_schedules` reads of a run (`mtl_sched.training.RunResult` offers it)."""

    @property
    def schedule(self) -> np.ndarray:
        """Examples per task at each step, shape ``(steps, K)``."""

    @property
    def task_names(self) -> Sequence[str]:
        """The K task names."""

    @property
    def examples_seen(self) -> int:
        """Training examples of the run."""


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


def plot_schedules(runs: Mapping[str, ScheduledRun], path: str | Path, windows: int = 60) -> Path:
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


SeedSeries = Mapping[str, Sequence[Mapping[str, Any]]]
#: at most this many task panels per scheduler in the histogram figure (a 4 x 4 grid)
MAX_HISTOGRAM_TASKS = 16


def curves_figure(curves: SeedSeries, path: str | os.PathLike[str]) -> Path | None:
    """Validation average score against training examples seen, one line per scheduler.

    A scheduler whose seeds were evaluated at the same points gets the mean over seeds (with a
    band of one population std); otherwise each seed gets a thin line of the scheduler's colour.

    :param curves: scheduler -> its ``validation_curve`` series, one per seed.
    :param path: the PNG to write.
    :returns: ``path``, or ``None`` (nothing written) when no scheduler has a non-empty curve.
    """
    usable = {
        label: [c for c in seeds if len(c.get("examples", ())) > 0]
        for label, seeds in curves.items()
    }
    usable = {label: seeds for label, seeds in usable.items() if seeds}
    if not usable:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, seeds) in enumerate(usable.items()):
        color = colors[index % len(colors)]
        xs = [np.asarray(c["examples"], dtype=float) for c in seeds]
        ys = [np.asarray(c["average"], dtype=float) * 100 for c in seeds]
        if all(x.shape == xs[0].shape and np.array_equal(x, xs[0]) for x in xs):
            mean, std = np.mean(ys, axis=0), np.std(ys, axis=0)
            ax.plot(xs[0], mean, color=color, label=f"{label} (n={len(seeds)})")
            if len(seeds) > 1:
                ax.fill_between(xs[0], mean - std, mean + std, color=color, alpha=0.15)
        else:
            for seed_index, (x, y) in enumerate(zip(xs, ys, strict=True)):
                name = f"{label} (each seed)" if seed_index == 0 else None
                ax.plot(x, y, color=color, linewidth=0.7, alpha=0.8, label=name)
    ax.set_xlabel("training examples seen")
    ax.set_ylabel("validation average score (x100)")
    ax.set_title("Validation average score during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def is_selection(counts: Any) -> bool:
    """Whether a schedule picks one task per step: every step has exactly one non-zero count.

    :param counts: examples per task at each step, shape ``(steps, K)``; an empty schedule is
        not a selection schedule.
    """
    array = np.asarray(counts)
    return array.ndim == 2 and array.shape[0] > 0 and bool(np.all((array != 0).sum(axis=1) == 1))


def schedules_figure(
    schedules: SeedSeries, path: str | os.PathLike[str], windows: int = 60
) -> tuple[Path | None, list[str]]:
    """A task-by-time heatmap of what each selection scheduler chose, first seed, one panel each.

    :param schedules: scheduler -> its ``schedule`` series, one per seed.
    :param path: the PNG to write.
    :param windows: time resolution (spans of the run's examples).
    :returns: ``path`` (``None`` when no scheduler selects) and the schedulers left out because
        their first seed's schedule is not a selection schedule.
    """
    panels: dict[str, SchedulePanel] = {}
    weighting = []
    for label, seeds in schedules.items():
        counts = np.asarray(seeds[0].get("counts", []))
        if not is_selection(counts):
            weighting.append(label)
            continue
        panels[label] = SchedulePanel(counts, list(seeds[0]["tasks"]), int(counts.sum()))
    if not panels:
        return None, weighting
    title = "Share of each window's examples given to each task (selection schedulers, first seed)"
    return plot_schedule_counts(panels, path, windows, title=title), weighting


def _histogram_stack(data: Mapping[str, Any]) -> np.ndarray:
    """Snapshots x tasks x bins, each snapshot's histogram scaled to sum 1 (its mass share)."""
    stack = np.asarray(data["histograms"], dtype=float)
    totals = stack.sum(axis=2, keepdims=True)
    return np.divide(stack, totals, out=np.zeros_like(stack), where=totals > 0)


def histograms_figure(
    histograms: SeedSeries, path: str | os.PathLike[str]
) -> tuple[Path | None, list[str]]:
    """How each task's probe uncertainty histogram evolved, first seed of each scheduler.

    One panel per task (a grid of up to 16 per scheduler): x = training examples seen, y = the
    histogram bin (margin from 0, certain, to 1), colour = the share of the probe's mass in the
    bin.

    :param histograms: scheduler -> its ``probe_histograms`` series, one per seed.
    :param path: the PNG to write.
    :returns: ``path`` (``None`` when no series has a snapshot) and notes on what was left out.
    """
    blocks, notes = [], []
    for label, seeds in histograms.items():
        data = seeds[0]
        if not data.get("examples"):
            continue
        tasks = list(data["tasks"])
        if len(tasks) > MAX_HISTOGRAM_TASKS:
            notes.append(
                f"{label}: histograms of the first {MAX_HISTOGRAM_TASKS} of {len(tasks)} tasks"
            )
        blocks.append((label, data, tasks[:MAX_HISTOGRAM_TASKS]))
    if not blocks:
        return None, notes
    columns = max(min(len(tasks), 4) for _, _, tasks in blocks)
    heights = [math.ceil(len(tasks) / columns) for _, _, tasks in blocks]
    fig, axes = plt.subplots(
        sum(heights), columns, figsize=(3.2 * columns, 2.4 * sum(heights)), squeeze=False
    )
    stacks = [_histogram_stack(data)[:, : len(tasks)] for _, data, tasks in blocks]
    # one colour scale for every panel, up to the largest share, so that panels compare
    top_share = max(float(stack.max()) if stack.size else 0.0 for stack in stacks) or 1.0
    top, image = 0, None
    for (label, data, tasks), stack, height in zip(blocks, stacks, heights, strict=True):
        examples = np.asarray(data["examples"], dtype=float)
        right = examples[-1] if examples[-1] > examples[0] else examples[0] + 1
        for index, ax in enumerate(axes[top : top + height].ravel()):
            if index >= len(tasks):
                ax.axis("off")
                continue
            image = ax.imshow(
                stack[:, index, :].T,
                aspect="auto",
                origin="lower",
                cmap="magma",
                vmin=0,
                vmax=top_share,
                extent=(examples[0], right, 0, 1),
            )
            ax.set_title(f"{label}: {tasks[index]}", fontsize=8)
            ax.tick_params(labelsize=7)
            if index % columns == 0:
                ax.set_ylabel("margin uncertainty", fontsize=8)
            if index >= len(tasks) - columns:
                ax.set_xlabel("examples seen", fontsize=8)
        top += height
    fig.suptitle("Probe uncertainty histograms during training (first seed)")
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="share of probe mass")
    return save_figure(fig, path), notes


def write_figures(
    curves: SeedSeries,
    schedules: SeedSeries,
    histograms: SeedSeries,
    out_dir: str | os.PathLike[str],
) -> tuple[list[Path], list[str]]:
    """Write ``curves.png``, ``schedules.png`` and ``histograms.png`` into ``out_dir``.

    :param curves: scheduler -> ``validation_curve`` series per seed.
    :param schedules: scheduler -> ``schedule`` series per seed.
    :param histograms: scheduler -> ``probe_histograms`` series per seed.
    :param out_dir: the output directory.
    :returns: the PNGs written and notes saying which figures (or panels) were skipped and why.
    """
    out = Path(out_dir)
    written, notes = [], []
    path = curves_figure(curves, out / "curves.png")
    if path is None:
        notes.append("curves.png skipped: no trial stored a validation curve")
    else:
        written.append(path)
    path, weighting = schedules_figure(schedules, out / "schedules.png")
    if path is None:
        notes.append(
            "schedules.png skipped: no selection scheduler (one task per step) stored a schedule"
        )
    else:
        written.append(path)
    if weighting:
        notes.append(
            f"schedules.png leaves out {', '.join(weighting)}: not selection schedules "
            "(some steps train several tasks)"
        )
    path, left_out = histograms_figure(histograms, out / "histograms.png")
    if path is None:
        notes.append("histograms.png skipped: no scheduler stored probe histograms")
    else:
        written.append(path)
    notes += left_out
    return written, notes

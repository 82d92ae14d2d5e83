"""Run several schedulers over several seeds at one example budget and summarize."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.scheduling import Scheduler
from mtl_sched.training import RunResult

SchedulerFactory = Callable[[], Scheduler]


def compare_schedulers(
    benchmark: Benchmark,
    schedulers: Mapping[str, SchedulerFactory],
    seeds: Sequence[int],
    progress: bool = False,
) -> dict[str, list[RunResult]]:
    """Train a fresh model under every scheduler for every seed, at the benchmark's budget.

    :param benchmark: the benchmark (its trainer config sets the budget).
    :param schedulers: label -> factory of a fresh scheduler.
    :param seeds: run seeds (model initialization and data order).
    :param progress: show a progress bar over runs.
    """
    results: dict[str, list[RunResult]] = {label: [] for label in schedulers}
    total = len(schedulers) * len(seeds)
    with tqdm(total=total, desc="comparing schedulers", unit="run", disable=not progress) as bar:
        for label, factory in schedulers.items():
            for seed in seeds:
                bar.set_postfix(scheduler=label, seed=seed)
                scheduler = factory()
                scheduler.prepare(benchmark)
                results[label].append(benchmark.make_trainer(seed).run(scheduler))
                bar.update()
    return results


def summary_table(results: Mapping[str, Sequence[RunResult]], split: str = "test") -> str:
    """A plain-text table: mean and std of the average score, and each task's share of examples.

    When a scheduler spent training examples before its runs (a weight search), a last column,
    "search examples", shows them: they are outside the equal budget of the comparison.

    :param results: label -> runs (all on the same tasks).
    :param split: ``"test"`` or ``"validation"`` (the selected model's validation score).
    """
    first = next(iter(results.values()))[0]
    names = first.task_names
    header = ["scheduler", f"avg {split} acc (mean ± std)", *[f"{n} share" for n in names], "steps"]
    show_preparation = any(r.preparation_examples for runs in results.values() for r in runs)
    if show_preparation:
        header.append("search examples")
    rows = []
    for label, runs in results.items():
        scores = [(r.test if split == "test" else r.best_validation).average_score for r in runs]
        shares = np.mean([r.task_share for r in runs], axis=0)
        row = [
            label,
            f"{np.mean(scores):.4f} ± {np.std(scores):.4f}",
            *[f"{s:.2f}" for s in shares],
            f"{np.mean([r.steps for r in runs]):.0f}",
        ]
        if show_preparation:
            row.append(f"{max(r.preparation_examples for r in runs)}")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)

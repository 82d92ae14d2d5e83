"""A scheduler comparison run in this process through the sweep harness, reported as
``mtl-sched report`` reports it.

`run_comparison` plans one trial per (scheduler, seed) (`mtl_sched.sweeps.plan_trials`), runs the
ones the results store lacks one after another in this process (`mtl_sched.sweeps.run_sweep`,
local backend, one worker: no process start-up for short runs) and returns the report of that
comparison (`mtl_sched.reporting.make_report`): the same trials, store, tables, seed 003's marks
and figures as ``mtl-sched compare`` followed by ``mtl-sched report``.

`compare_schedulers` and `summary_table`, the in-process loop and the table the demo printed
before, are kept for one release: the loop warns and points at `run_comparison`, and the table
still serves the one-run summary of ``mtl-sched run``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.reporting.report import Report, make_report
from mtl_sched.scheduling import Scheduler
from mtl_sched.sweeps import plan_trials, run_sweep, trial_config
from mtl_sched.sweeps.spec import cached_benchmark
from mtl_sched.training import RunResult

__all__ = ["compare_schedulers", "run_comparison", "summary_table"]

SchedulerFactory = Callable[[], Scheduler]


def run_comparison(
    benchmark: str,
    schedulers: Sequence[str],
    seeds: Sequence[int],
    store_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    benchmark_options: Mapping[str, Any] | None = None,
    budget: int | None = None,
    scheduler_params: Mapping[str, Mapping[str, Any]] | None = None,
    agent: str | Path | None = None,
    baseline: str | None = None,
    progress: bool = False,
) -> Report:
    """Run every (scheduler, seed) trial the store lacks in this process, then report them.

    Trials already in the store are skipped (their key includes the ``qls`` agent's path, not
    its weights: give a fresh store after retraining an agent saved to the same path).

    :param benchmark: registered benchmark name.
    :param schedulers: registered scheduler names, each a column of the table.
    :param seeds: run seeds (model initialization and data order).
    :param store_path: the results store file (created when missing).
    :param out_dir: where the report's Markdown, CSV and PNG files go; ``None`` writes none.
    :param benchmark_options: the benchmark factory's options.
    :param budget: training examples per run; ``None`` is the benchmark's budget.
    :param scheduler_params: scheduler name -> its hyperparameters.
    :param agent: the saved agent of ``qls``.
    :param baseline: the column the ▲/▼ marks compare with; ``None`` for ``"uniform"`` when it
        runs, else no marks.
    :param progress: show progress bars.
    :raises ValueError: for no schedulers or no seeds, and for the inputs `plan_trials` and
        `make_report` refuse.
    :raises RuntimeError: when a trial fails; the message holds its traceback.
    """
    if not schedulers:
        raise ValueError("schedulers must name at least one scheduler")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    options = dict(benchmark_options or {})
    specs = plan_trials(
        benchmark,
        schedulers,
        seeds,
        benchmark_options=options,
        budget=budget,
        scheduler_params=scheduler_params,
        agent=agent,
    )
    summary = run_sweep(specs, store_path, backend="local", workers=1, progress=progress)
    if summary.failures:
        raise RuntimeError(summary.describe(store_path))
    # the store may hold other comparisons of the benchmark: report exactly this one
    comparison = trial_config(specs[0], cached_benchmark(benchmark, options))["comparison"]
    return make_report(store_path, benchmark, out_dir, comparison=comparison, baseline=baseline)


def compare_schedulers(
    benchmark: Benchmark,
    schedulers: Mapping[str, SchedulerFactory],
    seeds: Sequence[int],
    progress: bool = False,
) -> dict[str, list[RunResult]]:
    """Train a fresh model under every scheduler for every seed, at the benchmark's budget.

    Deprecated: use `run_comparison`, which runs the trials through the sweep harness into a
    results store and reports them in the table shape of ``mtl-sched report``.

    :param benchmark: the benchmark (its trainer config sets the budget).
    :param schedulers: label -> factory of a fresh scheduler.
    :param seeds: run seeds (model initialization and data order).
    :param progress: show a progress bar over runs.
    """
    warnings.warn(
        "mtl_sched.comparison.compare_schedulers is deprecated and will be removed in the next "
        "release; use mtl_sched.comparison.run_comparison (the sweep harness and the report's "
        "table)",
        DeprecationWarning,
        stacklevel=2,
    )
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

    The one-run summary of ``mtl-sched run``; a comparison of schedulers is reported in the
    table shape of ``mtl-sched report`` (see `run_comparison`).

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

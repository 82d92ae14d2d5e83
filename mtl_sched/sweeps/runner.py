"""A sweep: every (scheduler, seed) trial of a comparison, run once, resumable.

Trials already in the results store are skipped, so re-running a command completes what is
missing and adds nothing else; a sweep killed midway keeps every trial it finished, and its
restart runs only the rest. Trials are started seed by seed (all schedulers of seed 0 first), so
that a scheduler's one-off preparation (a weight search, single-task references; cached on disk)
is done by its first trial rather than by several workers at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mtl_sched.results import ResultsStore
from mtl_sched.sweeps.backends import (
    BACKENDS,
    Finished,
    Job,
    Progress,
    run_in_process,
    run_on_pool,
    run_on_ray,
)
from mtl_sched.sweeps.spec import TrialSpec


@dataclass
class SweepSummary:
    """How a sweep went.

    :param total: trials of the sweep.
    :param already_stored: trials found in the store before it started (skipped).
    :param written: trials this sweep wrote.
    :param failures: ``(trial label, error)`` of every trial that raised.
    :param wall_time: seconds the sweep took.
    """

    total: int
    already_stored: int
    written: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    wall_time: float = 0.0

    def describe(self, store_path: str | Path) -> str:
        """One paragraph for the command line."""
        text = (
            f"{self.total} trials: {self.already_stored} already in {store_path}, "
            f"{self.written} run now, {len(self.failures)} failed ({self.wall_time:.0f} s)"
        )
        for label, error in self.failures:
            text += f"\nfailed: {label}\n{error}"
        return text


def plan_trials(
    benchmark: str,
    schedulers: Sequence[str],
    seeds: Sequence[int],
    *,
    benchmark_options: Mapping[str, Any] | None = None,
    budget: int | None = None,
    scheduler_params: Mapping[str, Mapping[str, Any]] | None = None,
    agent: str | Path | None = None,
    left_out: Sequence[str] | None = None,
    folds: int = 5,
) -> list[TrialSpec]:
    """The trials of a comparison, seed-major.

    :param benchmark: registered benchmark name.
    :param schedulers: registered scheduler names (each a column of the report).
    :param seeds: run seeds.
    :param benchmark_options: the benchmark factory's options.
    :param budget: training examples per run; ``None`` is the benchmark's budget.
    :param scheduler_params: scheduler name -> its hyperparameters.
    :param agent: the saved agent of ``qls``.
    :param left_out: leave-one-out transfer: the tasks to leave out, one trial per task (and
        scheduler and seed); ``None`` for a plain comparison.
    :param folds: cross-validation folds on a left-out task.
    """
    if len(set(schedulers)) != len(schedulers):
        raise ValueError(f"--schedulers names a scheduler twice: {', '.join(schedulers)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds names a seed twice: {', '.join(map(str, seeds))}")
    if negative := [seed for seed in seeds if seed < 0]:
        raise ValueError(f"seeds must be non-negative; got {negative[0]}")
    params = scheduler_params or {}
    if unknown := sorted(set(params) - set(schedulers)):
        raise ValueError(
            f"parameters given for {', '.join(unknown)}, which --schedulers does not name"
        )
    outs: Sequence[str | None] = [None] if left_out is None else left_out
    return [
        TrialSpec(
            benchmark=benchmark,
            benchmark_options=dict(benchmark_options or {}),
            scheduler=name,
            seed=seed,
            budget=budget,
            scheduler_params=dict(params.get(name, {})),
            agent=None if agent is None or name != "qls" else str(agent),
            left_out=out,
            folds=folds,
        )
        for seed in seeds
        for name in schedulers
        for out in outs
    ]


class _Display:
    """A bar of finished trials and one bar per running trial."""

    def __init__(self, specs: Sequence[Job], done: int, enabled: bool) -> None:
        self.specs, self.enabled = specs, enabled
        self.trials = tqdm(
            total=done + len(specs), initial=done, unit="trial", desc="trials", disable=not enabled
        )
        self.running: dict[int, tqdm] = {}
        self.positions: dict[int, int] = {}

    def progress(self, event: Progress) -> None:
        bar = self.running.get(event.index)
        if bar is None:
            bar_position = self._free_position()
            bar = tqdm(
                total=None,
                unit="ex",
                desc=self.specs[event.index].label,
                position=bar_position,
                leave=False,
                disable=not self.enabled,
            )
            self.running[event.index] = bar
            self.positions[event.index] = bar_position
        if event.budget and bar.total != event.budget:
            bar.total = event.budget
        bar.n = event.examples
        bar.refresh()

    def _free_position(self) -> int:
        taken = set(self.positions.values())
        return min(set(range(1, len(taken) + 2)) - taken)

    def finished(self, event: Finished) -> None:
        bar = self.running.pop(event.index, None)
        self.positions.pop(event.index, None)
        if bar is not None:
            bar.close()
        self.trials.update()

    def close(self) -> None:
        for bar in self.running.values():
            bar.close()
        self.trials.close()


def pending_trials(specs: Sequence[Job], store_path: str | Path) -> list[Job]:
    """The jobs of ``specs`` that the store does not hold yet.

    :param specs: planned jobs (comparison trials, a study's models).
    :param store_path: the results store file.
    """
    with ResultsStore(store_path) as store:
        finished = store.finished_keys()
    return [spec for spec in specs if not spec.is_stored(finished)]


def run_sweep(
    specs: Sequence[Job],
    store_path: str | Path,
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Run every job of ``specs`` that is not stored yet.

    :param specs: the jobs: a comparison's trials (see `plan_trials`) or a study's models.
    :param store_path: the results store file (created when missing).
    :param backend: ``"local"`` (one worker: in this process; more: a pool of spawned
        processes with one torch thread each) or ``"ray"``.
    :param workers: trials running at once.
    :param address: the Ray cluster's address; ``None`` starts a local Ray instance.
    :param progress: show progress bars.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    start = time.perf_counter()
    store = str(store_path)
    pending = pending_trials(specs, store)
    summary = SweepSummary(total=len(specs), already_stored=len(specs) - len(pending))
    display = _Display(pending, summary.already_stored, progress)
    if backend == "ray":
        events = run_on_ray(pending, store, display.progress, workers, address)
    elif workers == 1:
        events = run_in_process(pending, store, display.progress)
    else:
        events = run_on_pool(pending, store, display.progress, workers)
    try:
        for event in events:
            display.finished(event)
            if event.error is not None:
                summary.failures.append((pending[event.index].label, event.error))
            elif event.outcome is not None and event.outcome.written:
                summary.written += 1
    finally:
        display.close()
        summary.wall_time = time.perf_counter() - start
    return summary

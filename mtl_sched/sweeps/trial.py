"""The trial function every backend runs: train one (scheduler, seed), store it, once.

It runs in a worker process (a local pool's or Ray's) and writes its own trial to the results
store, so a sweep that is killed keeps every trial finished before the kill. Benchmarks are
built once per worker process and reused by its later trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.results import ResultsStore, TrialKey
from mtl_sched.sweeps.spec import (
    TrialSpec,
    result_rows,
    result_series,
    transfer_rows,
    trial_config,
    trial_key,
)

# Called with (examples seen, budget) as the trial trains.
ProgressReport = Callable[[int, int], None]

_BENCHMARKS: dict[str, Benchmark] = {}


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished trial call reports back.

    :param key: the trial's store key.
    :param written: whether this call wrote the trial (``False``: it was already stored).
    :param wall_time: seconds this call took.
    """

    key: TrialKey
    written: bool
    wall_time: float


def cached_benchmark(name: str, options: dict[str, Any]) -> Benchmark:
    """The benchmark ``name`` with ``options``, built once per process.

    :param name: registered benchmark name.
    :param options: its factory options.
    """
    cache_key = f"{name}:{sorted(options.items())!r}"
    if cache_key not in _BENCHMARKS:
        _BENCHMARKS[cache_key] = get_benchmark(name, **options)
    return _BENCHMARKS[cache_key]


def run_trial(
    spec: TrialSpec,
    store_path: str,
    report: ProgressReport | None = None,
    threads: int | None = 1,
) -> TrialOutcome:
    """Train ``spec``'s model under its scheduler and store the trial, unless it is stored.

    :param spec: the trial.
    :param store_path: the results store file.
    :param report: progress callback, ``(examples seen, budget)``.
    :param threads: torch threads of this process (one per worker, so that workers do not
        oversubscribe the cores); ``None`` leaves the setting alone.
    """
    from mtl_sched.registry import prepared_scheduler

    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    full = cached_benchmark(spec.benchmark, dict(spec.benchmark_options))
    config = trial_config(spec, full)
    key = trial_key(spec, config)
    with ResultsStore(store_path) as store:
        if store.has_trial(key):
            return TrialOutcome(key, False, time.perf_counter() - start)
    benchmark = full if spec.left_out is None else full.without_task(spec.left_out)
    benchmark = benchmark.with_budget(spec.budget)
    scheduler = prepared_scheduler(spec.scheduler, spec.scheduler_params, benchmark, spec.agent)
    trainer = benchmark.make_trainer(spec.seed)
    budget = trainer.config.budget
    on_examples = None if report is None else (lambda seen: report(seen, budget))
    result = trainer.run(scheduler, on_examples=on_examples)
    rows = result_rows(result)
    if spec.left_out is not None:
        from mtl_sched.transfer import cross_validated_transfer

        task = full.tasks[full.task_names.index(spec.left_out)]
        folds = cross_validated_transfer(trainer.model, task, seed=spec.seed, folds=spec.folds)
        rows += transfer_rows(spec.left_out, folds)
    with ResultsStore(store_path) as store:
        written = store.write_trial(
            key,
            rows,
            config=config,
            wall_time=result.wall_time,
            examples_seen=result.examples_seen,
            optimizer_steps=result.steps,
            series=result_series(result, trainer.model),
        )
    return TrialOutcome(key, written, time.perf_counter() - start)

"""What a comparison trial does (`run_trial`): train one (scheduler, seed), store it, once.

It runs in a worker process (a local pool's or Ray's) and writes its own trial to the results
store, so a sweep that is killed keeps every trial finished before the kill. Benchmarks are
built once per worker process and reused by its later trials.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from mtl_sched.results import ResultsStore
from mtl_sched.sweeps.job import ProgressReport, TrialOutcome
from mtl_sched.sweeps.spec import (
    TrialSpec,
    cached_benchmark,
    result_rows,
    result_series,
    transfer_rows,
    trial_config,
    trial_key,
)
from mtl_sched.training.observers import RunObserver


def run_trial(
    spec: TrialSpec,
    store_path: str,
    report: ProgressReport | None = None,
    threads: int | None = 1,
    observers: Sequence[RunObserver] = (),
) -> TrialOutcome:
    """Train ``spec``'s model under its scheduler and store the trial, unless it is stored.

    :param spec: the trial.
    :param store_path: the results store file.
    :param report: progress callback, ``(examples seen, budget)``.
    :param threads: torch threads of this process (one per worker, so that workers do not
        oversubscribe the cores); ``None`` leaves the setting alone.
    :param observers: told of the run's evaluations and result (`Trainer.run`).
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
    result = trainer.run(scheduler, on_examples=on_examples, observers=observers)
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

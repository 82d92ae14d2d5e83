"""What one trial of a scheduler comparison is, and how it is stored.

A trial is one (scheduler, seed) run on a benchmark at an example budget, or, for the
leave-one-out transfer study, one such run with a task left out. Its stored configuration (see
`trial_config`) holds ``"comparison"``: a hash shared by every trial of the same comparison
(benchmark definition, options, budget and kind), which the report groups by. Its metric rows
and series are listed in `result_rows` and `result_series`; `mtl_sched.sweeps.trial.run_trial`
runs it.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_sched.benchmarks import benchmark_factory, benchmark_names, get_benchmark
from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.data.conll_files import CONLL_TASKS, conll_task_specs
from mtl_sched.registry import scheduler_class
from mtl_sched.results import MetricRow, TrialKey, config_hash
from mtl_sched.scheduling import EvalResult
from mtl_sched.script_args import coerce_keyword_values
from mtl_sched.training import RunResult

COMPARE = "compare"
LEAVE_ONE_OUT = "leave-one-out"
# Snapshots of the probe histograms kept per trial: enough for a figure, small in the store.
MAX_HISTOGRAM_SNAPSHOTS = 200

_BENCHMARKS: dict[str, Benchmark] = {}


def check_benchmark_options(name: str, options: Mapping[str, Any]) -> None:
    """Check ``options`` against the types benchmark ``name``'s factory declares, before a
    benchmark is built (a wrong type otherwise surfaces only once training runs).

    :param name: registered benchmark name (an unknown one is left to `get_benchmark`).
    :param options: its factory options, e.g. parsed from ``--option KEY=VALUE``.
    :raises TypeError: ``benchmark option '<key>' expects <type>; got <value>``.
    """
    if name not in benchmark_names():
        return
    factory = benchmark_factory(name)
    try:
        hints = typing.get_type_hints(factory)
    except (NameError, TypeError):
        return  # annotations naming types imported for type checking only stay unchecked
    hints.pop("return", None)
    coerce_keyword_values(hints, options, "benchmark option")


def cached_benchmark(name: str, options: dict[str, Any]) -> Benchmark:
    """The benchmark ``name`` with ``options``, built once per process.

    :param name: registered benchmark name.
    :param options: its factory options.
    """
    cache_key = f"{name}:{sorted(options.items())!r}"
    if cache_key not in _BENCHMARKS:
        check_benchmark_options(name, options)
        _BENCHMARKS[cache_key] = get_benchmark(name, **options)
    return _BENCHMARKS[cache_key]


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run; everything a worker process needs to rebuild it.

    :param benchmark: registered benchmark name.
    :param benchmark_options: options of the benchmark factory (``data_dir``, ``small``, ...).
    :param scheduler: registered scheduler name; also the trial's column label.
    :param seed: run seed (model initialization and data order).
    :param budget: training examples of the run; ``None`` is the benchmark's budget.
    :param scheduler_params: the scheduler's hyperparameters as given on the command line.
    :param agent: a saved agent for ``qls`` (a ``.zip`` or ``train-agent`` directory).
    :param left_out: leave-one-out trials only: the task trained without, then transferred to.
    :param folds: leave-one-out trials only: cross-validation folds on the left-out task.
    """

    benchmark: str
    benchmark_options: Mapping[str, Any]
    scheduler: str
    seed: int
    budget: int | None = None
    scheduler_params: Mapping[str, Any] = field(default_factory=dict)
    agent: str | None = None
    left_out: str | None = None
    folds: int = 5

    @property
    def kind(self) -> str:
        return COMPARE if self.left_out is None else LEAVE_ONE_OUT

    @property
    def label(self) -> str:
        """Short name for progress bars and messages."""
        out = f" without {self.left_out}" if self.left_out else ""
        return f"{self.scheduler} seed {self.seed}{out}"

    def is_stored(self, finished: Set[TrialKey]) -> bool:
        """Whether the store already holds this trial.

        :param finished: every trial key of the store.
        """
        full = cached_benchmark(self.benchmark, dict(self.benchmark_options))
        return trial_key(self, trial_config(self, full)) in finished


def keyed_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Benchmark options as trials are keyed by them: where the data live is not what they are.

    ``data_dir`` is left out (the benchmark's fingerprint covers its data settings), and the
    files of ``conll_tasks`` are named by their content
    (`mtl_sched.data.conll_files.ConllTaskSpec.identity`).

    :param options: the options of the benchmark factory.
    """
    keyed = {key: value for key, value in options.items() if key != "data_dir"}
    if keyed.get(CONLL_TASKS) is not None:
        keyed[CONLL_TASKS] = [spec.identity() for spec in conll_task_specs(keyed[CONLL_TASKS])]
    return keyed


def comparison_config(spec: TrialSpec, benchmark: Benchmark) -> dict[str, Any]:
    """The settings every trial of one comparison shares (hashed into ``"comparison"``).

    :param spec: any trial of the comparison.
    :param benchmark: the full benchmark ``spec`` names.
    """
    config: dict[str, Any] = {
        "kind": spec.kind,
        "benchmark": benchmark.name,
        "benchmark_fingerprint": benchmark.fingerprint(),
        "benchmark_options": keyed_options(spec.benchmark_options),
        "budget": spec.budget or benchmark.trainer_config.budget,
    }
    if spec.kind == LEAVE_ONE_OUT:
        config["folds"] = spec.folds
    return config


def trial_config(spec: TrialSpec, benchmark: Benchmark) -> dict[str, Any]:
    """The stored configuration of ``spec``'s trial (its hash is the key's ``config_hash``).

    :param spec: the trial.
    :param benchmark: the full benchmark ``spec`` names (its tasks are loaded).
    """
    shared = comparison_config(spec, benchmark)
    params = {key: spec.scheduler_params[key] for key in sorted(spec.scheduler_params)}
    agent = spec.agent if spec.agent is not None else params.get("agent")
    if isinstance(agent, (str, Path)) and (spec.agent is not None or spec.scheduler == "qls"):
        from mtl_sched.agents.agent_files import agent_fingerprint

        # what the agent is, not where it lies: a store resumes from any checkout, and an agent
        # retrained into the same directory runs again
        params["agent"] = agent_fingerprint(agent)
    config = {
        **shared,
        "comparison": config_hash(shared),
        "scheduler": spec.scheduler,
        "scheduler_params": params,
        "tasks": list(benchmark.task_names),
        "metrics": {task.name: task.metric for task in benchmark.tasks},
    }
    version = scheduler_class(spec.scheduler).version
    # version 1 is left out so that trials stored before schedulers had versions keep their keys
    if version > 1:
        config["scheduler_version"] = version
    if spec.left_out is not None:
        if spec.left_out not in benchmark.task_names:
            raise KeyError(
                f"cannot leave out {spec.left_out!r}: {benchmark.name} has tasks "
                f"{', '.join(benchmark.task_names)}"
            )
        config["left_out"] = spec.left_out
    return config


def trial_key(spec: TrialSpec, config: Mapping[str, Any]) -> TrialKey:
    """The store key of ``spec``'s trial.

    :param spec: the trial.
    :param config: its `trial_config`.
    """
    return TrialKey(str(config["benchmark"]), config_hash(config), spec.scheduler, spec.seed)


def _eval_rows(result: EvalResult, task_names: Sequence[str]) -> list[MetricRow]:
    rows = []
    for name, score, loss in zip(task_names, result.scores, result.losses, strict=True):
        rows += [
            MetricRow(result.split, name, "score", float(score)),
            MetricRow(result.split, name, "loss", float(loss)),
        ]
    rows += [
        MetricRow(result.split, "average", "score", float(result.average_score)),
        MetricRow(result.split, "average", "loss", float(np.mean(result.losses))),
    ]
    return rows


def result_rows(result: RunResult) -> list[MetricRow]:
    """The metric rows of a finished run.

    ``validation`` and ``test`` rows hold ``score`` and ``loss`` per task and for ``average``
    (the selected model's); ``train`` rows the ``examples`` each task got; ``run``/``all``
    rows ``best_examples_seen``, ``preparation_examples`` (spent outside the budget, e.g.
    hand-crafted's weight search, single-task reference runs), ``steps``, ``wall_time`` and
    ``cpu_time`` (seconds; no ``cpu_time`` row where it was not measured).

    :param result: the run.
    """
    rows = _eval_rows(result.best_validation, result.task_names)
    rows += _eval_rows(result.test, result.task_names)
    rows += [
        MetricRow("train", name, "examples", float(count))
        for name, count in zip(result.task_names, result.examples_per_task, strict=True)
    ]
    rows += [
        MetricRow("run", "all", "best_examples_seen", float(result.best_examples_seen)),
        MetricRow("run", "all", "preparation_examples", float(result.preparation_examples)),
        MetricRow("run", "all", "steps", float(result.steps)),
        MetricRow("run", "all", "wall_time", float(result.wall_time)),
    ]
    if math.isfinite(result.cpu_time):
        rows.append(MetricRow("run", "all", "cpu_time", float(result.cpu_time)))
    return rows


def transfer_rows(left_out: str, fold_scores: Sequence[float]) -> list[MetricRow]:
    """The leave-one-out rows: the mean cross-validated accuracy on ``left_out`` and each fold's.

    :param left_out: the task left out of training.
    :param fold_scores: accuracy of the new head on each test fold.
    """
    rows = [MetricRow("transfer", left_out, "score", float(np.mean(fold_scores)))]
    rows += [
        MetricRow("transfer", left_out, f"fold{i}", float(score))
        for i, score in enumerate(fold_scores)
    ]
    return rows


def result_series(result: RunResult, model: Any = None) -> dict[str, Any]:
    """The sequences stored with a run: ``validation_curve``, ``schedule``, ``loss_curve``
    (each task's training loss at each step, ``None`` where the step did not train it), for
    schedulers that read the probe ``probe_histograms`` (at most `MAX_HISTOGRAM_SNAPSHOTS`,
    evenly spread), for models with learned task embeddings (``task_embeddings()``, seed
    003's TE+DEC) ``task_embeddings``, and for schedulers with notes
    (`mtl_sched.scheduling.Scheduler.notes`: how ``qls``'s agent was trained, ...)
    ``scheduler_notes``.

    :param result: the run.
    :param model: the trained model (``None``: no model-specific series).
    """
    history = result.validation_history
    series: dict[str, Any] = {
        "validation_curve": {
            "examples": [seen for seen, _ in history],
            "average": [evaluation.average_score for _, evaluation in history],
            "tasks": {
                name: [float(evaluation.scores[k]) for _, evaluation in history]
                for k, name in enumerate(result.task_names)
            },
        },
        "schedule": {"tasks": list(result.task_names), "counts": result.schedule.tolist()},
        "loss_curve": {
            "tasks": list(result.task_names),
            "losses": [
                [None if np.isnan(v) else float(v) for v in row] for row in result.loss_history
            ],
        },
    }
    if result.scheduler_notes:
        series["scheduler_notes"] = dict(result.scheduler_notes)
    embeddings = getattr(model, "task_embeddings", None)
    vectors = embeddings() if callable(embeddings) else None
    if vectors is not None:
        series["task_embeddings"] = {
            "tasks": list(result.task_names),
            "vectors": vectors.cpu().tolist(),
        }
    probes = result.probe_history
    if probes:
        count = min(len(probes), MAX_HISTOGRAM_SNAPSHOTS)
        keep = np.unique(np.linspace(0, len(probes) - 1, count).round().astype(int))
        series["probe_histograms"] = {
            "examples": [probes[i][0] for i in keep],
            "tasks": list(result.task_names),
            "histograms": [probes[i][1].tolist() for i in keep],
        }
    return series

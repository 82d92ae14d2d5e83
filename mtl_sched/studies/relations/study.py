"""The task-relation study of seed 003 on the comparison harness.

Every model of the study is one trial of the results store: the ``relations`` benchmark on one
task set, under the ``uniform`` weighting scheduler (balanced minibatches), for one seed. The
trials run on a local process pool or on Ray like any sweep (`mtl_sched.sweeps.run_sweep`), so
a study that is stopped resumes where it was, and a rerun adds nothing. It runs in two phases:
first the settings that need no results (STL, pairwise, All, all-but-one), then the Oracle sets,
which depend on the pairwise results. `collect_study` reads a study's results back from the
store for the report and for gain prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_sched.benchmarks.relations import RELATION_TASKS, relations_benchmark
from mtl_sched.data.conll_files import CONLL_TASKS, ConllTaskSpec, conll_task_specs
from mtl_sched.results import ResultsStore
from mtl_sched.studies.relations.plan import (
    ORACLE,
    SETTINGS,
    Score,
    TaskSet,
    oracle_sets,
    ordered,
    setting_sets,
)
from mtl_sched.sweeps import run_sweep
from mtl_sched.sweeps.runner import SweepSummary
from mtl_sched.sweeps.spec import TrialSpec

# the study's balanced minibatches: one minibatch of every task per step, equal weights
STUDY_SCHEDULER = "uniform"


@dataclass(frozen=True)
class RelationsConfig:
    """One task-relation study.

    :param tasks: registered tagging tasks (`mtl_sched.data.tagging_tasks`), in table order.
    :param arch: ``"multi-dec"``, ``"te-dec"`` or ``"te-enc"``.
    :param seeds: run seeds (seed 003: three).
    :param settings: names from `SETTINGS`.
    :param k: width of the higher/lower rule in standard deviations (seed 003: 1.5).
    :param options: further ``relations`` benchmark options shared by every model (``small``,
        ``train_sentences``, ``eval_sentences``, ``budget_per_task``, sizes, ``data_dir``, and
        ``conll_tasks``: the study's tasks read from your own CoNLL-style files, passed to the
        models whose task set holds them).
    """

    tasks: tuple[str, ...] = RELATION_TASKS
    arch: str = "multi-dec"
    seeds: tuple[int, ...] = (0, 1, 2)
    settings: tuple[str, ...] = SETTINGS
    k: float = 1.5
    options: Mapping[str, Any] = field(default_factory=dict)

    def benchmark_options(self, task_set: TaskSet) -> dict[str, Any]:
        """The ``relations`` benchmark options of the model on ``task_set``.

        :param task_set: the tasks learned together.
        """
        options = {k: v for k, v in self.options.items() if k != CONLL_TASKS}
        # only the set's own file tasks, so that a model of built-in tasks keeps its identity
        # (and its stored result) whichever file tasks the study adds
        specs = [spec.as_option() for spec in self.conll_specs() if spec.name in task_set]
        if specs:
            options[CONLL_TASKS] = specs
        return {**options, "tasks": list(task_set), "arch": self.arch}

    def conll_specs(self) -> list[ConllTaskSpec]:
        """The study's tasks read from CoNLL-style files (the ``conll_tasks`` option)."""
        return conll_task_specs(self.options.get(CONLL_TASKS))

    def task_metrics(self) -> dict[str, str]:
        """Each task's metric name (`mtl_sched.data.task.METRICS`), read from the tasks as the
        study's models load them (the report's header says what its scores measure)."""
        benchmark = relations_benchmark(**self.benchmark_options(self.tasks))
        return {task.name: task.metric for task in benchmark.tasks}

    def specs(self, task_sets: Sequence[TaskSet]) -> list[TrialSpec]:
        """The trials of ``task_sets``, every seed of a set after the other.

        :param task_sets: the sets to train.
        """
        return [
            TrialSpec("relations", self.benchmark_options(task_set), STUDY_SCHEDULER, seed)
            for task_set in task_sets
            for seed in self.seeds
        ]


@dataclass
class StudyResults:
    """A study's results as read from the store.

    :param scores: ``(task set, test task) -> per-seed test scores`` (in seed order).
    :param loss_curves: ``task -> per-seed training-loss curves`` of its STL model.
    :param embeddings: per seed, ``task -> learned task embedding`` of the All model (TE+DEC).
    :param wall_times: ``task set -> per-seed training seconds``.
    """

    scores: dict[tuple[TaskSet, str], list[float]] = field(default_factory=dict)
    loss_curves: dict[str, list[list[float]]] = field(default_factory=dict)
    embeddings: list[dict[str, list[float]]] = field(default_factory=list)
    wall_times: dict[TaskSet, list[float]] = field(default_factory=dict)

    def statistics(self) -> dict[tuple[TaskSet, str], Score]:
        """Mean and population standard deviation over seeds of every score."""
        return {
            key: Score(float(np.mean(v)), float(np.std(v)), len(v))
            for key, v in self.scores.items()
            if v
        }


def _comparable(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("tasks", "data_dir", CONLL_TASKS)}


def _same_files(options: Mapping[str, Any], config: RelationsConfig) -> bool:
    """Whether a stored model's file tasks read files of the content ``config``'s files have
    (stored options name each file by its content, see `mtl_sched.sweeps.spec.keyed_options`)."""
    wanted = {spec.name: spec.identity() for spec in config.conll_specs()}
    return all(wanted.get(stored["name"]) == stored for stored in options.get(CONLL_TASKS) or [])


def collect_study(store_path: str | Path, config: RelationsConfig) -> StudyResults:
    """Read every stored model of ``config``'s study (any task set of its tasks).

    :param store_path: the results store.
    :param config: the study; models with other options, architecture or seeds are ignored.
    """
    wanted = _comparable(config.benchmark_options(()))
    results = StudyResults()
    with ResultsStore(store_path) as store:
        records = [
            r
            for r in store.trials(benchmark="relations", scheduler=STUDY_SCHEDULER)
            if r.key.seed in config.seeds
            and _comparable(r.config.get("benchmark_options", {})) == wanted
            and _same_files(r.config.get("benchmark_options", {}), config)
            and set(r.config["tasks"]) <= set(config.tasks)
        ]
        records.sort(key=lambda r: config.seeds.index(r.key.seed))
        test_rows = {
            (row.key, row.task): row.value
            for row in store.rows(benchmark="relations", split="test", metric="score")
        }
        for record in records:
            task_set = ordered(record.config["tasks"], config.tasks)
            for task in task_set:
                value = test_rows.get((record.key, task))
                if value is not None:
                    results.scores.setdefault((task_set, task), []).append(value)
            results.wall_times.setdefault(task_set, []).append(record.wall_time)
            if len(task_set) == 1:
                curve = store.series(record.key, "loss_curve")
                if curve is not None:
                    losses = [row[0] for row in curve["losses"] if row[0] is not None]
                    results.loss_curves.setdefault(task_set[0], []).append(losses)
            if task_set == tuple(config.tasks):
                vectors = store.series(record.key, "task_embeddings")
                if vectors is not None:
                    results.embeddings.append(
                        dict(zip(vectors["tasks"], vectors["vectors"], strict=True))
                    )
    return results


@dataclass
class StudyRun:
    """What `run_relations_study` did.

    :param results: the study's results after both phases.
    :param sweeps: the summary of each phase's sweep.
    :param oracles: each test task's Oracle set (tasks without one are absent).
    """

    results: StudyResults
    sweeps: list[SweepSummary]
    oracles: dict[str, TaskSet]


def run_relations_study(
    config: RelationsConfig,
    store_path: str | Path,
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
) -> StudyRun:
    """Train every model of the study that is not stored yet, in two phases (the Oracle sets
    need the pairwise results).

    :param config: the study.
    :param store_path: the results store file.
    :param backend: ``"local"`` or ``"ray"`` (see `run_sweep`).
    :param workers: trials running at once.
    :param address: a Ray cluster's address; ``None`` starts a local Ray instance.
    :param progress: show progress bars.
    """
    sweep = {"backend": backend, "workers": workers, "address": address, "progress": progress}
    first = setting_sets(config.tasks, [s for s in config.settings if s != ORACLE])
    summaries = [run_sweep(config.specs(first), store_path, **sweep)]
    results = collect_study(store_path, config)
    oracles: dict[str, TaskSet] = {}
    if ORACLE in config.settings:
        oracles = oracle_sets(results.statistics(), config.tasks, config.k)
        extra = [s for s in dict.fromkeys(oracles.values()) if s not in first]
        if extra:
            summaries.append(run_sweep(config.specs(extra), store_path, **sweep))
            results = collect_study(store_path, config)
    return StudyRun(results, summaries, oracles)

"""Single-task references: one model per task, trained on that task alone.

Two measures of each reference model are kept, from its checkpoint selected on its own task:
the validation evaluation with the task's highest validation score (the earliest on a tie). The
model has one head per task, and the other heads never train in a single-task run, so selecting
on the average over all heads would pick a checkpoint by noise. The two measures are the task's
score (its metric: accuracy, span F1 or BLEU), which schedulers that compare validation scores
with references read (adaptive, prior easy/hard), and its unit accuracy (examples, tokens, or
target tokens under teacher forcing) at the same checkpoint, which the environment's penalty
compares with the accuracy of its probe pass. For accuracy tasks the two are equal.

Each reference model gets the same budget: by default the run budget divided by the number of
tasks, i.e. the examples each task receives under uniform multi-task training, so that "95% of
single-task accuracy" is reachable by a good schedule within one run (references trained on the
whole budget each would put every run under the threshold from start to end). They are computed
once per benchmark configuration, seed and budget, and cached as JSON under ``$MTL_SCHED_CACHE``
(default ``~/.cache/mtl-sched``) in ``references/``; the file name carries `REFERENCES_VERSION`,
so entries computed under another selection rule are never read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import EvalResult
from mtl_sched.training import Trainer

TrainerFactory = Callable[[int], Trainer]
Measure = Literal["score", "unit-accuracy"]
#: version of the cached references, part of the cache file name (2: each reference run's
#: checkpoint is selected on its own task's validation score, not on the average over tasks)
REFERENCES_VERSION = 2


@dataclass(frozen=True)
class SingleTaskReferences:
    """Validation measures of the single-task models, in task order.

    :param scores: the task metric of each (accuracy, span F1 or BLEU, on 0-1).
    :param unit_accuracies: accuracy over prediction units of each.
    """

    scores: np.ndarray
    unit_accuracies: np.ndarray

    def measure(self, which: Measure) -> np.ndarray:
        """``scores`` (``"score"``) or ``unit_accuracies`` (``"unit-accuracy"``)."""
        if which == "score":
            return self.scores
        if which == "unit-accuracy":
            return self.unit_accuracies
        raise ValueError(f"measure must be 'score' or 'unit-accuracy'; got {which!r}")


def cache_dir() -> Path:
    """Root of the on-disk cache: ``$MTL_SCHED_CACHE`` or ``~/.cache/mtl-sched``."""
    root = os.environ.get("MTL_SCHED_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "mtl-sched"


def select_on_task(history: Sequence[tuple[int, EvalResult]], task: int) -> EvalResult:
    """The validation evaluation of ``history`` with the highest score of task ``task``; the
    earliest of equal ones, as the trainer keeps the first of equal averages. A NaN score
    (a diverged evaluation) is never preferred to a number.

    :param history: ``(examples_seen, result)`` of every validation evaluation of a run, in
        order (`RunResult.validation_history`).
    :param task: the index of the task to select on.
    :raises ValueError: when the history is empty.
    """
    if not history:
        raise ValueError("the run has no validation evaluation to select from")

    def score(result: EvalResult) -> float:
        value = float(result.scores[task])
        return value if value == value else -math.inf

    best = history[0][1]
    for _, result in history[1:]:
        if score(result) > score(best):
            best = result
    return best


def compute_single_task_references(
    trainer_factory: TrainerFactory,
    task_names: Sequence[str],
    seed: int = 0,
    budget_per_task: int | None = None,
) -> SingleTaskReferences:
    """Validation score and unit accuracy of a model trained on each task alone, both at the
    checkpoint with that task's best validation score (`select_on_task`).

    :param trainer_factory: ``seed -> Trainer`` over a fresh model (the benchmark's or a user's).
    :param task_names: the tasks, in the trainer's order.
    :param seed: seed of every single-task run.
    :param budget_per_task: training examples of each single-task run; ``None`` uses the
        trainer's budget divided by the number of tasks.
    """
    scores, unit_accuracies = [], []
    for k, name in enumerate(task_names):
        trainer = trainer_factory(seed)
        budget = budget_per_task or max(1, trainer.config.budget // len(task_names))
        trainer.config = dataclasses.replace(trainer.config, budget=budget)
        run = trainer.run(make_scheduler("round-robin", tasks=[name]))
        best = select_on_task(run.validation_history, k)
        scores.append(float(best.scores[k]))
        units = best.unit_accuracies if best.unit_accuracies is not None else best.scores
        unit_accuracies.append(float(units[k]))
    return SingleTaskReferences(np.asarray(scores), np.asarray(unit_accuracies))


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, path)


def reference_budget(benchmark: Benchmark, budget_per_task: int | None = None) -> int:
    """Training examples of each single-task reference run of ``benchmark``: ``budget_per_task``,
    or by default the run budget divided by the number of tasks."""
    return budget_per_task or max(1, benchmark.trainer_config.budget // benchmark.num_tasks)


def reference_cache_path(benchmark: Benchmark, seed: int, budget: int) -> Path:
    """The cache file of ``benchmark``'s references for ``seed`` and ``budget`` examples per run;
    its name holds the benchmark's fingerprint and `REFERENCES_VERSION`.

    :param benchmark: the benchmark.
    :param seed: seed of the single-task runs.
    :param budget: examples of each single-task run (`reference_budget`).
    """
    name = (
        f"{benchmark.name}-{benchmark.fingerprint()}-s{seed}-b{budget}-v{REFERENCES_VERSION}.json"
    )
    return cache_dir() / "references" / name


def single_task_references(
    benchmark: Benchmark,
    seed: int = 0,
    budget_per_task: int | None = None,
    measure: Measure = "score",
) -> np.ndarray:
    """Cached single-task validation measures of ``benchmark`` (computed on first use).

    :param benchmark: the benchmark; its fingerprint keys the cache.
    :param seed: seed of the single-task runs.
    :param budget_per_task: examples per single-task run (default: budget / number of tasks).
    :param measure: ``"score"`` (the task metric) or ``"unit-accuracy"``.
    """
    budget = reference_budget(benchmark, budget_per_task)
    path = reference_cache_path(benchmark, seed, budget)
    if path.exists():
        try:
            payload = json.loads(path.read_text())
            if payload.get("tasks") == list(benchmark.task_names) and (
                payload.get("version") == REFERENCES_VERSION
            ):
                return SingleTaskReferences(
                    np.asarray(payload["validation_score"], dtype=float),
                    np.asarray(payload["validation_unit_accuracy"], dtype=float),
                ).measure(measure)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged or older cache entry is recomputed and overwritten
    references = compute_single_task_references(
        benchmark.make_trainer, benchmark.task_names, seed, budget
    )
    write_json_atomically(
        path,
        {
            "version": REFERENCES_VERSION,
            "selection": "per-task validation score",
            "benchmark": benchmark.name,
            "fingerprint": benchmark.fingerprint(),
            "seed": seed,
            "budget_per_task": budget,
            "tasks": list(benchmark.task_names),
            "validation_score": references.scores.tolist(),
            "validation_unit_accuracy": references.unit_accuracies.tolist(),
        },
    )
    return references.measure(measure)

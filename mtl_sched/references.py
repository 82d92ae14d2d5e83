"""Single-task reference accuracies: one model per task, trained on that task alone.

The environment's penalty compares the multi-task model with these references, and some
schedulers (adaptive, prior easy/hard) need them. Each reference model gets the same budget:
by default the run budget divided by the number of tasks, i.e. the examples each task receives
under uniform multi-task training, so that "95% of single-task accuracy" is reachable by a good
schedule within one run (references trained on the whole budget each would put every run under
the threshold from start to end). They are computed once per benchmark configuration, seed and
budget, and cached as JSON under ``$MTL_SCHED_CACHE`` (default ``~/.cache/mtl-sched``) in
``references/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.registry import make_scheduler
from mtl_sched.training import Trainer

TrainerFactory = Callable[[int], Trainer]


def cache_dir() -> Path:
    """Root of the on-disk cache: ``$MTL_SCHED_CACHE`` or ``~/.cache/mtl-sched``."""
    root = os.environ.get("MTL_SCHED_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "mtl-sched"


def compute_single_task_references(
    trainer_factory: TrainerFactory,
    task_names: Sequence[str],
    seed: int = 0,
    budget_per_task: int | None = None,
) -> np.ndarray:
    """Best validation accuracy of a model trained on each task alone.

    :param trainer_factory: ``seed -> Trainer`` over a fresh model (the benchmark's or a user's).
    :param task_names: the tasks, in the trainer's order.
    :param seed: seed of every single-task run.
    :param budget_per_task: training examples of each single-task run; ``None`` uses the
        trainer's budget divided by the number of tasks.
    """
    scores = []
    for k, name in enumerate(task_names):
        trainer = trainer_factory(seed)
        budget = budget_per_task or max(1, trainer.config.budget // len(task_names))
        trainer.config = dataclasses.replace(trainer.config, budget=budget)
        result = trainer.run(make_scheduler("round-robin", tasks=[name]))
        scores.append(float(result.best_validation.scores[k]))
    return np.asarray(scores)


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, path)


def single_task_references(
    benchmark: Benchmark, seed: int = 0, budget_per_task: int | None = None
) -> np.ndarray:
    """Cached single-task validation accuracies of ``benchmark`` (computed on first use).

    :param benchmark: the benchmark; its fingerprint keys the cache.
    :param seed: seed of the single-task runs.
    :param budget_per_task: examples per single-task run (default: budget / number of tasks).
    """
    budget = budget_per_task or max(1, benchmark.trainer_config.budget // benchmark.num_tasks)
    name = f"{benchmark.name}-{benchmark.fingerprint()}-s{seed}-b{budget}.json"
    path = cache_dir() / "references" / name
    if path.exists():
        try:
            payload = json.loads(path.read_text())
            if payload.get("tasks") == list(benchmark.task_names):
                return np.asarray(payload["validation_accuracy"], dtype=float)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged cache entry is recomputed and overwritten
    scores = compute_single_task_references(
        benchmark.make_trainer, benchmark.task_names, seed, budget
    )
    write_json_atomically(
        path,
        {
            "benchmark": benchmark.name,
            "fingerprint": benchmark.fingerprint(),
            "seed": seed,
            "budget_per_task": budget,
            "tasks": list(benchmark.task_names),
            "validation_accuracy": scores.tolist(),
        },
    )
    return scores

"""Single-task reference accuracies: one model per task, trained on that task alone.

The environment's penalty compares the multi-task model with these references, and some
schedulers (adaptive, prior easy/hard) need them. They are computed once per benchmark
configuration and seed and cached as JSON under ``$MTL_SCHED_CACHE`` (default
``~/.cache/mtl-sched``) in ``references/``.
"""

from __future__ import annotations

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
    trainer_factory: TrainerFactory, task_names: Sequence[str], seed: int = 0
) -> np.ndarray:
    """Validation accuracy of a model trained on each task alone, for the full budget.

    :param trainer_factory: ``seed -> Trainer`` over a fresh model (the benchmark's or a user's).
    :param task_names: the tasks, in the trainer's order.
    :param seed: seed of every single-task run.
    """
    scores = []
    for k, name in enumerate(task_names):
        result = trainer_factory(seed).run(make_scheduler("round-robin", tasks=[name]))
        scores.append(float(result.best_validation.scores[k]))
    return np.asarray(scores)


def _write_json_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, path)


def single_task_references(benchmark: Benchmark, seed: int = 0) -> np.ndarray:
    """Cached single-task validation accuracies of ``benchmark`` (computed on first use).

    :param benchmark: the benchmark; its fingerprint keys the cache.
    :param seed: seed of the single-task runs.
    """
    path = cache_dir() / "references" / f"{benchmark.name}-{benchmark.fingerprint()}-s{seed}.json"
    if path.exists():
        try:
            payload = json.loads(path.read_text())
            if payload.get("tasks") == list(benchmark.task_names):
                return np.asarray(payload["validation_accuracy"], dtype=float)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged cache entry is recomputed and overwritten
    scores = compute_single_task_references(benchmark.make_trainer, benchmark.task_names, seed)
    _write_json_atomically(
        path,
        {
            "benchmark": benchmark.name,
            "fingerprint": benchmark.fingerprint(),
            "seed": seed,
            "tasks": list(benchmark.task_names),
            "validation_accuracy": scores.tolist(),
        },
    )
    return scores

"""Shared fixtures: a private cache directory and small benchmarks that train in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.envs.reward import ACCURACY_WEIGHT

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep single-task references and other caches out of the user's home directory."""
    os.environ["MTL_SCHED_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def default_reward(before: dict, after: dict) -> float:
    """The environment's default reward of a step, from the ``info`` of the steps before and
    after it: the summed validation loss's fall plus ``ACCURACY_WEIGHT`` times the average
    validation accuracy's rise."""
    fall = float(before["validation_losses"].sum()) - float(after["validation_losses"].sum())
    rise = float(after["average_accuracy"]) - float(before["average_accuracy"])
    return fall + ACCURACY_WEIGHT * rise


def tiny_synthetic(**overrides: object) -> Benchmark:
    """The synthetic benchmark's small variant (a few hundred examples per task)."""
    return get_benchmark("synthetic", small=True, **overrides)


@pytest.fixture(scope="session")
def tiny_benchmark() -> Benchmark:
    return tiny_synthetic()


@pytest.fixture
def data_dir() -> Path:
    """The real-data directory; tests needing it skip when ``MTL_SCHED_DATA`` is unset."""
    root = os.environ.get("MTL_SCHED_DATA")
    if not root:
        pytest.skip("MTL_SCHED_DATA is not set (point it at the shared data directory)")
    return Path(root)

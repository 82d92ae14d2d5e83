"""Named benchmarks: ``get_benchmark("synthetic")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtl_sched.benchmarks.base import Benchmark, ScheduleRecipe
from mtl_sched.benchmarks.fdu_mtl import fdu_mtl_benchmark
from mtl_sched.benchmarks.nmt_aux import nmt_aux_benchmark
from mtl_sched.benchmarks.relations import relations_benchmark
from mtl_sched.benchmarks.synthetic import synthetic_benchmark
from mtl_sched.benchmarks.tagging import tagging_benchmark

BenchmarkFactory = Callable[..., Benchmark]

_BENCHMARKS: dict[str, BenchmarkFactory] = {}


def register_benchmark(name: str, factory: BenchmarkFactory) -> None:
    """Register ``factory(**options) -> Benchmark`` under ``name`` (re-registering replaces)."""
    _BENCHMARKS[name] = factory


def benchmark_names() -> list[str]:
    """Names of every registered benchmark."""
    return list(_BENCHMARKS)


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """Build the benchmark registered as ``name`` (``options`` go to its factory)."""
    try:
        factory = _BENCHMARKS[name]
    except KeyError:
        raise KeyError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(_BENCHMARKS)}"
        ) from None
    return factory(**options)


register_benchmark("synthetic", synthetic_benchmark)
register_benchmark("fdu-mtl", fdu_mtl_benchmark)
register_benchmark("nmt-aux", nmt_aux_benchmark)
register_benchmark("tagging", tagging_benchmark)
register_benchmark("relations", relations_benchmark)

__all__ = [
    "Benchmark",
    "ScheduleRecipe",
    "benchmark_names",
    "get_benchmark",
    "register_benchmark",
    "synthetic_benchmark",
]

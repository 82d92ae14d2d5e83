"""Named benchmarks: ``get_benchmark("synthetic")``.

Lookups first import the plugin modules named in ``$MTL_SCHED_IMPORT`` (`mtl_sched.plugins`), so
benchmarks those modules register resolve like the built-in ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mtl_sched.benchmarks.base import PROBE_OPTIONS, Benchmark, ScheduleRecipe
from mtl_sched.benchmarks.fdu_mtl import fdu_mtl_benchmark
from mtl_sched.benchmarks.nmt_aux import nmt_aux_benchmark
from mtl_sched.benchmarks.relations import relations_benchmark
from mtl_sched.benchmarks.synthetic import synthetic_benchmark
from mtl_sched.benchmarks.synthetic_family import FAMILY
from mtl_sched.benchmarks.tagging import tagging_benchmark
from mtl_sched.plugins import import_plugins

BenchmarkFactory = Callable[..., Benchmark]

_BENCHMARKS: dict[str, BenchmarkFactory] = {}


def register_benchmark(name: str, factory: BenchmarkFactory) -> None:
    """Register ``factory(**options) -> Benchmark`` under ``name`` (re-registering replaces)."""
    _BENCHMARKS[name] = factory


def benchmark_factory(name: str) -> BenchmarkFactory:
    """The factory registered as ``name``.

    :param name: registered benchmark name.
    :raises KeyError: naming the known benchmarks, for an unknown name.
    :raises ValueError: when a plugin module of ``$MTL_SCHED_IMPORT`` cannot be imported.
    """
    import_plugins()
    try:
        return _BENCHMARKS[name]
    except KeyError:
        raise KeyError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(_BENCHMARKS)}"
        ) from None


def benchmark_names() -> list[str]:
    """Names of every registered benchmark (the plugins' included)."""
    import_plugins()
    return list(_BENCHMARKS)


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """Build the benchmark registered as ``name`` (``options`` go to its factory).

    The probe options of `PROBE_OPTIONS` (``probe_pool``, ``probe_hard``, ``probe_measure``,
    ``probe_selection``, ``probe_refresh``, ``decision_steps``) work for every benchmark: those
    its factory does not take itself are applied to the built benchmark
    (`Benchmark.with_probe_options`).
    """
    factory = benchmark_factory(name)
    try:
        accepted = set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        accepted = set()
    probe_options = {
        key: options.pop(key)
        for key in list(options)
        if key in PROBE_OPTIONS and key not in accepted
    }
    benchmark = factory(**options)
    return benchmark.with_probe_options(**probe_options) if probe_options else benchmark


register_benchmark("synthetic", synthetic_benchmark)
register_benchmark("fdu-mtl", fdu_mtl_benchmark)
register_benchmark("nmt-aux", nmt_aux_benchmark)
register_benchmark("tagging", tagging_benchmark)
register_benchmark("relations", relations_benchmark)
for _name, _factory in FAMILY.items():
    register_benchmark(_name, _factory)

__all__ = [
    "Benchmark",
    "ScheduleRecipe",
    "benchmark_factory",
    "benchmark_names",
    "get_benchmark",
    "register_benchmark",
    "synthetic_benchmark",
]

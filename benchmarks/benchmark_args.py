"""The arguments shared by the measurement scripts that build one benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtl_sched.agents.settings import options_for
from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.script_args import parse_key_value


@dataclass
class BenchmarkArgs:
    """Which benchmark a script measures and how to build it (``--name value`` per field)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to measure"})
    small: bool = field(default=False, metadata={"help": "the benchmark's small variant"})
    option: list[str] = field(
        default_factory=list,
        metadata={"help": "benchmark option KEY=VALUE, e.g. probe_pool=16 (repeatable)"},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "data directory (default: $MTL_SCHED_DATA)"}
    )

    def benchmark_options(self) -> dict[str, Any]:
        """The keyword options of the benchmark: ``--option`` pairs, ``--small`` and
        ``--data-dir``."""
        options: dict[str, Any] = dict(parse_key_value(text) for text in self.option)
        if self.small:
            options["small"] = True
        if self.data_dir is not None:
            options["data_dir"] = self.data_dir
        return options

    def make_benchmark(self) -> Benchmark:
        """The benchmark these arguments name, with its options, small variant and data (an
        option scoped to another benchmark, ``other.key``, is left to what trains on it)."""
        own = options_for(self.benchmark, self.benchmark_options())
        return get_benchmark(self.benchmark, **own)

"""What ``train-agent`` trains: the agent's settings (`AgentSettings`, defined in
`mtl_sched.agents.agent_settings` with the environments and agent they build, and importable
from here too) and the run's (`TrainAgentConfig`).

A run trains on one task set (one benchmark) or many: several benchmarks, and with
``task_subsets`` every subset of their tasks, each episode drawing one
(`mtl_sched.envs.task_sets.TaskSetSamplingEnv`).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtl_sched.agents.agent_settings import AgentSettings, PolicyKind, TrainingEnv, VecEnvKind
from mtl_sched.benchmarks import Benchmark, benchmark_names, get_benchmark
from mtl_sched.envs.task_sets import task_subsets

__all__ = [
    "AgentSettings",
    "PolicyKind",
    "TrainAgentConfig",
    "TrainingEnv",
    "VecEnvKind",
    "options_by_benchmark",
    "options_for",
]


@dataclass
class TrainAgentConfig:
    """What ``train_agent`` does.

    :param out: output directory (see `mtl_sched.agents.training` for its layout).
    :param benchmark: registered benchmark name, or several separated by commas
        (``"synthetic-harmful,synthetic-prerequisite"``): each one's tasks are a task set.
    :param benchmark_options: keyword arguments of the benchmarks' factories: ``key`` for every
        benchmark (e.g. ``budget``), ``benchmark.key`` for one of them (e.g.
        ``fdu-mtl.budget``, which takes precedence over ``budget`` for ``fdu-mtl``).
    :param task_subsets: ``(lo, hi)``: train on every subset of ``lo`` to ``hi`` tasks of each
        benchmark (`mtl_sched.envs.task_sets.task_subsets`) instead of its full task set.
    :param steps: total environment steps of agent training.
    :param seed: seed of the agent and its environment.
    :param agent: environment and DQN settings.
    :param eval_every: environment steps between greedy evaluations (0 disables them).
    :param eval_seeds: training seeds of the greedy evaluation runs (held out from training,
        whose episodes draw their seeds from ``seed``); scored on validation data, on every
        benchmark's full task set.
    :param checkpoint_every: environment steps between checkpoints.
    :param progress: show a progress bar.
    """

    out: Path
    benchmark: str = "synthetic"
    benchmark_options: dict[str, Any] = field(default_factory=dict)
    task_subsets: tuple[int, int] | None = None
    steps: int = 20_000
    seed: int = 0
    agent: AgentSettings = field(default_factory=AgentSettings)
    eval_every: int = 2_000
    eval_seeds: tuple[int, ...] = (1_000, 1_001)
    checkpoint_every: int = 1_000
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        names = self.benchmark_names
        if not all(names) or len(set(names)) != len(names):
            raise ValueError(
                f"benchmark must name each benchmark once, separated by commas; got "
                f"{self.benchmark!r}"
            )
        unknown = [name for name in names if name not in benchmark_names()]
        if unknown:
            raise ValueError(
                f"benchmark: unknown {unknown}; registered: {', '.join(benchmark_names())}"
            )
        options_by_benchmark(self.benchmark_options, names)
        if self.task_subsets is not None:
            bounds = tuple(self.task_subsets)
            if len(bounds) != 2 or not all(_is_count(b) for b in bounds) or bounds[0] > bounds[1]:
                raise ValueError(
                    f"task_subsets must be two task counts lo <= hi, each at least 1; got "
                    f"{self.task_subsets!r}"
                )
            self.task_subsets = (int(bounds[0]), int(bounds[1]))
        for name in ("steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be non-negative; got {self.eval_every}")
        if self.eval_every and not self.eval_seeds:
            raise ValueError("greedy evaluation needs at least one eval seed")
        self.eval_seeds = tuple(self.eval_seeds)
        for seed in self.eval_seeds:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise ValueError(f"eval seeds must be non-negative integers; got {seed!r}")
        if len(set(self.eval_seeds)) != len(self.eval_seeds):
            raise ValueError(f"eval seeds must differ from each other; got {self.eval_seeds}")
        self.eval_seeds = tuple(int(seed) for seed in self.eval_seeds)

    @property
    def benchmark_names(self) -> tuple[str, ...]:
        """The benchmarks named by ``benchmark``."""
        return tuple(name.strip() for name in self.benchmark.split(","))

    def benchmarks(self) -> list[Benchmark]:
        """The benchmarks, built with ``benchmark_options`` (checked first)."""
        from mtl_sched.sweeps.spec import check_benchmark_options

        options = options_by_benchmark(self.benchmark_options, self.benchmark_names)
        for name, own in options.items():
            check_benchmark_options(name, own)
        return [get_benchmark(name, **own) for name, own in options.items()]

    def task_sets(self, benchmarks: list[Benchmark]) -> list[Benchmark]:
        """The task sets of training: each benchmark, or each one's ``task_subsets``.

        :param benchmarks: the built `benchmarks`.
        """
        if self.task_subsets is None:
            return list(benchmarks)
        low, high = self.task_subsets
        return [subset for b in benchmarks for subset in task_subsets(b, low, high)]

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the run it continues."""
        identity = {
            "benchmark": self.benchmark,
            "benchmark_options": self.benchmark_options,
            "task_subsets": self.task_subsets,
            "seed": self.seed,
            "agent": asdict(self.agent),
        }
        return json.loads(json.dumps(identity))  # tuples become lists, as read back from disk


def options_for(benchmark: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """One benchmark's own options: every unscoped ``key`` and its ``benchmark.key`` entries, the
    scoped value winning; entries scoped to other benchmarks are left out.

    :param benchmark: the benchmark name.
    :param options: ``key`` or ``benchmark.key`` -> value.
    """
    own = {key: value for key, value in options.items() if "." not in key}
    for key, value in options.items():
        scope, _, name = key.rpartition(".")
        if scope == benchmark:
            own[name] = value
    return own


def options_by_benchmark(
    options: Mapping[str, Any], benchmarks: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """`options_for` of each of ``benchmarks``, in order.

    :param options: ``key`` or ``benchmark.key`` -> value.
    :param benchmarks: the benchmark names.
    :raises ValueError: for a scope that names none of ``benchmarks``.
    """
    for key in options:
        scope, _, name = key.rpartition(".")
        if scope and (scope not in benchmarks or not name):
            raise ValueError(
                f"benchmark option {key!r}: a scoped option is BENCHMARK.KEY with BENCHMARK one "
                f"of the benchmarks trained on ({', '.join(benchmarks)})"
            )
    return {name: options_for(name, options) for name in benchmarks}


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1

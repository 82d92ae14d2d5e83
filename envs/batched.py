"""``N`` scheduling environments at once, as one stable-baselines3 ``VecEnv``.

`make_scheduling_vec_env` returns a `BatchedSchedulingVecEnv` (defined in
`mtl_sched.envs.batched_vec_env`, importable from here too: ``N`` environments whose models train
as one batched model) when the benchmark's model stacks, and otherwise ``N`` separate
`MTLSchedulingEnv` in SB3's ``SubprocVecEnv`` (or ``DummyVecEnv``). Either way the spaces,
rewards, episodes and ``info`` keys are those of `MTLSchedulingEnv`.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.envs.batched_vec_env import BatchedSchedulingVecEnv
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv
from mtl_sched.models.stacked import stacking_problem

__all__ = [
    "BatchedSchedulingVecEnv",
    "FallbackKind",
    "benchmark_batches",
    "make_scheduling_vec_env",
]

FallbackKind = Literal["subproc", "dummy"]


def benchmark_batches(benchmark: Benchmark) -> bool:
    """Whether `BatchedSchedulingVecEnv` can run ``benchmark``: whether its model stacks
    (`mtl_sched.models.stacked.stacking_problem`).

    :param benchmark: the benchmark.
    """
    return stacking_problem(benchmark.make_model(0)) is None


def _make_env(
    benchmark: str | Benchmark, benchmark_options: dict[str, Any] | None, env_kwargs: dict[str, Any]
) -> MTLSchedulingEnv:
    return MTLSchedulingEnv(benchmark, benchmark_options=benchmark_options, **env_kwargs)


def make_scheduling_vec_env(
    benchmark: str | Benchmark,
    n_envs: int,
    seed: int | None = None,
    *,
    benchmark_options: dict[str, Any] | None = None,
    batched: bool | None = None,
    fallback: FallbackKind = "subproc",
    start_method: str | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` scheduling environments of ``benchmark`` as one SB3 ``VecEnv``.

    A `BatchedSchedulingVecEnv` when the benchmark's model stacks, else ``n_envs``
    `MTLSchedulingEnv` in a ``SubprocVecEnv`` (one process each) or, with
    ``fallback="dummy"``, a ``DummyVecEnv`` (one after the other, in this process). Either way
    the spaces, rewards, episodes and ``info`` keys are `MTLSchedulingEnv`'s, and environment
    ``i`` is seeded ``seed + i``.

    :param benchmark: a registered benchmark name or a `Benchmark`.
    :param n_envs: number of environments.
    :param seed: seed of the first environment (``None``: unseeded).
    :param benchmark_options: keyword options of the named benchmark's factory.
    :param batched: ``None`` batches when the model stacks; ``True`` requires it (an error
        otherwise); ``False`` always uses the fallback.
    :param fallback: ``"subproc"`` or ``"dummy"``: the ``VecEnv`` of the fallback.
    :param start_method: multiprocessing start method of ``SubprocVecEnv`` (SB3's default:
        ``"forkserver"`` where available).
    :param env_kwargs: keyword arguments of `MTLSchedulingEnv` (``reward``, ``penalty``,
        ``reference_accuracies``, ``steps_per_action``, ``recency_decay``, ``observation``,
        ``max_tasks``, ...). Single-task references (``"auto"``) are computed once, in this process.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be at least 1; got {n_envs}")
    if fallback not in ("subproc", "dummy"):
        raise ValueError(f"fallback must be 'subproc' or 'dummy'; got {fallback!r}")
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark, **(benchmark_options or {}))
    if batched is None:
        batched = benchmark_batches(benchmark)
    vec_env: VecEnv
    if batched:
        vec_env = BatchedSchedulingVecEnv(benchmark, n_envs, **env_kwargs)
    else:
        references = MTLSchedulingEnv(benchmark, **env_kwargs).reference_accuracies
        kwargs = {**env_kwargs, "reference_accuracies": references}
        env_fns = [functools.partial(_make_env, benchmark, None, kwargs) for _ in range(n_envs)]
        if fallback == "dummy":
            vec_env = DummyVecEnv(env_fns)
        else:
            vec_env = SubprocVecEnv(env_fns, start_method=start_method)
    if seed is not None:
        vec_env.seed(seed)
    return vec_env

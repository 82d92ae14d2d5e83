"""One scheduling agent, many task sets: each episode trains a task set drawn at random.

An agent whose Q-network scores each task from its own features (`mtl_sched.agents.task_shared`)
can schedule any number of tasks in any order, but it only learns to when it is trained on more than
one task set. `TaskSetSamplingEnv` holds one `MTLSchedulingEnv` per task set, all with the
per-task feature observation padded to the same ``max_tasks`` rows, and at every ``reset`` draws
which of them runs the next episode. `task_subsets` lists the task subsets of a benchmark (for
example every subset of 3 to 8 of ``synthetic-many``'s tasks).

Spaces
    Those of the task sets' environments (``observation="task-features"``): observation
    ``Box(-1, 4, (max_tasks, F + 1))``, action ``Discrete(max_tasks)``; the rows and actions of
    a task set with fewer tasks than ``max_tasks`` are padding (mask column 0, `action_masks`
    False), and an action on a padded slot is an error. With ``task_vocabulary``, each row has
    one more column before the mask, its task's identity (`MTLSchedulingEnv`), in one vocabulary
    for every task set: ``"own"`` is the task names of all task sets, in order of first
    appearance (`mtl_sched.envs.observation.union_vocabulary`). By default there is none: an
    agent trained on several task sets is meant for task sets it never saw, where identities
    were found to hurt (`mtl_sched.agents.AgentSettings`'s ``task_identity``).

Seeding
    ``reset(seed=s)`` seeds this environment's generator; every reset draws from it the task set
    and the seed of that task set's environment (which draws its trainer seed from it), so the same
    seed and actions reproduce the same episodes exactly on CPU.

``info`` keys
    Those of `MTLSchedulingEnv` (see `mtl_sched.envs.scheduling_env`), plus ``task_set`` (int,
    in ``reset`` and ``step``): the index of the episode's task set in ``task_sets``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.envs.observation import OWN_TASKS, union_vocabulary
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv

_SEED_LIMIT = 2**31 - 1


def task_subsets(benchmark: str | Benchmark, min_tasks: int, max_tasks: int) -> list[Benchmark]:
    """Every subset of ``benchmark``'s tasks with ``min_tasks`` to ``max_tasks`` tasks, each in the
    benchmark's task order (`Benchmark.with_tasks`), smallest subsets first.

    :param benchmark: a registered benchmark name or a `Benchmark`.
    :param min_tasks: fewest tasks of a subset (at least 1).
    :param max_tasks: most tasks of a subset (at most the benchmark's task count).
    """
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark)
    names = benchmark.task_names
    if not 1 <= min_tasks <= max_tasks <= len(names):
        raise ValueError(
            f"task subsets of {benchmark.name!r} need 1 <= min_tasks <= max_tasks <= "
            f"{len(names)}; got {min_tasks} and {max_tasks}"
        )
    return [
        benchmark.with_tasks(subset)
        for size in range(min_tasks, max_tasks + 1)
        for subset in itertools.combinations(names, size)
    ]


class TaskSetSamplingEnv(gym.Env[np.ndarray, np.int64]):
    """Train a run of a randomly drawn task set per episode, with per-task feature observations.

    :param task_sets: the task sets (benchmarks, or registered names), at least one.
    :param max_tasks: rows of the padded observation and size of the action space (default: the
        most tasks of any task set).
    :param weights: probability of drawing each task set (default: equal).
    :param env_kwargs: keyword arguments of every task set's `MTLSchedulingEnv` (``reward``,
        ``steps_per_action``, ``probe``, ``recency_decay``, ``task_vocabulary``, ...);
        ``observation`` is always ``"task-features"``; ``task_vocabulary`` is ``None`` by
        default, and ``"own"`` is every task set's names.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        task_sets: Sequence[str | Benchmark],
        *,
        max_tasks: int | None = None,
        weights: Sequence[float] | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__()
        if not task_sets:
            raise ValueError("TaskSetSamplingEnv needs at least one task set")
        if "observation" in env_kwargs and env_kwargs["observation"] != "task-features":
            raise ValueError(
                "TaskSetSamplingEnv schedules task sets of different sizes: its observation is "
                f"'task-features'; got observation={env_kwargs['observation']!r}"
            )
        env_kwargs.pop("observation", None)
        benchmarks = [get_benchmark(b) if isinstance(b, str) else b for b in task_sets]
        if env_kwargs.get("task_vocabulary") == OWN_TASKS:
            env_kwargs["task_vocabulary"] = union_vocabulary([b.task_names for b in benchmarks])
        env_kwargs.setdefault("task_vocabulary", None)
        largest = max(b.num_tasks for b in benchmarks)
        self.max_tasks = largest if max_tasks is None else int(max_tasks)
        if self.max_tasks < largest:
            raise ValueError(f"max_tasks={self.max_tasks} is below a task set of {largest} tasks")
        self.envs = [
            MTLSchedulingEnv(b, observation="task-features", max_tasks=self.max_tasks, **env_kwargs)
            for b in benchmarks
        ]
        self.weights = self._check_weights(weights, len(self.envs))
        first = self.envs[0]
        for env in self.envs[1:]:
            if env.observation_space != first.observation_space:
                raise ValueError(
                    "every task set needs the same observation layout (probe bins); "
                    f"{env.observation_space} differs from {first.observation_space}"
                )
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.current: int | None = None

    @staticmethod
    def _check_weights(weights: Sequence[float] | None, count: int) -> np.ndarray:
        if weights is None:
            return np.full(count, 1.0 / count)
        values = np.asarray(weights, dtype=float)
        if values.shape != (count,) or not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"weights must be {count} non-negative numbers; got {list(weights)}")
        if values.sum() <= 0:
            raise ValueError("weights must not all be 0")
        return values / values.sum()

    @property
    def env(self) -> MTLSchedulingEnv:
        """The environment of the episode in progress."""
        if self.current is None:
            raise RuntimeError("call reset() before step()")
        return self.envs[self.current]

    def action_masks(self) -> np.ndarray:
        """Which actions are real tasks of the episode's task set (all False before a reset)."""
        if self.current is None:
            return np.zeros(self.max_tasks, dtype=bool)
        return self.env.action_masks()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.current = int(self.np_random.choice(len(self.envs), p=self.weights))
        observation, info = self.env.reset(seed=int(self.np_random.integers(_SEED_LIMIT)))
        info["task_set"] = self.current
        return observation, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info["task_set"] = self.current
        return observation, reward, terminated, truncated, info

    def get_state(self) -> dict[str, Any]:
        """The generator, the episode's task set and its environment's state (see
        `MTLSchedulingEnv.get_state`); `set_state` continues exactly from it."""
        return {
            "np_random": self.np_random.bit_generator.state,
            "current": self.current,
            "env": None if self.current is None else self.env.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` of an environment over the same task sets."""
        self.np_random.bit_generator.state = state["np_random"]
        self.current = state["current"]
        if self.current is not None:
            self.env.set_state(state["env"])

"""Where the trainers of a scheduling environment come from, a benchmark or a factory of
trainers over one's own model and tasks, and the settings the environment reads off them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import Trainer

__all__ = ["TrainerFactory", "TrainerSource"]

TrainerFactory = Callable[[int], Trainer]


def _budget_steps(trainer: Trainer, steps_per_action: int) -> int:
    """Decisions that spend the trainer's example budget once (at its minibatch size)."""
    config = trainer.config
    minibatches = max(1, config.budget // config.batch_size)
    return math.ceil(minibatches / steps_per_action)


@dataclass(frozen=True)
class TrainerSource:
    """The trainers of an `MTLSchedulingEnv` and the settings read off them.

    :param factory: ``seed -> Trainer`` over a fresh model.
    :param benchmark: the benchmark whose trainers ``factory`` builds; ``None`` for one's own
        factory.
    :param task_names: the trainers' task names.
    :param probe_config: the probe settings.
    :param steps_per_action: minibatches of the chosen task per environment step.
    :param episode_steps: steps per episode.
    """

    factory: TrainerFactory
    benchmark: Benchmark | None
    task_names: Sequence[str]
    probe_config: ProbeConfig
    steps_per_action: int
    episode_steps: int

    @classmethod
    def resolve(
        cls,
        benchmark: str | Benchmark | None,
        *,
        benchmark_options: dict[str, Any] | None = None,
        trainer_factory: TrainerFactory | None = None,
        task_names: Sequence[str] | None = None,
        episode_steps: int | None = None,
        steps_per_action: int | None = None,
        probe: ProbeConfig | None = None,
    ) -> TrainerSource:
        """The source of the given `MTLSchedulingEnv` arguments, its defaults filled in: those
        of the benchmark, or those of a trainer the factory builds (only when needed).

        :param benchmark: a registered benchmark name or a `Benchmark`; ignored with a factory.
        :param benchmark_options: keyword options of the named benchmark's factory.
        :param trainer_factory: ``seed -> Trainer`` over a fresh model.
        :param task_names: the factory's task names (read off a trainer when omitted).
        :param episode_steps: steps per episode (default: those that spend the run's example
            budget once).
        :param steps_per_action: minibatches per step (default: the benchmark's
            ``decision_steps``, or 1 for a factory).
        :param probe: probe settings (default: the trainer configuration's).
        :raises ValueError: without a benchmark or factory, or for fewer than one step.
        """
        if steps_per_action is not None and steps_per_action < 1:
            raise ValueError(f"steps_per_action must be at least 1; got {steps_per_action}")
        if trainer_factory is not None:
            needs_trainer = task_names is None or probe is None or episode_steps is None
            first = trainer_factory(0) if needs_trainer else None
            names = tuple(task_names) if task_names is not None else first.task_names
            probe = probe or first.config.probe
            steps_per_action = steps_per_action or 1
            default_steps = 1 if first is None else _budget_steps(first, steps_per_action)
            factory, benchmark = trainer_factory, None
        elif benchmark is not None:
            if isinstance(benchmark, str):
                benchmark = get_benchmark(benchmark, **(benchmark_options or {}))
            factory, names = benchmark.make_trainer, benchmark.task_names
            probe = probe or benchmark.trainer_config.probe
            steps_per_action = steps_per_action or benchmark.decision_steps
            # One episode is one training run of the benchmark's budget.
            default_steps = math.ceil(benchmark.env_episode_steps / steps_per_action)
        else:
            raise ValueError("MTLSchedulingEnv needs a benchmark or a trainer_factory")
        episode_steps = int(episode_steps or default_steps)
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be at least 1; got {episode_steps}")
        return cls(factory, benchmark, names, probe, steps_per_action, episode_steps)

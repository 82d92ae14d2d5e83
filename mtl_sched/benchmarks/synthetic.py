"""The ``synthetic`` benchmark: three related tasks of rising difficulty and one harmful task.

Tasks (all over one 16-dimensional input space, teachers sharing 80% of their projection):

==========  =======  ==========  ===========  ==========================================
task        classes  difficulty  label noise  role
==========  =======  ==========  ===========  ==========================================
``easy``    2        0.05        0            learned within a few hundred examples
``medium``  3        0.3         0            needs a steady share of the budget
``hard``    4        0.5         0.1          keeps improving for the whole budget
``noise``   4        --          random       harmful: labels independent of the input
==========  =======  ==========  ===========  ==========================================

The model is a shared MLP (16 -> 64 -> 32) with a linear head per task, trained with Adam.

Known better schedule: round-robin over ``easy``, ``medium`` and ``hard`` only (skip ``noise``).
Uniform weighting spends a quarter of the examples on ``noise``, whose random labels the shared
encoder can only memorize, so the related tasks both get fewer examples and a noisier encoder.
``tests/test_benchmarks.py`` checks that this schedule beats ``uniform`` on validation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mtl_sched.benchmarks.base import Benchmark, ScheduleRecipe
from mtl_sched.data.parity import ParityTaskSpec, make_parity_tasks
from mtl_sched.data.synthetic import ComposedTaskSpec, SyntheticTaskSpec, make_synthetic_tasks
from mtl_sched.data.task import Task
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import TrainerConfig

INPUT_DIM = 16
LATENT_DIM = 8


def synthetic_specs(
    train_size: int = 1000, validation_size: int = 200
) -> tuple[SyntheticTaskSpec, ...]:
    """The four task specs of the ``synthetic`` benchmark."""
    common = {"train_size": train_size, "validation_size": validation_size, "test_size": 1000}
    return (
        SyntheticTaskSpec("easy", num_classes=2, difficulty=0.05, relatedness=0.8, **common),
        SyntheticTaskSpec("medium", num_classes=3, difficulty=0.3, relatedness=0.8, **common),
        SyntheticTaskSpec(
            "hard", num_classes=4, difficulty=0.5, label_noise=0.1, relatedness=0.8, **common
        ),
        SyntheticTaskSpec("noise", num_classes=4, harmful=True, **common),
    )


SMALL_SETTINGS: dict[str, Any] = {
    "budget": 640,
    "train_size": 200,
    "validation_size": 60,
    "hidden_sizes": (16,),
}


def synthetic_benchmark(
    budget: int | None = None,
    batch_size: int = 32,
    train_size: int | None = None,
    validation_size: int | None = None,
    hidden_sizes: Sequence[int] | None = None,
    learning_rate: float = 3e-3,
    data_seed: int = 0,
    bins: int = 20,
    small: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
) -> Benchmark:
    """Build the ``synthetic`` benchmark.

    :param budget: training examples per run (default 9600; 640 when ``small``).
    :param batch_size: examples per minibatch.
    :param train_size: training examples per task (default 1000; 200 when ``small``).
    :param validation_size: validation examples per task, the probe pool (default 200; 60
        when ``small``).
    :param hidden_sizes: shared encoder widths (default (64, 32); (16,) when ``small``).
    :param learning_rate: Adam learning rate.
    :param data_seed: seed of the generated data (fixed per benchmark, like a real corpus).
    :param bins: histogram bins of the scheduler's observation.
    :param small: the small variant (runs in about a second); explicit values still win.
    :param data_dir: accepted for a uniform interface with the real-data benchmarks; the
        synthetic data needs no files.
    """
    del data_dir
    preset: dict[str, Any] = {
        "budget": 9_600,
        "train_size": 1000,
        "validation_size": 200,
        "hidden_sizes": (64, 32),
    }
    if small:
        preset.update(SMALL_SETTINGS)
    budget = preset["budget"] if budget is None else budget
    train_size = preset["train_size"] if train_size is None else train_size
    validation_size = preset["validation_size"] if validation_size is None else validation_size
    hidden_sizes = preset["hidden_sizes"] if hidden_sizes is None else hidden_sizes
    specs = synthetic_specs(train_size, validation_size)

    return synthetic_mlp_benchmark(
        name="synthetic",
        description="3 related tasks of rising difficulty + 1 random-label task; shared MLP",
        specs=specs,
        spec_configs=[s.__dict__ for s in specs],
        budget=budget,
        batch_size=batch_size,
        hidden_sizes=hidden_sizes,
        learning_rate=learning_rate,
        data_seed=data_seed,
        bins=bins,
        version=1,
        better_schedule=ScheduleRecipe(
            scheduler="round-robin",
            kwargs={"tasks": ["easy", "medium", "hard"]},
            rationale="never trains the random-label task 'noise'; cycles through the others",
        ),
    )


def synthetic_mlp_benchmark(
    *,
    name: str,
    description: str,
    specs: Sequence[SyntheticTaskSpec | ComposedTaskSpec] | Sequence[ParityTaskSpec],
    spec_configs: list[dict[str, Any]],
    budget: int,
    batch_size: int,
    hidden_sizes: Sequence[int],
    learning_rate: float,
    data_seed: int,
    bins: int,
    version: int,
    better_schedule: ScheduleRecipe | None,
    decision_steps: int = 1,
) -> Benchmark:
    """A benchmark of synthetic tasks over one input space under a `SharedMLP` trained with
    Adam, evaluated eight times per run, probing every task's whole validation split.

    :param name: registry name.
    :param description: one line for ``mtl-sched list benchmarks``.
    :param specs: the task specs, in task order: teacher tasks (`SyntheticTaskSpec`,
        `ComposedTaskSpec`) or sparse parities (`ParityTaskSpec`), not both.
    :param spec_configs: how the specs enter the benchmark's config (and fingerprint).
    :param budget: training examples per run.
    :param batch_size: examples per minibatch.
    :param hidden_sizes: shared encoder widths.
    :param learning_rate: Adam learning rate.
    :param data_seed: seed of the generated data.
    :param bins: histogram bins of the scheduler's observation.
    :param version: bumped whenever the definition changes results.
    :param better_schedule: the documented schedule that beats ``uniform``.
    :param decision_steps: minibatches per decision of a scheduling agent.
    """
    hidden = tuple(hidden_sizes)
    parities = [s for s in specs if isinstance(s, ParityTaskSpec)]
    if parities and len(parities) != len(specs):
        raise ValueError(f"{name}: parity specs cannot be mixed with teacher-task specs")

    def build_tasks() -> list[Task]:
        if parities:
            return make_parity_tasks(parities, INPUT_DIM, seed=data_seed)
        return make_synthetic_tasks(specs, INPUT_DIM, LATENT_DIM, seed=data_seed)  # type: ignore[arg-type]

    def build_model(tasks: Sequence[Task]) -> SharedMLP:
        return SharedMLP(INPUT_DIM, {t.name: t.num_classes for t in tasks}, hidden)

    return Benchmark(
        name=name,
        description=description,
        build_tasks=build_tasks,
        build_model=build_model,
        trainer_config=TrainerConfig(
            budget=budget,
            batch_size=batch_size,
            eval_every=max(1, budget // 8),
            learning_rate=learning_rate,
            probe=ProbeConfig(bins=bins),
        ),
        config={
            "specs": spec_configs,
            "input_dim": INPUT_DIM,
            "latent_dim": LATENT_DIM,
            "hidden_sizes": list(hidden),
            "data_seed": data_seed,
        },
        version=version,
        better_schedule=better_schedule,
        decision_steps=decision_steps,
    )

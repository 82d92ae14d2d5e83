"""A family of synthetic task sets, each with a documented better schedule than ``uniform``.

Every member draws its tasks from `mtl_sched.data.synthetic` over one 16-dimensional input space
(teachers with an 8-dimensional latent layer), trains a `SharedMLP` with Adam and stops at a
budget of training examples, so a run of one scheduler takes well under a second on one CPU
core. ``better_schedule`` holds each member's known-good schedule; ``benchmarks/family_gaps.py``
measures it against ``uniform`` and fixed task distributions.

``synthetic-harmful``
    ``easy``, ``medium``, ``hard`` (the ``synthetic`` tasks) and ``noise``: 32 classes of random
    labels on 300 inputs, in front of a narrow encoder (one hidden layer of 32). Memorizing the
    noise takes most of the encoder's capacity and its loss (about ln 32) dominates the summed
    loss of ``uniform``. Best schedule: round-robin over the three real tasks.
``synthetic-prerequisite``
    Sparse parities (`mtl_sched.data.parity`) over 16 random signs: ``base``'s label is the
    parity of bits 0-4, ``composite``'s that of bits 0-6 (20% of its training labels flipped),
    so ``composite`` is ``base``'s parity times two more bits. Each has 8000 training
    examples. The encoder (64, 32) learns ``base`` after a plateau and then suddenly; from its
    own data ``composite`` stays at chance within the run, while on ``base``'s features it is a
    parity of two more bits. A fixed share p of ``base`` delays those features by a factor 1/p
    and leaves ``composite`` too few steps after them. Schedule, chosen on validation (seeds
    100-104) among 15 two-stage schedules: ``base`` alone for 30% of the budget, then ``base``
    0.1 and ``composite`` 0.9 (``phased``). The best moment to switch is a matter of state
    (``base``'s accuracy jumps when its features form, at a point that varies between run
    seeds), which is what a state-reading scheduler can exploit; agents decide every 30
    minibatches (``decision_steps``), so an episode is 50 decisions. Version 2, a 16-class
    teacher task with a grouping of its classes, is documented in
    ``docs/results/synthetic-family.md``: there a fixed distribution came within about a point of
    every changing schedule.
``synthetic-overfit``
    ``large`` (6 classes, 10000 examples, a rapidly oscillating teacher) keeps improving until
    the end of the budget; ``small`` (2 classes, 60 examples, 30% of them mislabelled) is a
    `ComposedTaskSpec` task reading ``large``'s teacher features, so a linear readout of the
    features ``large`` builds solves it from a few epochs of its clean majority. ``uniform``
    gives ``small`` half of the budget (over a hundred epochs of 60 examples): the wide encoder
    (128, 64) memorizes its mislabelled examples and its accuracy stays well below what a few
    epochs on mature features give, while ``large`` gets half of the examples it needs. As
    ``large`` improves until the end, model selection on validation picks a late checkpoint,
    where both losses show. Schedule: ``small`` in 5% of the steps (``phased`` with one stage;
    about ten epochs of ``small``).
``synthetic-many``
    Eight tasks of 100 to 4000 examples, 2 to 16 classes and rising difficulty, one of them
    less related to the others, two with noisy labels and one (``noise``) with random labels.
    ``uniform`` draws eight minibatches per optimizer step, so it takes an eighth of the steps
    and spends an eighth of the budget on ``noise``. Schedule: round-robin over the seven real
    tasks.

``small=True`` keeps the training data, budget and model and shrinks the validation and test
splits (100 and 300 examples per task), which makes evaluation cheaper for tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from mtl_sched.benchmarks.base import Benchmark, ScheduleRecipe
from mtl_sched.benchmarks.synthetic import synthetic_mlp_benchmark
from mtl_sched.data.parity import ParityTaskSpec
from mtl_sched.data.synthetic import ComposedTaskSpec, SyntheticTaskSpec

FULL_SPLITS = {"validation_size": 200, "test_size": 1000}
SMALL_SPLITS = {"validation_size": 100, "test_size": 300}

Spec = SyntheticTaskSpec | ComposedTaskSpec | ParityTaskSpec
SpecBuilder = Callable[[dict[str, int]], tuple[Spec, ...]]


def harmful_specs(splits: dict[str, int]) -> tuple[Spec, ...]:
    """Three related tasks and a 32-class random-label task (``synthetic-harmful``)."""
    return (
        SyntheticTaskSpec("easy", 2, 1000, difficulty=0.05, relatedness=0.8, **splits),
        SyntheticTaskSpec("medium", 3, 1000, difficulty=0.3, relatedness=0.8, **splits),
        SyntheticTaskSpec(
            "hard", 4, 1000, difficulty=0.5, label_noise=0.1, relatedness=0.8, **splits
        ),
        SyntheticTaskSpec("noise", 32, 300, harmful=True, **splits),
    )


def prerequisite_specs(splits: dict[str, int]) -> tuple[Spec, ...]:
    """A parity of 5 bits and a noisy parity of those bits and two more."""
    return (
        ParityTaskSpec("base", tuple(range(5)), 8000, **splits),
        ParityTaskSpec("composite", tuple(range(7)), 8000, label_noise=0.2, **splits),
    )


def overfit_specs(splits: dict[str, int]) -> tuple[Spec, ...]:
    """A large task that needs the budget and a small noisy one, built on its features, that
    overfits."""
    return (
        SyntheticTaskSpec("large", 6, 10000, difficulty=0.7, relatedness=0.8, **splits),
        ComposedTaskSpec("small", "large", 2, 60, label_noise=0.3, **splits),
    )


def many_specs(splits: dict[str, int]) -> tuple[Spec, ...]:
    """Eight tasks of different sizes, difficulties and label quality."""
    related = {"relatedness": 0.8, **splits}
    return (
        SyntheticTaskSpec("binary", 2, 3000, difficulty=0.1, **related),
        SyntheticTaskSpec("ternary", 3, 2000, difficulty=0.3, **related),
        SyntheticTaskSpec("large-hard", 4, 4000, difficulty=0.5, **related),
        SyntheticTaskSpec("noisy", 4, 1000, difficulty=0.4, label_noise=0.2, **related),
        SyntheticTaskSpec("small", 2, 300, difficulty=0.2, **related),
        SyntheticTaskSpec("tiny-noisy", 3, 100, difficulty=0.3, label_noise=0.3, **related),
        SyntheticTaskSpec("distant", 6, 2000, difficulty=0.6, relatedness=0.5, **splits),
        SyntheticTaskSpec("noise", 16, 300, harmful=True, **splits),
    )


def _spec_config(spec: Spec) -> dict[str, object]:
    """A spec's fields for the benchmark config; a composed task's fields added after the
    members were first measured (``reads``, ``shortcut``) are left out at their defaults, so the
    configs (and fingerprints) of members that do not use them stay as they were."""
    fields = {"kind": type(spec).__name__, **spec.__dict__}
    for name, default in (("reads", "features"), ("shortcut", 0.0)):
        if name in fields and fields[name] == default:
            del fields[name]
    return fields


def family_benchmark(
    name: str,
    description: str,
    specs: SpecBuilder,
    recipe: ScheduleRecipe,
    *,
    version: int,
    default_budget: int,
    default_hidden: Sequence[int],
    budget: int | None,
    batch_size: int,
    hidden_sizes: Sequence[int] | None,
    learning_rate: float,
    data_seed: int,
    bins: int,
    small: bool,
    decision_steps: int = 1,
) -> Benchmark:
    """One member of the family from its specs, recipe and settings (the members' factories
    document the options)."""
    budget = default_budget if budget is None else budget
    if budget < 1:
        raise ValueError(f"{name}: budget must be positive; got {budget}")
    if batch_size < 1:
        raise ValueError(f"{name}: batch_size must be positive; got {batch_size}")
    if not learning_rate > 0:
        raise ValueError(f"{name}: learning_rate must be positive; got {learning_rate}")
    hidden = tuple(default_hidden if hidden_sizes is None else hidden_sizes)
    if any(int(h) < 1 for h in hidden):
        raise ValueError(f"{name}: hidden_sizes must be positive widths; got {list(hidden)}")
    task_specs = specs(dict(SMALL_SPLITS if small else FULL_SPLITS))

    return synthetic_mlp_benchmark(
        name=name,
        description=description,
        specs=task_specs,
        spec_configs=[_spec_config(s) for s in task_specs],
        budget=budget,
        batch_size=batch_size,
        hidden_sizes=hidden,
        learning_rate=learning_rate,
        data_seed=data_seed,
        bins=bins,
        version=version,
        better_schedule=recipe,
        decision_steps=decision_steps,
    )


def _member(
    name: str,
    description: str,
    specs: SpecBuilder,
    recipe: ScheduleRecipe,
    version: int,
    default_budget: int,
    default_hidden: Sequence[int],
    decision_steps: int = 1,
) -> Callable[..., Benchmark]:
    def factory(
        budget: int | None = None,
        batch_size: int = 32,
        hidden_sizes: Sequence[int] | None = None,
        learning_rate: float = 3e-3,
        data_seed: int = 0,
        bins: int = 20,
        small: bool = False,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> Benchmark:
        del data_dir
        return family_benchmark(
            name,
            description,
            specs,
            recipe,
            version=version,
            default_budget=default_budget,
            default_hidden=default_hidden,
            budget=budget,
            batch_size=batch_size,
            hidden_sizes=hidden_sizes,
            learning_rate=learning_rate,
            data_seed=data_seed,
            bins=bins,
            small=small,
            decision_steps=decision_steps,
        )

    factory.__name__ = name.replace("-", "_") + "_benchmark"
    factory.__doc__ = f"""Build the ``{name}`` benchmark ({description}).

    :param budget: training examples per run (default {default_budget}).
    :param batch_size: examples per minibatch.
    :param hidden_sizes: shared encoder widths (default {tuple(default_hidden)}).
    :param learning_rate: Adam learning rate.
    :param data_seed: seed of the generated data (fixed per benchmark, like a real corpus).
    :param bins: histogram bins of the scheduler's observation.
    :param small: validation and test splits of 100 and 300 examples per task (cheaper
        evaluation); training data, budget and model are unchanged.
    :param data_dir: accepted for a uniform interface with the real-data benchmarks; the
        synthetic data needs no files.
    """
    return factory


synthetic_harmful_benchmark = _member(
    "synthetic-harmful",
    "3 related tasks + a 32-class random-label task; narrow shared MLP",
    harmful_specs,
    ScheduleRecipe(
        "round-robin",
        {"tasks": ["easy", "medium", "hard"]},
        "never trains 'noise', whose memorization fills the narrow encoder",
    ),
    version=1,
    default_budget=6400,
    default_hidden=(32,),
)

synthetic_prerequisite_benchmark = _member(
    "synthetic-prerequisite",
    "a parity of 5 bits + a noisy parity of 7 that needs its features; shared MLP",
    prerequisite_specs,
    ScheduleRecipe(
        "phased",
        {"stages": [{"base": 1.0}, {"base": 0.1, "composite": 0.9}], "fractions": [0.3, 0.7]},
        "trains 'base' alone until its parity features have formed, then mostly 'composite', "
        "a parity of two more bits on those features",
    ),
    version=3,
    default_budget=48000,
    default_hidden=(64, 32),
    decision_steps=30,
)

synthetic_overfit_benchmark = _member(
    "synthetic-overfit",
    "a large task that needs the budget + a 60-example noisy task that overfits; shared MLP",
    overfit_specs,
    ScheduleRecipe(
        "phased",
        {"stages": [{"large": 0.95, "small": 0.05}], "fractions": [1.0]},
        "keeps 'small' to 5% of the steps (about ten epochs, too few to memorize its "
        "mislabelled examples), leaving the budget to 'large'",
    ),
    version=2,
    default_budget=12800,
    default_hidden=(128, 64),
)

synthetic_many_benchmark = _member(
    "synthetic-many",
    "8 tasks of different sizes and difficulties, one with random labels; shared MLP",
    many_specs,
    ScheduleRecipe(
        "round-robin",
        {"tasks": ["binary", "ternary", "large-hard", "noisy", "small", "tiny-noisy", "distant"]},
        "one task per step (8x the optimizer steps of uniform), never 'noise'",
    ),
    version=1,
    default_budget=9600,
    default_hidden=(64, 32),
)

FAMILY: dict[str, Callable[..., Benchmark]] = {
    "synthetic-harmful": synthetic_harmful_benchmark,
    "synthetic-prerequisite": synthetic_prerequisite_benchmark,
    "synthetic-overfit": synthetic_overfit_benchmark,
    "synthetic-many": synthetic_many_benchmark,
}

# one-stage weights of 'base' (the rest to 'composite') tried as fixed distributions; 0.75 is
# the best fixed weight on validation (seeds 100-104) over 0.1, 0.15, ..., 0.8, 0.9
PREREQUISITE_FIXED = (0.9, 0.75, 0.6, 0.5, 0.3)


def family_contenders(member: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, scheduler, kwargs)`` a schedule on ``member`` is measured against: ``uniform``,
    the documented schedule (label ``"recipe"``) and, on ``synthetic-prerequisite``, every fixed
    task distribution (``random``, ``proportional``, ``temperature`` and one-stage ``phased``
    weights of ``base``).

    :param member: a key of `FAMILY`.
    """
    if member not in FAMILY:
        raise KeyError(f"unknown family member {member!r}; known: {', '.join(FAMILY)}")
    recipe = FAMILY[member]().better_schedule
    assert recipe is not None
    runs = [("uniform", "uniform", {}), ("recipe", recipe.scheduler, dict(recipe.kwargs))]
    if member == "synthetic-prerequisite":
        runs += [(name, name, {}) for name in ("random", "proportional", "temperature")]
        for weight in PREREQUISITE_FIXED:
            stages = [{"base": weight, "composite": round(1 - weight, 6)}]
            runs.append((f"fixed-base-{weight}", "phased", {"stages": stages, "fractions": [1.0]}))
    return runs

"""Does any prerequisite design make a changing schedule beat every fixed task distribution?

``synthetic-prerequisite`` was built so that the best schedule changes during the run (train the
prerequisite first, then the task that reads its features). Measured on it, the best fixed task
distribution matches that schedule. This script tries other two-task designs over the same
synthetic teachers and the same `SharedMLP` trainer: for each design it runs ``uniform``,
``temperature``, fixed distributions (one-stage ``phased`` weights of the prerequisite ``A``) and
schedules that change once (``A`` alone for a fraction of the budget, then a fixed mixture), and
scores the model selected on validation (validation scores by default: the script chooses
designs, so it uses run seeds of its own, never the reporting seeds 0-4).

Designs (``A`` is the prerequisite, ``B`` reads it; sizes are training examples):

``current``
    ``synthetic-prerequisite`` itself: ``A`` 16 classes (4000), ``B`` a 4-group grouping of
    ``A``'s classes (150, 20% noise).
``easy-A-readout-B``
    ``A`` 8 easy classes (1500) saturates early; ``B`` an 8-class readout of ``A``'s teacher
    features (4000, clean) that needs many steps.
``easy-A-noisy-B``
    as above with ``B`` 1000 examples, 30% noise.
``fine-A-fine-B``
    ``A`` 16 classes (2000), ``B`` a 16-class readout of its features (3000, 20% noise).
``coarse-A-fine-B``
    ``A`` 4 classes (1000), ``B`` a 12-class readout (3000): ``A``'s features are coarse.
``noisy-A-grouping-B``
    ``A`` the noisy prerequisite (500, 16 classes, 30% noise) that memorizes when over-trained;
    ``B`` a binary grouping of its classes (4000, clean), a weak signal for ``A``'s partition.
``noisier-A-grouping-B``
    ``A`` 8 classes (400, 40% noise), ``B`` as above.
``shortcut-grouping-B-S``, ``shortcut-readout-B-S``
    shortcut lock-in: ``A`` 16 classes (3000, difficulty 0.3); ``B`` a 4-group grouping of
    ``A``'s classes, or a 4-class readout of its features (1000, clean), whose training inputs
    carry a spurious feature of strength ``S`` (``ComposedTaskSpec.shortcut``, one of
    `SHORTCUT_STRENGTHS`; 0 is the control) that predicts the training label and is absent
    from validation and test. ``B`` trained before ``A``'s features exist should fit the
    shortcut and stay on it; ``B`` started once they exist should also learn the true label.
``shortcut-easy-A-small-B-3``
    the same idea with ``A`` 8 easy classes (3000) that saturate early, so a late start costs
    ``A`` little, and ``B`` a binary grouping (200) with shortcut 3.

Prints one line per design and schedule (mean ± sample standard deviation over the run seeds,
then each task's mean score),
then per design the best changing schedule against the best fixed distribution, in points, and
whether seed 003's rule (``mean1 - 1.5 std1 > mean2 + 1.5 std2``) holds. The last line is
``best_dynamic_margin X``: the largest margin, in points, of a changing schedule over every fixed
distribution of its design.

    python benchmarks/prerequisite_designs.py                      # validation, seeds 100-102
    python benchmarks/prerequisite_designs.py --designs current --seeds 100,101,102,103,104
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mtl_sched.benchmarks.synthetic import synthetic_mlp_benchmark
from mtl_sched.benchmarks.synthetic_family import FULL_SPLITS, Spec
from mtl_sched.data.synthetic import ComposedTaskSpec, SyntheticTaskSpec
from mtl_sched.registry import make_scheduler
from mtl_sched.reporting.tables import higher
from mtl_sched.script_args import comma_separated, parse_args_into

SHORTCUT_STRENGTHS = (0.0, 0.5, 1.0, 2.0, 3.0)


def _designs() -> dict[str, tuple[Spec, ...]]:
    s = FULL_SPLITS

    def base(classes: int, size: int, difficulty: float, noise: float = 0.0) -> Spec:
        return SyntheticTaskSpec("A", classes, size, difficulty=difficulty, label_noise=noise, **s)

    def reads(
        classes: int, size: int, noise: float = 0.0, how: str = "features", shortcut: float = 0.0
    ) -> Spec:
        return ComposedTaskSpec(
            "B", "A", classes, size, label_noise=noise, reads=how, shortcut=shortcut, **s
        )

    shortcut_designs: dict[str, tuple[Spec, ...]] = {}
    for strength in SHORTCUT_STRENGTHS:
        for how in ("classes", "features"):
            name = f"shortcut-{'grouping' if how == 'classes' else 'readout'}-B-{strength:g}"
            shortcut_designs[name] = (
                base(16, 3000, 0.3),
                reads(4, 1000, how=how, shortcut=strength),
            )
    return {
        "current": (base(16, 4000, 0.3), reads(4, 150, 0.2, "classes")),
        "easy-A-readout-B": (base(8, 1500, 0.1), reads(8, 4000)),
        "easy-A-noisy-B": (base(8, 1500, 0.1), reads(8, 1000, 0.3)),
        "fine-A-fine-B": (base(16, 2000, 0.2), reads(16, 3000, 0.2)),
        "coarse-A-fine-B": (base(4, 1000, 0.2), reads(12, 3000)),
        "noisy-A-grouping-B": (base(16, 500, 0.3, 0.3), reads(2, 4000, how="classes")),
        "noisier-A-grouping-B": (base(8, 400, 0.2, 0.4), reads(2, 4000, how="classes")),
        **shortcut_designs,
        # A saturates early, so a late start costs it little; B is small enough to need A
        "shortcut-easy-A-small-B-3": (
            base(8, 3000, 0.1),
            reads(2, 200, how="classes", shortcut=3.0),
        ),
    }


DESIGNS = _designs()
# the designs run by default: those without a training-only shortcut
PLAIN_DESIGNS = tuple(name for name in DESIGNS if not name.startswith("shortcut-"))
FIXED_WEIGHTS = (0.2, 0.35, 0.5, 0.65, 0.8)
# (fraction of the budget on A alone, weight of A afterwards)
CHANGING = (
    (0.2, 0.1),
    (0.3, 0.1),
    (0.3, 0.5),
    (0.4, 0.2),
    (0.5, 0.5),
    (0.3, 0.0),
    (0.5, 0.2),
    (0.6, 0.3),
)


def contenders() -> list[tuple[str, bool, str, dict[str, Any]]]:
    """``(label, changes during the run, scheduler, kwargs)`` run on every design."""

    def mixture(weight: float) -> dict[str, float]:
        return {"A": weight, "B": round(1 - weight, 6)}

    runs: list[tuple[str, bool, str, dict[str, Any]]] = [
        ("uniform", False, "uniform", {}),
        ("temperature", False, "temperature", {}),
    ]
    for weight in FIXED_WEIGHTS:
        kwargs = {"stages": [mixture(weight)], "fractions": [1.0]}
        runs.append((f"fixed A {weight}", False, "phased", kwargs))
    for fraction, weight in CHANGING:
        stages = [{"A": 1.0}, mixture(weight)]
        kwargs = {"stages": stages, "fractions": [fraction, round(1 - fraction, 6)]}
        runs.append((f"A for {fraction}, then A {weight}", True, "phased", kwargs))
    return runs


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    designs: tuple[str, ...] = field(
        default=PLAIN_DESIGNS,
        metadata={"help": "designs to run (default: those without a shortcut)"},
    )
    seeds: str = field(default="100,101,102", metadata={"help": "comma-separated run seeds"})
    split: str = field(default="validation", metadata={"help": "validation, or test"})
    budget: int = field(default=6400, metadata={"help": "training examples per run"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def _best(found: dict[str, tuple[bool, np.ndarray]], changing: bool) -> tuple[str, np.ndarray]:
    """The label and scores of the best-scoring schedule that changes (or not)."""
    rows = [(label, values) for label, (c, values) in found.items() if c == changing]
    return max(rows, key=lambda row: row[1].mean())


def main(args: Args) -> float:
    """Print the table; return the best margin of a changing schedule over every fixed one."""
    torch.set_num_threads(args.threads)
    if args.split not in ("test", "validation"):
        raise SystemExit(f"--split must be test or validation; got {args.split!r}")
    unknown = [d for d in args.designs if d not in DESIGNS]
    if unknown:
        raise SystemExit(f"unknown designs {unknown}; known: {', '.join(DESIGNS)}")
    seeds = comma_separated(int, "integers")(args.seeds)
    print(f"split={args.split} seeds={args.seeds} budget={args.budget}")
    margins = []
    for design in args.designs:
        specs = DESIGNS[design]
        bench = synthetic_mlp_benchmark(
            name=f"prerequisite-design-{design}",
            description=design,
            specs=specs,
            spec_configs=[{"kind": type(s).__name__, **s.__dict__} for s in specs],
            budget=args.budget,
            batch_size=32,
            hidden_sizes=(64, 32),
            learning_rate=3e-3,
            data_seed=0,
            bins=20,
            version=0,
            better_schedule=None,
        )
        found: dict[str, tuple[bool, np.ndarray]] = {}
        for label, changing, name, kwargs in contenders():
            task_scores = []
            for seed in seeds:
                result = bench.make_trainer(seed).run(make_scheduler(name, **kwargs))
                chosen = result.test if args.split == "test" else result.best_validation
                task_scores.append(chosen.scores)
            per_task = np.mean(task_scores, axis=0)
            values = np.mean(task_scores, axis=1)
            found[label] = (changing, values)
            std = np.std(values, ddof=1) if len(values) > 1 else 0.0
            print(
                f"{design:22s} {label:26s} {np.mean(values):.4f} ± {std:.4f}  "
                f"(A {per_task[0]:.3f}, B {per_task[1]:.3f})",
                flush=True,
            )

        (dyn_label, dyn), (fix_label, fixed) = _best(found, True), _best(found, False)
        margin = 100 * (dyn.mean() - fixed.mean())
        holds = len(seeds) > 1 and higher(
            dyn.mean(), dyn.std(ddof=1), fixed.mean(), fixed.std(ddof=1)
        )
        print(
            f"{design:22s} best changing ({dyn_label}) - best fixed ({fix_label}): "
            f"{margin:+.2f} points  rule {holds}"
        )
        margins.append(margin)
    top = max(margins)
    print(f"best_dynamic_margin {top:.2f}")
    return top


if __name__ == "__main__":
    main(parse_args())

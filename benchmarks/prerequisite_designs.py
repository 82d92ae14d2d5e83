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
``stop-gradient-B-N``
    ``B`` cannot shape the shared encoder at all: its head (an MLP of 64 hidden units) reads
    the encoder's output with the gradient stopped (`StopGradientReadout`), so it learns only
    from the features that ``A``'s training builds. ``A`` 8 easy classes (1500) saturate early;
    ``B`` a 4-group grouping of ``A``'s classes with many examples (20000) and ``N`` percent
    label noise (one of `STOP_GRADIENT_NOISE`), so its head keeps gaining from examples seen
    once the features exist.
``stop-gradient-noisy-A-S-N``
    the stop-gradient readout with a small noisy prerequisite (``A`` 8 classes of ``S``
    examples, ``N`` percent label noise) that over-fits when over-trained, so a fixed
    distribution must either build the features late or over-train ``A``; ``B`` as in
    ``stop-gradient-B-40``.
``stop-gradient-small-B-S-N``
    the stop-gradient readout with a small noisy reader (``B`` a 4-group grouping of ``S``
    examples, ``N`` percent label noise) beside the ``A`` of ``stop-gradient-B-N``: a head
    that memorizes its few labels on immature features might stay stuck on that fit.

``--fine`` runs a finer grid of fixed distributions (``A`` 0.1 to 0.9) and of changing
schedules around the best ones, so that a changing schedule is not compared with a coarse grid.
``--validation-size`` sets every task's validation split (200 by default, as the family's
members): the scores are those of the best validation evaluation of each run, so a small split
adds selection noise to every row.

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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_sched.benchmarks.synthetic import INPUT_DIM, synthetic_mlp_benchmark
from mtl_sched.benchmarks.synthetic_family import FULL_SPLITS, Spec
from mtl_sched.data.parity import ParityTaskSpec
from mtl_sched.data.synthetic import ComposedTaskSpec, SyntheticTaskSpec
from mtl_sched.data.task import Task
from mtl_sched.models.base import Batch, TaskOutput
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.registry import make_scheduler
from mtl_sched.reporting.tables import higher
from mtl_sched.script_args import comma_separated, parse_args_into

SHORTCUT_STRENGTHS = (0.0, 0.5, 1.0, 2.0, 3.0)
STOP_GRADIENT_NOISE = (40, 50, 60, 70)
HIDDEN_SIZES = (64, 32)


class StopGradientReadout(SharedMLP):
    """`SharedMLP` whose ``readers`` score the shared features through an MLP head without
    passing gradient back into the encoder: they read what the other tasks' training builds.

    :param task_classes: task name -> number of classes, in task order.
    :param readers: tasks whose heads read the features with the gradient stopped.
    :param head_hidden: hidden width of the readers' heads.
    """

    def __init__(
        self, task_classes: dict[str, int], readers: Sequence[str], head_hidden: int = 64
    ) -> None:
        super().__init__(INPUT_DIM, task_classes, HIDDEN_SIZES)
        self.readers = frozenset(readers)
        for name in self.readers:
            self.heads[name] = nn.Sequential(
                nn.Linear(HIDDEN_SIZES[-1], head_hidden),
                nn.ReLU(),
                nn.Linear(head_hidden, task_classes[name]),
            )

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        features = self.features(batch)
        if task in self.readers:
            features = features.detach()
        return TaskOutput(logits=self.heads[task](features), targets=batch["label"])


def _designs() -> dict[str, tuple[Spec | ParityTaskSpec, ...]]:
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
    stop_gradient_designs = {
        f"stop-gradient-B-{noise}": (base(8, 1500, 0.1), reads(4, 20000, noise / 100, "classes"))
        for noise in STOP_GRADIENT_NOISE
    }
    # A small and noisy: training it past its features memorizes its noise, so a fixed
    # distribution must either build the features late or over-train A
    overfitting_designs = {
        f"stop-gradient-noisy-A-{size}-{noise}": (
            base(8, size, 0.1, noise / 100),
            reads(4, 20000, 0.4, "classes"),
        )
        for size in (300, 600)
        for noise in (20, 40)
    }
    # B small and noisy: its head memorizes its labels on whatever features exist, so
    # training it before A's features form may leave it stuck on a poor fit
    small_reader_designs = {
        f"stop-gradient-small-B-{size}-{noise}": (
            base(8, 1500, 0.1),
            reads(4, size, noise / 100, "classes"),
        )
        for size in (200, 500)
        for noise in (20, 40)
    }
    # A's parity features form suddenly after a plateau; B is A's parity xor two more bits,
    # out of reach from its own data within a run (`mtl_sched.data.parity`)
    parity_designs = {
        f"parity-A-{bits}-B-{bits + 2}-{noise}": (
            ParityTaskSpec("A", tuple(range(bits))),
            ParityTaskSpec("B", tuple(range(bits + 2)), label_noise=noise / 100),
        )
        for bits in (5, 6)
        for noise in (20,)
    }
    # A also carries the signs of inputs outside B's bits: progress shows before its parity forms,
    # so a scheduler that reads the tasks' state can tell A from B (they are alike otherwise)
    for signs in (1, 2):
        parity_designs[f"parity-A-5-sign-{signs}-B-7-20"] = (
            ParityTaskSpec("A", tuple(range(5)), sign_bits=tuple(range(7, 7 + signs))),
            ParityTaskSpec("B", tuple(range(7)), label_noise=0.2),
        )
    parity_designs["parity-A-5-B-7-20-sign-1"] = (
        ParityTaskSpec("A", tuple(range(5))),
        ParityTaskSpec("B", tuple(range(7)), label_noise=0.2, sign_bits=(7,)),
    )
    # A's head has two classes no label takes: its loss falls at once, then waits for the parity
    parity_designs["parity-A-5-unused-2-B-7-20"] = (
        ParityTaskSpec("A", tuple(range(5)), unused_classes=2),
        ParityTaskSpec("B", tuple(range(7)), label_noise=0.2),
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
        **stop_gradient_designs,
        **overfitting_designs,
        **small_reader_designs,
        **parity_designs,
        # A saturates early, so a late start costs it little; B is small enough to need A
        "shortcut-easy-A-small-B-3": (
            base(8, 3000, 0.1),
            reads(2, 200, how="classes", shortcut=3.0),
        ),
    }


DESIGNS = _designs()
# the designs run by default: those of a plain SharedMLP without a training-only shortcut
PLAIN_DESIGNS = tuple(
    name for name in DESIGNS if not name.startswith(("shortcut-", "stop-gradient-", "parity-"))
)
FIXED_WEIGHTS = (0.2, 0.35, 0.5, 0.65, 0.8)
FINE_FIXED_WEIGHTS = (
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.9,
)
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
FINE_CHANGING = (
    (0.1, 0.0),
    (0.15, 0.0),
    (0.2, 0.0),
    (0.2, 0.1),
    (0.3, 0.1),
    (0.3, 0.0),
    (0.4, 0.0),
    (0.5, 0.0),
    (0.4, 0.3),
    (0.5, 0.2),
    (0.5, 0.3),
    (0.6, 0.0),
    (0.6, 0.2),
    (0.6, 0.3),
    (0.7, 0.3),
)


def contenders(fine: bool = False) -> list[tuple[str, bool, str, dict[str, Any]]]:
    """``(label, changes during the run, scheduler, kwargs)`` run on every design.

    :param fine: the finer grids (`FINE_FIXED_WEIGHTS`, `FINE_CHANGING`).
    """

    def mixture(weight: float) -> dict[str, float]:
        return {"A": weight, "B": round(1 - weight, 6)}

    runs: list[tuple[str, bool, str, dict[str, Any]]] = [
        ("uniform", False, "uniform", {}),
        ("temperature", False, "temperature", {}),
    ]
    for weight in FINE_FIXED_WEIGHTS if fine else FIXED_WEIGHTS:
        kwargs = {"stages": [mixture(weight)], "fractions": [1.0]}
        runs.append((f"fixed A {weight}", False, "phased", kwargs))
    for fraction, weight in FINE_CHANGING if fine else CHANGING:
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
    validation_size: int = field(
        default=FULL_SPLITS["validation_size"],
        metadata={"help": "validation examples per task (larger: less selection noise)"},
    )
    fine: bool = field(
        default=False, metadata={"help": "finer grids of fixed and changing schedules"}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def _stop_gradient_model(tasks: Sequence[Task]) -> StopGradientReadout:
    return StopGradientReadout({t.name: t.num_classes for t in tasks}, readers=["B"])


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
    print(
        f"split={args.split} seeds={args.seeds} budget={args.budget}"
        + f" validation_size={args.validation_size}"
        + (" grids=fine" if args.fine else "")
    )
    margins = []
    for design in args.designs:
        specs = tuple(
            replace(spec, validation_size=args.validation_size) for spec in DESIGNS[design]
        )
        bench = synthetic_mlp_benchmark(
            name=f"prerequisite-design-{design}",
            description=design,
            specs=specs,
            spec_configs=[{"kind": type(s).__name__, **s.__dict__} for s in specs],
            budget=args.budget,
            batch_size=32,
            hidden_sizes=HIDDEN_SIZES,
            learning_rate=3e-3,
            data_seed=0,
            bins=20,
            version=0,
            better_schedule=None,
        )
        if design.startswith("stop-gradient-"):
            bench = replace(bench, build_model=_stop_gradient_model)
        found: dict[str, tuple[bool, np.ndarray]] = {}
        for label, changing, name, kwargs in contenders(args.fine):
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

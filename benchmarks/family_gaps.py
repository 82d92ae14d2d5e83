"""Gaps between ``uniform`` and the documented schedule on each synthetic family member.

Runs, on every run seed, ``uniform`` and the member's ``better_schedule`` recipe; on
``synthetic-prerequisite`` also every fixed task distribution (``random``, ``proportional``,
``temperature`` and one-stage ``phased`` weights). Prints per member and scheduler the mean and
sample standard deviation over the seeds of the average score (test scores of the model selected
on validation by default; ``--split validation`` scores the selected model on validation, for
choosing designs on seeds of their own), the gap of the recipe over ``uniform`` in points, and
whether ``mean1 - 1.5 std1 > mean2 + 1.5 std2`` holds (recipe against each other scheduler).
The last line is ``min_gap X``: the smallest recipe-over-uniform gap, in points.

    python benchmarks/family_gaps.py                              # test scores, seeds 0-4
    python benchmarks/family_gaps.py --split validation --seeds 100,101,102,103,104
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.benchmarks.synthetic_family import FAMILY, family_contenders
from mtl_sched.registry import make_scheduler
from mtl_sched.script_args import comma_separated, parse_args_into


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    members: tuple[str, ...] = field(
        default=tuple(FAMILY), metadata={"help": "family members to run"}
    )
    seeds: str = field(default="0,1,2,3,4", metadata={"help": "comma-separated run seeds"})
    split: str = field(
        default="test", metadata={"help": "test, or validation (the selected model's score)"}
    )
    small: bool = field(default=False, metadata={"help": "the members' small variants"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def rule(first: np.ndarray, second: np.ndarray) -> bool:
    """``mean1 - 1.5 std1 > mean2 + 1.5 std2`` with sample standard deviations."""
    return bool(first.mean() - 1.5 * first.std(ddof=1) > second.mean() + 1.5 * second.std(ddof=1))


def main(args: Args) -> float:
    """Print the table; return the smallest recipe-over-uniform gap in points."""
    torch.set_num_threads(args.threads)
    if args.split not in ("test", "validation"):
        raise SystemExit(f"--split must be test or validation; got {args.split!r}")
    unknown = [m for m in args.members if m not in FAMILY]
    if unknown:
        raise SystemExit(f"unknown members {unknown}; known: {', '.join(FAMILY)}")
    seeds = comma_separated(int, "integers")(args.seeds)
    gaps = []
    print(f"split={args.split} seeds={','.join(map(str, seeds))} small={args.small}")
    for member in args.members:
        bench = get_benchmark(member, small=args.small)
        scores: dict[str, np.ndarray] = {}
        for label, name, kwargs in family_contenders(member):
            values = []
            for seed in seeds:
                result = bench.make_trainer(seed).run(make_scheduler(name, **kwargs))
                split = result.test if args.split == "test" else result.best_validation
                values.append(split.average_score)
            scores[label] = np.asarray(values)
            std = scores[label].std(ddof=1) if len(values) > 1 else 0.0
            per_seed = " ".join(f"{v:.3f}" for v in values)
            print(f"{member:24s} {label:18s} {scores[label].mean():.4f} ± {std:.4f}  [{per_seed}]")
        recipe = scores["recipe"]
        for label, values in scores.items():
            if label == "recipe":
                continue
            gap = 100 * (recipe.mean() - values.mean())
            holds = rule(recipe, values) if len(seeds) > 1 else False
            print(f"{member:24s} gap recipe-{label:13s} {gap:+.2f} points  rule {holds}")
        gaps.append(100 * (recipe.mean() - scores["uniform"].mean()))
    smallest = min(gaps)
    print(f"min_gap {smallest:.2f}")
    return smallest


if __name__ == "__main__":
    main(parse_args())

"""Test scores of a benchmark under ``uniform``, with the time and peak memory of each run.

Trains fresh models of the benchmark (full data unless ``--small``) with the ``uniform``
scheduler, one run per seed, selecting on validation as every run does, and prints per seed:
each task's test score (accuracy, span F1 or BLEU as the task defines), the average, the time
of training (collate, forward, backward and update) per 1000 examples and of the evaluations,
as CPU seconds of this process and wall seconds, and the process's peak resident memory so far.
On a shared machine the CPU time is the steady number; wall time grows with the other load.
The last line gives the mean and sample standard deviation of the average over the seeds.

    MTL_SCHED_DATA=/path/to/data python benchmarks/uniform_quality.py --benchmark fdu-mtl
    python benchmarks/uniform_quality.py --benchmark nmt-aux --option budget=30000 --seeds 0
    python benchmarks/uniform_quality.py --benchmark tagging --seeds 0,1,2 --device cuda
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_sched.baselines import UniformScheduler
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.scheduling import EvalOutcome, Step, StepOutcome, TrainState
from mtl_sched.script_args import parse_args_into, parse_key_value


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="fdu-mtl", metadata={"help": "benchmark to train"})
    small: bool = field(default=False, metadata={"help": "the benchmark's small variant"})
    data_dir: str | None = field(
        default=None, metadata={"help": "data directory (default: $MTL_SCHED_DATA)"}
    )
    option: list[str] = field(
        default_factory=list,
        metadata={"help": "benchmark option KEY=VALUE, e.g. budget=30000 (repeatable)"},
    )
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated run seeds"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or auto"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


class TimedUniform(UniformScheduler):
    """``uniform``, timing each training step from its plan to its outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu = 0.0
        self.wall = 0.0
        self._started = (0.0, 0.0)

    def plan(self, state: TrainState) -> Step:
        self._started = (time.process_time(), time.perf_counter())
        return super().plan(state)

    def observe(self, outcome: StepOutcome | EvalOutcome) -> None:
        if isinstance(outcome, StepOutcome):
            self.cpu += time.process_time() - self._started[0]
            self.wall += time.perf_counter() - self._started[1]
        super().observe(outcome)


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(args: Args) -> list[float]:
    """Run one ``uniform`` training per seed; returns the average test score of each."""
    torch.set_num_threads(args.threads)
    options = dict(parse_key_value(text) for text in args.option)
    if args.small:
        options["small"] = True
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    started = time.perf_counter()
    bench = get_benchmark(args.benchmark, **options)
    sizes = ", ".join(f"{t.name} {t.size('train')}" for t in bench.tasks)
    print(f"{bench.description}\ntraining examples per task: {sizes}")
    print(
        f"data and vocabularies: {time.perf_counter() - started:.1f} wall s; budget "
        f"{bench.trainer_config.budget} examples, batch {bench.trainer_config.batch_size}",
        flush=True,
    )
    averages = []
    for seed in (int(s) for s in args.seeds.split(",")):
        trainer = bench.make_trainer(seed, device=args.device)
        scheduler = TimedUniform()
        cpu, wall = time.process_time(), time.perf_counter()
        result = trainer.run(scheduler)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per_1000 = 1000 / result.examples_seen
        averages.append(float(result.test.average_score))
        scores = ", ".join(
            f"{name} {score:.4f}"
            for name, score in zip(result.task_names, result.test.scores, strict=True)
        )
        print(
            f"seed {seed}: test average {averages[-1]:.4f} ({scores}); best validation at "
            f"{result.best_examples_seen} examples; training {scheduler.cpu * per_1000:.2f} CPU s"
            f" / {scheduler.wall * per_1000:.2f} wall s per 1000 examples; evaluations "
            f"{cpu - scheduler.cpu:.1f} CPU s / {wall - scheduler.wall:.1f} wall s; run "
            f"{cpu:.0f} CPU s / {wall:.0f} wall s; peak memory {peak_memory_mib():.0f} MiB",
            flush=True,
        )
    spread = float(np.std(averages, ddof=1)) if len(averages) > 1 else float("nan")
    print(
        f"test average mean {np.mean(averages):.4f} std {spread:.4f} over {len(averages)} seed(s)"
    )
    return averages


if __name__ == "__main__":
    main(parse_args())

"""What summarizing every task's probe units at once saves in a benchmark's probe pass.

After the forward pass over the probe pools, each task's units become a histogram of
uncertainties, a mean loss and an accuracy. Task by task that is a dozen small tensor operations
per task; `mtl_sched.observation.probe_summary.summarize_together` runs each operation once over
all tasks' units, with the same results bit for bit. This script builds the benchmark's trainer
(run seed ``--seed``) and times its probe pass both ways in turns, each way's fastest of
``--repeats``, after checking that both give the same histograms, accuracies and losses.

The last line is ``speedup <task by task / all tasks at once>`` for the whole probe pass
(forward pass included; above 1: summarizing at once is faster).

    python benchmarks/probe_summary.py --small                 # fdu-mtl --small
    python benchmarks/probe_summary.py --benchmark tagging --small
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from unittest import mock

import numpy as np
import torch
from benchmark_args import BenchmarkArgs
from scheduler_overhead import CLOCK_HELP, choose_clock, fastest_in_turns

from mtl_sched.observation import probing
from mtl_sched.observation.probing import ProbeResult
from mtl_sched.script_args import parse_args_into


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="fdu-mtl", metadata={"help": "benchmark to measure"})
    seed: int = field(default=0, metadata={"help": "run seed of the trainer"})
    repeats: int = field(default=20, metadata={"help": "timed probe passes of each way"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def _same(a: ProbeResult, b: ProbeResult) -> bool:
    pairs = [(a.histograms, b.histograms), (a.accuracies, b.accuracies), (a.losses, b.losses)]
    pairs += list(zip(a.uncertainties, b.uncertainties, strict=True))
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def main(args: Args) -> float:
    """Print both timings; return the speedup of summarizing all tasks at once."""
    torch.set_num_threads(args.threads)
    trainer = args.make_benchmark().make_trainer(args.seed)
    clock, _ = choose_clock(args.clock, on_cuda=trainer.device.type == "cuda")

    def task_by_task() -> ProbeResult:
        with mock.patch.object(probing, "summarize_together", return_value=None):
            return trainer.probe()

    if not _same(task_by_task(), trainer.probe()):
        raise SystemExit("the two summaries gave different probe results")
    each_s, together_s = fastest_in_turns(clock, [task_by_task, trainer.probe], args.repeats)
    print(
        f"probe pass of {args.benchmark}{' --small' if args.small else ''} "
        f"({trainer.num_tasks} tasks): summarized task by task {each_s * 1e3:.2f} ms, "
        f"all tasks at once {together_s * 1e3:.2f} ms (fastest of {args.repeats})"
    )
    speedup = each_s / together_s
    print(f"speedup {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main(parse_args())

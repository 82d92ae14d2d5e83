"""What sizing inference chunks by their cells saves in a BiLSTM benchmark's probe pass.

`BiLSTMTextClassifier.features` runs a large batch in inference (evaluation, the probe pass) as
length-sorted chunks of reviews. Chunks of a fixed 8 reviews suit the full ``fdu-mtl`` model (200
tokens, 64 hidden units); `inference_chunk_rows` sizes them by padded tokens times hidden units
instead, so a smaller model over shorter reviews runs more reviews per chunk. This script builds
the benchmark's trainer (run seed ``--seed``) and times its probe pass both ways in turns, each
way's fastest of ``--repeats``; it checks that both give the same histograms, accuracies and
losses.

The last line is ``speedup <fixed 8-review chunks / cell-sized chunks>`` (above 1: the current
rule is faster).

    python benchmarks/probe_chunking.py --small                 # fdu-mtl --small
    python benchmarks/probe_chunking.py                         # fdu-mtl, full
    python benchmarks/probe_chunking.py --benchmark tagging --small
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from unittest import mock

import numpy as np
import torch
from benchmark_args import BenchmarkArgs
from scheduler_overhead import CLOCK_HELP, choose_clock, fastest_in_turns

from mtl_sched.models import text_classifier
from mtl_sched.observation.probing import ProbeResult
from mtl_sched.script_args import parse_args_into


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="fdu-mtl", metadata={"help": "benchmark to measure"})
    seed: int = field(default=0, metadata={"help": "run seed of the trainer"})
    repeats: int = field(default=10, metadata={"help": "timed probe passes of each way"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def _fixed_chunks(width: int, hidden_size: int) -> int:
    del width, hidden_size
    return text_classifier.INFERENCE_LENGTH_CHUNK


def _same(a: ProbeResult, b: ProbeResult) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in [
            (a.histograms, b.histograms),
            (a.accuracies, b.accuracies),
            (a.losses, b.losses),
        ]
    )


def main(args: Args) -> float:
    """Print both timings; return the speedup of cell-sized chunks over fixed ones."""
    torch.set_num_threads(args.threads)
    trainer = args.make_benchmark().make_trainer(args.seed)
    clock, _ = choose_clock(args.clock, on_cuda=trainer.device.type == "cuda")

    def fixed() -> ProbeResult:
        with mock.patch.object(text_classifier, "inference_chunk_rows", _fixed_chunks):
            return trainer.probe()

    if not _same(fixed(), trainer.probe()):
        raise SystemExit("the two chunkings gave different probe results")
    fixed_s, sized_s = fastest_in_turns(clock, [fixed, trainer.probe], args.repeats)
    print(
        f"probe pass of {args.benchmark}{' --small' if args.small else ''}: "
        f"chunks of {text_classifier.INFERENCE_LENGTH_CHUNK} reviews {fixed_s * 1e3:.1f} ms, "
        f"cell-sized chunks {sized_s * 1e3:.1f} ms (fastest of {args.repeats})"
    )
    speedup = fixed_s / sized_s
    print(f"speedup {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main(parse_args())

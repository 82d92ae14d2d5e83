"""What a BiLSTM training pass costs per review as the batch grows, and what chunking saves.

Times, on the CPU, forward plus backward of the fdu-mtl text classifier's shared BiLSTM
(training mode, the full variant's widths) on batches of random reviews of ``--length`` tokens,
for each batch size of ``--sizes``, and prints each size's fastest repeat (``timeit``'s
estimate: on a shared machine the slower repeats measure the other load; all passes are timed
in turns) and its cost per
review. Then it times one batch of ``--rows`` reviews both ways: as one padded pass, and
through `BiLSTMTextClassifier.features`, which runs batches of more than `LENGTH_CHUNK` reviews
in length-sorted chunks. Both see the same reviews; their lengths are drawn uniformly from 1 to
``--length``.

The last line is ``ratio <one padded pass / chunked pass>`` (above 1: chunking is faster).

    python benchmarks/lstm_batch_scaling.py
    python benchmarks/lstm_batch_scaling.py --sizes 8 16 24 32 64 --rows 256 --repeats 8
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scheduler_overhead import CLOCK_HELP, choose_clock, fastest_in_turns

from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.models.base import Batch
from mtl_sched.models.text_classifier import LENGTH_CHUNK, BiLSTMTextClassifier
from mtl_sched.script_args import parse_args_into


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    sizes: tuple[int, ...] = field(
        default=(8, 16, 24, 32, 64), metadata={"help": "batch sizes (reviews) to time"}
    )
    length: int = field(default=200, metadata={"help": "tokens per review (the longest)"})
    rows: int = field(default=256, metadata={"help": "reviews of the chunked-vs-padded batch"})
    width: int = field(default=64, metadata={"help": "embedding and LSTM width per direction"})
    vocabulary: int = field(default=20_000, metadata={"help": "vocabulary size"})
    repeats: int = field(default=6, metadata={"help": "timed repeats of each measurement"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and reviews"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def main(args: Args) -> float:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = np.random.default_rng(args.seed)
    words = [f"w{i}" for i in range(args.vocabulary)]
    model = BiLSTMTextClassifier(
        Vocabulary.build([words]),
        {"task": 2},
        embedding_dim=args.width,
        hidden_size=args.width,
        dropout=0.3,
        max_length=args.length,
    )
    model.train()
    clock, _ = choose_clock(args.clock, on_cuda=False)

    def reviews(count: int, lengths: np.ndarray | None = None) -> Batch:
        lengths = np.full(count, args.length) if lengths is None else lengths
        tokens = [list(generator.choice(words, size=int(n))) for n in lengths]
        return model.collate("task", {"tokens": tokens, "label": [0] * count})

    def train_pass(run: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            run().sum().backward()

        return step

    sized = [reviews(size) for size in args.sizes]
    ragged = reviews(args.rows, generator.integers(1, args.length + 1, size=args.rows))
    passes = [
        train_pass(lambda b=batch: model.padded_features(b["words"], b["mask"]))
        for batch in [*sized, ragged]
    ]
    passes.append(train_pass(lambda: model.features(ragged)))
    *per_size, padded, chunked = fastest_in_turns(clock, passes, args.repeats)
    print(f"{'reviews':>8} {'fastest ms':>11} {'ms per review':>14}")
    for size, seconds in zip(args.sizes, per_size, strict=True):
        print(f"{size:>8} {seconds * 1e3:>11.1f} {seconds * 1e3 / size:>14.2f}")
    print(
        f"{args.rows} reviews: one padded pass {padded * 1e3:.1f} ms, "
        f"length-sorted chunks of {LENGTH_CHUNK} {chunked * 1e3:.1f} ms"
    )
    ratio = padded / chunked
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(parse_args())

"""Training-step time of Q-MTL with k heads over single-task learning, on one tagger and batch.

The tagger is seed 000's: word embeddings (64) and a character BiLSTM (100-wide character
embeddings, 100 units per direction) into a word BiLSTM of 100 units per direction, then per
token either one head (STL: ``QMTLHead`` with ``k=1``, i.e. ``Linear-ReLU-Linear``) or k heads
(Q-MTL), trained by SGD. One training step is zeroing the gradients, the forward pass, the loss
(summed over heads), the backward pass and the update. The ensemble step trains k independent
STL taggers on the same batch. All three are timed in turns on the same batch of random
sentences in one process; each time is the fastest repeat (``timeit``'s estimate: on a shared
machine the slower repeats measure the other load).

The last line is ``ratio <Q-MTL step / STL step>``; the line before it gives the ensemble's
ratio (about k).

    python benchmarks/qmtl_overhead.py
    python benchmarks/qmtl_overhead.py --k 30 --batch-size 8 --repeats 30
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scheduler_overhead import CLOCK_HELP, choose_clock, fastest_in_turns
from torch import nn

from mtl_sched.data.vocabulary import pad_sequences
from mtl_sched.models.encoders import BiLSTMEncoder
from mtl_sched.models.qmtl import QMTLHead
from mtl_sched.script_args import parse_args_into


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    k: int = field(default=10, metadata={"help": "Q-MTL heads (and ensemble members)"})
    hidden: int = field(default=20, metadata={"help": "width of each head's ReLU layer"})
    batch_size: int = field(default=1, metadata={"help": "sentences per step (seed 000: 1)"})
    min_length: int = field(default=5, metadata={"help": "shortest sentence (tokens)"})
    max_length: int = field(default=40, metadata={"help": "longest sentence (tokens)"})
    tags: int = field(default=17, metadata={"help": "tag set size (17: UPOS)"})
    vocabulary: int = field(default=10_000, metadata={"help": "word vocabulary size"})
    repeats: int = field(default=20, metadata={"help": "timed rounds"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and sentences"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


class Tagger(nn.Module):
    """Seed 000's BiLSTM tagger (word and character features) with a `QMTLHead` per token."""

    def __init__(self, vocabulary: int, characters: int, tags: int, k: int, hidden: int):
        super().__init__()
        self.encoder = BiLSTMEncoder(
            vocabulary,
            embedding_dim=64,
            hidden_size=100,
            char_vocab_size=characters,
            char_embedding_dim=100,
            char_hidden_size=100,
        )
        self.head = QMTLHead(self.encoder.output_size, tags, k=k, hidden=hidden)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        states = self.encoder(batch["words"], batch["mask"], batch["chars"])
        mask = batch["mask"].bool()
        return self.head.unit_losses(states[mask], batch["tags"][mask]).mean()


def random_batch(args: Args, characters: int, generator: np.random.Generator):
    """Random sentences: word ids, a character id list per word, and tags."""
    lengths = generator.integers(args.min_length, args.max_length + 1, size=args.batch_size)
    words = [generator.integers(2, args.vocabulary, size=n).tolist() for n in lengths]
    word_ids, mask = pad_sequences(words)
    tags, _ = pad_sequences([generator.integers(0, args.tags, size=n).tolist() for n in lengths])
    spelled = generator.integers(1, characters, size=(*word_ids.shape, 12))
    spelled[:, :, generator.integers(3, 12) :] = 0  # words of a few characters
    chars = torch.as_tensor(spelled) * mask.unsqueeze(-1)
    return {"words": word_ids, "mask": mask, "chars": chars, "tags": tags}


def training_step(model: Tagger, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch).backward()
        optimizer.step()

    return step


def main(args: Args) -> float:
    if args.k < 1 or args.batch_size < 1 or not 1 <= args.min_length <= args.max_length:
        raise SystemExit("need --k >= 1, --batch-size >= 1 and 1 <= --min-length <= --max-length")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    characters = 60
    batch = random_batch(args, characters, np.random.default_rng(args.seed))

    def tagger(k: int) -> Tagger:
        return Tagger(args.vocabulary, characters, args.tags, k, args.hidden)

    single = training_step(tagger(1), batch)
    quasi = training_step(tagger(args.k), batch)
    members = [training_step(tagger(1), batch) for _ in range(args.k)]

    def ensemble() -> None:
        for member in members:
            member()

    clock, _ = choose_clock(args.clock, on_cuda=False)
    single_s, quasi_s, ensemble_s = fastest_in_turns(clock, [single, quasi, ensemble], args.repeats)
    tokens = int(batch["mask"].sum())
    print(f"batch: {args.batch_size} sentences, {tokens} tokens; k = {args.k}")
    print(f"STL step      {single_s * 1e3:9.2f} ms")
    print(f"Q-MTL step    {quasi_s * 1e3:9.2f} ms")
    print(f"ensemble step {ensemble_s * 1e3:9.2f} ms")
    print(f"ensemble ratio {ensemble_s / single_s:.3f}")
    ratio = quasi_s / single_s
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(parse_args())

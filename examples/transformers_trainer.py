"""Let a scheduler choose the training data of a Hugging Face ``transformers`` ``Trainer``.

A tiny BERT classifier (built from a config with random weights; nothing is downloaded) trains
on a mixture of two token-sequence datasets made here:

- ``learnable``: the label says whether the first token is in the upper half of the vocabulary;
- ``noisy``: random labels, whose loss never falls.

A `ScheduledMixture` interleaves the two by ``--scheduler``'s decisions, and
`ScheduledMixtureTrainer` (a ``Trainer`` with a `ScheduledMixtureCallback`) reports every
batch's loss back to it. ``greedy`` (the default) trains the task of the highest latest loss, so
the mixture drifts toward ``noisy`` once ``learnable`` is learned; ``exp3s`` with
``--progress loss-change`` rewards learning progress instead. Needs the ``hf`` extra.

    python examples/transformers_trainer.py
    python examples/transformers_trainer.py --budget 160 --train-size 64  # seconds
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import torch

from mtl_sched import make_scheduler
from mtl_sched.integrations import ScheduledMixture
from mtl_sched.integrations.transformers import ScheduledMixtureTrainer
from mtl_sched.script_args import parse_args_into

try:
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments
except ImportError as err:  # pragma: no cover - the integration module says the same
    raise SystemExit(f"{err}: pip install 'mtl-sched[hf]'") from err


@dataclass
class Args:
    """Command-line flags: ``--name value`` for each field (dashes for underscores)."""

    seed: int = field(default=0, metadata={"help": "seed of the data, the model and the mixture"})
    train_size: int = field(default=512, metadata={"help": "training sequences per task"})
    seq_len: int = field(default=8, metadata={"help": "tokens per sequence"})
    vocab_size: int = field(default=50, metadata={"help": "token ids 0 .. vocab_size - 1"})
    scheduler: str = field(default="greedy", metadata={"help": "a scheduler the mixture takes"})
    progress: str = field(
        default="loss-change", metadata={"help": "exp3s's progress signal (exp3s only)"}
    )
    budget: int = field(default=2_048, metadata={"help": "training examples, both tasks together"})
    batch_size: int = field(default=16, metadata={"help": "examples per batch"})
    hidden_size: int = field(default=16, metadata={"help": "BERT width"})
    learning_rate: float = field(default=3e-3, metadata={"help": "AdamW learning rate"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def token_dataset(args: Args, learnable: bool, seed: int) -> datasets.Dataset:
    """Random token sequences with labels that follow the first token or are random."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, args.vocab_size, (args.train_size, args.seq_len), generator=generator)
    if learnable:
        labels = (ids[:, 0] >= args.vocab_size // 2).long()
    else:
        labels = torch.randint(0, 2, (args.train_size,), generator=generator)
    mask = torch.ones_like(ids)
    return datasets.Dataset.from_dict(
        {"input_ids": ids, "attention_mask": mask, "labels": labels}
    ).with_format("torch")


def main(args: Args) -> dict[str, object]:
    """Train under the scheduled mixture; print and return the task shares and latest losses."""
    hyperparameters = {"progress": args.progress} if args.scheduler == "exp3s" else {}
    mixture = ScheduledMixture(
        make_scheduler(args.scheduler, **hyperparameters),
        {
            "learnable": token_dataset(args, learnable=True, seed=args.seed),
            "noisy": token_dataset(args, learnable=False, seed=args.seed + 1),
        },
        batch_size=args.batch_size,
        budget=args.budget,
        seed=args.seed,
    )
    torch.manual_seed(args.seed)
    config = BertConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * args.hidden_size,
        max_position_embeddings=max(32, args.seq_len),
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    with tempfile.TemporaryDirectory() as output_dir:
        training = TrainingArguments(
            output_dir=output_dir,
            max_steps=-(-args.budget // args.batch_size),
            learning_rate=args.learning_rate,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=True,
            seed=args.seed,
            disable_tqdm=True,
        )
        trainer = ScheduledMixtureTrainer(model=model, args=training, mixture=mixture)
        trainer.train()
    history = trainer.mixture_callback.shares_history
    losses = dict(zip(mixture.task_names, mixture.driver.train_losses.tolist(), strict=True))
    for fraction in (0.25, 0.5, 0.75, 1.0):
        step = max(1, round(fraction * len(history)))
        shares = ", ".join(f"{name} {share:.2f}" for name, share in history[step - 1].items())
        print(f"after {step:>4} steps: shares {shares}")
    print("latest training losses:", {name: round(loss, 3) for name, loss in losses.items()})
    return {"shares": mixture.shares, "losses": losses, "steps": mixture.step}


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))

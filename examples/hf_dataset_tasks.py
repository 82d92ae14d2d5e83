"""Turn your own Hugging Face ``datasets`` into tasks and schedule their multi-task training.

Two text-classification datasets are made here in memory (nothing is downloaded), as a user's
data would arrive:

- ``sentiment``: a ``DatasetDict`` with train/validation/test splits, raw text and string
  labels (``"pos"``/``"neg"``), decided by the one opinion word of each review;
- ``topic``: one ``Dataset`` with a ``ClassLabel`` column (``sports``/``food``/``travel``),
  split here into train, validation and test.

`task_from_dataset` turns each into the `Task` the built-in loaders produce (label ids from the
train split, text tokenized on whitespace), a `BiLSTMTextClassifier` shares its encoder between
them, and the `Trainer` runs them under ``--scheduler`` at a budget of training examples.

    python examples/hf_dataset_tasks.py
    python examples/hf_dataset_tasks.py --train-size 120 --budget 400  # seconds
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets

from mtl_sched import Task, Trainer, TrainerConfig, make_scheduler
from mtl_sched.data.hf_task import task_from_dataset
from mtl_sched.models.text_classifier import BiLSTMTextClassifier, build_vocabulary
from mtl_sched.script_args import parse_args_into

OPINIONS = {"pos": ["good", "great", "lovely", "fine"], "neg": ["bad", "awful", "dull", "poor"]}
TOPICS = {
    "sports": ["match", "goal", "team", "coach"],
    "food": ["soup", "bread", "spice", "dinner"],
    "travel": ["train", "hotel", "beach", "flight"],
}
FILLER = ["the", "a", "was", "it", "very", "this", "we", "and"]


@dataclass
class Args:
    """Command-line flags: ``--name value`` for each field (dashes for underscores)."""

    seed: int = field(default=0, metadata={"help": "seed of the data, the model and the run"})
    train_size: int = field(default=600, metadata={"help": "training examples per task"})
    eval_size: int = field(default=100, metadata={"help": "validation and test examples per task"})
    scheduler: str = field(default="round-robin", metadata={"help": "any registered scheduler"})
    budget: int = field(default=2_400, metadata={"help": "training examples, all tasks together"})
    batch_size: int = field(default=16, metadata={"help": "examples per task minibatch"})
    embedding_dim: int = field(default=32, metadata={"help": "word embedding width"})
    hidden_size: int = field(default=32, metadata={"help": "BiLSTM width per direction"})
    learning_rate: float = field(default=1e-2, metadata={"help": "Adam learning rate"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def sentences(rng: random.Random, n: int, keywords: dict[str, list[str]]) -> tuple[list, list]:
    """``n`` sentences of filler words around one keyword, and the keyword's class."""
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(sorted(keywords))
        words = [*rng.sample(FILLER, 4), rng.choice(keywords[label])]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def make_tasks(args: Args) -> list[Task]:
    """The two tasks, from a ``DatasetDict`` and from a single ``Dataset``."""
    rng = random.Random(args.seed)
    splits = {}
    for split, size in (("train", args.train_size), ("validation", args.eval_size)):
        texts, labels = sentences(rng, size, OPINIONS)
        splits[split] = datasets.Dataset.from_dict({"review": texts, "opinion": labels})
    texts, labels = sentences(rng, args.eval_size, OPINIONS)
    splits["test"] = datasets.Dataset.from_dict({"review": texts, "opinion": labels})
    sentiment = task_from_dataset(
        "sentiment", datasets.DatasetDict(splits), input_column="review", label_column="opinion"
    )
    total = args.train_size + 2 * args.eval_size
    texts, labels = sentences(rng, total, TOPICS)
    names = sorted(TOPICS)
    features = datasets.Features(
        {"text": datasets.Value("string"), "topic": datasets.ClassLabel(names=names)}
    )
    topics = datasets.Dataset.from_dict(
        {"text": texts, "topic": [names.index(y) for y in labels]}, features=features
    )
    topic = task_from_dataset(
        "topic",
        topics,
        input_column="text",
        label_column="topic",
        validation_size=args.eval_size,
        test_size=args.eval_size,
        seed=args.seed,
    )
    return [sentiment, topic]


def main(args: Args) -> dict[str, object]:
    """Build the tasks, train them under the scheduler, print and return the test scores."""
    tasks = make_tasks(args)
    for task in tasks:
        sizes = ", ".join(f"{s} {task.size(s)}" for s in ("train", "validation", "test"))
        print(f"{task.name}: {task.kind}, labels {list(task.label_names)}, {sizes}")
    model = BiLSTMTextClassifier(
        build_vocabulary(tasks),
        {t.name: t.num_classes for t in tasks},
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
    )
    config = TrainerConfig(
        budget=args.budget,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device="cpu",
    )
    result = Trainer(model, tasks, config, seed=args.seed).run(make_scheduler(args.scheduler))
    scores = dict(zip(result.task_names, result.test.scores.tolist(), strict=True))
    shares = dict(zip(result.task_names, result.task_share.tolist(), strict=True))
    for name in result.task_names:
        print(f"{name:>10}: test accuracy {scores[name]:.3f}, share of examples {shares[name]:.2f}")
    return {"scores": scores, "shares": shares}


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))

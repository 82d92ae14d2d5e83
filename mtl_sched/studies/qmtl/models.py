"""Matched taggers of the Q-MTL study: training, per-token outputs and scores.

`MatchedTaggers` builds, for one task and seed, every model the study compares from one bank
of initial heads: Q-MTL with k heads starts from the bank's first k heads, and the j-th STL
model starts from head j, so that the j-th Q-MTL head and the j-th STL model begin with
identical ``V`` and ``W`` (seed 000, Figure 3). The Q-MTL models and STL model 0 share the
bank's initial encoder; STL models 1, 2, ... draw their own encoder, as the members of an
ensemble of independently trained models do. Every model is trained with the same seed, hence
on the same examples in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.metrics import task_score
from mtl_sched.models.base import Batch
from mtl_sched.models.qmtl import QMTLConfig, QMTLHead
from mtl_sched.models.sequence_tagger import (
    SequenceTagger,
    build_tagging_vocabularies,
    training_word_counts,
)
from mtl_sched.registry import make_scheduler
from mtl_sched.studies.qmtl.setup import TaggerSettings
from mtl_sched.training import RunResult, Trainer, TrainerConfig, materialize, take_rows

# width of the ReLU layer of each Q-MTL head (seeds 000/001); 0 gives the PTA form
QMTL_HIDDEN = 20
EVAL_BATCH_SIZE = 256


class MatchedTaggers:
    """The study's initial models for one task and seed.

    Initial head j is drawn from its own seed (derived from ``seed`` and j), so it is the same
    whichever k a model has: Q-MTL with 10 heads and Q-MTL with 30 heads start with the same
    first ten, and STL model j matches head j of both.

    :param task: the tagging task (its training split builds the vocabularies).
    :param settings: tagger settings.
    :param seed: the seed of the initial encoder and heads.
    """

    def __init__(self, task: Task, settings: TaggerSettings, seed: int) -> None:
        self.task = task
        self.settings = settings
        self.seed = seed
        self._words, self._chars = build_tagging_vocabularies(
            [task], min_word_count=settings.min_word_count
        )
        self._counts = training_word_counts([task]) if settings.word_dropout > 0 else None
        self._encoder = self._build(1, QMTL_HIDDEN, seed).encoder.state_dict()

    def _build(self, k: int, hidden: int, torch_seed: int) -> SequenceTagger:
        kwargs = self.settings.model_kwargs()
        kwargs.pop("min_word_count")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            return SequenceTagger(
                self._words,
                self._chars,
                {self.task.name: self.task.num_classes},
                qmtl=QMTLConfig(k=k, hidden=hidden),
                word_counts=self._counts,
                **kwargs,
            )

    def _derived_seed(self, *path: int) -> int:
        return int(np.random.SeedSequence([self.seed, *path]).generate_state(1)[0])

    def initial_head(self, j: int, hidden: int = QMTL_HIDDEN) -> nn.Sequential:
        """Initial head j as a standalone module (`QMTLHead.export_head` form).

        :param j: head index.
        :param hidden: width of the ReLU layer (0: a linear softmax head).
        """
        if j < 0:
            raise ValueError(f"head index must be non-negative; got {j}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._derived_seed(1, hidden, j))
            head = QMTLHead(self._encoder_width, self.task.num_classes, k=1, hidden=hidden)
        return head.export_head(0)

    @property
    def _encoder_width(self) -> int:
        return 2 * self.settings.hidden_size

    def _with_heads(self, model: SequenceTagger, hidden: int, first: int) -> SequenceTagger:
        head = head_of(model)
        for j in range(head.k):
            head.load_head(j, self.initial_head(first + j, hidden))
        return model

    def qmtl(self, k: int, hidden: int = QMTL_HIDDEN) -> SequenceTagger:
        """Q-MTL with the shared initial encoder and initial heads 0..k-1.

        :param k: number of heads.
        :param hidden: width of the heads' ReLU layer (0: the PTA form).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1; got {k}")
        model = self._build(k, hidden, self.seed)
        model.encoder.load_state_dict(self._encoder)
        return self._with_heads(model, hidden, first=0)

    def stl(self, j: int) -> SequenceTagger:
        """The j-th STL model: initial head j on its own encoder (the shared one when j = 0).

        :param j: model index.
        """
        if j < 0:
            raise ValueError(f"STL index must be non-negative; got {j}")
        model = self._build(1, QMTL_HIDDEN, self.seed if j == 0 else self._derived_seed(2, j))
        if j == 0:
            model.encoder.load_state_dict(self._encoder)
        return self._with_heads(model, QMTL_HIDDEN, first=j)


def head_of(model: SequenceTagger) -> QMTLHead:
    """The Q-MTL head of a single-task study tagger."""
    (head,) = model.emissions.values()
    assert isinstance(head, QMTLHead)
    return head


def train_tagger(
    model: SequenceTagger,
    task: Task,
    settings: TaggerSettings,
    seed: int,
    device: str = "cpu",
    on_examples: Callable[[int], None] | None = None,
) -> RunResult:
    """Train ``model`` on ``task`` for ``settings.epochs`` epochs, validating after each; the
    model ends with the weights of the epoch best on validation.

    :param model: a single-task tagger from `MatchedTaggers`.
    :param task: the task (its training split may carry label noise).
    :param settings: optimizer, batch size and epochs.
    :param seed: seed of the example order and of the dropout and noise draws.
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param on_examples: called with the number of training examples seen after each step.
    """
    size = task.size("train")
    config = TrainerConfig(
        budget=settings.epochs * size,
        batch_size=settings.batch_size,
        eval_every=size,
        learning_rate=settings.learning_rate,
        optimizer=settings.optimizer,
        eval_batch_size=EVAL_BATCH_SIZE,
        device=device,
    )
    trainer = Trainer(model, [task], config, seed=seed)
    return trainer.run(make_scheduler("uniform"), on_examples=on_examples)


@dataclass
class TaggerOutputs:
    """Per-token outputs of a Q-MTL tagger on one split.

    :param probabilities: the heads' averaged tag distribution of each token, ``(N, C)``.
    :param head_predictions: each head's predicted tag of each token, ``(k, N)``.
    :param lengths: tokens of each sentence, in split order.
    """

    probabilities: np.ndarray
    head_predictions: np.ndarray
    lengths: np.ndarray


@torch.no_grad()
def tagger_outputs(model: SequenceTagger, task: Task, split: str) -> TaggerOutputs:
    """Run ``model`` over every sentence of ``split`` (in order) in evaluation mode.

    :param model: a single-task tagger with a `QMTLHead`.
    :param task: its task.
    :param split: ``"validation"`` or ``"test"``.
    """
    was_training = model.training
    model.eval()
    head = head_of(model)
    device = next(model.parameters()).device
    columns = materialize(task.split(split))
    size = task.size(split)
    probabilities, predictions, lengths = [], [], []
    try:
        for start in range(0, size, EVAL_BATCH_SIZE):
            rows = take_rows(columns, slice(start, min(start + EVAL_BATCH_SIZE, size)))
            batch: Batch = {
                name: value.to(device) for name, value in model.collate(task.name, rows).items()
            }
            states = model.encoder(batch["words"], batch["mask"], batch.get("chars"))
            log_probabilities = head.head_log_probabilities(states[batch["mask"]])
            probabilities.append(log_probabilities.exp().mean(dim=0).cpu())
            predictions.append(log_probabilities.argmax(dim=-1).cpu())
            lengths.append(batch["mask"].sum(dim=1).cpu())
    finally:
        model.train(was_training)
    return TaggerOutputs(
        probabilities=torch.cat(probabilities).numpy(),
        head_predictions=torch.cat(predictions, dim=1).numpy(),
        lengths=torch.cat(lengths).numpy(),
    )


def score_predictions(
    task: Task, split: str, predictions: np.ndarray, lengths: np.ndarray
) -> float:
    """The task's metric (token accuracy or span F1) of per-token tag predictions.

    :param task: the task.
    :param split: the split the predictions are for.
    :param predictions: predicted tag id of every token of the split, in order, ``(N,)``.
    :param lengths: tokens of each sentence.
    """
    references = task.split(split)["tags"]
    sentences = np.split(np.asarray(predictions), np.cumsum(lengths)[:-1])
    if task.metric == "accuracy":
        gold = np.fromiter((t for tags in references for t in tags), dtype=np.int64)
        return float(np.mean(np.asarray(predictions) == gold))
    return task_score(task, [s.tolist() for s in sentences], references)

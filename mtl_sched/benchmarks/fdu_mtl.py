"""The ``fdu-mtl`` benchmark: binary sentiment classification in 16 domains (seed 002, 5.1).

Tasks: the 16 FDU-MTL domains of `mtl_sched.data.fdu_mtl` (14 Amazon product domains, IMDB and
MR), each a two-class task scored by accuracy. Splits: train (1300-1400 reviews per domain),
validation (the last 200 lines of each ``.task.train``) and test (400 reviews).

Model: fully-shared MTL (seed 002's baseline): a shared word-level BiLSTM (`BiLSTMTextClassifier`,
Xavier-initialized as in seed 002, 4.4) over randomly initialized embeddings (or the user's
GloVe-format ``word_vectors``), max-pooled over the sentence, one linear-softmax head per
domain. The vocabulary holds the 20,000 most frequent training words (of those seen at least
twice); sentences are cut to their first 200 tokens. Minibatches of 16 reviews of one task (seed
002, 4.4), Adam.

Full variant (defaults): about four passes over the training data; evaluated on validation four
times per run (the best evaluation's model is tested). The probe pass (observation and reward)
reads 32 validation reviews of every domain, a stratified pool (`ProbeConfig.selection`: each
label's share of the domain's validation split, spread over the split), and histograms the
margin uncertainty of all of them; a scheduling agent decides every 16 minibatches
(``decision_steps=16``: the probe of all 16 domains costs about 3.4 training steps, so an
environment step then costs about 1.2 bare training steps per minibatch, and its reward follows
the whole-split probe more closely than at 8, 0.955 against 0.931 over one episode). Deciding
less often pays for probing every domain at every decision:
the reward then follows a probe of every domain's whole validation split closely, where seed
002's frequency with a cheap partial probe (the first 8 reviews, the trained domain and one
other per step) did not (``benchmarks/probe_fidelity.py``). ``--option decision_steps=1
--option probe_refresh=all`` gives seed 002's full probe after every minibatch.

Small variant (``small=True``, for tests and CI): the same 16 tasks cut to their first 100
train, 40 validation and 40 test reviews, a tiny BiLSTM (16 units, embeddings of 16, sentences
cut to 40 tokens) and a budget of two passes over the small training sets; a run takes seconds.
Its probe reads every domain's whole validation split (40 reviews) and an agent decides every 4
minibatches.

No schedule is documented to beat ``uniform`` here yet (``better_schedule`` is ``None``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.data.fdu_mtl import FDU_MTL_DOMAINS, load_fdu_mtl
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.models.qmtl import Combine, QMTLConfig
from mtl_sched.models.text_classifier import (
    BiLSTMTextClassifier,
    build_vocabulary,
    load_word_vectors,
)
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import TrainerConfig

# Per-task data cuts of the small variant: (train, validation, test).
SMALL_SIZES = (100, 40, 40)
# (probe pool per domain, minibatches per agent decision) of the full and the small variant:
# stratified pools, every domain probed at every decision (see the module docstring)
FULL_PROBE = (32, 16)
SMALL_PROBE = (None, 4)


def fdu_mtl_benchmark(
    data_dir: str | os.PathLike[str] | None = None,
    small: bool = False,
    budget: int | None = None,
    batch_size: int = 16,
    domains: Sequence[str] | None = None,
    embedding_dim: int | None = None,
    hidden_size: int | None = None,
    dropout: float = 0.3,
    max_length: int | None = None,
    min_count: int = 2,
    max_vocabulary: int | None = 20_000,
    learning_rate: float | None = None,
    word_vectors: str | os.PathLike[str] | None = None,
    bins: int = 20,
    qmtl_k: int | None = None,
    qmtl_hidden: int = 20,
    qmtl_combine: Combine = "average",
) -> Benchmark:
    """Build the ``fdu-mtl`` benchmark.

    Options left at ``None`` take the value of the chosen variant (see the module docstring).

    :param data_dir: the data directory holding ``fdu_mtl/``; ``None`` reads ``$MTL_SCHED_DATA``.
    :param small: the small variant (few examples per task, tiny model) for tests and CI.
    :param budget: training examples per run.
    :param batch_size: reviews per minibatch (all of one task).
    :param domains: the domains to use, in order (default: all 16).
    :param embedding_dim: word embedding width.
    :param hidden_size: LSTM width per direction.
    :param dropout: dropout on the embeddings and the BiLSTM states.
    :param max_length: tokens kept per review (the first ones).
    :param min_count: training-set occurrences a word needs to enter the vocabulary.
    :param max_vocabulary: keep at most this many words (the most frequent); ``None`` keeps all.
    :param learning_rate: Adam learning rate (2e-3; 1e-2 for the small variant, whose few
        updates per task need larger steps).
    :param word_vectors: a GloVe-format text file to initialize the embeddings from (its
        vectors must have ``embedding_dim`` entries); ``None`` starts from random embeddings.
    :param bins: histogram bins of the scheduler's observation.
    :param qmtl_k: give each domain ``qmtl_k`` Q-MTL heads (`QMTLHead`) instead of one linear
        head; the probe's histograms and accuracies then read the combined distribution.
    :param qmtl_hidden: width of each Q-MTL head's ReLU layer (0: the PTA form).
    :param qmtl_combine: ``"average"`` (Q-MTL) or ``"select"`` (model selection).
    """
    domains = tuple(domains) if domains is not None else FDU_MTL_DOMAINS
    train_size, validation_size, test_size = SMALL_SIZES if small else (None, None, None)
    embedding_dim = embedding_dim or (16 if small else 64)
    hidden_size = hidden_size or (16 if small else 64)
    max_length = max_length or (40 if small else 200)
    probe_pool, decision_steps = SMALL_PROBE if small else FULL_PROBE
    learning_rate = learning_rate or (1e-2 if small else 2e-3)
    if budget is None:
        # two passes over the small training sets; about four over the full ones
        budget = 2 * len(domains) * SMALL_SIZES[0] if small else 4 * 21_600
    vectors_path = Path(word_vectors) if word_vectors is not None else None
    qmtl = None if qmtl_k is None else QMTLConfig(qmtl_k, qmtl_hidden, qmtl_combine)

    def build_tasks() -> list[Task]:
        return load_fdu_mtl(
            data_dir,
            domains,
            max_train=train_size,
            max_validation=validation_size,
            max_test=test_size,
        )

    # The vocabulary (and the vectors read for it) depends on the training data only: built
    # once per task set, so that a model trained without a domain (leave-one-out) has never seen
    # that domain's words, whatever was built before it.
    vocabularies: dict[tuple[str, ...], tuple[Vocabulary, dict[int, torch.Tensor] | None]] = {}

    def build_model(tasks: Sequence[Task]) -> BiLSTMTextClassifier:
        names = tuple(t.name for t in tasks)
        if names not in vocabularies:
            built = build_vocabulary(tasks, min_count=min_count, max_size=max_vocabulary)
            read = None
            if vectors_path is not None:
                read, _ = load_word_vectors(vectors_path, built, embedding_dim)
            vocabularies[names] = (built, read)
        vocabulary, vectors = vocabularies[names]
        return BiLSTMTextClassifier(
            vocabulary,
            {t.name: t.num_classes for t in tasks},
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            dropout=dropout,
            pooling="max",
            max_length=max_length,
            word_vectors=vectors,
            qmtl=qmtl,
        )

    return Benchmark(
        name="fdu-mtl",
        description=(
            "FDU-MTL: 16-domain binary sentiment classification; shared BiLSTM, "
            + ("a linear head" if qmtl is None else f"{qmtl.k} Q-MTL heads")
            + " per domain"
            + (" (small variant)" if small else "")
        ),
        build_tasks=build_tasks,
        build_model=build_model,
        trainer_config=TrainerConfig(
            budget=budget,
            batch_size=batch_size,
            eval_every=max(1, budget // 4),
            learning_rate=learning_rate,
            eval_batch_size=256,
            probe=ProbeConfig(bins=bins, pool_size=probe_pool),
        ),
        decision_steps=decision_steps,
        config={
            "small": small,
            "domains": list(domains),
            "sizes": [train_size, validation_size, test_size],
            "embedding_dim": embedding_dim,
            "hidden_size": hidden_size,
            "dropout": dropout,
            "max_length": max_length,
            "min_count": min_count,
            "max_vocabulary": max_vocabulary,
            "pooling": "max",
            # the file name only: an absolute path would tie cache keys to one machine
            "word_vectors": vectors_path.name if vectors_path is not None else None,
            **({} if qmtl is None else {"qmtl": dataclasses.asdict(qmtl)}),
        },
        version=1,
    )

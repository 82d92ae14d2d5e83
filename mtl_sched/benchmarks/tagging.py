"""The ``tagging`` benchmark: POS tagging, chunking and NER with a shared BiLSTM-CRF (seed 002,
section 5.2).

=========  =================================  ====  ========  ========================
task       data                               tags  metric    train / dev / test sents
=========  =================================  ====  ========  ========================
``pos``    CoNLL-2000 POS column (WSJ 15-18)  44    accuracy  7936 / 1000 / 2012
``chunk``  CoNLL-2000 chunks (IOB2)           23    span F1   7936 / 1000 / 2012
``ner``    CoNLL-2003 English NER (IOB2)      9     span F1   14041 / 3250 / 3453
=========  =================================  ====  ========  ========================

CoNLL-2000 has no dev set; its last 1000 training sentences are the validation split of both
``pos`` and ``chunk`` (see `mtl_sched.data.conll`). Data are read from ``conll2000/`` and
``conll2003/`` under ``data_dir`` (or ``$MTL_SCHED_DATA``); nothing is downloaded.

The model is a `SequenceTagger`: word embeddings (lowercased, digits as ``0``, words seen once
map to ``<unk>``) and a character BiLSTM feed one shared BiLSTM; each task has a linear emission
layer and a CRF. Training uses Adam and minibatches of 32 sentences per task; budgets count
sentences. Model selection averages token accuracy (POS) and span F1 (chunk, NER) on
validation. The probe pool of the scheduling environment is 200 validation sentences of each
task spread evenly over the split (`ProbeConfig.selection`; labels are per token); its
histograms hold per-token margins of the CRF marginals. The probe pass costs about seven
training steps, so a scheduling agent decides every 8 minibatches (``decision_steps``; 1 in the
small variant, whose probe of 50 of its 100 validation sentences per task is cheap). The three
pools go through the shared encoder in one pass (`SequenceTagger.task_outputs`), as do the
minibatches of a step that trains several tasks.

Under ``uniform`` the full default budget of 300 000 sentences gives each task 100 000: 12.6
epochs of CoNLL-2000 and 7.1 of CoNLL-2003, enough for the test scores stated in the README
(POS 97.6, chunking 92.2, NER 82.5; 60 000 sentences reach 96.7, 88.8 and 75.6). Training costs
about 2.5 CPU seconds per 1000 sentences on one core of a 2-core CPU machine, so a run takes
about 14 minutes with its six validation passes. ``small=True`` keeps the first 300 / 100 / 100
sentences of each split and a tiny model: seconds per run, for tests and CI.

Other tasks: ``tasks`` names any registered tagging tasks (`mtl_sched.data.tagging_tasks`,
e.g. ``mwe`` or ``semtr``), in model order, and ``conll_tasks`` adds tasks read from your own
CoNLL-style files (`mtl_sched.data.conll_files.ConllTaskSpec`, or the command-line form
``NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]``); without ``tasks`` they join
the three above. On the command line, as a JSON list:
``--option 'conll_tasks=["ner-de=train.txt,dev.txt,test.txt:0:3:span-f1"]'``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.data.conll import CONLL2000_DEV_SENTENCES, load_conll2000, load_conll2003
from mtl_sched.data.conll_files import ConllTaskSpec
from mtl_sched.data.tagging_tasks import (
    checked_task_names,
    load_tagging_task,
    register_conll_tasks,
)
from mtl_sched.data.task import Task
from mtl_sched.models.qmtl import Combine, QMTLConfig
from mtl_sched.models.sequence_tagger import SequenceTagger
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import TrainerConfig

TAGGING_TASKS: tuple[str, ...] = ("pos", "chunk", "ner")
SMALL_SPLIT_SIZES: dict[str, int] = {"train": 300, "validation": 100, "test": 100}

# (embedding, hidden, char embedding, char hidden) of the full and the small model
FULL_MODEL = {
    "embedding_dim": 100,
    "hidden_size": 100,
    "char_embedding_dim": 25,
    "char_hidden_size": 25,
}
SMALL_MODEL = {
    "embedding_dim": 16,
    "hidden_size": 16,
    "char_embedding_dim": 8,
    "char_hidden_size": 8,
}


def tagging_trainer_config(
    budget: int,
    batch_size: int,
    learning_rate: float,
    evaluations: int,
    small: bool,
    bins: int = 20,
) -> TrainerConfig:
    """The training settings of the tagging benchmarks: Adam, ``evaluations`` validation
    passes per run, evaluation batches of 256 sentences, and a probe pool of 200 validation
    sentences per task spread over the split (50 when ``small``).

    :param budget: training sentences per run.
    :param batch_size: sentences per minibatch.
    :param learning_rate: Adam learning rate.
    :param evaluations: validation evaluations per run.
    :param small: the small variant.
    :param bins: histogram bins of the scheduler's observation.
    """
    return TrainerConfig(
        budget=budget,
        batch_size=batch_size,
        eval_every=max(1, budget // evaluations),
        learning_rate=learning_rate,
        eval_batch_size=256,
        probe=ProbeConfig(bins=bins, pool_size=50 if small else 200),
    )


def load_tagging_tasks(
    data_dir: str | os.PathLike[str] | None = None,
    small: bool = False,
    dev_sentences: int = CONLL2000_DEV_SENTENCES,
) -> list[Task]:
    """The ``pos``, ``chunk`` and ``ner`` tasks.

    :param data_dir: directory holding ``conll2000/`` and ``conll2003/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    :param small: keep only the first `SMALL_SPLIT_SIZES` sentences of each split.
    :param dev_sentences: CoNLL-2000 training sentences held out for validation.
    """
    limits = SMALL_SPLIT_SIZES if small else None
    return [*load_conll2000(data_dir, dev_sentences, limits), load_conll2003(data_dir, limits)]


def tagging_benchmark(
    data_dir: str | os.PathLike[str] | None = None,
    small: bool = False,
    budget: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    dropout: float | None = None,
    min_word_count: int = 2,
    evaluations: int = 6,
    bins: int = 20,
    qmtl_k: int | None = None,
    qmtl_hidden: int = 20,
    qmtl_combine: Combine = "average",
    tasks: str | Sequence[str] | None = None,
    conll_tasks: str | Sequence[ConllTaskSpec | Mapping[str, Any] | str] | None = None,
) -> Benchmark:
    """Build the ``tagging`` benchmark.

    :param data_dir: directory holding ``conll2000/`` and ``conll2003/``; ``None`` reads
        ``$MTL_SCHED_DATA`` (it is never part of the benchmark's identity).
    :param small: a few hundred sentences per task and a tiny model (tests and CI).
    :param budget: training sentences per run (default 300 000, or 1 200 when ``small``).
    :param batch_size: sentences per minibatch.
    :param learning_rate: Adam learning rate.
    :param dropout: dropout on the encoder's inputs and outputs (default 0.3, or 0.1 when
        ``small``).
    :param min_word_count: training words seen fewer times map to ``<unk>``.
    :param evaluations: validation evaluations per run (model selection picks the best).
    :param bins: histogram bins of the scheduler's observation.
    :param qmtl_k: tag every task's tokens with ``qmtl_k`` Q-MTL heads (`QMTLHead`, per-token
        softmax) instead of a linear layer and a CRF.
    :param qmtl_hidden: width of each Q-MTL head's ReLU layer (0: the PTA form).
    :param qmtl_combine: ``"average"`` (Q-MTL) or ``"select"`` (model selection).
    :param tasks: registered tagging tasks (a list, or comma-separated), in model order
        (default: ``pos``, ``chunk``, ``ner`` and the ``conll_tasks``).
    :param conll_tasks: tasks read from CoNLL-style files, registered before ``tasks`` are
        loaded (see `mtl_sched.data.conll_files`); part of the benchmark's identity.
    :raises ValueError: naming ``tasks`` or ``conll_tasks`` when they are malformed, repeat a
        name or name an unknown task.
    """
    specs = register_conll_tasks(conll_tasks)
    names = checked_task_names(
        (*TAGGING_TASKS, *(spec.name for spec in specs)) if tasks is None else tasks
    )
    qmtl = None if qmtl_k is None else QMTLConfig(qmtl_k, qmtl_hidden, qmtl_combine)
    if budget is None:
        budget = 1_200 if small else 300_000
    if dropout is None:
        dropout = 0.1 if small else 0.3
    sizes = SMALL_MODEL if small else FULL_MODEL

    def build_tasks() -> list[Task]:
        if names == TAGGING_TASKS:
            return load_tagging_tasks(data_dir, small)
        limits = SMALL_SPLIT_SIZES if small else None
        return [load_tagging_task(name, data_dir, limits) for name in names]

    def build_model(tasks: Sequence[Task]) -> SequenceTagger:
        return SequenceTagger.for_tasks(
            tasks, min_word_count=min_word_count, dropout=dropout, qmtl=qmtl, **sizes
        )

    config: dict[str, Any] = {
        "tasks": list(names),
        "small": small,
        "split_sizes": SMALL_SPLIT_SIZES if small else None,
        "conll2000_dev_sentences": CONLL2000_DEV_SENTENCES,
        "model": {
            **sizes,
            "dropout": dropout,
            "min_word_count": min_word_count,
            "lowercase": True,
            "max_word_length": 20,
            **({} if qmtl is None else {"qmtl": dataclasses.asdict(qmtl)}),
        },
    }
    if specs:
        config["conll_tasks"] = [spec.identity() for spec in specs]
    default_tasks = "POS (CoNLL-2000), chunking (CoNLL-2000), NER (CoNLL-2003)"
    return Benchmark(
        name="tagging",
        description=(default_tasks if names == TAGGING_TASKS else ", ".join(names))
        + "; "
        + ("BiLSTM-CRF" if qmtl is None else f"BiLSTM, {qmtl.k} Q-MTL heads per task")
        + (" [small]" if small else ""),
        build_tasks=build_tasks,
        build_model=build_model,
        trainer_config=tagging_trainer_config(
            budget, batch_size, learning_rate, evaluations, small, bins
        ),
        decision_steps=1 if small else 8,
        config=config,
        version=1,
    )

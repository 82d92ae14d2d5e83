"""The ``nmt-aux`` benchmark: translation with syntactic auxiliary tasks (seed 002, section 5.3).

Tasks (all read English word tokens through one shared encoder):

===============  ============================  ==========================  =================
task             data                          target                      metric
===============  ============================  ==========================  =================
``translation``  Multi30k en-de (29000 pairs)  German words, joiner marks  BLEU (sacrebleu,
                                                                           cased, detokenized)
``pos``          UD English-EWT (12544 sent.)  one UPOS tag per word       token accuracy
``parse``        UD English-EWT (12544 sent.)  one ``+k/deprel`` per word  token accuracy
===============  ============================  ==========================  =================

Test sets: Multi30k's 2016 Flickr test set (1000 pairs) and EWT's test file (2077 sentences);
validation: Multi30k's ``val`` (1014) and EWT's dev file (2001). The parse linearization is
documented in `mtl_sched.data.linearize`, the tokenization in `mtl_sched.data.seq2seq_task`.
Auxiliary-task accuracy is teacher-forced target-token accuracy (EOS included); for parsing it
equals the labeled attachment score given the gold previous symbols. Seed 002 used WMT'14 and
the Penn treebank; those are not available here, Multi30k and EWT stand in for them.

Model: `Seq2SeqMTL`, a shared BiLSTM encoder (Xavier-uniform initialization) and one Luong-
attention LSTM decoder per task, trained with Adam; validation BLEU uses greedy decoding
(``beam_size`` switches to beam search).

Vocabularies (built from training data only): the shared English source vocabulary holds the
words seen at least twice in the training sources of all tasks, at most 10000; the German
targets seen at least twice, at most 8000 (8,204 qualify, joiner-marked forms counted apart);
parse symbols at most 1000 (the long tail of rare offset-relation pairs becomes ``<unk>``); the
17 UPOS tags all fit.

``benchmarks/uniform_quality.py --benchmark nmt-aux`` trains it under ``uniform`` and prints the
test scores and the training cost per 1000 examples. The ``small`` variant (300 training and 60
validation/test examples per task, 32-wide model) trains in seconds and serves tests and CI.

The scheduling environment probes 200 validation examples per task, spread evenly over the split
(the whole split in the small variant), and an agent decides every 8 minibatches (every
minibatch in the small variant): the probe pass over the German vocabulary costs several
training steps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.data.linearize import AUXILIARY_TASKS, ewt_seq2seq_columns, ewt_seq2seq_tasks
from mtl_sched.data.multi30k import multi30k_columns, multi30k_task
from mtl_sched.data.seq2seq_task import build_source_vocabulary
from mtl_sched.data.task import Task
from mtl_sched.models.seq2seq import Seq2SeqMTL
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.training import TrainerConfig

FULL = {"train": None, "eval": None, "width": 256, "budget": 870_000, "dropout": 0.3}
SMALL = {"train": 300, "eval": 60, "width": 32, "budget": 1_920, "dropout": 0.0}


def nmt_aux_benchmark(
    data_dir: str | os.PathLike[str] | None = None,
    small: bool = False,
    auxiliary: Sequence[str] = AUXILIARY_TASKS,
    budget: int | None = None,
    batch_size: int = 32,
    width: int | None = None,
    dropout: float | None = None,
    learning_rate: float = 1e-3,
    max_source_vocabulary: int = 10_000,
    max_target_vocabulary: int = 8_000,
    max_parse_vocabulary: int = 1_000,
    beam_size: int = 1,
    bins: int = 20,
) -> Benchmark:
    """Build the ``nmt-aux`` benchmark.

    :param data_dir: directory holding ``multi30k/`` and ``ud/`` (default: ``$MTL_SCHED_DATA``).
    :param small: a few hundred examples per task and a 32-wide model (tests and CI).
    :param auxiliary: auxiliary tasks after ``translation``: any of ``"pos"`` and ``"parse"``
        (seed 002 reports MT+POS, MT+parse and MT+POS+parse).
    :param budget: training examples per run (default 870000, ten epochs of Multi30k for the
        translation task under ``uniform`` with two auxiliary tasks; 1920 when ``small``).
    :param batch_size: examples per task minibatch.
    :param width: embedding and LSTM width (default 256; 32 when ``small``).
    :param dropout: dropout of encoder and decoders (default 0.3; 0 when ``small``).
    :param learning_rate: Adam learning rate.
    :param max_source_vocabulary: cap on the shared English vocabulary.
    :param max_target_vocabulary: cap on the German vocabulary.
    :param max_parse_vocabulary: cap on the parse symbols (and the POS tags).
    :param beam_size: beam width of decoding for BLEU (1 is greedy).
    :param bins: histogram bins of the scheduler's observation.
    """
    preset = SMALL if small else FULL
    auxiliary = tuple(auxiliary)
    budget = budget if budget is not None else preset["budget"]
    width = width if width is not None else preset["width"]
    dropout = dropout if dropout is not None else preset["dropout"]

    def build_tasks() -> list[Task]:
        translation = multi30k_columns(data_dir, preset["train"], preset["eval"])
        syntax = ewt_seq2seq_columns(data_dir, auxiliary, preset["train"], preset["eval"])
        source_vocabulary = build_source_vocabulary(
            [translation, *syntax.values()], max_size=max_source_vocabulary
        )
        return [
            multi30k_task(
                source_vocabulary=source_vocabulary,
                max_target_vocabulary=max_target_vocabulary,
                columns=translation,
            ),
            *ewt_seq2seq_tasks(
                tasks=auxiliary,
                source_vocabulary=source_vocabulary,
                max_target_vocabulary=max_parse_vocabulary,
                columns=syntax,
            ),
        ]

    def build_model(tasks: Sequence[Task]) -> Seq2SeqMTL:
        return Seq2SeqMTL.for_tasks(
            tasks,
            embedding_dim=width,
            hidden_size=width,
            dropout=dropout,
            beam_size=beam_size,
        )

    return Benchmark(
        name="nmt-aux",
        description=(
            "Multi30k en-de translation + EWT POS and parsing as seq2seq; shared BiLSTM "
            "encoder, attention decoders" + (" (small)" if small else "")
        ),
        build_tasks=build_tasks,
        build_model=build_model,
        trainer_config=TrainerConfig(
            budget=budget,
            batch_size=batch_size,
            eval_every=max(1, budget // 10),
            learning_rate=learning_rate,
            eval_batch_size=128,
            # the probe's logits span the German vocabulary: keep its pool to 200 sentences
            # (spread over the split), and decide less often than every minibatch
            probe=ProbeConfig(bins=bins, pool_size=200),
        ),
        decision_steps=1 if small else 8,
        config={
            "small": small,
            "tasks": ["translation", *auxiliary],
            "max_train": preset["train"],
            "max_eval": preset["eval"],
            "width": width,
            "dropout": dropout,
            "max_source_vocabulary": max_source_vocabulary,
            "max_target_vocabulary": max_target_vocabulary,
            "max_parse_vocabulary": max_parse_vocabulary,
            "beam_size": beam_size,
        },
        version=1,
    )

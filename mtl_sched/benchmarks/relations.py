"""The ``relations`` benchmark: any set of registered tagging tasks under one of seed 003's
three architectures (MULTI-DEC, TE+DEC, TE+ENC), one model per task set.

The task-relation study trains it on every task set it needs (one task, pairs, all, oracle
sets, all but one); every run of a study uses the same data limits, model sizes and budget per
task, so that the sets differ only in which tasks are learned together. The budget is counted
per task: a run on ``n`` tasks trains ``n * budget_per_task`` sentences, under the ``uniform``
weighting scheduler each step is one minibatch of ``batch_size`` sentences of every task (seed
003's balanced minibatches), and every task gets the same number of its own sentences whatever
the set. Model selection averages the tasks' validation scores (seed 003 averages F1 over
tasks). Tasks come from `mtl_sched.data.tagging_tasks` (eight built in, `ALL_RELATION_TASKS`;
the study's default is the five of `RELATION_TASKS`), and ``conll_tasks`` adds tasks read from
your own CoNLL-style files (`mtl_sched.data.conll_files.ConllTaskSpec`): each worker process
that builds the benchmark registers them, so they work on every sweep backend. Nothing is
downloaded.

Two configurations are documented: the full one (every sentence, the ``tagging`` benchmark's
model: 100-d words, 100 LSTM units per direction, 25-d character BiLSTM) and ``small=True``
(the first 200 / 100 / 100 sentences of each split and a tiny model, seconds per run, for
tests). The study's reduced runs on this project's 2-core machine set ``train_sentences``,
``eval_sentences`` and the sizes in between; the report records them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.benchmarks.tagging import tagging_trainer_config
from mtl_sched.data.conll_files import ConllTaskSpec
from mtl_sched.data.tagging_tasks import (
    BUILT_IN_TASKS,
    checked_task_names,
    load_tagging_task,
    register_conll_tasks,
)
from mtl_sched.data.task import Task
from mtl_sched.models.base import MTLModel
from mtl_sched.models.sequence_tagger import SequenceTagger
from mtl_sched.models.shared_decoder_tagger import ARCHITECTURES, SharedDecoderTagger

RELATION_TASKS: tuple[str, ...] = ("upos", "xpos", "chunk", "pos", "ner")
# seed 003's seven tasks that have data here, plus WSJ POS
ALL_RELATION_TASKS: tuple[str, ...] = BUILT_IN_TASKS
SMALL_LIMITS: dict[str, int] = {"train": 200, "validation": 100, "test": 100}
FULL_SIZES: dict[str, int] = {
    "embedding_dim": 100,
    "hidden_size": 100,
    "char_embedding_dim": 25,
    "char_hidden_size": 25,
}
SMALL_SIZES: dict[str, int] = {
    "embedding_dim": 16,
    "hidden_size": 16,
    "char_embedding_dim": 8,
    "char_hidden_size": 8,
}


def relations_benchmark(
    tasks: Sequence[str] | str = RELATION_TASKS,
    arch: str = "multi-dec",
    data_dir: str | os.PathLike[str] | None = None,
    small: bool = False,
    train_sentences: int | None = None,
    eval_sentences: int | None = None,
    budget_per_task: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    dropout: float | None = None,
    hidden_size: int | None = None,
    embedding_dim: int | None = None,
    task_embedding_dim: int = 25,
    evaluations: int = 5,
    conll_tasks: str | Sequence[ConllTaskSpec | Mapping[str, Any] | str] | None = None,
) -> Benchmark:
    """Build the ``relations`` benchmark on ``tasks`` with architecture ``arch``.

    :param tasks: registered tagging task names (a list, or comma-separated), in model order.
    :param arch: ``"multi-dec"``, ``"te-dec"`` or ``"te-enc"``.
    :param data_dir: the data directory; ``None`` reads ``$MTL_SCHED_DATA`` (never part of the
        benchmark's identity).
    :param small: `SMALL_LIMITS` sentences per split and `SMALL_SIZES` (tests and CI).
    :param train_sentences: keep the first this many training sentences of each task.
    :param eval_sentences: keep the first this many validation and test sentences of each task.
    :param budget_per_task: training sentences each task gets (default 20 000, 400 when
        ``small``); a run trains this many times the number of tasks.
    :param batch_size: sentences per task per step.
    :param learning_rate: Adam learning rate.
    :param dropout: dropout on the encoder's inputs and outputs (default 0.3, 0.1 when
        ``small``).
    :param hidden_size: word LSTM units per direction (overrides the configuration's).
    :param embedding_dim: word embedding width (overrides the configuration's).
    :param task_embedding_dim: task embedding width of ``te-dec`` (seed 003: 25).
    :param evaluations: validation evaluations per run (model selection picks the best).
    :param conll_tasks: tasks read from CoNLL-style files, registered before ``tasks`` are
        loaded (`ConllTaskSpec`, its ``as_option()`` mapping, or the ``--conll-task`` form
        ``NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]``); part of the
        benchmark's identity.
    """
    specs = register_conll_tasks(conll_tasks)
    names = checked_task_names(tasks)
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}; got {arch!r}")
    limits: dict[str, int] = dict(SMALL_LIMITS) if small else {}
    if train_sentences is not None:
        limits["train"] = train_sentences
    if eval_sentences is not None:
        limits["validation"] = limits["test"] = eval_sentences
    if budget_per_task is None:
        budget_per_task = 400 if small else 20_000
    if dropout is None:
        dropout = 0.1 if small else 0.3
    sizes = dict(SMALL_SIZES if small else FULL_SIZES)
    if hidden_size is not None:
        sizes["hidden_size"] = hidden_size
    if embedding_dim is not None:
        sizes["embedding_dim"] = embedding_dim
    budget = budget_per_task * len(names)

    def build_tasks() -> list[Task]:
        return [load_tagging_task(name, data_dir, limits or None) for name in names]

    def build_model(model_tasks: Sequence[Task]) -> MTLModel:
        if arch == "multi-dec":
            return SequenceTagger.for_tasks(model_tasks, dropout=dropout, **sizes)
        return SharedDecoderTagger.for_tasks(
            model_tasks,
            injection="decoder" if arch == "te-dec" else "encoder",
            task_embedding_dim=task_embedding_dim,
            dropout=dropout,
            **sizes,
        )

    config: dict[str, Any] = {
        "tasks": list(names),
        "arch": arch,
        "small": small,
        "limits": limits,
        "budget_per_task": budget_per_task,
        "model": {**sizes, "dropout": dropout, "min_word_count": 2, "lowercase": True},
    }
    if arch == "te-dec":
        config["model"]["task_embedding_dim"] = task_embedding_dim
    if specs:
        config["conll_tasks"] = [spec.identity() for spec in specs]
    return Benchmark(
        name="relations",
        description=f"tagging tasks {', '.join(names)} under {arch}"
        + (" [small]" if small else ""),
        build_tasks=build_tasks,
        build_model=build_model,
        trainer_config=tagging_trainer_config(
            budget, batch_size, learning_rate, evaluations, small
        ),
        config=config,
        version=1,
    )

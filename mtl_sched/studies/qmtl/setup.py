"""Settings and data of the Q-MTL study (seeds 000 and 001).

Two tagger settings are defined. `SEED_SETTINGS` are the seeds' (Plank et al. 2016's defaults):
character embeddings of 100 dimensions into a character BiLSTM of 100 per direction, word
embeddings of 64 dimensions, one word BiLSTM layer of 100 per direction, word dropout 0.25,
Gaussian noise 0.2 on the input features, 20 epochs of SGD with one sentence per update. The
seeds start from polyglot word vectors, which are not among our data; words start random here.
`FAST_SETTINGS` keep the architecture and the regularizers but train on minibatches of 16
sentences with Adam for 5 epochs, with a narrower character BiLSTM, so that the whole study
fits a 2-core machine; every table states which settings produced it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets

from mtl_sched.data.conll import load_conll2003
from mtl_sched.data.task import Task
from mtl_sched.data.ud_pos import (
    UD_POS_TREEBANKS,
    load_ud_treebank,
    load_ud_upos,
    treebank_name,
)
from mtl_sched.studies.qmtl.label_noise import inject_label_noise


@dataclass(frozen=True)
class TaggerSettings:
    """How each tagger of the study is built and trained.

    :param name: the settings' name, recorded with every result.
    :param embedding_dim: word embedding width.
    :param hidden_size: word BiLSTM width per direction (h has twice this width).
    :param char_embedding_dim: character embedding width.
    :param char_hidden_size: character BiLSTM width per direction.
    :param word_dropout: alpha of Kiperwasser and Goldberg's word dropout.
    :param embedding_noise: standard deviation of Gaussian noise on the input features.
    :param min_word_count: training words seen fewer times map to ``<unk>``.
    :param optimizer: ``"sgd"`` or ``"adam"``.
    :param learning_rate: the optimizer's learning rate.
    :param batch_size: sentences per update.
    :param epochs: passes over the training sentences (validation after each).
    """

    name: str
    embedding_dim: int = 64
    hidden_size: int = 100
    char_embedding_dim: int = 100
    char_hidden_size: int = 100
    word_dropout: float = 0.25
    embedding_noise: float = 0.2
    min_word_count: int = 1
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = 0.1
    batch_size: int = 1
    epochs: int = 20

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `SequenceTagger.for_tasks` for these settings."""
        return {
            "embedding_dim": self.embedding_dim,
            "hidden_size": self.hidden_size,
            "char_embedding_dim": self.char_embedding_dim,
            "char_hidden_size": self.char_hidden_size,
            "word_dropout": self.word_dropout,
            "embedding_noise": self.embedding_noise,
            "min_word_count": self.min_word_count,
            "dropout": 0.0,
        }


SEED_SETTINGS = TaggerSettings(name="seed")
FAST_SETTINGS = TaggerSettings(
    name="fast",
    char_embedding_dim=50,
    char_hidden_size=50,
    optimizer="adam",
    learning_rate=2e-3,
    batch_size=16,
    epochs=5,
)
SETTINGS: dict[str, TaggerSettings] = {s.name: s for s in (SEED_SETTINGS, FAST_SETTINGS)}

Part = Literal["table1", "noise", "selection", "ner"]
PARTS: tuple[Part, ...] = ("table1", "noise", "selection", "ner")


@dataclass(frozen=True)
class QMTLStudyConfig:
    """What the study runs.

    :param treebanks: UD treebanks of the UPOS experiments: keys of `UD_POS_TREEBANKS`, or
        treebank directories (a path, or ``"NAME=PATH"`` to name the task; see
        `mtl_sched.data.ud_pos.load_ud_treebank`). After construction it holds task names only,
        and ``treebank_dirs`` the directories of those that are not built in.
    :param seeds: run seeds; every table gives mean and standard deviation over them.
    :param ks: numbers of heads k (Table 1); k = 1 is STL, and the ensembles of size k use
        the first k STL models.
    :param noise_k: k of the label-noise, model-selection and NER experiments (the seeds use 10).
    :param noise_levels: label-noise rates p of Figure 5 (0 is the noise-free run of Table 1).
    :param ner_fractions: fractions of the CoNLL-2003 training sentences (Table 3).
    :param parts: which experiments to run.
    :param settings: tagger settings.
    :param train_sentences: keep only the first this many training sentences per treebank
        (``None``: all of them).
    :param eval_sentences: keep only the first this many validation and test sentences.
    :param treebank_dirs: ``(name, absolute directory)`` of each treebank that is not built in;
        filled from ``treebanks`` (give directories there).
    """

    treebanks: tuple[str | os.PathLike[str], ...] = tuple(UD_POS_TREEBANKS)
    seeds: tuple[int, ...] = (0, 1, 2)
    ks: tuple[int, ...] = (1, 10, 30)
    noise_k: int = 10
    noise_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    ner_fractions: tuple[float, ...] = (1.0, 0.1)
    parts: tuple[Part, ...] = PARTS
    settings: TaggerSettings = field(default_factory=lambda: SEED_SETTINGS)
    train_sentences: int | None = None
    eval_sentences: int | None = None
    treebank_dirs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # frozen: the resolved names and directories replace what was given, so that trial
        # groups and tables name treebanks, never paths
        names, directories = _resolve_treebanks(self.treebanks, dict(self.treebank_dirs))
        object.__setattr__(self, "treebanks", names)
        object.__setattr__(self, "treebank_dirs", tuple(directories.items()))
        if not self.seeds:
            raise ValueError("the study needs at least one seed")
        if any(k < 1 for k in self.ks) or self.noise_k < 1:
            raise ValueError(f"k must be at least 1; got ks={self.ks}, noise_k={self.noise_k}")
        if any(not 0.0 <= p < 1.0 for p in self.noise_levels):
            raise ValueError(f"label-noise rates must be in [0, 1); got {self.noise_levels}")
        if any(not 0.0 < f <= 1.0 for f in self.ner_fractions):
            raise ValueError(f"NER fractions must be in (0, 1]; got {self.ner_fractions}")
        bad_parts = [p for p in self.parts if p not in PARTS]
        if bad_parts:
            raise ValueError(f"unknown part(s) {bad_parts}; choose from {', '.join(PARTS)}")

    def limits(self) -> dict[str, int]:
        """Sentence limits per split for the data loaders."""
        limits = {}
        if self.train_sentences is not None:
            limits["train"] = self.train_sentences
        if self.eval_sentences is not None:
            limits["validation"] = limits["test"] = self.eval_sentences
        return limits

    def description(self) -> dict[str, Any]:
        """The settings that change results (recorded with every row and hashed into its key)."""
        return {
            "settings": self.settings.name,
            "tagger": dataclasses.asdict(self.settings),
            "train_sentences": self.train_sentences,
            "eval_sentences": self.eval_sentences,
        }


def _resolve_treebanks(
    entries: tuple[str | os.PathLike[str], ...], known_dirs: dict[str, str]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Task names of the ``treebanks`` entries, and the directory of each that is not built in."""
    names: list[str] = []
    directories: dict[str, str] = {}
    for entry in entries:
        text = os.fspath(entry)
        if isinstance(entry, str) and (text in UD_POS_TREEBANKS or text in known_dirs):
            name = text
            if text in known_dirs:
                directories[name] = known_dirs[text]
        else:
            given, separator, location = text.partition("=")
            if not separator or not isinstance(entry, str) or Path(text).is_dir():
                given, location = "", text
            directory = Path(location).expanduser()
            if not directory.is_dir():
                raise ValueError(
                    f"unknown treebank {text!r}: neither a built-in treebank "
                    f"({', '.join(UD_POS_TREEBANKS)}) nor a treebank directory"
                )
            name = given or treebank_name(directory)
            if name in UD_POS_TREEBANKS:
                raise ValueError(
                    f"treebank directory {directory} would be named {name!r}, a built-in "
                    f"treebank: name it with NAME={directory}"
                )
            directories[name] = str(directory.resolve())
        if name in names:
            raise ValueError(f"treebank {name!r} is given twice (name others with NAME=PATH)")
        names.append(name)
    return tuple(names), directories


def load_upos_task(
    treebank: str, config: QMTLStudyConfig, data_dir: str | os.PathLike[str] | None
) -> Task:
    """The UPOS task of ``treebank`` under the study's sentence limits.

    :param treebank: one of ``config.treebanks``: a key of `UD_POS_TREEBANKS` (read from
        ``data_dir``) or the name of one of ``config.treebank_dirs``.
    :param config: the study configuration.
    :param data_dir: the data directory (``None``: ``$MTL_SCHED_DATA``).
    """
    directory = dict(config.treebank_dirs).get(treebank)
    if directory is not None:
        return load_ud_treebank(directory, treebank, "upos", config.limits())
    return load_ud_upos(treebank, data_dir, config.limits())


def load_ner_task(
    fraction: float, config: QMTLStudyConfig, data_dir: str | os.PathLike[str] | None
) -> Task:
    """CoNLL-2003 English NER with the first ``fraction`` of its training sentences.

    The first sentences are kept (whole documents, in corpus order), so 10% is a fixed,
    reproducible subset shared by every approach and seed.

    :param fraction: share of the training sentences, in ``(0, 1]``.
    :param config: the study configuration (its ``train_sentences`` caps the count first).
    :param data_dir: the data directory (``None``: ``$MTL_SCHED_DATA``).
    """
    task = load_conll2003(data_dir, config.limits())
    kept = max(1, round(task.size("train") * fraction))
    return dataclasses.replace(
        task, splits={**task.splits, "train": task.split("train").select(range(kept))}
    )


def with_label_noise(task: Task, p: float, seed: int) -> Task:
    """``task`` with its training tags relabeled at rate ``p`` (`inject_label_noise`).

    The relabeling depends on ``seed`` only, so every approach trained with the same seed sees
    the same noisy tokens with the same wrong tags. Validation and test stay clean.

    :param task: a tagging task (columns ``tokens`` and ``tags``).
    :param p: noise rate.
    :param seed: seed of the relabeling.
    """
    if p == 0.0:
        return task
    train = task.split("train")
    noisy = inject_label_noise(train["tags"], task.num_classes, p, seed)
    relabeled = datasets.Dataset.from_dict(
        {"tokens": train["tokens"], "tags": noisy}, features=train.features
    )
    return dataclasses.replace(task, splits={**task.splits, "train": relabeled})

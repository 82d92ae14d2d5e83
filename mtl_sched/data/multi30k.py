"""Multi30k Task 1 English-to-German translation (Elliott et al. 2016) from local files.

Files (under ``<data_dir>/multi30k/``, plain UTF-8, one raw untokenized sentence per line, line
*i* of ``X.en`` aligned with line *i* of ``X.de``):

==============  ==============================================  ======
split           files                                           pairs
==============  ==============================================  ======
``train``       ``train.en`` / ``train.de``                     29000
``validation``  ``val.en`` / ``val.de``                         1014
``test``        ``test_2016_flickr.en`` / ``test_2016_flickr.de``  1000
==============  ==============================================  ======

Each example has ``"source"``: the English line split by `tokenize` (words and punctuation,
casing kept), ``"target"``: the German line split the same way with joiner marks (so that
decoded tokens detokenize back into raw-text spacing), and ``"reference"``: the German line with
its whitespace normalized, which case-sensitive sacrebleu scores against (see
`mtl_sched.data.seq2seq_task`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mtl_sched.data.paths import DataFormatError, read_lines, require_file, resolve_data_dir
from mtl_sched.data.seq2seq_task import (
    REFERENCE_COLUMN,
    build_source_vocabulary,
    make_seq2seq_task,
    tokenize,
)
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary

MULTI30K_FILES: dict[str, str] = {
    "train": "train",
    "validation": "val",
    "test": "test_2016_flickr",
}
MULTI30K_SIZES: dict[str, int] = {"train": 29000, "validation": 1014, "test": 1000}


def read_parallel(
    source_path: str | os.PathLike[str], target_path: str | os.PathLike[str]
) -> list[tuple[str, str]]:
    """Aligned ``(source, target)`` lines of two files, whitespace-normalized.

    :param source_path: one sentence per line.
    :param target_path: its translation, line by line.
    :raises DataFormatError: on an empty line or file, or when one file has more lines than the
        other.
    """
    sources = _read_sentences(source_path)
    targets = _read_sentences(target_path)
    if len(sources) != len(targets):
        shorter, longer = (source_path, target_path)
        if len(sources) > len(targets):
            shorter, longer = target_path, source_path
        raise DataFormatError(
            longer,
            min(len(sources), len(targets)) + 1,
            f"has no aligned line in {shorter} ({len(sources)} source and {len(targets)} "
            "target lines)",
        )
    return list(zip(sources, targets, strict=True))


def _read_sentences(path: str | os.PathLike[str]) -> list[str]:
    sentences = []
    for number, line in read_lines(path):
        text = " ".join(line.split())
        if not text:
            raise DataFormatError(path, number, "empty sentence")
        sentences.append(text)
    if not sentences:
        raise DataFormatError(path, None, "no sentences found (the file is empty)")
    return sentences


def multi30k_split(
    directory: str | os.PathLike[str], split: str, limit: int | None = None
) -> dict[str, list]:
    """The columns of one Multi30k split.

    :param directory: the ``multi30k`` directory.
    :param split: ``"train"``, ``"validation"`` or ``"test"``.
    :param limit: keep only the first ``limit`` pairs.
    """
    if split not in MULTI30K_FILES:
        raise KeyError(f"unknown Multi30k split {split!r}; known: {', '.join(MULTI30K_FILES)}")
    stem = Path(directory) / MULTI30K_FILES[split]
    pairs = read_parallel(
        require_file(stem.with_name(stem.name + ".en")),
        require_file(stem.with_name(stem.name + ".de")),
    )[:limit]
    return {
        "source": [tokenize(english) for english, _ in pairs],
        "target": [tokenize(german, mark_joins=True) for _, german in pairs],
        REFERENCE_COLUMN: [german for _, german in pairs],
    }


def multi30k_columns(
    data_dir: str | os.PathLike[str] | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> dict[str, dict[str, list]]:
    """Token columns of every split (split name -> columns), before encoding.

    :param data_dir: directory holding ``multi30k/`` (default: ``$MTL_SCHED_DATA``).
    :param max_train: keep the first this many training pairs (all when ``None``).
    :param max_eval: keep the first this many validation and test pairs (all when ``None``).
    """
    directory = resolve_data_dir(data_dir) / "multi30k"
    return {
        split: multi30k_split(directory, split, max_train if split == "train" else max_eval)
        for split in MULTI30K_FILES
    }


def multi30k_task(
    data_dir: str | os.PathLike[str] | None = None,
    source_vocabulary: Vocabulary | None = None,
    name: str = "translation",
    max_train: int | None = None,
    max_eval: int | None = None,
    max_target_vocabulary: int | None = 8000,
    min_count: int = 2,
    columns: dict[str, dict[str, list]] | None = None,
) -> Task:
    """The Multi30k en-de translation task (kind ``"seq2seq"``, metric ``"bleu"``).

    :param data_dir: directory holding ``multi30k/`` (default: ``$MTL_SCHED_DATA``).
    :param source_vocabulary: the English vocabulary; ``None`` builds one from this task's
        training sources (words seen ``min_count`` times, at most 10000).
    :param name: task name.
    :param max_train: keep the first this many training pairs (all when ``None``).
    :param max_eval: keep the first this many validation and test pairs (all when ``None``).
    :param max_target_vocabulary: cap on German target tokens (besides the reserved ones).
    :param min_count: tokens seen fewer times in training become ``<unk>``.
    :param columns: already read `multi30k_columns` (then the files are not read again).
    """
    if columns is None:
        columns = multi30k_columns(data_dir, max_train, max_eval)
    if source_vocabulary is None:
        source_vocabulary = build_source_vocabulary([columns], min_count=min_count)
    return make_seq2seq_task(
        name,
        columns,
        source_vocabulary,
        max_target_vocabulary=max_target_vocabulary,
        min_count=min_count,
        metric="bleu",
        metadata={"corpus": "Multi30k task 1", "languages": "en-de", "test_set": "2016 Flickr"},
    )

"""Universal Dependencies part-of-speech (UPOS) tagging tasks, one per treebank (seeds 000/001).

Each treebank with train, dev and test files in ``<data_dir>/ud/`` becomes a tagging `Task`
(columns ``tokens`` and ``tags``, scored by token accuracy) whose tags are the UPOS column of
its syntactic words (multiword-token ranges and empty nodes are left out, see
`mtl_sched.data.conllu`). Splits: train, validation (the treebank's dev file) and test.

`UD_POS_TREEBANKS` lists the treebanks of the data directory's ``SOURCES.md`` that have a
training file. Basque has one only in its complete UD v1.4 release (``r1.4_complete/``), which
follows the v1 guidelines (``CONJ`` for ``CCONJ``): its task reads that release's own train, dev
and test, never mixed with the current release's dev and test. Croatian-SET, Dutch-Alpino and
Finnish-FTB ship dev and test only and are not tasks.

Any other UD treebank directory becomes a task with `load_ud_treebank`: its train, dev and test
files are the ``.conllu`` (or ``.conllu.gz``) files whose names contain ``train``, ``dev`` and
``test`` (`find_treebank_files`), and the task is named after the train file's prefix (``fr_gsd``
for ``fr_gsd-ud-train.conllu``) unless a name is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from mtl_sched.data.conll import Sentence, tagging_task
from mtl_sched.data.conllu import read_conllu
from mtl_sched.data.paths import DataFormatError, resolve_data_dir
from mtl_sched.data.task import Task

# task name -> (folder under ud/, train, dev and test file names)
UD_POS_TREEBANKS: dict[str, tuple[str, tuple[str, str, str]]] = {
    "en_ewt": (
        "UD_English-EWT",
        ("en_ewt-ud-train.conllu.gz", "en_ewt-ud-dev.conllu.gz", "en_ewt-ud-test.conllu.gz"),
    ),
    "en_lines": (
        "UD_English-LinES",
        ("en_lines-ud-train.conllu", "en_lines-ud-dev.conllu", "en_lines-ud-test.conllu"),
    ),
    "hu_szeged": (
        "UD_Hungarian-Szeged",
        ("hu_szeged-ud-train.conllu", "hu_szeged-ud-dev.conllu", "hu_szeged-ud-test.conllu"),
    ),
    "eu_bdt_v1.4": (
        "UD_Basque-BDT/r1.4_complete",
        ("eu-ud-train.conllu", "eu-ud-dev.conllu", "eu-ud-test.conllu"),
    ),
}
# (split, the word its file's name contains) in the order of a treebank's files
SPLIT_FILE_MARKERS: tuple[tuple[str, str], ...] = (
    ("train", "train"),
    ("validation", "dev"),
    ("test", "test"),
)
CONLLU_SUFFIXES = (".conllu", ".conllu.gz")
TagColumn = Literal["upos", "xpos"]


def load_ud_upos(
    treebank: str,
    data_dir: str | os.PathLike[str] | None = None,
    limits: Mapping[str, int] | None = None,
) -> Task:
    """The UPOS tagging task of one treebank of `UD_POS_TREEBANKS`.

    :param treebank: a key of `UD_POS_TREEBANKS` (e.g. ``"en_lines"``); it names the task.
    :param data_dir: the data directory holding ``ud/``; ``None`` reads ``$MTL_SCHED_DATA``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names (tag
        ids still come from every sentence).
    :raises ValueError: for an unknown treebank.
    :raises FileNotFoundError: naming a missing file.
    :raises DataFormatError: naming the file and line of a malformed line.
    """
    return load_ud_tags(treebank, "upos", treebank, data_dir, limits)


def load_ud_tags(
    treebank: str,
    column: TagColumn,
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    limits: Mapping[str, int] | None = None,
) -> Task:
    """A part-of-speech tagging task of one treebank of `UD_POS_TREEBANKS`: its universal
    (``"upos"``) or language-specific (``"xpos"``, e.g. Penn Treebank tags for English) tags.

    :param treebank: a key of `UD_POS_TREEBANKS`.
    :param column: the tag column.
    :param name: the task's name.
    :param data_dir: the data directory holding ``ud/``; ``None`` reads ``$MTL_SCHED_DATA``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names (tag
        ids still come from every sentence).
    :raises ValueError: for an unknown treebank, or a treebank without the column's tags.
    :raises FileNotFoundError: naming a missing file.
    :raises DataFormatError: naming the file and line of a malformed line.
    """
    if treebank not in UD_POS_TREEBANKS:
        raise ValueError(
            f"unknown UD treebank {treebank!r}; choose from {', '.join(UD_POS_TREEBANKS)}"
        )
    folder, files = UD_POS_TREEBANKS[treebank]
    root = resolve_data_dir(data_dir) / "ud" / folder
    paths = tuple(root / file_name for file_name in files)
    source = ", ".join(f"ud/{folder}/{file_name}" for file_name in files)
    return _tags_task(name, paths, column, source, limits)


def find_treebank_files(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The train, dev and test files of a UD treebank directory.

    Each is the one ``.conllu`` or ``.conllu.gz`` file of the directory (not its subfolders)
    whose name contains ``train``, ``dev`` or ``test`` respectively, as UD releases name them
    (``<lang>_<treebank>-ud-<split>.conllu``).

    :param directory: the treebank directory.
    :raises FileNotFoundError: when ``directory`` is not a directory.
    :raises ValueError: naming the directory, the split and the CoNLL-U files found when a split
        has no file or several.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"treebank directory {root} does not exist")
    conllu = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(CONLLU_SUFFIXES))
    found = []
    for split, marker in SPLIT_FILE_MARKERS:
        matches = [p for p in conllu if marker in p.name]
        if len(matches) != 1:
            which = "no CoNLL-U file" if not matches else f"{len(matches)} CoNLL-U files"
            raise ValueError(
                f"treebank directory {root} has {which} with {marker!r} in its name "
                f"(the {split} split); CoNLL-U files there: {[p.name for p in conllu] or 'none'}"
            )
        found.append(matches[0])
    train, dev, test = found
    return train, dev, test


def treebank_name(directory: str | os.PathLike[str]) -> str:
    """The task name of a treebank directory: its train file's name up to ``-ud-`` (or up to
    ``-train``, ``_train`` or ``.``), e.g. ``fr_gsd`` for ``fr_gsd-ud-train.conllu``.

    :param directory: the treebank directory (see `find_treebank_files`).
    """
    train_name = find_treebank_files(directory)[0].name
    for separator in ("-ud-", "-train", "_train", "."):
        prefix = train_name.split(separator)[0]
        if prefix and prefix != train_name:
            return prefix
    return Path(directory).name


def load_ud_treebank(
    directory: str | os.PathLike[str],
    name: str | None = None,
    column: TagColumn = "upos",
    limits: Mapping[str, int] | None = None,
) -> Task:
    """The part-of-speech tagging task of any UD treebank directory (see `find_treebank_files`
    for the files it reads), built as `load_ud_tags` builds those of `UD_POS_TREEBANKS`.

    :param directory: the treebank directory.
    :param name: the task's name (default: `treebank_name`).
    :param column: the tag column: ``"upos"`` or ``"xpos"``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names (tag
        ids still come from every sentence).
    :raises FileNotFoundError: naming a missing directory.
    :raises ValueError: naming the directory when a split's file is missing or ambiguous, or a
        file whose words lack the column's tags.
    :raises DataFormatError: naming the file and line of a malformed line.
    """
    files = find_treebank_files(directory)
    source = ", ".join(str(path) for path in files)
    return _tags_task(name or treebank_name(directory), files, column, source, limits)


def _tags_task(
    name: str,
    files: Sequence[Path],
    column: TagColumn,
    source: str,
    limits: Mapping[str, int] | None,
) -> Task:
    """The tagging task of the train, dev and test ``files`` of one treebank."""
    if column not in ("upos", "xpos"):
        raise ValueError(f"column must be 'upos' or 'xpos'; got {column!r}")
    splits: dict[str, list[Sentence]] = {}
    for (split, _), path in zip(SPLIT_FILE_MARKERS, files, strict=True):
        sentences = read_conllu(path)
        tags = [s.upos if column == "upos" else s.xpos for s in sentences]
        for sentence, sentence_tags in zip(sentences, tags, strict=True):
            if "_" in sentence_tags:
                where = f" (sentence {sentence.sent_id})" if sentence.sent_id else ""
                raise DataFormatError(path, None, f"words without {column.upper()} tags{where}")
        splits[split] = [
            {"word": list(s.forms), column: list(t)} for s, t in zip(sentences, tags, strict=True)
        ]
    return tagging_task(name, splits, column, "accuracy", {"source": source}, limits)

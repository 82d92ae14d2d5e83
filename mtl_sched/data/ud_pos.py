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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from mtl_sched.data.conll import Sentence, tagging_task
from mtl_sched.data.conllu import read_conllu
from mtl_sched.data.paths import resolve_data_dir
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
    column: Literal["upos", "xpos"],
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
    splits: dict[str, list[Sentence]] = {}
    for split, file_name in zip(("train", "validation", "test"), files, strict=True):
        sentences = read_conllu(root / file_name)
        tags = [s.upos if column == "upos" else s.xpos for s in sentences]
        if any("_" in sentence_tags for sentence_tags in tags):
            raise ValueError(f"{root / file_name} has words without {column.upper()} tags")
        splits[split] = [
            {"word": list(s.forms), column: list(t)} for s, t in zip(sentences, tags, strict=True)
        ]
    source = {"source": ", ".join(f"ud/{folder}/{file_name}" for file_name in files)}
    return tagging_task(name, splits, column, "accuracy", source, limits)

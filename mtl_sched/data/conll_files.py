"""Tagging tasks from your own CoNLL-style files: `ConllTaskSpec` in Python, ``--conll-task`` on
the command line.

A file holds one token per line, its fields separated by ``separator`` (runs of whitespace by
default), and a blank line after each sentence. ``word_column`` and ``tag_column`` pick the word
and its tag (0-based; a negative index counts from the end, so ``-1`` is the last field). Every
token line of a file must have as many fields as the file's first token line. Lines starting
with ``comment_prefix`` (``#`` by default) are comments where a sentence starts, as in CoNLL-U;
inside a sentence they are tokens. A sentence that starts with a word beginning with the prefix
(CoNLL-2000 has one starting with ``#``) therefore needs ``comment_prefix=None``. Lines whose
first field is ``-DOCSTART-`` separate sentences.

Splits
    ``train``, ``validation`` and ``test`` files. A split left out is carved from the end of the
    training file: the test split is its last `HELD_OUT_FRACTION` (10 %, at least one
    sentence), the validation split the same number of sentences before them.

Metric
    ``"accuracy"`` (token accuracy) or ``"span-f1"`` (seqeval span F1; the tags must then be
    ``O``, ``B-<type>`` or ``I-<type>``, and IOB1 is rewritten as IOB2, see
    `mtl_sched.data.conll.to_iob2`).

Tag ids follow the training split, ``O`` first (`mtl_sched.data.conll.tagging_task`).

On the command line a task is ``NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]``
(`parse_conll_task`): one path (both other splits carved) or three, then the two column
indices and optionally the metric. For example
``ner-de=de/train.txt,de/dev.txt,de/test.txt:0:3:span-f1`` or
``pos-x=x/all.txt:1:3`` (one file; validation and test carved from it). The separator and
comment prefix keep their defaults there. A CoNLL-U file (``FORM`` field 1, ``UPOS`` field 3)
is read line by line, so its multiword-token lines (IDs such as ``1-2``) would become words;
`mtl_sched.data.conllu` reads such files properly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_sched.data.conll import Sentence, checked_iob2, iter_sentence_lines, tagging_task
from mtl_sched.data.paths import DataFormatError, require_file
from mtl_sched.data.task import Task

HELD_OUT_FRACTION = 0.1
CONLL_TASKS = "conll_tasks"  # the benchmark option of tasks read from files
CONLL_TASK_METRICS: tuple[str, ...] = ("accuracy", "span-f1", "tag-f1")
CONLL_TASK_FORM = "NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]"
_TASK_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
_COLUMN = re.compile(r"-?\d+")
TAG = "tag"


@dataclass(frozen=True)
class ConllTaskSpec:
    """A tagging task read from CoNLL-style files.

    :param name: the task name (letters, digits and ``_ . + -``); it labels tables and results.
    :param train: the training file (a path-like is kept as text).
    :param validation: the validation file; ``None`` carves it from the end of ``train``.
    :param test: the test file; ``None`` carves it from the end of ``train``.
    :param word_column: the field holding the word (0-based; negative counts from the end).
    :param tag_column: the field holding the tag (0-based; negative counts from the end).
    :param metric: ``"accuracy"``, ``"span-f1"`` (IOB tags) or ``"tag-f1"`` (F1 over the
        tokens not tagged ``O``, for tags without IOB prefixes).
    :param separator: the field separator (e.g. ``"\\t"`` when words hold spaces); ``None``
        splits on runs of whitespace.
    :param comment_prefix: the prefix of comment lines at the start of a sentence; ``None``
        reads every line as a token.
    """

    name: str
    train: str
    validation: str | None = None
    test: str | None = None
    word_column: int = 0
    tag_column: int = -1
    metric: str = "accuracy"
    separator: str | None = None
    comment_prefix: str | None = "#"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TASK_NAME.fullmatch(self.name):
            raise ValueError(
                f"name must be letters, digits, '_', '.', '+' or '-'; got {self.name!r}"
            )
        for split in ("train", "validation", "test"):
            path = getattr(self, split)
            if path is None and split != "train":
                continue
            if not isinstance(path, (str, os.PathLike)) or not str(path):
                raise ValueError(f"{split} must be a file path; got {path!r}")
            # paths are kept as text so that a spec is a JSON-ready benchmark option
            object.__setattr__(self, split, str(path))
        for column in ("word_column", "tag_column"):
            value = getattr(self, column)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{column} must be an integer; got {value!r}")
        if self.word_column == self.tag_column:
            raise ValueError(f"word_column and tag_column are both {self.word_column}")
        if self.metric not in CONLL_TASK_METRICS:
            raise ValueError(
                f"metric must be one of {', '.join(CONLL_TASK_METRICS)}; got {self.metric!r}"
            )
        for option in ("separator", "comment_prefix"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{option} must be a non-empty string or None; got {value!r}")

    def resolved(self) -> ConllTaskSpec:
        """This spec with absolute paths, so that it reads the same files from any directory."""
        paths = {
            split: str(Path(path).resolve())
            for split in ("train", "validation", "test")
            if (path := getattr(self, split)) is not None
        }
        return dataclasses.replace(self, **paths)

    def as_option(self) -> dict[str, Any]:
        """The spec as a JSON-ready mapping (a ``conll_tasks`` benchmark option)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """`as_option` with each file named by the SHA-256 of its content instead of its path.

        Results and cached references are keyed by it: the same files moved elsewhere (another
        checkout, a relative path from another directory) key the same trials, and an edited
        file keys new ones.

        :raises FileNotFoundError: naming a file that is missing.
        """
        option = self.as_option()
        for split in ("train", "validation", "test"):
            if option[split] is not None:
                content = require_file(option[split]).read_bytes()
                option[split] = f"sha256:{hashlib.sha256(content).hexdigest()}"
        return option


def conll_task_spec(value: ConllTaskSpec | Mapping[str, Any] | str) -> ConllTaskSpec:
    """A `ConllTaskSpec` from a spec, its `ConllTaskSpec.as_option` mapping or the command-line
    form (`parse_conll_task`).

    :param value: the task, in one of those three forms.
    :raises ValueError: for a malformed form, an unknown key, or a bad field.
    """
    if isinstance(value, ConllTaskSpec):
        return value
    if isinstance(value, str):
        return parse_conll_task(value)
    if isinstance(value, Mapping):
        known = {f.name for f in dataclasses.fields(ConllTaskSpec)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"conll task keys {unknown} are unknown; known: {sorted(known)}")
        if "name" not in value or "train" not in value:
            raise ValueError(f"a conll task needs 'name' and 'train'; got {dict(value)}")
        return ConllTaskSpec(**value)
    raise ValueError(
        f"a conll task is a ConllTaskSpec, a mapping or {CONLL_TASK_FORM!r}; got {value!r}"
    )


def conll_task_specs(
    values: Sequence[ConllTaskSpec | Mapping[str, Any] | str] | str | None,
) -> list[ConllTaskSpec]:
    """The specs of a ``conll_tasks`` option: a sequence of tasks in any form `conll_task_spec`
    takes, one command-line form, or ``None`` (no task).

    :param values: the option.
    :raises ValueError: for a malformed task, or a name given twice.
    """
    if values is None:
        return []
    specs = [conll_task_spec(v) for v in ([values] if isinstance(values, str) else values)]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"conll_tasks must name distinct tasks; got {names}")
    return specs


def parse_conll_task(text: str) -> ConllTaskSpec:
    """The task of a ``--conll-task`` value, ``NAME=TRAIN[,VALIDATION,TEST]:WORD:TAG[:METRIC]``.

    The fields after the paths are read from the right, so a path may itself hold ``:``.

    :param text: the value, e.g. ``"ner-de=train.txt,dev.txt,test.txt:0:3:span-f1"``.
    :raises ValueError: naming the expected form, for a value that does not follow it.
    """
    name, equals, rest = text.partition("=")
    parts = rest.split(":")
    metric = "accuracy"
    if len(parts) > 1 and parts[-1] in CONLL_TASK_METRICS:
        metric = parts.pop()
    if not equals or len(parts) < 3 or not all(_COLUMN.fullmatch(p) for p in parts[-2:]):
        raise ValueError(f"a conll task must read {CONLL_TASK_FORM}; got {text!r}")
    word_column, tag_column = int(parts[-2]), int(parts[-1])
    paths = ":".join(parts[:-2]).split(",")
    if len(paths) not in (1, 3) or not all(paths):
        raise ValueError(
            f"a conll task names one file (train) or three (train, validation, test); got {text!r}"
        )
    validation, test = (paths[1], paths[2]) if len(paths) == 3 else (None, None)
    return ConllTaskSpec(name, paths[0], validation, test, word_column, tag_column, metric)


def read_tagged_file(spec: ConllTaskSpec, path: str | os.PathLike[str]) -> list[Sentence]:
    """The sentences of one file of ``spec``, each as ``{"word": [...], "tag": [...]}``.

    :param spec: the columns, separator, comment prefix and metric.
    :param path: the file (``.gz`` is read transparently).
    :raises FileNotFoundError: when the file is missing.
    :raises DataFormatError: naming the file and line of a line whose field count differs from
        the first token line's, of a column beyond a line's fields, of an empty word or tag, or
        of a malformed IOB tag (``span-f1``); or the file, when it holds no sentence.
    """
    path = require_file(path)
    width: tuple[int, int] | None = None  # (fields per line, line that set it)
    sentences: list[Sentence] = []
    for token_lines in iter_sentence_lines(path, spec.separator, spec.comment_prefix):
        words, tags = [], []
        for number, fields in token_lines:
            if width is None:
                width = (len(fields), number)
                for column in ("word_column", "tag_column"):
                    index = getattr(spec, column)
                    if not -len(fields) <= index < len(fields):
                        raise DataFormatError(
                            path,
                            number,
                            f"{column} {index} is beyond the line's {len(fields)} fields",
                        )
            if len(fields) != width[0]:
                raise DataFormatError(
                    path, number, f"{len(fields)} fields where line {width[1]} has {width[0]}"
                )
            word, tag = fields[spec.word_column], fields[spec.tag_column]
            if not word or not tag:
                raise DataFormatError(path, number, "empty word or tag field")
            words.append(word)
            tags.append(tag)
        if spec.metric == "span-f1":
            tags = checked_iob2(path, [n for n, _ in token_lines], tags, "span-f1")
        sentences.append({"word": words, TAG: tags})
    if not sentences:
        raise DataFormatError(path, None, "no sentences found")
    return sentences


def held_out_splits(
    spec: ConllTaskSpec, train: list[Sentence]
) -> tuple[list[Sentence], list[Sentence] | None, list[Sentence] | None]:
    """``train`` with the splits ``spec`` gives no file for carved from its end: test last,
    validation before it, `HELD_OUT_FRACTION` of the file (at least one sentence) each.

    :param spec: says which splits have files.
    :param train: the training file's sentences.
    :return: (train, validation, test); a split with its own file is ``None``.
    :raises ValueError: when the training file is too short to give every carved split a
        sentence and keep one for training.
    """
    missing = [s for s in ("test", "validation") if getattr(spec, s) is None]
    size = max(1, round(HELD_OUT_FRACTION * len(train)))
    if len(train) <= size * len(missing):
        raise ValueError(
            f"task {spec.name!r}: {spec.train} has {len(train)} sentences, too few to carve "
            f"{' and '.join(missing)} from it; give their files"
        )
    carved: dict[str, list[Sentence]] = {}
    for split in missing:
        carved[split], train = train[-size:], train[:-size]
    return train, carved.get("validation"), carved.get("test")


def load_conll_task(
    spec: ConllTaskSpec | Mapping[str, Any] | str, limits: Mapping[str, int] | None = None
) -> Task:
    """The tagging `Task` of ``spec`` (columns ``tokens`` and ``tags``).

    :param spec: the task (see `conll_task_spec` for the accepted forms).
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names (tag
        ids still come from every sentence).
    :raises FileNotFoundError: naming a missing file.
    :raises DataFormatError: naming the file and line of a malformed line.
    """
    spec = conll_task_spec(spec)
    train, validation, test = held_out_splits(spec, read_tagged_file(spec, spec.train))
    if validation is None:
        validation = read_tagged_file(spec, str(spec.validation))
    if test is None:
        test = read_tagged_file(spec, str(spec.test))
    splits = {"train": train, "validation": validation, "test": test}
    metadata = {"source": spec.as_option(), "held_out_fraction": HELD_OUT_FRACTION}
    return tagging_task(spec.name, splits, TAG, spec.metric, metadata, limits)

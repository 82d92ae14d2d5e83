"""CoNLL-2000 (POS tags and chunks of WSJ text) and CoNLL-2003 (English NER) as tagging tasks.

Files hold one token per line, its fields separated by spaces, and a blank line after each
sentence: ``word POS chunk`` for CoNLL-2000 (``<data_dir>/conll2000/{train,test}.txt``) and
``word POS chunk NER`` for CoNLL-2003 (``<data_dir>/conll2003/{train,valid,test}.txt``), whose
``-DOCSTART-`` document markers are skipped.

Splits
    CoNLL-2000 has no dev set: its validation split is the **last** `CONLL2000_DEV_SENTENCES`
    (1000) sentences of ``train.txt`` (the end of WSJ section 18), its train split the 7936
    before them; test is ``test.txt`` (WSJ section 20). The ``pos`` and ``chunk`` tasks read the
    same sentences (the WSJ POS tags of seed 002 come from CoNLL-2000's POS column here, since
    the full Penn Treebank is not public). CoNLL-2003 uses its own train/valid/test files.

Tags
    Chunk and NER tags are normalized to IOB2 (every chunk starts with ``B-``), the scheme
    seqeval reads by default: `to_iob2` rewrites an ``I-X`` that opens a chunk as ``B-X``. The
    shipped files are already IOB2, so this only matters for the original IOB1 release of
    CoNLL-2003. Tag ids follow the training split: ``O`` first, then the other tags sorted. A tag
    that occurs only in validation or test data (CoNLL-2000 test has two ``I-LST`` tokens, train
    only ``B-LST``) is appended after them, so that references stay exact; the model never sees it
    in training, and the task's ``metadata["unseen_in_train"]`` lists such tags.

Each task has columns ``tokens`` (list of words) and ``tags`` (list of tag ids, a
``datasets.ClassLabel`` sequence). POS is scored by token accuracy; chunking and NER by span F1
(``reference_column="tags"``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import datasets

from mtl_sched.data.paths import DataFormatError, read_lines, require_file, resolve_data_dir
from mtl_sched.data.task import Task

CONLL2000_COLUMNS: tuple[str, ...] = ("word", "pos", "chunk")
CONLL2003_COLUMNS: tuple[str, ...] = ("word", "pos", "chunk", "ner")
CONLL2000_DEV_SENTENCES = 1000
DOCSTART = "-DOCSTART-"
OUTSIDE = "O"

Sentence = dict[str, list[str]]


def is_chunk_tag(tag: str) -> bool:
    """Whether ``tag`` is ``O``, ``B-<type>`` or ``I-<type>``.

    :param tag: one tag.
    """
    return tag == OUTSIDE or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def to_iob2(tags: Sequence[str]) -> list[str]:
    """The same chunks in IOB2: an ``I-X`` opening a chunk (first token, after ``O`` or after
    another type) becomes ``B-X``; IOB2 input comes back unchanged.

    :param tags: ``O``, ``B-X`` or ``I-X`` tags of one sentence.
    :raises ValueError: naming the position of a tag of another form.
    """
    converted: list[str] = []
    previous = OUTSIDE
    for position, tag in enumerate(tags):
        if not is_chunk_tag(tag):
            raise ValueError(f"tag {position}: {tag!r} is not O, B-<type> or I-<type>")
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = f"B-{tag[2:]}"
        converted.append(tag)
        previous = tag
    return converted


def iter_sentence_lines(
    path: str | os.PathLike[str],
    separator: str | None = None,
    comment_prefix: str | None = None,
) -> Iterator[list[tuple[int, list[str]]]]:
    """Yield the token lines of each sentence of a CoNLL-style file as ``(line number, fields)``.

    A blank line (or one of whitespace only) ends a sentence, several in a row are fine, and a
    line whose first field is ``-DOCSTART-`` is a boundary too. With ``comment_prefix``, lines
    starting with it *before a sentence's first token* are comments (as in CoNLL-U); inside a
    sentence they are tokens, so that a token such as ``#`` (a Penn Treebank word) is kept.

    :param path: the file (``.gz`` is read transparently).
    :param separator: the field separator (e.g. ``"\\t"``); ``None`` splits on runs of
        whitespace.
    :param comment_prefix: the prefix of comment lines; ``None`` reads every line as data.
    :raises FileNotFoundError: when the file is missing.
    :raises DataFormatError: naming the file and line that cannot be decoded.
    """
    current: list[tuple[int, list[str]]] = []
    for number, line in read_lines(path):
        if not line.strip():
            if current:
                yield current
            current = []
            continue
        if comment_prefix and not current and line.startswith(comment_prefix):
            continue
        fields = line.split(separator)
        if fields[0] == DOCSTART:
            if current:
                yield current
            current = []
            continue
        current.append((number, fields))
    if current:
        yield current


def read_conll(
    path: str | os.PathLike[str],
    columns: Sequence[str],
    iob_columns: Iterable[str] = (),
) -> list[Sentence]:
    """The sentences of a CoNLL file, each as column name -> one value per token.

    Blank lines end sentences (several in a row are fine) and ``-DOCSTART-`` lines are skipped.

    :param path: the file (``.gz`` is read transparently).
    :param columns: the names of the space-separated fields of every token line, in order.
    :param iob_columns: columns holding chunk tags; they are checked and converted to IOB2.
    :raises FileNotFoundError: when the file is missing.
    :raises DataFormatError: naming the file and line of a line with the wrong number of fields,
        of a malformed IOB tag, or the file when it holds no sentence.
    """
    path = require_file(path)
    iob = list(iob_columns)
    unknown = [c for c in iob if c not in columns]
    if unknown:
        raise ValueError(f"iob_columns {unknown} are not among the columns {list(columns)}")
    sentences: list[Sentence] = []
    for token_lines in iter_sentence_lines(path):
        for number, fields in token_lines:
            if len(fields) != len(columns):
                raise DataFormatError(
                    path,
                    number,
                    f"expected {len(columns)} space-separated fields ({' '.join(columns)}); "
                    f"got {len(fields)}",
                )
        sentence = {
            name: [fields[i] for _, fields in token_lines] for i, name in enumerate(columns)
        }
        for name in iob:
            sentence[name] = checked_iob2(path, [n for n, _ in token_lines], sentence[name], name)
        sentences.append(sentence)
    if not sentences:
        raise DataFormatError(path, None, "no sentences found")
    return sentences


def checked_iob2(
    path: str | os.PathLike[str], line_numbers: Sequence[int], tags: Sequence[str], column: str
) -> list[str]:
    """One sentence's chunk tags in IOB2 (`to_iob2`), after checking each tag's form.

    :param path: the file the tags come from (for the error).
    :param line_numbers: the line of each tag.
    :param tags: the sentence's tags.
    :param column: what the tags are (for the error).
    :raises DataFormatError: naming the file and line of a tag that is not ``O``, ``B-<type>``
        or ``I-<type>``.
    """
    for number, tag in zip(line_numbers, tags, strict=True):
        if not is_chunk_tag(tag):
            raise DataFormatError(
                path, number, f"{column} tag {tag!r} is not O, B-<type> or I-<type>"
            )
    return to_iob2(tags)


def label_names(
    train: Sequence[Sentence], others: Sequence[Sequence[Sentence]], column: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tag names in id order, and those of them absent from the training sentences.

    Training tags come first (``O`` first, then sorted), then tags seen only in ``others``
    (sorted).

    :param train: the training sentences.
    :param others: the sentences of the other splits.
    :param column: the tag column.
    """
    seen = {tag for sentence in train for tag in sentence[column]}
    known = sorted(seen, key=lambda tag: (tag != OUTSIDE, tag))
    extra = sorted(
        {tag for split in others for s in split for tag in s[column]} - seen,
        key=lambda tag: (tag != OUTSIDE, tag),
    )
    return tuple(known + extra), tuple(extra)


def tagging_task(
    name: str,
    splits: dict[str, list[Sentence]],
    column: str,
    metric: str,
    metadata: dict[str, object] | None = None,
    limits: Mapping[str, int] | None = None,
) -> Task:
    """A tagging `Task` (columns ``tokens`` and ``tags``) from sentences read by `read_conll`.

    :param name: the task name.
    :param splits: ``"train"``, ``"validation"`` and ``"test"`` sentences.
    :param column: the column holding the task's tags.
    :param metric: ``"accuracy"`` (token accuracy), ``"span-f1"`` or ``"tag-f1"``.
    :param metadata: facts to record with the task (sources, split rule).
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names; tag
        ids still come from all the given sentences, so they do not depend on the limits.
    """
    others = [splits[s] for s in ("validation", "test")]
    names, unseen = label_names(splits["train"], others, column)
    index = {tag: i for i, tag in enumerate(names)}
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "tags": datasets.Sequence(datasets.ClassLabel(names=list(names))),
        }
    )
    limits = limits or {}
    datasets_ = {}
    for split, sentences in splits.items():
        kept = sentences[: limits.get(split)]
        datasets_[split] = datasets.Dataset.from_dict(
            {
                "tokens": [s["word"] for s in kept],
                "tags": [[index[t] for t in s[column]] for s in kept],
            },
            features=features,
        )
    return Task(
        name=name,
        splits=datasets_,
        num_classes=len(names),
        kind="tagging",
        label_names=names,
        metric=metric,
        reference_column="tags" if metric != "accuracy" else None,
        metadata={**(metadata or {}), "tag_column": column, "unseen_in_train": list(unseen)},
    )


def load_conll2000(
    data_dir: str | os.PathLike[str] | None = None,
    dev_sentences: int = CONLL2000_DEV_SENTENCES,
    limits: Mapping[str, int] | None = None,
) -> list[Task]:
    """The ``pos`` (token accuracy) and ``chunk`` (span F1) tasks of CoNLL-2000.

    :param data_dir: the data directory holding ``conll2000/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    :param dev_sentences: sentences at the end of ``train.txt`` that form the validation split.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names
        (after the validation split is carved out).
    """
    root = resolve_data_dir(data_dir) / "conll2000"
    train_path = Path(root / "train.txt")
    labelled = read_conll(train_path, CONLL2000_COLUMNS, iob_columns=("chunk",))
    if not 0 < dev_sentences < len(labelled):
        raise ValueError(
            f"dev_sentences must be in [1, {len(labelled) - 1}] for {train_path}; "
            f"got {dev_sentences}"
        )
    splits = {
        "train": labelled[:-dev_sentences],
        "validation": labelled[-dev_sentences:],
        "test": read_conll(root / "test.txt", CONLL2000_COLUMNS, iob_columns=("chunk",)),
    }
    source = {
        "source": "conll2000/train.txt, conll2000/test.txt",
        "validation": f"last {dev_sentences} sentences of conll2000/train.txt",
    }
    return [
        tagging_task("pos", splits, "pos", "accuracy", source, limits),
        tagging_task("chunk", splits, "chunk", "span-f1", source, limits),
    ]


def load_conll2003(
    data_dir: str | os.PathLike[str] | None = None, limits: Mapping[str, int] | None = None
) -> Task:
    """The ``ner`` task (span F1) of CoNLL-2003 English.

    :param data_dir: the data directory holding ``conll2003/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names.
    """
    root = resolve_data_dir(data_dir) / "conll2003"
    files = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
    splits = {
        split: read_conll(root / name, CONLL2003_COLUMNS, iob_columns=("chunk", "ner"))
        for split, name in files.items()
    }
    source = {"source": "conll2003/train.txt, conll2003/valid.txt, conll2003/test.txt"}
    return tagging_task("ner", splits, "ner", "span-f1", source, limits)

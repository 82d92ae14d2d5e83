"""STREUSLE 3.0 multiword expressions (``mwe``) and supersenses (``supsense``) as tagging tasks
(seed 003).

``<data_dir>/streusle/v3.0/streusle.tags`` holds one token per line with nine tab-separated
fields, ``offset word lowercase_lemma POS MWE+class parent_offset strength class sentence_id``,
and a blank line after each sentence. The fifth field joins the token's MWE tag and its
supersense class with a ``-``: the MWE tag is one of ``O o B b I Ī Ĩ ī ĩ`` (lower case inside
the gap of another expression, a macron or a tilde for a strong or weak link to the previous
word), the class may be absent. Seed 003's two tasks split that field:

- ``mwe``: the MWE part only, as seed 003's three tags ``B I O``: gap depth and link strength
  are dropped (``b`` -> ``B``; ``I Ī Ĩ ī ĩ`` -> ``I``; ``o`` -> ``O``). Scored by span F1;
  seqeval opens a span at an ``I`` after an ``O``, so a gappy expression counts as its
  contiguous pieces.
- ``supsense``: the class part, ``O`` where there is none. STREUSLE 3.0 writes noun
  supersenses in capitals (``PERSON``), verb ones in lower case (``stative``), preposition
  ones capitalized (``Location``), and its special labels with a backquote (`` `a ``,
  auxiliary); they are kept as written (112 tags with ``O``). Scored as seed 003 scores it,
  by F1 over the tokens not tagged ``O`` (``"tag-f1"``, `mtl_sched.metrics.tag_f1`): 57 % of
  the tokens are ``O``, and token accuracy would count them.

For example, the line ``20  WA.  wa.  NNP  Ī-LOCATION  19  ~  LOCATION  ewtb.r.007403.2``
(tabs shown as spaces) gives the word ``WA.`` the ``mwe`` tag ``I`` and the ``supsense`` tag
``LOCATION``; ``4  is  be  VBZ  O-stative  0    stative  ewtb.r.007403.2`` gives ``is`` the
tags ``O`` and ``stative``; ``O`` alone gives ``O`` and ``O``.

Splits
    Seed 003's train/test partition: ``splits/mwe-train.sentids`` and ``splits/mwe-test.sentids``
    list sentence IDs (the ninth field) one per line; the splits keep those files' order (3312
    and 500 sentences). The files list each review's sentences together, the reviews in no
    particular order. STREUSLE has no dev set, so the validation split is carved from train:
    the **last whole reviews** of ``mwe-train.sentids`` that together hold at least
    `STREUSLE_DEV_SENTENCES` (500, as many as test) sentences, so that no review is split
    between train and validation. With the shipped files that is 2807 / 505 / 500 sentences.

Both tasks read the same sentences; tag ids follow the training split, ``O`` first
(`mtl_sched.data.conll.tagging_task`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mtl_sched.data.conll import Sentence, iter_sentence_lines, tagging_task
from mtl_sched.data.paths import DataFormatError, read_lines, require_file, resolve_data_dir
from mtl_sched.data.task import Task

STREUSLE_DIR = Path("streusle") / "v3.0"
STREUSLE_FIELDS = 9
STREUSLE_DEV_SENTENCES = 500
# the MWE part of the fifth field -> seed 003's three tags
MWE_TAGS: dict[str, str] = {
    "O": "O",
    "o": "O",
    "B": "B",
    "b": "B",
    "I": "I",
    "Ī": "I",
    "Ĩ": "I",
    "ī": "I",
    "ĩ": "I",
}
OUTSIDE = "O"


def split_mwe_class(field: str) -> tuple[str, str]:
    """The ``mwe`` and ``supsense`` tags of one ``MWE+class`` field.

    :param field: e.g. ``"Ī-LOCATION"``, ``"O-stative"`` or ``"B"``.
    :return: the three-way MWE tag and the class (``"O"`` when there is none), e.g.
        ``("I", "LOCATION")``.
    :raises ValueError: when the MWE part is not one of `MWE_TAGS` or the class after ``-`` is
        empty.
    """
    mwe, dash, supersense = field.partition("-")
    if mwe not in MWE_TAGS:
        raise ValueError(f"MWE tag {mwe!r} of {field!r} is not one of {' '.join(MWE_TAGS)}")
    if dash and not supersense:
        raise ValueError(f"{field!r} has an empty class after '-'")
    return MWE_TAGS[mwe], supersense or OUTSIDE


def read_streusle(path: str | os.PathLike[str]) -> dict[str, Sentence]:
    """Every sentence of a ``streusle.tags`` file by sentence ID, in file order, each with
    columns ``word``, ``mwe`` and ``supsense``.

    :param path: the file (``.gz`` is read transparently).
    :raises FileNotFoundError: when the file is missing.
    :raises DataFormatError: naming the file and line of a line without nine tab-separated
        fields, with a malformed ``MWE+class`` field or empty word, whose sentence ID differs
        from its sentence's first line, or whose ID a previous sentence has; or the file, when
        it holds no sentence.
    """
    path = require_file(path)
    sentences: dict[str, Sentence] = {}
    for token_lines in iter_sentence_lines(path, separator="\t"):
        sentence: Sentence = {"word": [], "mwe": [], "supsense": []}
        first_line, first_fields = token_lines[0]
        sentence_id = first_fields[-1]
        for number, fields in token_lines:
            if len(fields) != STREUSLE_FIELDS:
                raise DataFormatError(
                    path,
                    number,
                    f"expected {STREUSLE_FIELDS} tab-separated fields; got {len(fields)}",
                )
            if fields[8] != sentence_id:
                raise DataFormatError(
                    path,
                    number,
                    f"sentence ID {fields[8]!r} differs from {sentence_id!r} of line {first_line}",
                )
            if not fields[1]:
                raise DataFormatError(path, number, "empty word")
            try:
                mwe, supersense = split_mwe_class(fields[4])
            except ValueError as err:
                raise DataFormatError(path, number, str(err)) from None
            sentence["word"].append(fields[1])
            sentence["mwe"].append(mwe)
            sentence["supsense"].append(supersense)
        if sentence_id in sentences:
            raise DataFormatError(path, first_line, f"sentence ID {sentence_id!r} is repeated")
        sentences[sentence_id] = sentence
    if not sentences:
        raise DataFormatError(path, None, "no sentences found")
    return sentences


def read_sentence_ids(
    path: str | os.PathLike[str], known: Mapping[str, Sentence]
) -> list[tuple[int, str]]:
    """The ``(line number, sentence ID)`` pairs of a ``.sentids`` file, in file order.

    :param path: the file, one sentence ID per line (blank lines are skipped).
    :param known: the corpus's sentences by ID.
    :raises DataFormatError: naming the file and line of an ID absent from ``known`` or
        repeated; or the file, when it lists no ID.
    """
    found: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in read_lines(path):
        sentence_id = line.strip()
        if not sentence_id:
            continue
        if sentence_id not in known:
            raise DataFormatError(path, number, f"sentence ID {sentence_id!r} is not in the corpus")
        if sentence_id in seen:
            raise DataFormatError(
                path, number, f"sentence ID {sentence_id!r} is already on line {seen[sentence_id]}"
            )
        seen[sentence_id] = number
        found.append((number, sentence_id))
    if not found:
        raise DataFormatError(path, None, "no sentence IDs found")
    return found


def review_of(sentence_id: str) -> str:
    """The review a sentence belongs to: its ID without the final ``.<n>``.

    :param sentence_id: e.g. ``"ewtb.r.007403.2"`` (review ``"ewtb.r.007403"``).
    """
    return sentence_id.rsplit(".", 1)[0]


def last_reviews(sentence_ids: Sequence[str], minimum: int) -> int:
    """How many sentences at the end of ``sentence_ids`` make up the fewest whole reviews that
    hold at least ``minimum`` sentences.

    :param sentence_ids: sentence IDs, each review's together.
    :param minimum: sentences wanted.
    :raises ValueError: when no such cut leaves a training sentence.
    """
    count = 0
    while count < len(sentence_ids):
        review = review_of(sentence_ids[-1 - count])
        while count < len(sentence_ids) and review_of(sentence_ids[-1 - count]) == review:
            count += 1
        if count >= minimum:
            break
    if not minimum <= count < len(sentence_ids):
        raise ValueError(
            f"dev_sentences must leave whole reviews for training; got {minimum} of "
            f"{len(sentence_ids)} training sentences"
        )
    return count


def load_streusle(
    data_dir: str | os.PathLike[str] | None = None,
    dev_sentences: int = STREUSLE_DEV_SENTENCES,
    limits: Mapping[str, int] | None = None,
) -> list[Task]:
    """The ``mwe`` (span F1) and ``supsense`` (F1 over tokens not tagged ``O``) tasks of
    STREUSLE 3.0.

    :param data_dir: the data directory holding ``streusle/v3.0/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    :param dev_sentences: the validation split is the last whole reviews of the training
        sentences that hold at least this many.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names
        (after the validation split is carved out).
    :raises ValueError: naming ``dev_sentences`` when it is not positive or leaves no review
        for training.
    """
    if dev_sentences < 1:
        raise ValueError(f"dev_sentences must be positive; got {dev_sentences}")
    root = resolve_data_dir(data_dir) / STREUSLE_DIR
    corpus = read_streusle(root / "streusle.tags")
    train_ids = [i for _, i in read_sentence_ids(root / "splits" / "mwe-train.sentids", corpus)]
    test_lines = read_sentence_ids(root / "splits" / "mwe-test.sentids", corpus)
    shared = set(train_ids).intersection(i for _, i in test_lines)
    if shared:
        number = next(n for n, i in test_lines if i in shared)
        raise DataFormatError(
            root / "splits" / "mwe-test.sentids", number, "sentence ID also in mwe-train.sentids"
        )
    held_out = last_reviews(train_ids, dev_sentences)
    splits = {
        "train": [corpus[i] for i in train_ids[:-held_out]],
        "validation": [corpus[i] for i in train_ids[-held_out:]],
        "test": [corpus[i] for _, i in test_lines],
    }
    source = {
        "source": f"{STREUSLE_DIR}/streusle.tags, splits/mwe-{{train,test}}.sentids",
        "validation": f"last whole reviews of mwe-train.sentids, >= {dev_sentences} sentences",
    }
    return [
        tagging_task("mwe", splits, "mwe", "span-f1", source, limits),
        tagging_task("supsense", splits, "supsense", "tag-f1", source, limits),
    ]

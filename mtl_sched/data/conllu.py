"""A CoNLL-U reader: the syntactic words of each sentence with UPOS, head and relation.

CoNLL-U (https://universaldependencies.org/format.html) has one word per line with ten
tab-separated columns ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``, comment lines
starting with ``#`` and a blank line after each sentence. Multiword-token lines (range IDs such as
``1-2``) and empty nodes (decimal IDs such as ``8.1``) are skipped: the words kept are exactly the
integer-ID lines, whose heads refer to each other. Files ending in ``.gz`` are read transparently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from mtl_sched.data.paths import DataFormatError, read_lines

_COLUMNS = 10
_RANGE_ID = re.compile(r"\d+-\d+")
_EMPTY_NODE_ID = re.compile(r"\d+\.\d+")


@dataclass(frozen=True)
class ConlluSentence:
    """One sentence's syntactic words (multiword ranges and empty nodes removed).

    :param forms: word forms.
    :param upos: universal part-of-speech tags, one per word.
    :param heads: 1-based index of each word's head, ``0`` for the root.
    :param deprels: dependency relation of each word to its head (with subtypes, e.g.
        ``nsubj:pass``).
    :param sent_id: the ``# sent_id = ...`` comment, when present.
    :param xpos: language-specific part-of-speech tags, one per word (``"_"`` where the
        treebank has none).
    """

    forms: tuple[str, ...]
    upos: tuple[str, ...]
    heads: tuple[int, ...]
    deprels: tuple[str, ...]
    sent_id: str | None = None
    xpos: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.forms)


class _SentenceBuilder:
    """Collects the word lines of one sentence and checks them when it ends."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.reset()

    def reset(self) -> None:
        self.words: list[tuple[str, str, int, str, str]] = []
        self.lines: list[int] = []
        self.sent_id: str | None = None

    def add(self, number: int, line: str) -> None:
        columns = line.split("\t")
        if len(columns) != _COLUMNS:
            raise DataFormatError(
                self.path, number, f"expected {_COLUMNS} tab-separated columns, got {len(columns)}"
            )
        word_id, form, _, upos, xpos, _, head, deprel = columns[:8]
        is_word = word_id.isdigit()
        if not is_word and (_RANGE_ID.fullmatch(word_id) or _EMPTY_NODE_ID.fullmatch(word_id)):
            return
        if not is_word or int(word_id) != len(self.words) + 1:
            raise DataFormatError(
                self.path, number, f"word ID {word_id!r} where {len(self.words) + 1} was expected"
            )
        if not head.isdigit():
            raise DataFormatError(self.path, number, f"head {head!r} is not an integer")
        if not form or not upos or not deprel or "_" in (upos, deprel):
            raise DataFormatError(self.path, number, "empty FORM, UPOS or DEPREL")
        self.words.append((form, upos, int(head), deprel, xpos or "_"))
        self.lines.append(number)

    def finish(self) -> ConlluSentence | None:
        if not self.words:
            self.reset()
            return None
        size = len(self.words)
        for (_, _, head, _, _), number in zip(self.words, self.lines, strict=True):
            if head > size:
                raise DataFormatError(
                    self.path, number, f"head {head} is beyond the sentence's {size} words"
                )
        forms, upos, heads, deprels, xpos = zip(*self.words, strict=True)
        sentence = ConlluSentence(forms, upos, heads, deprels, self.sent_id, xpos)
        self.reset()
        return sentence


def iter_conllu(path: str | os.PathLike[str]) -> Iterator[ConlluSentence]:
    """Yield the sentences of a CoNLL-U file in file order.

    :param path: a ``.conllu`` or ``.conllu.gz`` file.
    :raises DataFormatError: naming the file and line of a malformed word line (wrong column
        count, non-consecutive word ID, non-integer or out-of-range head, empty field), or the
        file when it holds no sentence (raised once the file is read to its end).
    """
    builder = _SentenceBuilder(path)
    found = False
    for number, line in read_lines(path):
        if not line.strip():
            sentence = builder.finish()
            if sentence is not None:
                found = True
                yield sentence
        elif line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                builder.sent_id = value.strip()
        else:
            builder.add(number, line)
    sentence = builder.finish()
    if sentence is not None:
        yield sentence
    elif not found:
        raise DataFormatError(path, None, "no sentences found")


def read_conllu(path: str | os.PathLike[str]) -> list[ConlluSentence]:
    """Every sentence of a CoNLL-U file (see `iter_conllu`).

    :param path: a ``.conllu`` or ``.conllu.gz`` file.
    :raises DataFormatError: as `iter_conllu` does (a malformed line, or no sentence at all).
    """
    return list(iter_conllu(path))

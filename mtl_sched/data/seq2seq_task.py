"""Sequence-to-sequence tasks: a reversible word tokenizer and the `Task` layout they share.

Tokenization
    ``tokenize`` splits raw text into maximal runs of word characters (``\\w+``, Unicode-aware,
    so ``Mädchen`` stays whole) and single other non-space characters (punctuation, symbols):
    ``"saftig-grünes Gras."`` gives ``saftig ￭- ￭grünes Gras ￭.``. With ``mark_joins=True`` a
    token that was glued to the previous one (no whitespace between them) carries the joiner
    prefix ``￭`` (U+FFED, the OpenNMT convention), which makes the tokenization reversible:
    ``detokenize(tokenize(text, mark_joins=True)) == " ".join(text.split())``. Targets that are
    scored by BLEU on detokenized text use joiners; sources do not (the encoder sees plain words,
    the same kind of tokens as the UD treebanks provide).

Task layout
    A seq2seq task's splits hold token ids: ``"source"`` (ids in the shared source vocabulary,
    which every task of a benchmark reads through one encoder; it is kept in
    ``task.metadata["source_vocabulary"]``) and ``"target"`` (ids in the task's target
    vocabulary, without BOS/EOS); a task scored by BLEU also has a ``"reference"`` column with
    the detokenized reference string. The target vocabulary is the task's ``label_names``:
    ``<pad>``, ``<unk>``, ``<s>``, ``</s>``, then the training targets' tokens by decreasing count
    (capped); ``num_classes`` is its size. Ids rather than strings are stored because turning
    Arrow string lists into per-row arrays (as the trainer does with every training set) is
    about twenty times slower than for integer lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import datasets
import pyarrow as pa

from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary

JOINER = "\uffed"
BOS = "<s>"
EOS = "</s>"
SEQ2SEQ_SPECIALS: tuple[str, str] = (BOS, EOS)
REFERENCE_COLUMN = "reference"

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SPACED_TOKEN = re.compile(r"(\s*)(\w+|[^\w\s])")


def tokenize(text: str, mark_joins: bool = False) -> list[str]:
    """Split ``text`` into word and punctuation tokens.

    :param text: raw text.
    :param mark_joins: prefix tokens not preceded by whitespace with `JOINER` (except the first).
    """
    if not mark_joins:
        return _TOKEN.findall(text)
    return [
        token if space or position == 0 else JOINER + token
        for position, (space, token) in enumerate(_SPACED_TOKEN.findall(text))
    ]


def detokenize(tokens: Sequence[str]) -> str:
    """Inverse of ``tokenize(..., mark_joins=True)``; tokens without joiners are space-separated.

    :param tokens: tokens, possibly carrying the `JOINER` prefix.
    """
    pieces = []
    for position, token in enumerate(tokens):
        if token.startswith(JOINER):
            pieces.append(token[len(JOINER) :])
        else:
            pieces.append(token if position == 0 else " " + token)
    return "".join(pieces)


SOURCE_VOCABULARY = "source_vocabulary"
TokenColumns = Mapping[str, Mapping[str, Sequence[Any]]]


def build_source_vocabulary(
    splits: Iterable[TokenColumns], max_size: int | None = 10_000, min_count: int = 2
) -> Vocabulary:
    """One source vocabulary over the training sources of several tasks.

    :param splits: per task, split name -> token columns (with a ``"source"`` column).
    :param max_size: at most this many words besides ``<pad>`` and ``<unk>``.
    :param min_count: rarer words become ``<unk>``.
    """
    return Vocabulary.build(
        (tokens for task in splits for tokens in task["train"]["source"]),
        min_count=min_count,
        max_size=max_size,
    )


def make_seq2seq_task(
    name: str,
    splits: TokenColumns,
    source_vocabulary: Vocabulary,
    max_target_vocabulary: int | None = None,
    min_count: int = 1,
    metric: str = "accuracy",
    metadata: dict[str, Any] | None = None,
) -> Task:
    """A seq2seq `Task` whose target vocabulary is built from its training targets.

    :param name: task name.
    :param splits: split name -> token columns (``"source"`` and ``"target"`` token lists and,
        for BLEU, the ``"reference"`` strings).
    :param source_vocabulary: vocabulary that encodes the sources (shared by the tasks of one
        model).
    :param max_target_vocabulary: cap on target tokens besides the four reserved ones; rarer
        tokens become ``<unk>``.
    :param min_count: training-target tokens seen fewer times become ``<unk>``.
    :param metric: ``"accuracy"`` (teacher-forced target-token accuracy) or ``"bleu"`` (of the
        decoded strings against the ``"reference"`` column).
    :param metadata: extra facts recorded on the task.
    """
    vocabulary = Vocabulary.build(
        splits["train"]["target"],
        min_count=min_count,
        max_size=max_target_vocabulary,
        specials=SEQ2SEQ_SPECIALS,
    )
    ids = pa.list_(pa.int32())
    data = {}
    for split, columns in splits.items():
        table = {
            "source": pa.array([source_vocabulary.encode(s) for s in columns["source"]], ids),
            "target": pa.array([vocabulary.encode(t) for t in columns["target"]], ids),
        }
        if metric == "bleu":
            table[REFERENCE_COLUMN] = pa.array(list(columns[REFERENCE_COLUMN]), pa.string())
        # building the Arrow table directly is an order of magnitude faster than from_dict
        data[split] = datasets.Dataset(pa.table(table))
    return Task(
        name=name,
        splits=data,
        num_classes=len(vocabulary),
        kind="seq2seq",
        label_names=tuple(vocabulary.tokens),
        metric=metric,
        reference_column=REFERENCE_COLUMN if metric == "bleu" else None,
        metadata={**(metadata or {}), SOURCE_VOCABULARY: source_vocabulary},
    )

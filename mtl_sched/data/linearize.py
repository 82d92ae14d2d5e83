"""UD English-EWT as sequence-to-sequence tasks: POS tagging and linearized dependency parsing.

Seed 002 (section 5.3) trains POS tagging and dependency parsing as auxiliary tasks of a
translation model by casting them as "translations" from the English sentence into a sequence of
symbols. Both tasks read the sentence's word forms (``"source"``) and emit one symbol per word:

POS (``linearize_pos``)
    the word's UPOS tag: ``The dog barks .`` -> ``DET NOUN VERB PUNCT``.

Dependency parsing (``linearize_parse``)
    the word's head as a signed offset and its relation, ``"{offset:+d}/{deprel}"``. For the
    word at 1-based position ``i`` with head ``h`` the offset is ``h - i``, and ``+0`` marks the
    root (``h = 0``; a word is never its own head, so ``+0`` is unambiguous). Relation subtypes
    are kept (``+2/nsubj:pass``). ``The dog barks .`` (heads 2 3 0 3) -> ``+1/det +1/nsubj
    +0/root -1/punct``. The scheme covers non-projective trees, the target has exactly as many
    symbols as the sentence has words, and ``delinearize_parse`` recovers heads and relations
    exactly; the teacher-forced symbol accuracy is the labeled attachment score given gold
    previous symbols.

Both tasks use the metric ``"accuracy"``: teacher-forced target-symbol accuracy (the end-of-
sentence symbol included), as in the environment's reward.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import islice

from mtl_sched.data.conllu import ConlluSentence, iter_conllu
from mtl_sched.data.paths import require_file, resolve_data_dir
from mtl_sched.data.seq2seq_task import build_source_vocabulary, make_seq2seq_task
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary

EWT_FILES: dict[str, str] = {
    "train": "en_ewt-ud-train.conllu.gz",
    "validation": "en_ewt-ud-dev.conllu.gz",
    "test": "en_ewt-ud-test.conllu.gz",
}
EWT_SIZES: dict[str, int] = {"train": 12544, "validation": 2001, "test": 2077}
AUXILIARY_TASKS: tuple[str, ...] = ("pos", "parse")


def linearize_pos(sentence: ConlluSentence) -> list[str]:
    """The UPOS tag of every word.

    :param sentence: a parsed sentence.
    """
    return list(sentence.upos)


def linearize_parse(sentence: ConlluSentence) -> list[str]:
    """One ``"{offset:+d}/{deprel}"`` symbol per word (offset ``+0`` for the root).

    :param sentence: a parsed sentence.
    """
    return [
        f"{(head - position) if head else 0:+d}/{deprel}"
        for position, (head, deprel) in enumerate(
            zip(sentence.heads, sentence.deprels, strict=True), start=1
        )
    ]


def delinearize_parse(symbols: Sequence[str]) -> tuple[list[int], list[str]]:
    """Heads (1-based, 0 for the root) and relations from `linearize_parse` symbols.

    :param symbols: one symbol per word.
    :raises ValueError: naming the position of a malformed symbol or of a head outside the
        sentence.
    """
    heads, deprels = [], []
    for position, symbol in enumerate(symbols, start=1):
        offset, slash, deprel = symbol.partition("/")
        if not slash or not deprel or offset[:1] not in "+-" or not offset[1:].isdigit():
            raise ValueError(f"symbol {position} ({symbol!r}) is not of the form '+k/deprel'")
        head = position + int(offset) if int(offset) else 0
        if head != 0 and not 1 <= head <= len(symbols):
            raise ValueError(
                f"symbol {position} ({symbol!r}) points at word {head} of {len(symbols)}"
            )
        heads.append(head)
        deprels.append(deprel)
    return heads, deprels


_LINEARIZERS = {"pos": linearize_pos, "parse": linearize_parse}


def ewt_seq2seq_columns(
    data_dir: str | os.PathLike[str] | None = None,
    tasks: Sequence[str] = AUXILIARY_TASKS,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> dict[str, dict[str, dict[str, list]]]:
    """Token columns of UD English-EWT (r2.16) cast to seq2seq: task -> split -> columns.

    Splits: ``train`` / ``validation`` / ``test`` are the treebank's train / dev / test files
    under ``<data_dir>/ud/UD_English-EWT/``.

    :param data_dir: directory holding ``ud/`` (default: ``$MTL_SCHED_DATA``).
    :param tasks: any of ``"pos"`` and ``"parse"``.
    :param max_train: keep the first this many training sentences (all when ``None``).
    :param max_eval: keep the first this many dev and test sentences (all when ``None``).
    """
    unknown = [name for name in tasks if name not in _LINEARIZERS]
    if unknown:
        raise KeyError(f"unknown EWT task(s) {unknown}; known: {', '.join(_LINEARIZERS)}")
    directory = resolve_data_dir(data_dir) / "ud" / "UD_English-EWT"
    sentences = {
        split: list(
            islice(
                iter_conllu(require_file(directory / filename)),
                max_train if split == "train" else max_eval,
            )
        )
        for split, filename in EWT_FILES.items()
    }
    return {
        name: {
            split: {
                "source": [list(s.forms) for s in rows],
                "target": [_LINEARIZERS[name](s) for s in rows],
            }
            for split, rows in sentences.items()
        }
        for name in tasks
    }


def ewt_seq2seq_tasks(
    data_dir: str | os.PathLike[str] | None = None,
    tasks: Sequence[str] = AUXILIARY_TASKS,
    source_vocabulary: Vocabulary | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
    max_target_vocabulary: int | None = 1000,
    columns: dict[str, dict[str, dict[str, list]]] | None = None,
) -> list[Task]:
    """UD English-EWT as seq2seq tasks (metric ``"accuracy"``), in the order of ``tasks``.

    :param data_dir: directory holding ``ud/`` (default: ``$MTL_SCHED_DATA``).
    :param tasks: any of ``"pos"`` and ``"parse"``; each becomes a task of that name.
    :param source_vocabulary: the English vocabulary; ``None`` builds one from the training
        sentences (words seen twice, at most 10000).
    :param max_train: keep the first this many training sentences (all when ``None``).
    :param max_eval: keep the first this many dev and test sentences (all when ``None``).
    :param max_target_vocabulary: cap on each task's target symbols (parse symbols are
        offset-relation pairs with a long tail; rarer ones become ``<unk>``).
    :param columns: already read `ewt_seq2seq_columns` (then the files are not read again).
    """
    if columns is None:
        columns = ewt_seq2seq_columns(data_dir, tasks, max_train, max_eval)
    if source_vocabulary is None:
        source_vocabulary = build_source_vocabulary([columns[name] for name in tasks[:1]])
    return [
        make_seq2seq_task(
            name,
            columns[name],
            source_vocabulary,
            max_target_vocabulary=max_target_vocabulary,
            metadata={"corpus": "UD_English-EWT r2.16", "linearization": name},
        )
        for name in tasks
    ]

"""Task metrics: accuracy, span F1 (seqeval), tag F1 and BLEU (sacrebleu).

Every metric a `Task` can name is scored by `task_score` in ``[0, 1]``, so that averages over
tasks (model selection, reports) mix them on one scale; BLEU is divided by 100 there and
reported on its usual 0-100 scale by `corpus_bleu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from mtl_sched.data.task import METRICS, Task

__all__ = ["METRICS", "OUTSIDE_TAG", "accuracy", "corpus_bleu", "span_f1", "tag_f1", "task_score"]

OUTSIDE_TAG = "O"


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} references; they must pair up"
        )


def _check_sentences(
    predictions: Sequence[Sequence[Any]], references: Sequence[Sequence[Any]]
) -> None:
    _check_lengths(predictions, references)
    for i, (p, r) in enumerate(zip(predictions, references, strict=True)):
        if len(p) != len(r):
            raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} gold tags")


def accuracy(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """Fraction of predictions equal to their reference (0 for no examples).

    :param predictions: one prediction per example.
    :param references: one reference per example.
    """
    _check_lengths(predictions, references)
    if not references:
        return 0.0
    return sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)


def span_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Micro-averaged span F1 of IOB-tagged sequences (seqeval's CoNLL-style scoring).

    :param predictions: predicted tag sequences, one per sentence.
    :param references: gold tag sequences, each as long as its prediction.
    """
    from seqeval.metrics import f1_score

    _check_sentences(predictions, references)
    if not references:
        return 0.0
    return float(f1_score([list(r) for r in references], [list(p) for p in predictions]))


def tag_f1(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    outside: str = OUTSIDE_TAG,
) -> float:
    """Micro-averaged F1 of per-token tags over the tokens whose gold or predicted tag is not
    ``outside``.

    Seed 003 (Section 3.2) scores every task by "the span-based micro-averaged F1 score
    (without the O tag)". Supersense and semantic-trait tags carry no ``B-``/``I-`` prefix, so
    each token not tagged ``O`` is a span of its own, and the score counts tokens over the whole
    split: precision is the correct non-``O`` predictions over all non-``O`` predictions,
    recall the correct non-``O`` predictions over all non-``O`` gold tags, F1 their harmonic
    mean. A token whose gold and predicted tags are two different non-``O`` tags is both a
    wrong prediction and a missed gold tag; correct ``O`` tags count nowhere (token accuracy
    counts them, which lifts it on mostly-``O`` data). When neither the gold nor the predicted
    tags hold a non-``O`` tag, the prediction is exactly right and the score is 1; when only one
    side holds one, it is 0; with no sentences it is 0, as for the other metrics.

    :param predictions: predicted tag sequences, one per sentence.
    :param references: gold tag sequences, each as long as its prediction.
    :param outside: the tag of tokens outside every span.
    """
    _check_sentences(predictions, references)
    if not references:
        return 0.0
    correct = predicted = gold = 0
    for prediction, reference in zip(predictions, references, strict=True):
        for p, r in zip(prediction, reference, strict=True):
            predicted += p != outside
            gold += r != outside
            correct += p == r and p != outside
    if predicted == gold == 0:
        return 1.0
    # 2PR / (P + R) with P = correct / predicted and R = correct / gold, free of 0/0
    return 2 * correct / (predicted + gold)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Case-sensitive corpus BLEU (0-100) of detokenized text, sacrebleu's default 13a tokens.

    :param hypotheses: system outputs, one string per sentence.
    :param references: one reference string per sentence.
    """
    import sacrebleu

    _check_lengths(hypotheses, references)
    if not references:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


_TAG_METRICS = {"span-f1": span_f1, "tag-f1": tag_f1}


def task_score(task: Task, predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """The task's metric in ``[0, 1]``.

    :param task: names the metric; for ``"span-f1"`` and ``"tag-f1"`` its ``label_names`` turn
        integer tag ids into tag strings.
    :param predictions: one prediction per example, of the reference column's type.
    :param references: the task's reference column for the split.
    """
    if task.metric == "accuracy":
        return accuracy(predictions, references)
    if task.metric in _TAG_METRICS:
        names = task.label_names

        def as_tags(sequence: Sequence[Any]) -> list[str]:
            return [names[int(t)] if isinstance(t, Integral) else str(t) for t in sequence]

        score = _TAG_METRICS[task.metric]
        return score([as_tags(p) for p in predictions], [as_tags(r) for r in references])
    if task.metric == "bleu":
        return corpus_bleu(predictions, references) / 100.0
    raise ValueError(f"task {task.name!r}: unknown metric {task.metric!r}; known: {METRICS}")

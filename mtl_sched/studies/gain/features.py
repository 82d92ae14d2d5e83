"""Dataset features of a sequence-labelling task for MTL gain prediction (seed 004, Table 2).

Seed 004 (Bingel & Søgaard, 2017) describes each task by seven features of its data and seven of
its single-task learning curve, and predicts from them, for a (main, auxiliary) pair, whether
multi-task learning beats single-task learning on the main task. This module computes the data
features from tokenized sentences; `mtl_sched.studies.gain.curves` computes the curve features
and `mtl_sched.studies.gain.prediction` the pairwise features and the classifier.

One departure: seed 004's OOV rate is the share of training words missing from the pretrained
GloVe vectors. `dataset_features` computes exactly that when given the embedding vocabulary;
without one (no pretrained vectors here) it falls back to the share of test tokens whose word
never occurs in the training data, the out-of-vocabulary rate the model itself faces.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np

#: the data features of seed 004's Table 2, in the order `dataset_features` returns them
DATASET_FEATURES: tuple[str, ...] = (
    "size",
    "labels",
    "tokens_per_type",
    "oov_rate",
    "label_entropy",
    "frobenius_norm",
    "jsd",
)
#: the learning-curve features: loss gradients at 10-70% of training and the log-curve's a and c
CURVE_FEATURES: tuple[str, ...] = (
    "grad_10",
    "grad_20",
    "grad_30",
    "grad_50",
    "grad_70",
    "curve_a",
    "curve_c",
)
#: the 14 features describing one task
TASK_FEATURES: tuple[str, ...] = DATASET_FEATURES + CURVE_FEATURES


def _normalized(sentences: Sequence[Sequence[str]], lowercase: bool) -> list[list[str]]:
    if lowercase:
        return [[word.lower() for word in sentence] for sentence in sentences]
    return [list(sentence) for sentence in sentences]


def _entropy(counts: Counter[str]) -> float:
    """Entropy in nats of the distribution the counts define."""
    total = sum(counts.values())
    probabilities = np.asarray(list(counts.values()), dtype=float) / total
    return float(-(probabilities * np.log(probabilities)).sum())


def _frobenius_norm(sentences: Sequence[Sequence[str]]) -> float:
    # ||X||_F^2 is the sum over sentences of the squared counts of their words, so only the
    # non-zero entries of the sentence-by-term matrix are ever visited
    total = sum(count * count for sentence in sentences for count in Counter(sentence).values())
    return math.sqrt(total)


def _jensen_shannon(first: Counter[str], second: Counter[str]) -> float:
    """Jensen-Shannon divergence in bits (so in [0, 1]) of two bags of words."""
    vocabulary = sorted(set(first) | set(second))
    p = np.asarray([first[word] for word in vocabulary], dtype=float)
    q = np.asarray([second[word] for word in vocabulary], dtype=float)
    p /= p.sum()
    q /= q.sum()
    m = 0.5 * (p + q)

    def kl(dist: np.ndarray) -> float:
        # 0 log 0 = 0; where dist > 0, m > 0 too
        support = dist > 0
        return float((dist[support] * np.log2(dist[support] / m[support])).sum())

    return float(np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0))


def dataset_features(
    train_tokens: Sequence[Sequence[str]],
    train_tags: Sequence[Sequence[str]],
    test_tokens: Sequence[Sequence[str]],
    num_labels: int,
    reference_vocabulary: Collection[str] | None = None,
    lowercase: bool = True,
) -> dict[str, float]:
    """Seed 004's seven data features of one task, keyed and ordered as `DATASET_FEATURES`.

    - ``size``: number of training sentences.
    - ``labels``: ``num_labels``.
    - ``tokens_per_type``: training tokens per distinct training word.
    - ``oov_rate``: a percentage in [0, 100]. With ``reference_vocabulary``, the share of training
      tokens whose word is not in it (seed 004: "% of training words not in GloVe"); without
      it, the share of test tokens whose word never occurs in the training data (a departure:
      there are no pretrained vectors to compare with).
    - ``label_entropy``: entropy in nats of the training tags, counted over tokens.
    - ``frobenius_norm``: ``sqrt(sum X[i, j]^2)`` for the sentence-by-term count matrix X of the
      training data, computed from the non-zero entries only.
    - ``jsd``: Jensen-Shannon divergence, base 2 (so in [0, 1]), between the unigram
      distributions of the training and the test words.

    :param train_tokens: the training sentences, one sequence of words each.
    :param train_tags: their tags, one per token.
    :param test_tokens: the test sentences.
    :param num_labels: the number of labels of the task.
    :param reference_vocabulary: the pretrained embeddings' words, or ``None`` (see ``oov_rate``).
        With ``lowercase`` it is lowercased as well.
    :param lowercase: compare words case-insensitively.
    :raises ValueError: when the training or test data has no tokens, a sentence's tags do not
        match its tokens, or ``num_labels`` is below 1.
    """
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1; got {num_labels}")
    if len(train_tags) != len(train_tokens):
        raise ValueError(f"{len(train_tokens)} training sentences but tags for {len(train_tags)}")
    for index, (words, tags) in enumerate(zip(train_tokens, train_tags, strict=True)):
        if len(words) != len(tags):
            raise ValueError(
                f"training sentence {index} has {len(words)} tokens but {len(tags)} tags"
            )
    train = _normalized(train_tokens, lowercase)
    test = _normalized(test_tokens, lowercase)
    train_counts = Counter(word for sentence in train for word in sentence)
    test_counts = Counter(word for sentence in test for word in sentence)
    train_total = sum(train_counts.values())
    test_total = sum(test_counts.values())
    if train_total == 0:
        raise ValueError("the training data has no tokens")
    if test_total == 0:
        raise ValueError("the test data has no tokens")

    if reference_vocabulary is not None:
        # a set, so a list of a few hundred thousand embedding words is not scanned per token
        vocabulary = (
            {word.lower() for word in reference_vocabulary}
            if lowercase
            else set(reference_vocabulary)
        )
        unknown = sum(count for word, count in train_counts.items() if word not in vocabulary)
        oov_rate = 100.0 * unknown / train_total
    else:
        unseen = sum(count for word, count in test_counts.items() if word not in train_counts)
        oov_rate = 100.0 * unseen / test_total

    tag_counts = Counter(tag for tags in train_tags for tag in tags)
    return {
        "size": float(len(train_tokens)),
        "labels": float(num_labels),
        "tokens_per_type": train_total / len(train_counts),
        "oov_rate": oov_rate,
        "label_entropy": _entropy(tag_counts),
        "frobenius_norm": _frobenius_norm(train),
        "jsd": _jensen_shannon(train_counts, test_counts),
    }

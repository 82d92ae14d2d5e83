"""Label noise for the Q-MTL study (seeds 000 and 001, Figure 5).

Each training label is replaced, with probability p, by a different label drawn uniformly from
the other ``C - 1`` classes. Which tokens are relabeled, and to what, depends only on the seed
and the token's position, never on the approach being trained: STL, Q-MTL and the ensemble see
the same noisy labels. Each token gets one uniform draw ``u`` and one candidate wrong label
from the seeded generator; it is relabeled when ``u < p``. So the tokens relabeled at a lower
noise rate are relabeled, to the same wrong labels, at every higher rate too, and the curves
over p differ by the added noise only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def inject_label_noise(
    labels: Sequence[Sequence[int]], num_classes: int, p: float, seed: int
) -> list[list[int]]:
    """The sentences' labels with each one replaced by a wrong label with probability ``p``.

    :param labels: label ids per sentence (per token), each in ``[0, num_classes)``.
    :param num_classes: number of classes C (at least 2).
    :param p: noise rate in ``[0, 1]``.
    :param seed: the draws' seed; the same seed relabels the same tokens the same way.
    :raises ValueError: for a rate outside ``[0, 1]``, fewer than 2 classes or an out-of-range
        label (naming the sentence and position).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise rate p must be in [0, 1]; got {p}")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes; got {num_classes}")
    lengths = [len(sentence) for sentence in labels]
    flat = np.fromiter((label for sentence in labels for label in sentence), dtype=np.int64)
    bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
    if bad.size:
        sentence = int(np.searchsorted(np.cumsum(lengths), bad[0], side="right"))
        position = int(bad[0] - sum(lengths[:sentence]))
        raise ValueError(
            f"label {int(flat[bad[0]])} of sentence {sentence}, position {position} is not in "
            f"[0, {num_classes})"
        )
    generator = np.random.default_rng(seed)
    draws = generator.random(flat.size)
    # a shift in [1, C - 1] turns every label into a different one, uniformly
    shifts = generator.integers(1, num_classes, size=flat.size)
    noisy = np.where(draws < p, (flat + shifts) % num_classes, flat)
    out: list[list[int]] = []
    start = 0
    for length in lengths:
        out.append(noisy[start : start + length].tolist())
        start += length
    return out

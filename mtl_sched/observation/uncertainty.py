"""Uncertainty of class-probability predictions, their histograms, and probe selection.

Every measure maps a row of class probabilities to a value in ``[0, 1]`` where 0 means certain
and 1 means maximally uncertain, so that all of them share one histogram range.

- ``margin`` (seed 002, eq. 4): ``1 - P(y1|x) + P(y2|x)``, y1 and y2 the labels with the largest and
  second-largest probability.
- ``least_confidence``: ``1 - P(y1|x)``.
- ``entropy``: Shannon entropy divided by ``log C`` (C classes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

UncertaintyMeasure = Literal["margin", "least_confidence", "entropy"]


def _check_probabilities(probs: torch.Tensor) -> None:
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, C); got {tuple(probs.shape)}")
    if probs.shape[1] < 2:
        raise ValueError(f"uncertainty needs at least 2 classes; got C={probs.shape[1]}")


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Margin uncertainty ``1 - P(y1|x) + P(y2|x)`` for each row of ``probs`` (shape ``(N, C)``)."""
    _check_probabilities(probs)
    top2 = torch.topk(probs, k=2, dim=1).values
    return (1.0 - top2[:, 0] + top2[:, 1]).clamp(0.0, 1.0)


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """Least-confidence uncertainty ``1 - P(y1|x)`` for each row of ``probs`` (shape ``(N, C)``)."""
    _check_probabilities(probs)
    return (1.0 - probs.max(dim=1).values).clamp(0.0, 1.0)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy divided by ``log C`` for each row of ``probs`` (shape ``(N, C)``)."""
    _check_probabilities(probs)
    plogp = torch.where(probs > 0, probs * torch.log(probs.clamp_min(1e-30)), 0.0)
    return (-plogp.sum(dim=1) / math.log(probs.shape[1])).clamp(0.0, 1.0)


MEASURES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "margin": margin,
    "least_confidence": least_confidence,
    "entropy": entropy,
}


def uncertainty(probs: torch.Tensor, measure: UncertaintyMeasure = "margin") -> torch.Tensor:
    """Apply the uncertainty measure named ``measure`` to each row of ``probs``.

    :param probs: class probabilities, shape ``(N, C)``, rows summing to 1.
    :param measure: one of ``"margin"``, ``"least_confidence"``, ``"entropy"``.
    """
    try:
        fn = MEASURES[measure]
    except KeyError:
        raise ValueError(
            f"unknown uncertainty measure {measure!r}; choose one of {sorted(MEASURES)}"
        ) from None
    return fn(probs)


def histogram(values: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Normalized histogram of ``values`` in ``[0, 1]`` with ``bins`` equal-width bins.

    Bin ``i`` holds values in ``[i/bins, (i+1)/bins)``; the value 1.0 falls in the last bin. The
    result sums to 1; an empty input gives all zeros.

    :param values: 1-D tensor of values in ``[0, 1]``.
    :param bins: number of bins (at least 1).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1; got {bins}")
    values = values.detach().reshape(-1)
    if values.numel() == 0:
        return torch.zeros(bins, dtype=torch.float32)
    counts = torch.bincount(bin_indices(values, bins), minlength=bins).to(torch.float64)
    return (counts / values.numel()).to(torch.float32)


def bin_indices(values: torch.Tensor, bins: int) -> torch.Tensor:
    """The `histogram` bin of each of ``values`` (in ``[0, 1]``; 1.0 in the last bin).

    :param values: 1-D tensor of values.
    :param bins: number of bins.
    """
    scaled = values.detach().to(torch.float64).clamp(0.0, 1.0) * bins
    return scaled.floor().long().clamp(max=bins - 1)


def batch_hard_indices(hardness: torch.Tensor, size: int | None) -> torch.Tensor:
    """Indices of the ``size`` hardest samples, hardest first, deterministically.

    "Batch hard" probe selection (Hermans et al. 2017, as used by seed 002): rank samples by a
    hardness score (per-sample loss by default) and keep the top ``size``. Ties are broken by the
    lower index so the selection never depends on sort stability. ``size=None`` or a size at least
    the number of samples keeps every sample (still ordered hardest first).

    :param hardness: 1-D tensor of scores, larger is harder.
    :param size: how many samples to keep, or ``None`` for all.
    """
    hardness = hardness.detach().reshape(-1).cpu()
    n = hardness.numel()
    if size is not None and size < 1:
        raise ValueError(f"probe size must be at least 1 or None; got {size}")
    keep = n if size is None else min(size, n)
    # A stable sort on the negated score ranks equal scores by index.
    order = torch.sort(-hardness.to(torch.float64), stable=True).indices
    return order[:keep]


def padded_uncertainty(
    probs: torch.Tensor, log_classes: torch.Tensor, measure: UncertaintyMeasure
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uncertainty and most probable class of class probabilities laid out ``(n, C, U)``.

    The measures of `mtl_sched.observation.uncertainty` (same formulas and ranges, ties as
    ``torch.topk`` and ``torch.argmax`` resolve them), for units whose tasks have different
    class counts: padding classes have probability 0, which neither the top two classes nor the
    entropy notice.

    :param probs: ``(n, C, U)`` class probabilities, classes second.
    :param log_classes: ``(U,)`` the log of each unit's own class count (for ``"entropy"``).
    :param measure: ``"margin"``, ``"least_confidence"`` or ``"entropy"``.
    :returns: the uncertainty ``(n, U)`` and the most probable class ``(n, U)``.
    """
    # the first most probable class, as torch.argmax picks it; then the best of the others
    top1, best = probs.max(dim=1)
    top2 = probs.scatter(1, best.unsqueeze(1), float("-inf")).amax(dim=1)
    if measure == "margin":
        values = 1.0 - top1 + top2
    elif measure == "least_confidence":
        values = 1.0 - top1
    elif measure == "entropy":
        plogp = torch.where(probs > 0, probs * torch.log(probs.clamp_min(1e-30)), 0.0)
        values = -plogp.sum(dim=1) / log_classes
    else:
        raise ValueError(f"unknown uncertainty measure {measure!r}")
    return values.clamp(0.0, 1.0), best

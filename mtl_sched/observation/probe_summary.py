"""Every task's probe summary from one pass of tensor operations over all tasks' units.

`mtl_sched.observation.probing.probe_from_probabilities` summarizes each task's probe units
(histogram of uncertainties, mean loss, accuracy). With 16 tasks of a few dozen units, a dozen
small tensor operations per task cost about as much as the forward pass over the units, and the
probe runs after every decision of an agent. `summarize_together` stacks the tasks' units and
runs each operation once, with results equal to the task-by-task ones bit for bit: every
per-unit value is computed by the same elementwise formula, and each task's mean is still taken
over that task's own contiguous slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mtl_sched.observation.uncertainty import UncertaintyMeasure, bin_indices, uncertainty


class ProbeSummary(NamedTuple):
    """Per-task summaries, as `ProbeResult` holds them."""

    histograms: np.ndarray
    losses: np.ndarray
    accuracies: np.ndarray
    uncertainties: list[np.ndarray]


def target_losses(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each unit's negative log-likelihood of its target, ``-log p(target)`` (the smallest
    positive float in place of a zero probability).

    :param probabilities: class probabilities ``(U, C)``.
    :param targets: gold labels ``(U,)``.
    """
    picked = probabilities.gather(1, targets.reshape(-1, 1).long()).reshape(-1)
    return -torch.log(picked.clamp_min(torch.finfo(probabilities.dtype).tiny))


def _hardest_first(
    per_unit: torch.Tensor, task_of_unit: torch.Tensor, sizes: Sequence[int], keep: int | None
) -> tuple[torch.Tensor, list[int]]:
    """Unit indices grouped by task, each task's hardest first (ties by index), at most
    ``keep`` per task; and how many each task kept.

    Equal to `batch_hard_indices` on each task's slice: a stable sort by hardness followed
    by a stable sort by task keeps, within a task, the hardness order with ties by index.
    """
    order = torch.sort(-per_unit.detach().cpu().to(torch.float64), stable=True).indices
    order = order[torch.sort(task_of_unit[order], stable=True).indices]
    kept = list(sizes) if keep is None else [min(keep, n) for n in sizes]
    if keep is not None:
        starts = torch.tensor([0, *np.cumsum(sizes)[:-1].tolist()], dtype=torch.long)
        rank = torch.arange(len(order)) - starts[task_of_unit[order]]
        order = order[rank < keep]
    return order, kept


def summarize_together(
    probabilities: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor | None],
    unit_losses: Sequence[torch.Tensor | None],
    measure: UncertaintyMeasure,
    bins: int,
    hard_size: int | None,
) -> ProbeSummary | None:
    """The tasks' summaries in one pass, or ``None`` where the task-by-task path must run.

    That path runs (and this returns ``None``) when a task lacks targets or has no units, when
    the tasks' tensors differ in dtype or device, when unit losses are given for some tasks
    only, for ``"entropy"`` over tasks with different class counts (its normalization is per
    class count), and when any probability, unit loss or mean loss is not finite (so that the
    error names the task).

    :param probabilities: for each task, class probabilities ``(U_k, C_k)``.
    :param targets: for each task, gold labels ``(U_k,)``.
    :param unit_losses: for each task, per-unit losses ``(U_k,)``, or all ``None``.
    :param measure: the uncertainty measure.
    :param bins: histogram bins.
    :param hard_size: units kept per task by batch-hard selection (``None``: all).
    """
    if any(gold is None for gold in targets) or any(p.shape[0] == 0 for p in probabilities):
        return None
    given = [u is not None for u in unit_losses]
    if any(given) and not all(given):
        return None
    if len({(p.dtype, p.device) for p in probabilities}) != 1:
        return None
    classes = [p.shape[1] for p in probabilities]
    width = max(classes)
    if measure == "entropy" and min(classes) != width:
        return None
    sizes = [p.shape[0] for p in probabilities]
    # padding classes have probability 0: never the top class, and equal to a real class of
    # probability 0 as the second, so margins and least confidences are unchanged
    probs = torch.cat(
        [p if p.shape[1] == width else F.pad(p, (0, width - p.shape[1])) for p in probabilities]
    )
    gold = torch.cat([g.reshape(-1) for g in targets])  # type: ignore[union-attr]
    if all(given):
        per_unit = torch.cat([u.reshape(-1) for u in unit_losses])  # type: ignore[union-attr]
    else:
        per_unit = target_losses(probs, gold)
    if not bool(torch.isfinite(probs).all()) or not bool(torch.isfinite(per_unit).all()):
        return None
    loss_dtype = torch.promote_types(probs.dtype, per_unit.dtype)
    losses = torch.stack([part.mean() for part in per_unit.split(sizes)]).to(loss_dtype)
    if not bool(torch.isfinite(losses).all()):
        return None
    correct = (probs.argmax(dim=-1) == gold).float()
    accuracies = torch.stack([part.mean() for part in correct.split(sizes)])

    task_of_unit = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    order, kept = _hardest_first(per_unit, task_of_unit, sizes, hard_size)
    order = order.to(probs.device)
    values = uncertainty(probs[order], measure)
    index = bin_indices(values, bins) + bins * task_of_unit.to(probs.device)[order]
    counts = torch.bincount(index, minlength=bins * len(sizes)).to(torch.float64)
    totals = torch.tensor(kept, dtype=torch.float64, device=counts.device).unsqueeze(1)
    histograms = (counts.reshape(len(sizes), bins) / totals).to(torch.float32)
    return ProbeSummary(
        histograms=histograms.cpu().numpy(),
        losses=np.asarray(losses.tolist()),
        accuracies=np.asarray(accuracies.tolist()),
        uncertainties=[part.cpu().numpy() for part in values.split(kept)],
    )

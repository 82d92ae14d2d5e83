"""Checked conversion of probe predictions handed in from outside the toolkit.

A training loop the toolkit does not own gives, for each task, the class probabilities of its
probe units and optionally their gold labels and per-unit losses (`ProbeData`). These functions
turn such inputs (tensors, NumPy arrays or nested lists, in task order or keyed by task name)
into tensors `mtl_sched.observation.probing.probe_from_probabilities` can summarize, and reject
malformed ones with an error naming the task and what is wrong. NaN or infinite probabilities or
unit losses raise `NonFiniteLossError` (kind ``"probe"``), as in the trainer's probe pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtl_sched.scheduling import NonFiniteLossError

ArrayLike = torch.Tensor | np.ndarray | Sequence[Any]
PerTask = Sequence[Any] | Mapping[str, Any]


@dataclass
class ProbeData:
    """Per-task predictions on the probe sets, in task order (or keyed by task name).

    :param probabilities: class probabilities per task, shape ``(N_k, C_k)``, rows summing to 1.
    :param targets: gold labels per task, shape ``(N_k,)``: give the probe accuracies and, without
        ``losses``, the per-unit negative log-likelihoods that batch-hard selection ranks.
    :param losses: per-unit losses per task, shape ``(N_k,)`` (for heads with their own loss).
    """

    probabilities: PerTask
    targets: PerTask | None = None
    losses: PerTask | None = None


def per_task(values: PerTask, task_names: Sequence[str], what: str) -> list[Any]:
    """One entry per task, in task order, from a sequence or a mapping by task name.

    :param values: the per-task entries.
    :param task_names: the tasks, in order.
    :param what: what the entries are, for error messages.
    """
    names = list(task_names)
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        extra = sorted(set(values) - set(names))
        if missing or extra:
            raise ValueError(
                f"{what}: missing tasks {missing}, unknown tasks {extra}; tasks: {names}"
            )
        return [values[n] for n in names]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{what} must be a sequence (one entry per task) or a mapping")
    if len(values) != len(names):
        raise ValueError(
            f"{what} given for {len(values)} tasks; the scheduler runs {len(names)} tasks {names}"
        )
    return list(values)


def _refuse_non_finite(values: torch.Tensor, task: str, step: int | None, where: str) -> None:
    """Raise a probe `NonFiniteLossError` naming the first NaN or infinite entry of ``values``.

    :param values: the task's checked-shape probabilities or unit losses.
    :param task: the task name.
    :param step: the training steps taken so far.
    :param where: which of the task's inputs ``values`` is, e.g. ``"in its unit losses"``.
    """
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        first = float(values[bad].reshape(-1)[0])
        raise NonFiniteLossError(task, step, "probe", first, where=where)


def check_probabilities(
    value: ArrayLike, task: str, atol: float = 1e-3, step: int | None = None
) -> torch.Tensor:
    """``value`` as a floating tensor of shape ``(N, C)``, ``N >= 1``, ``C >= 2``, with finite
    non-negative entries and rows summing to 1 within ``atol``.

    :param value: the task's class probabilities.
    :param task: the task name, for error messages.
    :param atol: how far a row's sum may be from 1.
    :param step: the training steps taken so far, for errors.
    :raises NonFiniteLossError: (kind ``"probe"``) when an entry is NaN or infinite.
    """
    probs = torch.as_tensor(value).detach()
    if not probs.is_floating_point():
        probs = probs.float()
    if probs.dim() != 2 or probs.shape[0] < 1 or probs.shape[1] < 2:
        raise ValueError(
            f"task {task!r}: probabilities must have shape (N, C) with N >= 1 units and C >= 2 "
            f"classes; got {tuple(probs.shape)}"
        )
    _refuse_non_finite(probs, task, step, "in its probabilities")
    if bool((probs < 0).any()):
        raise ValueError(f"task {task!r}: probabilities must be non-negative")
    sums = probs.sum(dim=1, dtype=torch.float64)
    worst = int((sums - 1).abs().argmax())
    if abs(float(sums[worst]) - 1) > atol:
        raise ValueError(
            f"task {task!r}: probability rows must sum to 1 (apply softmax to logits); row "
            f"{worst} sums to {float(sums[worst]):.6g}"
        )
    return probs


def check_targets(value: ArrayLike, task: str, probs: torch.Tensor) -> torch.Tensor:
    """``value`` as integer class indices of shape ``(N,)`` in ``[0, C)``, on ``probs``' device.

    :param value: the task's gold labels.
    :param task: the task name, for error messages.
    :param probs: the task's checked probabilities, shape ``(N, C)``.
    """
    gold = torch.as_tensor(value).detach()
    if gold.is_floating_point() or gold.dtype == torch.bool:
        raise ValueError(f"task {task!r}: targets must be integer class indices; got {gold.dtype}")
    if gold.shape != probs.shape[:1]:
        raise ValueError(
            f"task {task!r}: targets must have shape ({probs.shape[0]},) to match the "
            f"probabilities; got {tuple(gold.shape)}"
        )
    if bool((gold < 0).any()) or bool((gold >= probs.shape[1]).any()):
        raise ValueError(f"task {task!r}: targets must lie in [0, {probs.shape[1]})")
    return gold.to(probs.device)


def check_unit_losses(
    value: ArrayLike, task: str, probs: torch.Tensor, step: int | None = None
) -> torch.Tensor:
    """``value`` as finite per-unit losses of shape ``(N,)``, on ``probs``' device.

    :param value: the task's per-unit losses.
    :param task: the task name, for error messages.
    :param probs: the task's checked probabilities, shape ``(N, C)``.
    :param step: the training steps taken so far, for errors.
    :raises NonFiniteLossError: (kind ``"probe"``) when a loss is NaN or infinite.
    """
    losses = torch.as_tensor(value).detach()
    if losses.shape != probs.shape[:1]:
        raise ValueError(
            f"task {task!r}: losses must be per unit, shape ({probs.shape[0]},); "
            f"got {tuple(losses.shape)}"
        )
    _refuse_non_finite(losses, task, step, "in its unit losses")
    return losses.to(probs.device)


def check_probe_data(
    data: ProbeData, task_names: Sequence[str], atol: float = 1e-3, step: int | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, list[torch.Tensor] | None]:
    """Checked per-task probabilities, targets (or ``None``) and unit losses (or ``None``).

    :param data: the predictions, as handed in.
    :param task_names: the tasks, in order.
    :param atol: how far a probability row's sum may be from 1.
    :param step: the training steps taken so far, for errors.
    :raises NonFiniteLossError: (kind ``"probe"``) naming the first task whose probabilities
        or unit losses are NaN or infinite.
    """
    names = list(task_names)
    given = per_task(data.probabilities, names, "probabilities")
    probs = [check_probabilities(p, n, atol, step) for p, n in zip(given, names, strict=True)]
    targets = None
    if data.targets is not None:
        given = per_task(data.targets, names, "targets")
        targets = [check_targets(t, n, p) for t, n, p in zip(given, names, probs, strict=True)]
    losses = None
    if data.losses is not None:
        given = per_task(data.losses, names, "losses")
        losses = [
            check_unit_losses(v, n, p, step) for v, n, p in zip(given, names, probs, strict=True)
        ]
    return probs, targets, losses

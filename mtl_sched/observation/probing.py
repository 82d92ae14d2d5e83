"""The probe pass: one forward pass over each task's probe set yields both the uncertainty
histograms (the scheduler's observation) and the validation losses and accuracies (the reward).

Probe pools (`ProbeConfig.pool_size` examples of a task's validation split) are chosen by
`probe_pool_indices`: ``selection="stratified"`` (the default) allocates a classification
task's pool to its labels in proportion to their shares of the split and spreads each label's
share evenly over the split; a task labelled per token (tagging, seq2seq) gets examples spread
evenly over the split. ``"first"`` takes the first ``pool_size`` examples, whose labels can be
far from the split's (the first 8 IMDB validation reviews of FDU-MTL are all positive). Both
rules are deterministic and independent of run seeds, so a benchmark's pools are fixed.

With many tasks, probing every task after every minibatch costs about as much as training on
the minibatch. `ProbeConfig.refresh` bounds that: each pass then probes only the tasks trained
since the last pass and the ``refresh`` tasks probed longest ago, and `RollingProbe` keeps the
other tasks' last results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from mtl_sched.errors import NonFiniteLossError
from mtl_sched.models.base import Batch, MTLModel, TaskOutput, task_outputs
from mtl_sched.observation.probe_summary import summarize_together, target_losses
from mtl_sched.observation.uncertainty import (
    UncertaintyMeasure,
    batch_hard_indices,
    histogram,
    uncertainty,
)

PoolSelection = Literal["first", "stratified"]
POOL_SELECTIONS: tuple[str, ...] = ("first", "stratified")


def _spread(count: int, total: int) -> np.ndarray:
    """``count`` positions in ``range(total)`` spread evenly: the middle of ``count`` equal
    stretches (``count <= total``)."""
    return np.floor((np.arange(count) + 0.5) * total / count).astype(np.int64)


def probe_pool_indices(
    size: int,
    pool_size: int | None,
    selection: PoolSelection = "stratified",
    labels: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Indices (increasing) of the validation examples that form a task's probe pool.

    :param size: examples in the validation split.
    :param pool_size: pool size; ``None`` or at least ``size`` takes the whole split.
    :param selection: ``"first"``: the first ``pool_size`` examples. ``"stratified"``: with
        ``labels``, each label gets a share of the pool proportional to its count in the split
        (largest remainders, then the more frequent label, then the lower label, get the
        examples left over; every label present gets at least one example while the pool has
        room), taken evenly spread over that label's examples; without ``labels`` (per-token
        labels), ``pool_size`` examples evenly spread over the split.
    :param labels: one class label per example (classification), or ``None``.
    """
    if selection not in POOL_SELECTIONS:
        raise ValueError(
            f"probe pool selection must be one of {POOL_SELECTIONS}; got {selection!r}"
        )
    if pool_size is None or pool_size >= size:
        return np.arange(size, dtype=np.int64)
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1 or None; got {pool_size}")
    if selection == "first":
        return np.arange(pool_size, dtype=np.int64)
    if labels is None:
        return _spread(pool_size, size)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != size:
        raise ValueError(f"{labels.shape[0]} labels for a split of {size} examples")
    values, counts = np.unique(labels, return_counts=True)
    exact = pool_size * counts / size
    share = np.floor(exact).astype(np.int64)
    if pool_size >= len(values):
        share = np.maximum(share, 1)
    # hand out (or take back) the remaining examples: largest remainder, larger count, lower label
    order = sorted(range(len(values)), key=lambda i: (-(exact[i] - share[i]), -counts[i], i))
    i = 0
    while share.sum() < pool_size:
        k = order[i % len(order)]
        if share[k] < counts[k]:
            share[k] += 1
        i += 1
    for k in reversed(order):
        while share.sum() > pool_size and share[k] > 1:
            share[k] -= 1
    chosen = [
        np.flatnonzero(labels == value)[_spread(int(n), int(count))]
        for value, n, count in zip(values, share, counts, strict=True)
        if n > 0
    ]
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class ProbeConfig:
    """What the probe pass looks at.

    :param bins: histogram bins per task.
    :param measure: uncertainty measure (``"margin"``, ``"least_confidence"``, ``"entropy"``).
    :param pool_size: validation examples per task forming the probe pool (chosen once by
        ``selection``, so the pool is fixed); ``None`` uses the whole validation split. Losses
        and accuracies for the reward are averaged over the pool.
    :param hard_size: how many of the pool's hardest prediction units (highest loss, "batch
        hard") enter the histogram; ``None`` uses every unit of the pool.
    :param refresh: ``None`` (seed 002) probes every task at every pass. A number ``r`` probes,
        at each pass after the first, the tasks trained since the previous pass and the ``r``
        other tasks probed longest ago (lowest index first among equals); every other task keeps
        its last histogram, loss and accuracy (`RollingProbe`). Each task is then re-probed at
        least every ``ceil((K - 1) / r)`` passes, at a cost of ``1 + r`` tasks per pass instead
        of ``K``.
    :param selection: how the pool is taken from the split (`probe_pool_indices`):
        ``"stratified"`` (label proportions of the split, or evenly spread for per-token
        labels) or ``"first"`` (the first ``pool_size`` examples).
    """

    bins: int = 20
    measure: UncertaintyMeasure = "margin"
    pool_size: int | None = None
    hard_size: int | None = None
    refresh: int | None = None
    selection: PoolSelection = "stratified"

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise ValueError(f"ProbeConfig.bins must be at least 1; got {self.bins}")
        if self.pool_size is not None and self.pool_size < 1:
            raise ValueError(f"ProbeConfig.pool_size must be >= 1 or None; got {self.pool_size}")
        if self.hard_size is not None and self.hard_size < 1:
            raise ValueError(f"ProbeConfig.hard_size must be >= 1 or None; got {self.hard_size}")
        if self.refresh is not None and self.refresh < 0:
            raise ValueError(f"ProbeConfig.refresh must be >= 0 or None; got {self.refresh}")
        if self.selection not in POOL_SELECTIONS:
            raise ValueError(
                f"ProbeConfig.selection must be one of {POOL_SELECTIONS}; got {self.selection!r}"
            )
        uncertainty(torch.tensor([[0.5, 0.5]]), self.measure)  # rejects unknown measures early


@dataclass
class ProbeResult:
    """Outcome of one probe pass over K tasks.

    :param histograms: normalized uncertainty histograms, shape ``(K, bins)``.
    :param losses: mean loss per task over its probe pool, shape ``(K,)``.
    :param accuracies: unit accuracy per task over its probe pool, shape ``(K,)``.
    """

    histograms: np.ndarray
    losses: np.ndarray
    accuracies: np.ndarray
    uncertainties: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def observation(self) -> np.ndarray:
        """The histograms concatenated task after task, ``float32`` of shape ``(K * bins,)``."""
        return self.histograms.reshape(-1).astype(np.float32)


def _concat_outputs(outputs: Sequence[TaskOutput]) -> TaskOutput:
    return TaskOutput(
        logits=torch.cat([o.logits for o in outputs]),
        targets=torch.cat([o.targets for o in outputs]),
        unit_losses=torch.cat([o.losses() for o in outputs]),
    )


@torch.no_grad()
def probe_from_probabilities(
    probabilities: Sequence[torch.Tensor],
    config: ProbeConfig,
    targets: Sequence[torch.Tensor | None] | None = None,
    unit_losses: Sequence[torch.Tensor | None] | None = None,
    task_names: Sequence[str] | None = None,
    step: int | None = None,
) -> ProbeResult:
    """Summarize per-task predictions on the probe pools into a `ProbeResult`.

    The probe pass of the trainer and the hook for external training loops
    (`mtl_sched.hooks.SchedulerDriver`) both end here, so the two give the same histograms for
    the same predictions. A task's loss is the mean of its unit losses and its accuracy the share
    of units whose most probable class is the target; either is NaN when neither unit losses
    nor targets are given (resp. no targets). Inputs are trusted: validate them first; only a
    NaN or infinite probability or loss is refused (it would become a histogram and a reward).

    :param probabilities: for each task, class probabilities of its probe units, ``(U_k, C_k)``.
    :param config: histogram settings; ``hard_size`` ranks the units by their loss.
    :param targets: for each task, gold labels ``(U_k,)`` or ``None``; without unit losses, a
        unit's loss is its negative log-likelihood ``-log p(target)``.
    :param unit_losses: for each task, per-unit losses ``(U_k,)`` or ``None`` (e.g. a CRF's).
    :param task_names: the tasks' names, for errors (default: their indices).
    :param step: the training steps taken so far, for errors.
    :raises NonFiniteLossError: naming the first task whose probabilities or loss are NaN or
        infinite.
    """
    num_tasks = len(probabilities)
    names = [str(k) for k in range(num_tasks)] if task_names is None else list(task_names)
    targets = list(targets) if targets is not None else [None] * num_tasks
    unit_losses = list(unit_losses) if unit_losses is not None else [None] * num_tasks
    together = summarize_together(
        probabilities, targets, unit_losses, config.measure, config.bins, config.hard_size
    )
    if together is not None:
        return ProbeResult(*together)
    return summarize_each(probabilities, config, targets, unit_losses, names, step)


def summarize_each(
    probabilities: Sequence[torch.Tensor],
    config: ProbeConfig,
    targets: Sequence[torch.Tensor | None],
    unit_losses: Sequence[torch.Tensor | None],
    task_names: Sequence[str],
    step: int | None,
) -> ProbeResult:
    """`probe_from_probabilities` task by task (the parameters are its own, all given): the
    path for what `summarize_together` declines, and the reference it is tested against."""
    hists, losses, accs, values = [], [], [], []
    rows = zip(task_names, probabilities, targets, unit_losses, strict=True)
    for name, probs, gold, per_unit in rows:
        if per_unit is None and gold is not None:
            per_unit = target_losses(probs, gold)
        if per_unit is None:
            if config.hard_size is not None:
                raise ValueError(
                    f"batch-hard probe selection (hard_size={config.hard_size}) ranks units by "
                    "their loss: give per-unit losses or targets"
                )
            hard = torch.arange(probs.shape[0], device=probs.device)
        else:
            hard = batch_hard_indices(per_unit, config.hard_size).to(probs.device)
        # one transfer to the host: whether every probability is finite, and the mean loss
        dtype = (
            probs.dtype if per_unit is None else torch.promote_types(probs.dtype, per_unit.dtype)
        )
        finite = torch.isfinite(probs).all().to(dtype)
        mean = finite.new_zeros(()) if per_unit is None else per_unit.mean().to(dtype)
        all_finite, loss = torch.stack([finite, mean]).tolist()
        if not (all_finite and math.isfinite(loss)):
            value = loss if not math.isfinite(loss) else math.nan
            raise NonFiniteLossError(name, step, "probe", value)
        u = uncertainty(probs[hard], config.measure)
        # .cpu(): the histogram stays on the predictions' device, NumPy needs host memory
        hists.append(histogram(u, config.bins).cpu().numpy())
        losses.append(math.nan if per_unit is None else loss)
        if gold is None:
            accs.append(math.nan)
        else:
            accs.append(float((probs.argmax(dim=-1) == gold).float().mean()))
        values.append(u.cpu().numpy())
    return ProbeResult(
        histograms=np.stack(hists),
        losses=np.asarray(losses),
        accuracies=np.asarray(accs),
        uncertainties=values,
    )


@torch.no_grad()
def probe(
    model: MTLModel,
    probe_batches: Sequence[Sequence[Batch]],
    config: ProbeConfig,
    task_names: Sequence[str] | None = None,
    step: int | None = None,
) -> ProbeResult:
    """Run the probe pass.

    :param model: the multi-task model (put in eval mode for the pass, then restored).
    :param probe_batches: for each probed task, the collated batches of its probe pool (already
        on the model's device).
    :param config: histogram and probe-set settings.
    :param task_names: the probed tasks, in the order of ``probe_batches`` and of the result's
        rows (``None``: all of the model's tasks, in model order).
    :param step: the training steps taken so far, for errors.
    :raises NonFiniteLossError: naming the first task whose probabilities or loss are NaN or
        infinite.
    """
    names = model.task_names if task_names is None else task_names
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()
    try:
        requests = [
            (task, batch)
            for task, batches in zip(names, probe_batches, strict=True)
            for batch in batches
        ]
        flat = iter(task_outputs(model, requests))
        outputs = [_concat_outputs([next(flat) for _ in batches]) for batches in probe_batches]
    finally:
        model.train(was_training)
    return probe_from_probabilities(
        [o.probabilities() for o in outputs],
        config,
        targets=[o.targets for o in outputs],
        unit_losses=[o.losses() for o in outputs],
        task_names=names,
        step=step,
    )


class RollingProbe:
    """The latest probe result of every task, refreshed as `ProbeConfig.refresh` says.

    The environment and the trainer (for schedulers that read the probe) both keep one, so an
    agent sees the same kind of observation in training and at run time.

    :param num_tasks: number of tasks K.
    :param config: the probe settings (``refresh``).
    """

    def __init__(self, num_tasks: int, config: ProbeConfig) -> None:
        self.num_tasks = num_tasks
        self.config = config
        self.latest: ProbeResult | None = None
        self.age = np.zeros(num_tasks, dtype=np.int64)

    def reset(self) -> None:
        """Forget every result: the next pass probes every task."""
        self.latest = None
        self.age[:] = 0

    def tasks_to_probe(self, trained: Sequence[int]) -> list[int]:
        """The tasks the next pass probes, in increasing order.

        :param trained: tasks trained since the previous pass (always probed).
        """
        refresh = self.config.refresh
        if self.latest is None or refresh is None:
            return list(range(self.num_tasks))
        chosen = set(trained)
        others = [k for k in range(self.num_tasks) if k not in chosen]
        # the oldest first; a stable sort keeps the lower index first among equals
        others.sort(key=lambda k: -self.age[k])
        return sorted(chosen | set(others[:refresh]))

    def update(
        self, run: Callable[[Sequence[int]], ProbeResult], trained: Sequence[int] = ()
    ) -> ProbeResult:
        """Probe the tasks `tasks_to_probe` names and return every task's latest result.

        :param run: probes the given task indices; its result has one row per task, in order.
        :param trained: tasks trained since the previous pass.
        """
        tasks = self.tasks_to_probe(trained)
        part = run(tasks)
        self.age += 1
        self.age[tasks] = 0
        if self.latest is None or len(tasks) == self.num_tasks:
            self.latest = part
            return part
        latest = self.latest
        histograms, losses = latest.histograms.copy(), latest.losses.copy()
        accuracies, values = latest.accuracies.copy(), list(latest.uncertainties)
        histograms[tasks], losses[tasks], accuracies[tasks] = (
            part.histograms,
            part.losses,
            part.accuracies,
        )
        if part.uncertainties:
            for row, k in enumerate(tasks):
                values[k] = part.uncertainties[row]
        self.latest = ProbeResult(histograms, losses, accuracies, values)
        return self.latest

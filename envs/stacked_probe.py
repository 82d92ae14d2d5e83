"""The probe pass of every replica of a `StackedSharedMLP`, batched over replicas and tasks.

`StackedProbePass` computes, for each of ``n`` replicas and each probed task, what
`mtl_sched.observation.probing.probe` computes on that replica's model alone: the histogram of the
uncertainty measure over the task's probe pool (or over its ``hard_size`` units of highest loss),
normalized to frequencies, and the mean cross-entropy and accuracy over the pool. The pools are
those a trainer of the benchmark chooses; they are concatenated, task after task, into one
tensor of units. Results agree with the single-model pass up to the rounding of batched
products; the per-unit uncertainties (`ProbeResult.uncertainties`) are left empty.

Two layouts run the pass, both starting with one encoder pass of every replica over the probed
units:

- Pools of any sizes: every task head runs on every unit (``(n, K * C, U)`` logits, ``K`` tasks,
  ``C`` classes, ``U`` units), the rows of each unit's own head are gathered, and the per-task
  reductions run over each task's span of units.
- Equal pools, when every probed pool holds the same ``L`` units: each task's head runs on its
  own units only, into ``(T, n, C, L)`` logits (``T`` probed tasks), which read as ``T * n``
  (task, replica) rows of one layout. This is faster: the head products shrink by the factor
  ``K``, no gather or per-task loop is needed, and the loss, uncertainty, batch-hard selection,
  histogram and means each run as one batched operation over all rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mtl_sched.models.stacked import StackedSharedMLP
from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.observation.uncertainty import padded_uncertainty
from mtl_sched.scheduling import NonFiniteLossError


@dataclass(frozen=True)
class _ProbeLayout:
    """Index tensors of a probe pass over one tuple of tasks."""

    units: torch.Tensor | None
    """Rows of the validation tensors probed, ``(U,)``; ``None`` when every task is probed."""
    gold: torch.Tensor
    """Labels of the probed units, ``(U,)``."""
    head_rows: torch.Tensor
    """``(C, U)``: rows of `StackedSharedMLP.all_head_logits` of each unit's own head."""
    mask: torch.Tensor
    """``(C, U)``: 0 for each unit's classes, minus infinity for its padding rows."""
    log_classes: torch.Tensor
    """``(U,)``: the log of each unit's class count."""
    position: torch.Tensor
    """``(U,)``: each unit's position in the task tuple."""
    starts: list[int]
    """Where each task's units start in the probed units, and their total at the end."""


class StackedProbePass:
    """The probe pass of a `StackedSharedMLP`'s replicas over fixed validation pools.

    :param model: the stacked model whose replicas are probed (read at each pass).
    :param config: the probe settings (``bins``, ``measure``, ``hard_size``).
    :param val_x: the inputs of every task's probe pool, concatenated task after task.
    :param val_y: their labels, in the same order.
    :param bounds: ``K + 1`` offsets: task ``k``'s pool is rows ``bounds[k]:bounds[k + 1]``.
    :param device: where the pass runs (the model's device).
    :param task_names: the tasks' names, for errors (default: their indices).
    """

    def __init__(
        self,
        model: StackedSharedMLP,
        config: ProbeConfig,
        val_x: torch.Tensor,
        val_y: torch.Tensor,
        bounds: Sequence[int],
        device: torch.device,
        task_names: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.task_names = (
            [str(k) for k in range(len(bounds) - 1)] if task_names is None else list(task_names)
        )
        self.config = config
        self.device = device
        self._val_x = val_x.to(device)
        self._val_y = val_y.to(device)
        self._val_bounds = list(bounds)
        self._layouts: dict[tuple[int, ...], _ProbeLayout] = {}
        self._feature_buffers: dict[tuple[int, int], list[torch.Tensor]] = {}

    @torch.no_grad()
    def probe(
        self,
        replicas: Sequence[int],
        tasks: Sequence[int],
        steps: Sequence[int] | None = None,
    ) -> list[ProbeResult]:
        """One probe pass of the given replicas over the given tasks, batched over both.

        :param replicas: replica indices.
        :param tasks: task indices, in the order of each result's rows.
        :param steps: the training steps each replica has taken, for errors.
        :returns: one `ProbeResult` per replica, in the order of ``replicas``.
        :raises NonFiniteLossError: naming the replica and task of the first NaN or infinite
            probe loss (a probability that is not finite makes its unit's loss not finite).
        """
        replicas, tasks = list(replicas), tuple(int(k) for k in tasks)
        chosen = (
            None
            if replicas == list(range(self.model.num_replicas))
            else torch.as_tensor(replicas, device=self.device)
        )
        n = len(replicas)
        sizes = {self._val_bounds[k + 1] - self._val_bounds[k] for k in tasks}
        run = self._probe_equal_pools if len(sizes) == 1 else self._probe_any_pools
        hist, loss, acc = run(tasks, chosen, n)
        hist_np = hist.cpu().numpy()
        loss_np = loss.cpu().numpy().astype(np.float64)
        acc_np = acc.cpu().numpy().astype(np.float64)
        bad = np.argwhere(~np.isfinite(loss_np))
        if len(bad):
            r, t = (int(i) for i in bad[0])
            raise NonFiniteLossError(
                self.task_names[tasks[t]],
                None if steps is None else int(steps[r]),
                "probe",
                float(loss_np[r, t]),
                where=f"replica {replicas[r]}",
            )
        return [
            ProbeResult(histograms=hist_np[r], losses=loss_np[r], accuracies=acc_np[r])
            for r in range(n)
        ]

    def _probe_layout(self, tasks: tuple[int, ...]) -> _ProbeLayout:
        """Index tensors of a probe pass over ``tasks`` (cached per task tuple)."""
        layout = self._layouts.get(tasks)
        if layout is not None:
            return layout
        bounds = self._val_bounds
        sizes = [bounds[k + 1] - bounds[k] for k in tasks]
        units = np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in tasks])
        unit_task = np.repeat(np.asarray(tasks, dtype=np.int64), sizes)
        classes = self.model.max_classes
        device = self.device
        head_rows = unit_task[None, :] * classes + np.arange(classes)[:, None]
        layout = _ProbeLayout(
            units=(
                None if len(tasks) == len(bounds) - 1 else torch.as_tensor(units, device=device)
            ),
            gold=self._val_y[torch.as_tensor(units, device=device)],
            head_rows=torch.as_tensor(head_rows, device=device),
            mask=self.model.class_mask[torch.as_tensor(unit_task, device=device)].T,
            log_classes=torch.log(
                torch.as_tensor(np.asarray(self.model.num_classes)[unit_task], device=device)
            ).float(),
            position=torch.as_tensor(np.repeat(np.arange(len(tasks)), sizes), device=device),
            starts=np.cumsum([0, *sizes]).tolist(),
        )
        self._layouts[tasks] = layout
        return layout

    def _features(self, layout: _ProbeLayout, chosen: torch.Tensor | None, n: int) -> torch.Tensor:
        """The encoder outputs ``(n, U, width)`` of the ``n`` replicas on the probed units,
        computed into buffers kept per shape."""
        x = self._val_x if layout.units is None else self._val_x[layout.units]
        key = (n, x.shape[0])
        if key not in self._feature_buffers:
            self._feature_buffers[key] = self.model.feature_buffers(*key)
        return self.model.features(x, chosen, out=self._feature_buffers[key])

    def _bin_index(self, values: torch.Tensor) -> torch.Tensor:
        """The histogram bin of each uncertainty value in ``[0, 1]`` (1 in the last bin)."""
        bins = self.config.bins
        # NaN (from non-finite logits, refused once the losses are read) must not index a bin
        values = torch.nan_to_num(values.to(torch.float64), nan=0.0)
        return (values.clamp(0.0, 1.0) * bins).floor().long().clamp(max=bins - 1)

    def _hardest(self, index: torch.Tensor, unit_losses: torch.Tensor) -> torch.Tensor:
        """Per row, the entries of ``index`` at the ``hard_size`` units of highest loss."""
        # batch-hard selection: the hardest units, ties by index (a stable sort)
        order = torch.sort(-unit_losses.to(torch.float64), dim=1, stable=True).indices
        return index.gather(1, order[:, : self.config.hard_size])

    def _counts(self, index: torch.Tensor, width: int) -> torch.Tensor:
        """Per row of ``index``, how many of its entries fall in each of ``width`` columns
        (float64)."""
        counts = torch.zeros(index.shape[0], width, dtype=torch.float64, device=self.device)
        return counts.scatter_add_(1, index, torch.ones_like(index, dtype=torch.float64))

    def _frequencies(self, index: torch.Tensor) -> torch.Tensor:
        """Per row of bin indices, the histogram as frequencies (float64)."""
        return self._counts(index, self.config.bins) / index.shape[1]

    def _probe_any_pools(
        self, tasks: tuple[int, ...], chosen: torch.Tensor | None, n: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The probe pass over pools of any sizes: every head on every unit, each unit's own
        head's rows gathered. Returns histograms ``(n, T, bins)``, losses and accuracies
        ``(n, T)``."""
        config = self.config
        layout = self._probe_layout(tasks)
        h = self._features(layout, chosen, n)
        units = h.shape[1]
        classes = self.model.max_classes
        logits = self.model.all_head_logits(h, chosen)
        logits = logits.gather(1, layout.head_rows.expand(n, classes, units)) + layout.mask
        gold = layout.gold
        unit_losses = F.cross_entropy(logits, gold.expand(n, units), reduction="none")
        probs = torch.softmax(logits, dim=1)
        values, best = padded_uncertainty(probs, layout.log_classes, config.measure)
        correct = (best == gold).float()
        bins = config.bins
        index = self._bin_index(values)
        spans = list(itertools.pairwise(layout.starts))
        if config.hard_size is None:
            counts = self._counts(index + layout.position * bins, len(tasks) * bins)
            sizes = np.repeat([b - a for a, b in spans], bins)
            freqs = counts / torch.as_tensor(sizes, dtype=torch.float64, device=self.device)
        else:
            freqs = torch.cat(
                [
                    self._frequencies(self._hardest(index[:, a:b], unit_losses[:, a:b]))
                    for a, b in spans
                ],
                dim=1,
            )
        hist = freqs.to(torch.float32).view(n, len(tasks), bins)
        loss = torch.stack([unit_losses[:, a:b].mean(dim=1) for a, b in spans], 1)
        acc = torch.stack([correct[:, a:b].mean(dim=1) for a, b in spans], 1)
        return hist, loss, acc

    def _probe_equal_pools(
        self, tasks: tuple[int, ...], chosen: torch.Tensor | None, n: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The probe pass when every probed task's pool has the same size ``L``: each task's
        head runs on its own units only, and the ``T * n`` (task, replica) rows share one
        layout ``(T * n, C, L)``. Returns what `_probe_any_pools` returns."""
        config = self.config
        layout = self._probe_layout(tasks)
        h = self._features(layout, chosen, n)
        size, count = h.shape[1] // len(tasks), len(tasks)
        classes = self.model.max_classes
        logits = torch.empty(count, n, classes, size, device=self.device)
        weight, bias = self.model.head_weight, self.model.head_bias
        if chosen is not None:
            weight, bias = weight[chosen], bias[chosen]
        for t, k in enumerate(tasks):
            torch.baddbmm(
                (bias[:, k] + self.model.class_mask[k]).unsqueeze(2),
                weight[:, k],
                h[:, t * size : (t + 1) * size].transpose(1, 2),
                out=logits[t],
            )
        logits = logits.view(count * n, classes, size)
        gold = layout.gold.view(count, 1, size).expand(count, n, size).reshape(-1, size)
        log_classes = layout.log_classes.view(count, 1, size)[:, :, :1]
        log_classes = log_classes.expand(count, n, 1).reshape(-1, 1)
        unit_losses = F.cross_entropy(logits, gold, reduction="none")
        probs = torch.softmax(logits, dim=1)
        values, best = padded_uncertainty(probs, log_classes, config.measure)
        index = self._bin_index(values)
        if config.hard_size is not None:
            index = self._hardest(index, unit_losses)
        freqs = self._frequencies(index)
        hist = freqs.to(torch.float32).view(count, n, config.bins).transpose(0, 1)
        loss = unit_losses.mean(dim=1).view(count, n).T
        acc = (best == gold).float().mean(dim=1).view(count, n).T
        return hist, loss, acc

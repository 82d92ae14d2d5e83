"""Scoring a model on a split of its tasks (`evaluate_tasks`), on evaluation batches collated
once (`EvalBatches`, which also holds the probe pools), and the validation choice of a Q-MTL
head (`select_heads`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtl_sched.data.task import Task
from mtl_sched.errors import NonFiniteLossError
from mtl_sched.metrics import task_score
from mtl_sched.models.base import Batch, MTLModel, to_device
from mtl_sched.models.qmtl import QMTLHead
from mtl_sched.observation.probing import ProbeConfig, probe_pool_indices
from mtl_sched.scheduling import EvalResult
from mtl_sched.training.sampler import Columns, materialize, take_rows

__all__ = ["EvalBatches", "evaluate_tasks", "select_heads"]


class EvalBatches:
    """The evaluation and probe batches of a model's tasks, collated on first use and kept on
    the device for every later evaluation.

    :param model: the model whose ``collate`` builds the batches.
    :param tasks: its tasks, in the model's order.
    :param device: where the batches live.
    :param batch_size: examples per batch.
    """

    def __init__(
        self, model: MTLModel, tasks: Sequence[Task], device: torch.device, batch_size: int
    ) -> None:
        self.model = model
        self.tasks = list(tasks)
        self.task_names = tuple(t.name for t in tasks)
        self.device = device
        self.batch_size = batch_size
        self._splits: dict[tuple[int, str, int | None], list[Batch]] = {}
        self._pools: dict[tuple[int, int, str], list[Batch]] = {}

    def _collated(self, k: int, columns: Columns, n: int) -> list[Batch]:
        """The first ``n`` rows of task ``k``'s ``columns`` as batches on the device."""
        step = self.batch_size
        name = self.task_names[k]
        return [
            to_device(
                self.model.collate(name, take_rows(columns, slice(i, min(i + step, n)))),
                self.device,
            )
            for i in range(0, n, step)
        ]

    def split(self, k: int, split: str, limit: int | None = None) -> list[Batch]:
        """Task ``k``'s split ``split`` (its first ``limit`` examples when given) as batches.

        :param k: task index.
        :param split: ``"validation"`` or ``"test"``.
        :param limit: examples to keep (``None``: all).
        """
        key = (k, split, limit)
        if key not in self._splits:
            size = self.tasks[k].size(split)
            n = size if limit is None else min(limit, size)
            self._splits[key] = self._collated(k, materialize(self.tasks[k].split(split)), n)
        return self._splits[key]

    def probe_pool(self, k: int, config: ProbeConfig) -> np.ndarray:
        """Indices of task ``k``'s validation examples in its probe pool (`probe_pool_indices`).

        A classification task whose validation split has an integer ``label`` column is
        stratified by it; other tasks (labels per token) get an evenly spread pool.

        :param k: task index.
        :param config: probe settings.
        """
        task = self.tasks[k]
        size = task.size("validation")
        labels = None
        if (
            config.selection == "stratified"
            and config.pool_size is not None
            and config.pool_size < size
            and task.kind == "classification"
        ):
            split = task.split("validation")
            if "label" in split.column_names:
                labels = np.asarray(split.with_format("numpy")["label"]).reshape(-1)
                if labels.shape[0] != size or not np.issubdtype(labels.dtype, np.integer):
                    labels = None
        return probe_pool_indices(size, config.pool_size, config.selection, labels)

    def probe(self, k: int, config: ProbeConfig) -> list[Batch]:
        """Task ``k``'s probe pool (`probe_pool`) as batches.

        :param k: task index.
        :param config: probe settings.
        """
        size = self.tasks[k].size("validation")
        if config.pool_size is None or config.pool_size >= size:
            return self.split(k, "validation")
        if config.selection == "first":
            return self.split(k, "validation", config.pool_size)
        key = (k, config.pool_size, config.selection)
        if key not in self._pools:
            pool = self.probe_pool(k, config)
            rows = take_rows(materialize(self.tasks[k].split("validation")), pool)
            self._pools[key] = self._collated(k, rows, len(pool))
        return self._pools[key]


@torch.no_grad()
def evaluate_tasks(model: MTLModel, batches: EvalBatches, split: str, step: int) -> EvalResult:
    """Mean unit loss and the metric of every task on ``split``.

    The metric is unit accuracy for ``"accuracy"`` tasks; for the others the model's ``decode``
    predicts every example, scored against the task's reference column by
    `mtl_sched.metrics.task_score`. On validation, Q-MTL heads are chosen first (`select_heads`).
    The model's training mode is restored afterwards.

    :param model: the model to score.
    :param batches: its tasks' batches.
    :param split: ``"validation"`` or ``"test"``.
    :param step: training steps taken so far (named by a non-finite loss's error).
    :raises NonFiniteLossError: naming the first task whose loss is not finite.
    """
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()
    losses, scores, unit_accuracies = [], [], []
    try:
        if split == "validation":
            select_heads(model, batches)
        for k, (task, name) in enumerate(zip(batches.tasks, batches.task_names, strict=True)):
            decodes = task.metric != "accuracy"
            if decodes and not hasattr(model, "decode"):
                raise TypeError(
                    f"task {name!r} is scored by {task.metric!r}, which needs the model's "
                    f"decode(task, batch); {type(model).__name__} has none"
                )
            total_loss, correct, units = 0.0, 0, 0
            predictions: list = []
            for batch in batches.split(k, split):
                out = model.task_output(name, batch)
                total_loss += float(out.losses().sum())
                correct += int((out.logits.argmax(dim=-1) == out.targets).sum())
                units += int(out.targets.numel())
                if decodes:
                    predictions.extend(model.decode(name, batch))  # type: ignore[attr-defined]
            if units == 0:
                raise ValueError(f"task {name!r}: split {split!r} has no prediction units to score")
            if not np.isfinite(total_loss):
                raise NonFiniteLossError(name, step, split, total_loss)
            losses.append(total_loss / units)
            unit_accuracies.append(correct / units)
            if decodes:
                references = task.split(split)[:][task.reference_column]
                scores.append(task_score(task, predictions, references))
            else:
                scores.append(unit_accuracies[-1])
    finally:
        model.train(was_training)
    return EvalResult(
        split=split,
        losses=np.asarray(losses),
        scores=np.asarray(scores),
        metric_names=tuple(t.metric for t in batches.tasks),
        unit_accuracies=np.asarray(unit_accuracies),
    )


def select_heads(model: MTLModel, batches: EvalBatches) -> None:
    """Point every Q-MTL head with ``combine="select"`` at its head most accurate on the whole
    validation split (PTA's model selection); the choice is a buffer of the head, so a copy of
    the model kept as best keeps its choice.

    :param model: the model; it has no such head for most methods, and then nothing changes.
    :param batches: its tasks' batches.
    """
    selecting = [
        m
        for m in getattr(model, "modules", lambda: [])()
        if isinstance(m, QMTLHead) and m.combine == "select"
    ]
    names = batches.task_names
    for head in selecting:
        k = next(
            (
                k
                for k, name in enumerate(names)
                if any(p is head.W for p in model.task_parameters(name))
            ),
            None,
        )
        if k is None:
            raise ValueError("a Q-MTL head with combine='select' belongs to no task")
        correct = torch.zeros(head.k)
        for batch in batches.split(k, "validation"):
            out = model.task_output(names[k], batch)
            if out.head_log_probabilities is None:
                raise TypeError(f"task {names[k]!r} reports no per-head outputs")
            guesses = out.head_log_probabilities.argmax(dim=-1)
            correct += (guesses == out.targets.unsqueeze(0)).sum(dim=1).cpu()
        head.selected.fill_(int(correct.argmax()))

"""Leave-one-out transfer of a frozen shared encoder to an unseen task (seed 002, 5.1, Table 3).

A multi-task model trained without task T (see `Benchmark.without_task`) is frozen; a new,
randomly initialized linear-softmax layer is trained on its shared features of T's examples and
scored by k-fold cross-validation over all of T's examples (train, validation and test pooled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtl_sched.data.task import SPLITS, Task
from mtl_sched.models.base import to_device
from mtl_sched.scheduling import NonFiniteLossError

Rows = datasets.Dataset | Mapping[str, Sequence[Any]]


def _feature_method(model: nn.Module) -> Any:
    method = getattr(model, "features", None)
    if not callable(method):
        raise TypeError(
            f"{type(model).__name__} has no features(batch) method returning the shared "
            "representation; leave-one-out transfer needs one"
        )
    return method


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _num_rows(rows: Rows) -> int:
    if isinstance(rows, datasets.Dataset):
        return len(rows)
    return len(next(iter(rows.values()))) if rows else 0


def _row_slice(rows: Rows, start: int, stop: int) -> Mapping[str, Any]:
    if isinstance(rows, datasets.Dataset):
        return rows[start:stop]
    return {column: values[start:stop] for column, values in rows.items()}


def shared_features(
    model: nn.Module,
    task: Task,
    rows: Rows,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The frozen shared representation of ``rows`` of ``task``, shape ``(N, D)``.

    Rows are collated by the model under ``task``'s name (the model needs no head for it) and
    run through its ``features(batch)`` in eval mode under ``torch.no_grad()``. The model's
    parameters are left untouched and the train/eval mode of each of its modules is restored.

    :param model: a multi-task model with ``collate(task, rows)`` and ``features(batch)``.
    :param task: the task the rows belong to.
    :param rows: a dataset of the task, or its columns (column name -> values).
    :param batch_size: rows per forward pass.
    :param device: where to compute the features (the model is moved there for the pass and
        back afterwards); ``None`` for the device the model is on.
    :raises TypeError: when the model has no ``features(batch)``.
    """
    features = _feature_method(model)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    home = _model_device(model)
    target = home if device is None else torch.device(device)
    modes = {module: module.training for module in model.modules()}
    parts: list[torch.Tensor] = []
    try:
        model.to(target)
        model.eval()
        with torch.no_grad():
            total = _num_rows(rows)
            for start in range(0, total, batch_size):
                chunk = _row_slice(rows, start, min(start + batch_size, total))
                batch = to_device(model.collate(task.name, chunk), target)
                parts.append(features(batch).detach())
    finally:
        model.to(home)
        for module, training in modes.items():
            module.training = training
    if not parts:
        raise ValueError(f"task {task.name!r}: no rows to compute features of")
    return torch.cat(parts)


def fold_indices(num_examples: int, folds: int, seed: int) -> list[np.ndarray]:
    """A shuffled partition of ``range(num_examples)`` into ``folds`` near-equal test folds.

    Fold sizes differ by at most one and every example is in exactly one fold.

    :param num_examples: examples to split.
    :param folds: number of folds (at least 2, at most ``num_examples``).
    :param seed: seed of the shuffle (``numpy.random.default_rng``).
    :raises ValueError: naming ``folds`` when it is out of range.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2; got {folds}")
    if folds > num_examples:
        raise ValueError(f"folds ({folds}) exceeds the number of examples ({num_examples})")
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.array_split(order, folds)


def _check_classification(task: Task) -> None:
    if task.kind != "classification" or task.metric != "accuracy":
        raise ValueError(
            f"task {task.name!r} is a {task.kind} task scored by {task.metric}; leave-one-out "
            "transfer supports classification tasks scored by accuracy only"
        )


def _pooled_labels(task: Task) -> torch.Tensor:
    labels = []
    for split in SPLITS:
        dataset = task.split(split)
        if "label" not in dataset.column_names:
            raise ValueError(f"task {task.name!r}: split {split!r} has no 'label' column")
        labels.append(torch.as_tensor(np.asarray(dataset["label"], dtype=np.int64)))
    pooled = torch.cat(labels)
    if len(pooled) and (int(pooled.min()) < 0 or int(pooled.max()) >= task.num_classes):
        raise ValueError(
            f"task {task.name!r}: labels must lie in [0, {task.num_classes}); "
            f"got [{int(pooled.min())}, {int(pooled.max())}]"
        )
    return pooled


def _fit_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seed: int,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    task: str,
    fold: int,
) -> nn.Linear:
    """A new linear-softmax layer trained full-batch with Adam on ``features``.

    :raises NonFiniteLossError: naming ``task``, ``fold`` and the first step whose loss is NaN
        or infinite (checked once, after the loop, so that the steps need no host transfer).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.Linear(features.shape[1], num_classes)
    layer.to(features.device)
    optimizer = torch.optim.Adam(layer.parameters(), lr=learning_rate, weight_decay=weight_decay)
    losses = torch.empty(epochs, dtype=features.dtype, device=features.device)
    for step in range(epochs):
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(features), labels)
        loss.backward()
        optimizer.step()
        losses[step] = loss.detach()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        step = int(bad[0, 0])
        where = f"fold {fold}, new linear layer"
        raise NonFiniteLossError(task, step, "training", float(losses[step]), where=where)
    return layer


def cross_validated_transfer(
    model: nn.Module,
    task: Task,
    *,
    seed: int,
    folds: int = 5,
    epochs: int = 100,
    learning_rate: float = 0.05,
    weight_decay: float = 0.0,
    device: str | torch.device | None = None,
) -> list[float]:
    """Test accuracies of a new linear layer on frozen shared features, by cross-validation.

    All of ``task``'s examples (train, validation and test pooled) are encoded once by the
    frozen model (see `shared_features`) and split into ``folds`` folds (`fold_indices`); for
    each fold, a randomly initialized ``nn.Linear(D, num_classes)`` (seeded from ``seed`` and
    the fold index) is trained full-batch with Adam on the other folds and scored on it.

    :param model: the shared model trained without ``task``; it needs ``features(batch)``.
    :param task: the left-out task: classification scored by accuracy, labels in a
        ``"label"`` column.
    :param seed: seed of the fold assignment and of each fold's layer initialization.
    :param folds: number of cross-validation folds.
    :param epochs: full-batch optimizer steps per fold.
    :param learning_rate: Adam learning rate of the new layer.
    :param weight_decay: Adam weight decay (L2) of the new layer.
    :param device: where features and layers are computed; ``None`` for the model's device.
    :returns: the test accuracy of each fold, in fold order.
    :raises TypeError: when the model has no ``features(batch)``.
    :raises ValueError: for a task other than single-label classification, or bad ``folds``.
    :raises NonFiniteLossError: naming the task, the fold and the first step of the new layer's
        training whose loss is NaN or infinite (e.g. from non-finite shared features).
    """
    _feature_method(model)
    _check_classification(task)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}")
    labels = _pooled_labels(task)
    parts = fold_indices(len(labels), folds, seed)
    features = torch.cat(
        [shared_features(model, task, task.split(split), device=device) for split in SPLITS]
    )
    labels = labels.to(features.device)
    fold_seeds = np.random.SeedSequence(seed).spawn(folds)
    accuracies = []
    for k, test in enumerate(parts):
        train = np.concatenate([part for j, part in enumerate(parts) if j != k])
        train_index = torch.as_tensor(train, device=features.device)
        test_index = torch.as_tensor(test, device=features.device)
        layer = _fit_linear(
            features[train_index],
            labels[train_index],
            task.num_classes,
            seed=int(fold_seeds[k].generate_state(1)[0]),
            epochs=epochs,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            task=task.name,
            fold=k,
        )
        with torch.no_grad():
            predictions = layer(features[test_index]).argmax(dim=-1)
        accuracies.append(float((predictions == labels[test_index]).float().mean()))
    return accuracies

"""A shared MLP encoder with one linear classification head per task."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_sched.models.base import Batch, TaskModules, TaskOutput


class SharedMLP(nn.Module):
    """Hard parameter sharing over dense inputs: ``head_k(encoder(x))``.

    Rows must carry an ``"x"`` column (float vectors of ``input_dim``) and a ``"label"`` column.

    :param input_dim: input feature dimension.
    :param task_classes: task name -> number of classes, in task order.
    :param hidden_sizes: widths of the shared encoder's hidden layers (ReLU after each).
    :param dropout: dropout after each hidden layer (0 disables it).
    """

    def __init__(
        self,
        input_dim: int,
        task_classes: Mapping[str, int],
        hidden_sizes: Sequence[int] = (64, 32),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not task_classes:
            raise ValueError("SharedMLP needs at least one task")
        self.task_names: tuple[str, ...] = tuple(task_classes)
        layers: list[nn.Module] = []
        width = input_dim
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.encoder = nn.Sequential(*layers)
        self.heads = TaskModules({name: nn.Linear(width, c) for name, c in task_classes.items()})
        self.input_dim = input_dim

    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        x = torch.as_tensor(np.asarray(rows["x"], dtype=np.float32))
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"task {task!r}: expected inputs of shape (N, {self.input_dim}); "
                f"got {tuple(x.shape)}"
            )
        y = torch.as_tensor(np.asarray(rows["label"], dtype=np.int64))
        return {"x": x, "label": y}

    def features(self, batch: Batch) -> torch.Tensor:
        """The shared encoder's output, ``(B, width)`` (the inputs when there are no layers).

        :param batch: a batch from `collate`.
        """
        return self.encoder(batch["x"])

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        logits = self.heads[task](self.features(batch))
        return TaskOutput(logits=logits, targets=batch["label"])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The weight of the encoder's last linear layer, whose output every head reads.

        :raises ValueError: when the encoder has no layers (``hidden_sizes=()``).
        """
        linears = [m for m in self.encoder if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("this SharedMLP has no shared layer (hidden_sizes is empty)")
        return [linears[-1].weight]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()

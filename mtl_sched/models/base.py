"""The `MTLModel` protocol: what the trainer, the environment and every scheduler rely on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

Batch = dict[str, torch.Tensor]


@dataclass
class TaskOutput:
    """A model's predictions for one task on one batch, flattened to prediction units.

    A unit is an example for classification, a token for tagging and a target token for
    seq2seq; losses, accuracies and uncertainty histograms are all computed per unit.

    :param logits: unnormalized scores, shape ``(U, C)``.
    :param targets: gold labels, shape ``(U,)``.
    :param unit_losses: per-unit losses when the head defines its own (e.g. a CRF); cross-entropy
        of ``logits`` against ``targets`` otherwise.
    :param head_log_probabilities: each head's log-probabilities, ``(k, U, C)``, when the task
        has several identical-task heads (a `QMTLHead`); the trainer selects among them by
        validation accuracy under ``combine="select"``.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    unit_losses: torch.Tensor | None = None
    head_log_probabilities: torch.Tensor | None = None

    def losses(self) -> torch.Tensor:
        """Per-unit losses, shape ``(U,)``."""
        if self.unit_losses is not None:
            return self.unit_losses
        return F.cross_entropy(self.logits, self.targets, reduction="none")

    def loss(self) -> torch.Tensor:
        """Mean loss over units (a scalar)."""
        return self.losses().mean()

    def probabilities(self) -> torch.Tensor:
        """Class probabilities, shape ``(U, C)``."""
        return torch.softmax(self.logits, dim=-1)


@runtime_checkable
class MTLModel(Protocol):
    """A multi-task network: a shared part and one head per task (hard parameter sharing).

    Implementations are ``torch.nn.Module`` subclasses (the trainer uses ``parameters``,
    ``state_dict``, ``load_state_dict``, ``train``/``eval`` and ``to``) that also provide the
    methods below. Models with tasks scored by a metric other than unit accuracy (span F1,
    BLEU) also define ``decode(task, batch) -> list``: one prediction per example of the batch,
    in row order, of the type of the task's ``reference_column`` (e.g. Viterbi tag ids, a
    detokenized translation). Models may also define ``task_outputs(requests)``, the outputs of
    several ``(task, batch)`` pairs from one pass through the shared part (see `task_outputs`).

    Models trained with GradNorm (``gradnorm``) also define ``last_shared_layer() ->
    Sequence[nn.Parameter]``: the weights of the last layer of the shared part whose output
    every task's head reads in full, all of them members of `shared_parameters`. GradNorm
    balances the norms of the task losses' gradients with respect to these parameters taken
    together; it cannot infer them (the last matrix of `shared_parameters` may be a
    component that each task reads only a block of, such as a CRF's transition scores), so a
    model without the method makes it raise `MissingSharedLayerError`. For a BiLSTM encoder
    these are the input and recurrent weights of its top layer in both directions
    (`BiLSTMEncoder.top_layer_weights`); for an MLP, the weight of its last linear layer.
    """

    task_names: Sequence[str]

    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        """Turn rows of the task's dataset (column name -> values) into a batch of tensors."""
        ...

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        """Forward one batch of ``task`` through the shared part and that task's head."""
        ...

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used by every task."""
        ...

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Parameters used by ``task`` alone."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


LAST_SHARED_LAYER_METHOD = "last_shared_layer"


class MissingSharedLayerError(TypeError):
    """A model does not name its last shared layer (it has no ``last_shared_layer`` method)."""


def last_shared_layer(model: MTLModel) -> list[nn.Parameter]:
    """The parameters the model names as its last shared layer (see `MTLModel`).

    :param model: the multi-task model.
    :raises MissingSharedLayerError: when the model has no ``last_shared_layer`` method.
    :raises ValueError: when the method returns no parameters, or a parameter that is not
        among the model's `shared_parameters`.
    """
    method = getattr(model, LAST_SHARED_LAYER_METHOD, None)
    if not callable(method):
        raise MissingSharedLayerError(
            f"{type(model).__name__} does not name its last shared layer: add a method "
            f"`{LAST_SHARED_LAYER_METHOD}(self) -> Sequence[nn.Parameter]` returning the "
            "weights of the last layer of the shared part whose output every task head reads "
            "(see the MTLModel protocol)"
        )
    parameters = list(method())
    if not parameters:
        raise ValueError(f"{type(model).__name__}.{LAST_SHARED_LAYER_METHOD}() returned nothing")
    shared = {id(p) for p in model.shared_parameters()}
    if any(id(p) not in shared for p in parameters):
        raise ValueError(
            f"{type(model).__name__}.{LAST_SHARED_LAYER_METHOD}() returned a parameter that is "
            "not among its shared_parameters()"
        )
    return parameters


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor of ``batch`` to ``device``."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def stack_batches(batches: Sequence[Batch], pad_values: Mapping[str, int]) -> Batch:
    """The ``pad_values`` keys of several batches, right-padded to common sizes and stacked.

    Every dimension after the first is padded to the largest size among the batches (a
    sentence's tokens, a word's characters), so that one pass of a shared encoder serves them
    all; split its output with ``[len(b[key]) for b in batches]``.

    :param batches: collated batches with the same keys.
    :param pad_values: key -> the value its padding takes (keys absent from the batches are
        skipped).
    """
    stacked: Batch = {}
    for key, value in pad_values.items():
        if key not in batches[0]:
            continue
        tensors = [b[key] for b in batches]
        sizes = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
        padded = []
        for t in tensors:
            # F.pad lists (before, after) pairs from the last dimension backwards
            widths = [
                w for d in reversed(range(1, t.dim())) for w in (0, sizes[d - 1] - t.shape[d])
            ]
            padded.append(F.pad(t, widths, value=value) if any(widths) else t)
        stacked[key] = torch.cat(padded)
    return stacked


def task_outputs(model: MTLModel, requests: Sequence[tuple[str, Batch]]) -> list[TaskOutput]:
    """The outputs of several ``(task, batch)`` pairs, in order.

    Uses the model's own ``task_outputs`` when it has one: a model whose shared part runs once
    over all the batches together (one long recurrent pass instead of one per task) makes
    multi-task training steps and the probe pass much cheaper. Otherwise ``task_output`` is
    called per pair. The trainer's steps and the probe pass both come through here.

    :param model: the multi-task model.
    :param requests: ``(task name, batch)`` pairs; a task may appear more than once.
    """
    batched = getattr(model, "task_outputs", None)
    if batched is not None and len(requests) > 1:
        return list(batched(requests))
    return [model.task_output(task, batch) for task, batch in requests]


class TaskModules(nn.ModuleDict):
    """A ``ModuleDict`` keyed by task name.

    Task names may contain ``.`` (the UD treebank ``eu_bdt_v1.4``), which torch forbids in
    module names, so each name is stored with ``.`` escaped as ``_dot_``; lookups, membership
    and iteration use the task names themselves.

    :param modules: task name -> its module.
    """

    def __init__(self, modules: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        for name, module in (modules or {}).items():
            self[name] = module

    @staticmethod
    def _stored(task: str) -> str:
        return task.replace(".", "_dot_")

    @staticmethod
    def _task(stored: str) -> str:
        return stored.replace("_dot_", ".")

    def __getitem__(self, task: str) -> nn.Module:
        return super().__getitem__(self._stored(task))

    def __setitem__(self, task: str, module: nn.Module) -> None:
        super().__setitem__(self._stored(task), module)

    def __delitem__(self, task: str) -> None:
        super().__delitem__(self._stored(task))

    def __contains__(self, task: object) -> bool:
        return isinstance(task, str) and super().__contains__(self._stored(task))

    def __iter__(self) -> Iterator[str]:
        return (self._task(stored) for stored in super().__iter__())

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(self)

    def items(self) -> list[tuple[str, nn.Module]]:  # type: ignore[override]
        return [(self._task(stored), module) for stored, module in super().items()]

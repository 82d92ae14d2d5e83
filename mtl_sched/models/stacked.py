"""Several replicas of a `SharedMLP` trained as one batched model.

`StackedSharedMLP` holds ``N`` independently initialized copies (replicas) of one `SharedMLP`
as stacked tensors: every weight gains a leading replica dimension and every layer runs as one
batched matrix product (``torch.baddbmm``) over the replicas. At each step every replica trains
on its own minibatch of its own task. The replicas share no parameter, so the gradient of the
sum of their losses is, replica by replica, the gradient of each replica's own loss.

`StackedOptimizer` (`mtl_sched.models.stacked_optimizer`, importable from here too) applies Adam
(or plain SGD) with per-replica state, so that replica ``i`` follows the trajectory of the same
model trained alone by `mtl_sched.training.Trainer`, up to floating-point rounding (batched and
single matrix products may round differently).

Only models whose computation is known to split this way are stacked: `stacking_problem` says
why a model is not (another model class, a layer other than ``Linear``/``ReLU``, active
dropout, whose masks would have to follow the trainer's per-step random stream).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtl_sched.models.base import MTLModel, TaskModules
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.models.stacked_optimizer import OptimizerKind, StackedOptimizer

__all__ = [
    "OptimizerKind",
    "StackedOptimizer",
    "StackedSharedMLP",
    "can_stack",
    "stacking_problem",
]


def stacking_problem(model: MTLModel) -> str | None:
    """Why ``model`` cannot be trained as a replica of a `StackedSharedMLP`; ``None`` if it can.

    :param model: a model built by a benchmark.
    """
    if type(model) is not SharedMLP:
        return f"{type(model).__name__} is not a SharedMLP"
    for layer in model.encoder:
        if isinstance(layer, nn.Dropout) and layer.p == 0:
            continue
        if not isinstance(layer, (nn.Linear, nn.ReLU)):
            return f"the encoder has a {type(layer).__name__} layer (only Linear and ReLU stack)"
    for name in model.task_names:
        if not isinstance(model.heads[name], nn.Linear):
            return f"the head of task {name!r} is not a Linear layer"
    return None


def can_stack(model: MTLModel) -> bool:
    """Whether ``model`` can be trained as a replica of a `StackedSharedMLP`.

    :param model: a model built by a benchmark.
    """
    return stacking_problem(model) is None


class StackedSharedMLP:
    """``N`` replicas of a `SharedMLP` as stacked parameters, evaluated by batched products.

    Encoder weights are stored as ``(N, out, in)`` and biases as ``(N, out)``, each replica's
    slice laid out as the ``nn.Linear`` it copies. The task heads of all replicas form one
    tensor ``(N, K, C, width)`` (biases ``(N, K, C)``), ``C`` the largest class count: the rows
    of a task with fewer classes are padding, kept at 0 (their gradient is always 0) and masked
    out of the logits by `class_mask`, so every replica can train a different task in one
    batched product.

    :param template: a model of the architecture to replicate (its weights are not used).
    :param num_replicas: the number of replicas ``N``.
    :param device: where the parameters live.
    """

    def __init__(
        self, template: SharedMLP, num_replicas: int, device: torch.device | str = "cpu"
    ) -> None:
        problem = stacking_problem(template)
        if problem is not None:
            raise TypeError(f"cannot stack this model: {problem}")
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be at least 1; got {num_replicas}")
        self.num_replicas = num_replicas
        self.device = torch.device(device)
        self.task_names: tuple[str, ...] = tuple(template.task_names)
        self.input_dim = template.input_dim
        self._encoder_names = [
            f"encoder.{i}"
            for i, layer in enumerate(template.encoder)
            if isinstance(layer, nn.Linear)
        ]
        self._head_names = [f"heads.{TaskModules._stored(name)}" for name in self.task_names]
        n = num_replicas
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for name in self._encoder_names:
            layer = template.encoder[int(name.split(".")[1])]
            weight = torch.zeros((n, *layer.weight.shape), device=self.device)
            bias = torch.zeros((n, layer.out_features), device=self.device)
            self.layers.append((weight, bias))
        heads = [template.heads[name] for name in self.task_names]
        self.num_classes = tuple(int(head.out_features) for head in heads)
        num_tasks, classes = len(heads), max(self.num_classes)
        width = heads[0].in_features
        self.head_weight = torch.zeros((n, num_tasks, classes, width), device=self.device)
        self.head_bias = torch.zeros((n, num_tasks, classes), device=self.device)
        mask = torch.zeros(num_tasks, classes, device=self.device)
        for k, c in enumerate(self.num_classes):
            mask[k, c:] = float("-inf")
        self.class_mask = mask
        """``(K, C)``: 0 for a task's classes, minus infinity for its padding rows."""

    @property
    def max_classes(self) -> int:
        """``C``, the largest class count of the tasks (the heads' padded size)."""
        return self.head_bias.shape[-1]

    def parameters(self) -> list[torch.Tensor]:
        """Every stacked parameter: the encoder's layers, then the heads' weights and biases."""
        return [*self.encoder_parameters(), self.head_weight, self.head_bias]

    @torch.no_grad()
    def load_replica(self, index: int, model: SharedMLP) -> None:
        """Copy the weights of ``model`` (same architecture) into replica ``index``.

        :param index: the replica.
        :param model: the model whose weights replica ``index`` takes.
        """
        state = model.state_dict()
        for name, (weight, bias) in zip(self._encoder_names, self.layers, strict=True):
            weight[index].copy_(state[f"{name}.weight"])
            bias[index].copy_(state[f"{name}.bias"])
        self.head_weight[index] = 0.0
        self.head_bias[index] = 0.0
        for k, (name, c) in enumerate(zip(self._head_names, self.num_classes, strict=True)):
            self.head_weight[index, k, :c].copy_(state[f"{name}.weight"])
            self.head_bias[index, k, :c].copy_(state[f"{name}.bias"])

    def state(self) -> list[torch.Tensor]:
        """Copies of every stacked parameter, in the order of `parameters` (see `load_state`)."""
        return [p.detach().clone() for p in self.parameters()]

    @torch.no_grad()
    def load_state(self, state: Sequence[torch.Tensor]) -> None:
        """Restore a `state` of a stacked model of the same architecture and replica count,
        in place (an optimizer of these parameters keeps training them).

        :param state: the stored parameters.
        """
        for p, stored in zip(self.parameters(), state, strict=True):
            p.copy_(stored)

    @torch.no_grad()
    def replica_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Replica ``index`` as a ``state_dict`` of the template's `SharedMLP` (copies).

        :param index: the replica.
        """
        state: dict[str, torch.Tensor] = {}
        for name, (weight, bias) in zip(self._encoder_names, self.layers, strict=True):
            state[f"{name}.weight"] = weight[index].detach().clone()
            state[f"{name}.bias"] = bias[index].detach().clone()
        for k, (name, c) in enumerate(zip(self._head_names, self.num_classes, strict=True)):
            state[f"{name}.weight"] = self.head_weight[index, k, :c].detach().clone()
            state[f"{name}.bias"] = self.head_bias[index, k, :c].detach().clone()
        return state

    def features(
        self,
        x: torch.Tensor,
        replicas: torch.Tensor | None = None,
        out: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The shared encoder's output of each replica, ``(n, B, width)``.

        :param x: inputs, ``(n, B, input_dim)`` (one set per replica) or ``(B, input_dim)`` (the
            same inputs for every replica).
        :param replicas: the ``n`` replica indices (``None``: all of them, in order).
        :param out: outside autograd, one preallocated ``(n, B, out)`` tensor per layer to
            compute into (reusing memory across calls spares the allocator large fresh
            buffers); the result is then the last of them.
        """
        n = self.num_replicas if replicas is None else len(replicas)
        h = x if x.dim() == 3 else x.expand(n, *x.shape)
        for i, (weight, bias) in enumerate(self.layers):
            if replicas is not None:
                weight, bias = weight[replicas], bias[replicas]
            if out is None:
                h = torch.relu(torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)))
            else:
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2), out=out[i])
                h.relu_()
        return h

    def feature_buffers(self, n: int, units: int) -> list[torch.Tensor]:
        """Empty outputs of every encoder layer for ``n`` replicas and ``units`` inputs, for
        `features`'s ``out``.

        :param n: replicas.
        :param units: inputs per replica.
        """
        return [torch.empty(n, units, w.shape[1], device=self.device) for w, _ in self.layers]

    @torch.no_grad()
    def losses_and_gradients(
        self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Each replica's mean cross-entropy on its own minibatch of its own task, and its
        gradients (back-propagated by hand: the layers are known, and a tape would cost more than
        the arithmetic at these sizes).

        :param x: inputs, ``(N, B, input_dim)``.
        :param y: labels, ``(N, B)``.
        :param tasks: the task index of each replica, ``(N,)`` (int64).
        :returns: the losses ``(N,)``; the gradients of the encoder's parameters, in the order of
            `encoder_parameters`; and those of each replica's trained head, ``(N, C, width)``
            and ``(N, C)`` (zero on padding rows).
        """
        rows = torch.arange(self.num_replicas, device=self.device)
        inputs = [x]
        h = x
        for weight, bias in self.layers:
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)).relu_()
            inputs.append(h)
        head_weight = self.head_weight[rows, tasks]
        head_bias = self.head_bias[rows, tasks] + self.class_mask[tasks]
        logits = torch.baddbmm(head_bias.unsqueeze(1), h, head_weight.transpose(1, 2))
        log_probs = torch.log_softmax(logits, dim=-1)
        target = y.unsqueeze(-1)
        losses = -log_probs.gather(-1, target).squeeze(-1).mean(dim=1)
        # d mean CE / d logits = (softmax - one-hot) / B
        grad = log_probs.exp_()
        grad.scatter_add_(-1, target, torch.full_like(target, -1.0, dtype=grad.dtype))
        grad.div_(x.shape[1])
        head_grads = [torch.bmm(grad.transpose(1, 2), h), grad.sum(dim=1)]
        grad = torch.bmm(grad, head_weight)
        encoder_grads: list[torch.Tensor] = []
        for i in reversed(range(len(self.layers))):
            weight, _ = self.layers[i]
            grad = grad.masked_fill_(inputs[i + 1] <= 0, 0.0)  # through the ReLU
            encoder_grads[:0] = [torch.bmm(grad.transpose(1, 2), inputs[i]), grad.sum(dim=1)]
            if i > 0:
                grad = torch.bmm(grad, weight)
        return losses, encoder_grads, head_grads

    def encoder_parameters(self) -> list[torch.Tensor]:
        """The encoder's stacked weights and biases, layer after layer."""
        return [p for pair in self.layers for p in pair]

    def all_head_logits(
        self, features: torch.Tensor, replicas: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Every task head's logits on ``features``, ``(n, K * C, B)`` (task after task, padding
        rows included and not masked).

        :param features: encoder outputs of the ``n`` replicas, ``(n, B, width)``.
        :param replicas: the ``n`` replica indices (``None``: all of them, in order).
        """
        weight, bias = self.head_weight, self.head_bias
        if replicas is not None:
            weight, bias = weight[replicas], bias[replicas]
        n = weight.shape[0]
        return torch.baddbmm(
            bias.reshape(n, -1, 1),
            weight.reshape(n, -1, weight.shape[-1]),
            features.transpose(1, 2),
        )

"""GradNorm (Chen et al. 2018): learn task weights that balance per-task gradient norms."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.models.base import MTLModel, last_shared_layer
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import CombineContext, Scheduler, Step, TrainState, weighted_sum


@register_scheduler
class GradNormScheduler(Scheduler):
    """Train every task every step with weights ``w_k`` tuned to balance gradient norms.

    With ``W`` the parameters of the model's last shared layer, at every step:
    ``G_k = ||grad_W (w_k L_k)||`` (the norm of the gradient with respect to all of ``W``'s
    tensors concatenated), ``Gbar = mean_k G_k``, ``r_k = Ltilde_k / mean_j Ltilde_j``
    with ``Ltilde_k = L_k(t) / L_k(0)`` (``L_k(0)`` the task's first training loss), and
    ``L_grad = sum_k |G_k - Gbar r_k^alpha|`` with the target treated as a constant. ``L_grad``
    is differentiated with respect to the ``w_k`` only and takes one step of the weights' own
    Adam optimizer; then the weights are floored at ``min_weight`` and renormalized to sum to
    ``K``. The network is trained on ``sum_k w_k L_k`` with the weights of the step's plan.

    ``W`` is what the model names: its ``last_shared_layer()`` method (see `MTLModel`), or the
    parameters that ``layer`` selects by name. A model with neither makes `combine` raise
    `MissingSharedLayerError`; the layer is never guessed.

    Because ``grad_W (w_k L_k) = w_k grad_W L_k`` (``w_k`` is a constant of the network loss),
    ``G_k`` is computed as ``w_k ||grad_W L_k||``: one extra backward pass per task down to
    ``W``, no second-order terms.

    :param alpha: asymmetry; how strongly tasks training slowly (high ``r_k``) are favoured
        (1.5 in the paper; 0.12 on its toy problem).
    :param weight_learning_rate: Adam learning rate of the task weights (ours, not the paper's;
        the paper uses the network's).
    :param min_weight: floor of every weight before renormalization, keeping them positive.
    :param layer: instead of the model's ``last_shared_layer()``, the shared parameters whose
        names in ``model.named_parameters()`` match any of these comma-separated shell-style
        patterns (e.g. ``"encoder.lstm.weight_*_l0*"``); every match must be a shared
        parameter, and at least one must match. ``None`` asks the model.
    """

    name = "gradnorm"
    description = "every task every step; weights learned to balance shared-layer gradient norms"
    source = "Chen et al. 2018 (GradNorm); seed 002, Tables 2, 5, 6"
    kind = "weighting"
    task_symmetric = True
    needs = frozenset({"model"})

    def __init__(
        self,
        alpha: float = 1.5,
        weight_learning_rate: float = 0.025,
        min_weight: float = 1e-3,
        layer: str | None = None,
    ) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative; got {alpha}")
        if not weight_learning_rate > 0:
            raise ValueError(f"weight_learning_rate must be positive; got {weight_learning_rate}")
        if not 0 < min_weight <= 1:
            raise ValueError(f"min_weight must be in (0, 1]; got {min_weight}")
        patterns = None if layer is None else [p.strip() for p in layer.split(",") if p.strip()]
        if patterns is not None and not patterns:
            raise ValueError(f"layer must name at least one parameter pattern; got {layer!r}")
        self.layer = layer
        self._layer_patterns = patterns
        self.alpha = alpha
        self.weight_learning_rate = weight_learning_rate
        self.min_weight = min_weight
        self.task_weights = torch.ones(0)
        self.initial_losses = np.zeros(0)
        self._weight_optimizer: torch.optim.Optimizer | None = None

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        self.task_weights = torch.ones(self.num_tasks, dtype=torch.float64, requires_grad=True)
        self._weight_optimizer = torch.optim.Adam([self.task_weights], lr=self.weight_learning_rate)
        self.initial_losses = np.full(self.num_tasks, np.nan)

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self.task_weights.detach().tolist())

    def shared_layer(self, model: MTLModel) -> list[nn.Parameter]:
        """The parameters ``W`` whose gradient norms are balanced (see the class docstring).

        :param model: the model being trained.
        :raises MissingSharedLayerError: when ``layer`` is ``None`` and the model has no
            ``last_shared_layer`` method.
        :raises ValueError: when ``layer`` matches no parameter, or a parameter that is not
            shared.
        """
        if model is None:
            raise ValueError("gradnorm needs the model being trained: combine(..., model=...)")
        if self._layer_patterns is None:
            return last_shared_layer(model)
        named = getattr(model, "named_parameters", None)
        if named is None:
            raise ValueError(f"layer={self.layer!r} needs a model with named_parameters()")
        shared = {id(p) for p in model.shared_parameters()}
        chosen: list[nn.Parameter] = []
        names: list[str] = []
        for name, parameter in named():
            if any(fnmatch.fnmatchcase(name, p) for p in self._layer_patterns):
                if id(parameter) not in shared:
                    raise ValueError(
                        f"layer={self.layer!r} matches {name!r}, which is not a shared parameter"
                    )
                chosen.append(parameter)
            elif id(parameter) in shared:
                names.append(name)
        if not chosen:
            raise ValueError(
                f"layer={self.layer!r} matches no parameter; shared parameters: {', '.join(names)}"
            )
        return chosen

    def shared_gradient_norms(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        """``||grad_W L_k||`` of every planned task (plan order), on the CPU, in float64, with
        the gradients of all of ``W``'s tensors concatenated."""
        shared = self.shared_layer(context.model)
        norms = []
        for loss in losses:
            grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            # the norm of the per-tensor norms is the norm of the concatenated gradient
            parts = [g.norm() for g in grads if g is not None]
            norms.append(
                torch.linalg.vector_norm(torch.stack(parts)) if parts else loss.new_zeros(())
            )
        return torch.stack(norms).detach().to("cpu", torch.float64)

    def combine(self, losses: torch.Tensor, context: CombineContext) -> torch.Tensor:
        if self._weight_optimizer is None:
            raise RuntimeError("GradNormScheduler.combine before reset")
        tasks = list(context.plan.tasks)
        current = losses.detach().to("cpu", torch.float64)
        for position, k in enumerate(tasks):
            if np.isnan(self.initial_losses[k]):
                self.initial_losses[k] = max(float(current[position]), 1e-12)
        norms = self.shared_gradient_norms(losses, context)
        weights = self.task_weights[tasks]
        grad_norms = weights * norms
        mean_norm = grad_norms.mean().detach()
        relative = current / torch.as_tensor(self.initial_losses[tasks])
        inverse_rate = relative / relative.mean()
        target = mean_norm * inverse_rate**self.alpha
        gradnorm_loss = (grad_norms - target).abs().sum()
        self._weight_optimizer.zero_grad(set_to_none=True)
        gradnorm_loss.backward()
        self._weight_optimizer.step()
        with torch.no_grad():
            self.task_weights.clamp_(min=self.min_weight)
            self.task_weights.mul_(self.num_tasks / self.task_weights.sum())
        return weighted_sum(losses, context.plan)

"""Quasi-multitask learning (Q-MTL, seeds 000 and 001): k identical-task heads on one input.

Head j computes ``y_j = softmax(ReLU(h V_j + b_Vj) W_j + b_Wj)`` (seed 000, eq. 2), with
``V_j`` of shape ``in_features x hidden`` and ``W_j`` of shape ``hidden x num_classes``; with
``hidden=0`` it is the pseudo-task-augmentation form ``softmax(h W_j + b_j)`` (eq. 5). Training
sums the k cross-entropies of each unit. Prediction either averages the k distributions (model
averaging, eq. 3: Q-MTL) or uses the one head best on development data (model selection: PTA).
With ``k=1`` the head is a single-task head.

The k heads are stored as stacked parameters (``V`` of shape ``k x in_features x hidden`` and so
on) and computed in one batched contraction, so their cost grows with k only in the small head
matrices, never by a Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mtl_sched.models.base import TaskOutput

Combine = Literal["average", "select"]


@dataclass(frozen=True)
class QMTLConfig:
    """Settings of the Q-MTL heads a model gives each task (see `QMTLHead`).

    :param k: heads per task.
    :param hidden: width of each head's ReLU layer; ``0`` for the PTA form.
    :param combine: ``"average"`` (Q-MTL) or ``"select"`` (PTA's model selection).
    """

    k: int = 10
    hidden: int = 20
    combine: Combine = "average"


class QMTLHead(nn.Module):
    """k classification heads over one shared representation, combined at prediction time.

    Each head is initialized as a ``torch.nn.Linear`` layer of the same shape would be (weights
    and biases uniform in ``+-1/sqrt(fan_in)``), one head after the other, from torch's global
    generator.

    :param in_features: width of the shared representation ``h``.
    :param num_classes: number of classes C.
    :param k: number of heads; ``k=1`` is single-task learning.
    :param hidden: width of each head's ReLU layer (seed 000 uses 20); ``0`` leaves the layer
        out (the PTA form).
    :param combine: ``"average"`` averages the k predicted distributions (Q-MTL);
        ``"select"`` predicts with the selected head (see `select_best`; PTA's model selection).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        k: int = 10,
        hidden: int = 20,
        combine: Combine = "average",
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"QMTLHead needs k >= 1 heads; got k={k}")
        if hidden < 0:
            raise ValueError(f"QMTLHead hidden must be >= 0; got {hidden}")
        if num_classes < 2:
            raise ValueError(f"QMTLHead needs at least 2 classes; got {num_classes}")
        if combine not in ("average", "select"):
            raise ValueError(f"combine must be 'average' or 'select'; got {combine!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.k = k
        self.hidden = hidden
        self.combine: Combine = combine
        classifier_in = hidden if hidden else in_features
        self.V: nn.Parameter | None = None
        self.b_V: nn.Parameter | None = None
        if hidden:
            self.V = nn.Parameter(torch.empty(k, in_features, hidden))
            self.b_V = nn.Parameter(torch.empty(k, hidden))
        self.W = nn.Parameter(torch.empty(k, classifier_in, num_classes))
        self.b_W = nn.Parameter(torch.empty(k, num_classes))
        # the head that predicts under combine="select"; saved with the model
        self.register_buffer("selected", torch.zeros((), dtype=torch.long))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize every head as a fresh ``nn.Linear`` pair would be."""
        with torch.no_grad():
            for j in range(self.k):
                if self.V is not None and self.b_V is not None:
                    _linear_init(self.V[j], self.b_V[j], fan_in=self.in_features)
                _linear_init(self.W[j], self.b_W[j], fan_in=self.W.shape[1])

    # ------------------------------------------------------------------------- per head
    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Every head's logits, shape ``(k, *h.shape[:-1], C)``.

        :param h: the shared representation, ``(..., in_features)``.
        """
        if h.shape[-1] != self.in_features:
            raise ValueError(
                f"QMTLHead expects inputs of width {self.in_features}; got {tuple(h.shape)}"
            )
        flat = h.reshape(-1, self.in_features)
        if self.V is not None and self.b_V is not None:
            flat = torch.relu(torch.einsum("ni,kih->knh", flat, self.V) + self.b_V[:, None])
            logits = torch.bmm(flat, self.W) + self.b_W[:, None]
        else:
            logits = torch.einsum("ni,kic->knc", flat, self.W) + self.b_W[:, None]
        return logits.reshape(self.k, *h.shape[:-1], self.num_classes)

    def head_log_probabilities(self, h: torch.Tensor) -> torch.Tensor:
        """Every head's log-distribution, ``(k, ..., C)``.

        :param h: the shared representation, ``(..., in_features)``.
        """
        return F.log_softmax(self.head_logits(h), dim=-1)

    def head_predictions(self, h: torch.Tensor) -> torch.Tensor:
        """Every head's predicted class, ``(k, ...)`` (per-head diagnostics).

        :param h: the shared representation, ``(..., in_features)``.
        """
        return self.head_logits(h).argmax(dim=-1)

    def frobenius_norms(self) -> dict[str, torch.Tensor]:
        """Each head's Frobenius norm of ``V`` and of ``W``, shape ``(k,)`` each.

        Without the ReLU layer (``hidden=0``) only ``"W"`` is present.
        """
        with torch.no_grad():
            norms = {"W": torch.linalg.matrix_norm(self.W)}
            if self.V is not None:
                norms["V"] = torch.linalg.matrix_norm(self.V)
        return norms

    # --------------------------------------------------------------------- combination
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The combined prediction as log-probabilities, ``(..., C)``.

        Under ``"average"``: ``log((1/k) sum_j y_j)``; under ``"select"``: the selected
        head's ``log y_j``. Either way ``softmax`` of the result is the predicted distribution.

        :param h: the shared representation, ``(..., in_features)``.
        """
        return self._combined(self.head_log_probabilities(h))

    def unit_losses(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of each unit: cross-entropy summed over the k heads, ``(...)``.

        :param h: the shared representation, ``(..., in_features)``.
        :param targets: gold classes, ``h.shape[:-1]``.
        """
        return self._summed_losses(self.head_log_probabilities(h), targets)

    def output(self, h: torch.Tensor, targets: torch.Tensor) -> TaskOutput:
        """A `TaskOutput` over the units of ``h``: combined prediction, summed loss.

        :param h: the shared representation of U units, ``(U, in_features)``.
        :param targets: gold classes, ``(U,)``.
        """
        log_probabilities = self.head_log_probabilities(h)
        return TaskOutput(
            logits=self._combined(log_probabilities),
            targets=targets,
            unit_losses=self._summed_losses(log_probabilities, targets),
            head_log_probabilities=log_probabilities.detach(),
        )

    def _combined(self, log_probabilities: torch.Tensor) -> torch.Tensor:
        if self.combine == "select":
            return log_probabilities[self.selected]
        return torch.logsumexp(log_probabilities, dim=0) - math.log(self.k)

    def _summed_losses(
        self, log_probabilities: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        gold = targets.unsqueeze(0).expand(self.k, *targets.shape).unsqueeze(-1)
        return -log_probabilities.gather(-1, gold).squeeze(-1).sum(dim=0)

    @torch.no_grad()
    def head_accuracies(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each head's accuracy on ``(h, targets)``, shape ``(k,)``.

        :param h: the shared representation, ``(..., in_features)``.
        :param targets: gold classes, ``h.shape[:-1]``.
        """
        correct = self.head_predictions(h) == targets.unsqueeze(0)
        return correct.reshape(self.k, -1).float().mean(dim=1)

    @torch.no_grad()
    def select_best(self, h: torch.Tensor, targets: torch.Tensor) -> int:
        """Select the head most accurate on development data (the first one on ties).

        :param h: development representations, ``(..., in_features)``.
        :param targets: their gold classes.
        :returns: the selected head's index (also kept in ``selected``).
        """
        best = int(self.head_accuracies(h, targets).argmax())
        self.selected.fill_(best)
        return best

    # ---------------------------------------------------------- single heads as modules
    def export_head(self, j: int) -> nn.Sequential:
        """Head j as a standalone ``Linear-ReLU-Linear`` (or ``Linear``) module, copied.

        :param j: head index in ``[0, k)``.
        """
        self._check_index(j)
        layers: list[nn.Module] = []
        with torch.no_grad():
            if self.V is not None and self.b_V is not None:
                first = nn.Linear(self.in_features, self.hidden)
                first.weight.copy_(self.V[j].T)
                first.bias.copy_(self.b_V[j])
                layers += [first, nn.ReLU()]
            last = nn.Linear(self.W.shape[1], self.num_classes)
            last.weight.copy_(self.W[j].T)
            last.bias.copy_(self.b_W[j])
            layers.append(last)
        return nn.Sequential(*layers)

    def load_head(self, j: int, head: nn.Sequential) -> None:
        """Set head j's parameters from a module shaped as `export_head` returns.

        Gives a Q-MTL head and a single-task model identical initial ``V`` and ``W`` (seed
        000's per-head comparison).

        :param j: head index in ``[0, k)``.
        :param head: ``Linear-ReLU-Linear`` (``Linear`` when ``hidden=0``).
        """
        self._check_index(j)
        linears = [m for m in head if isinstance(m, nn.Linear)]
        expected = 2 if self.V is not None else 1
        if len(linears) != expected:
            raise ValueError(f"head {j}: expected {expected} Linear layers; got {len(linears)}")
        with torch.no_grad():
            if self.V is not None and self.b_V is not None:
                self.V[j].copy_(linears[0].weight.T)
                self.b_V[j].copy_(linears[0].bias)
            self.W[j].copy_(linears[-1].weight.T)
            self.b_W[j].copy_(linears[-1].bias)

    def _check_index(self, j: int) -> None:
        if not 0 <= j < self.k:
            raise IndexError(f"head index {j} out of range for k={self.k}")

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, k={self.k}, "
            f"hidden={self.hidden}, combine={self.combine!r}"
        )


def _linear_init(weight: torch.Tensor, bias: torch.Tensor, fan_in: int) -> None:
    # nn.Linear's default: kaiming_uniform(a=sqrt(5)) is uniform in +-1/sqrt(fan_in)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    weight.uniform_(-bound, bound)
    bias.uniform_(-bound, bound)


def classifier_head(in_features: int, num_classes: int, qmtl: QMTLConfig | None) -> nn.Module:
    """A task's classification head: ``nn.Linear`` or, given ``qmtl``, a `QMTLHead`.

    :param in_features: width of the shared representation.
    :param num_classes: number of classes.
    :param qmtl: Q-MTL settings; ``None`` for a plain linear-softmax head.
    """
    if qmtl is None:
        return nn.Linear(in_features, num_classes)
    return QMTLHead(in_features, num_classes, k=qmtl.k, hidden=qmtl.hidden, combine=qmtl.combine)


def head_output(head: nn.Module, features: torch.Tensor, targets: torch.Tensor) -> TaskOutput:
    """The `TaskOutput` of a head from `classifier_head` on ``(U, in_features)`` features.

    A `QMTLHead` gives its combined prediction (whose softmax is the averaged or selected
    distribution, so histograms and accuracies read it) and its loss summed over heads.
    """
    if isinstance(head, QMTLHead):
        return head.output(features, targets)
    return TaskOutput(logits=head(features), targets=targets)

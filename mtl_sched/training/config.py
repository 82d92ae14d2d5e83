"""The settings of a training run: `TrainerConfig`, and `resolve_device` for its ``device``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import torch

from mtl_sched.observation.probing import ProbeConfig

__all__ = ["NONFINITE_POLICIES", "NonFinitePolicy", "TrainerConfig", "resolve_device"]

NonFinitePolicy = Literal["raise", "skip"]
NONFINITE_POLICIES: tuple[str, ...] = ("raise", "skip")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of a training run.

    :param budget: training examples to consume (all tasks together).
    :param batch_size: examples per task minibatch.
    :param eval_every: evaluate on validation every this many examples (and at the end);
        ``None`` evaluates ten times per run.
    :param learning_rate: optimizer learning rate.
    :param optimizer: ``"adam"`` or ``"sgd"``.
    :param weight_decay: L2 penalty of the optimizer.
    :param eval_batch_size: batch size of evaluation and probe passes.
    :param probe: probe-pass settings (observation histograms and reward losses).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    :param on_nonfinite: what a training step whose loss (a task's or the combined one) is NaN
        or infinite does: ``"raise"`` (the default) stops the run with a `NonFiniteLossError`
        naming the step and task, before the optimizer update; ``"skip"`` leaves the model and
        optimizer untouched, counts the step (`Trainer.skipped_steps`,
        `RunResult.skipped_steps`) and goes on; its examples still count toward the budget,
        and the scheduler does not observe it. A non-finite validation, test or probe loss
        raises either way.
    """

    budget: int = 10_000
    batch_size: int = 32
    eval_every: int | None = None
    learning_rate: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 0.0
    eval_batch_size: int = 1024
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    device: str = "auto"
    on_nonfinite: NonFinitePolicy = "raise"

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"TrainerConfig.budget must be positive; got {self.budget}")
        if self.batch_size < 1:
            raise ValueError(f"TrainerConfig.batch_size must be positive; got {self.batch_size}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"TrainerConfig.eval_every must be positive; got {self.eval_every}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"TrainerConfig.optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}"
            )
        if self.on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"TrainerConfig.on_nonfinite must be one of {NONFINITE_POLICIES}; "
                f"got {self.on_nonfinite!r}"
            )

    def make_optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer of these settings (kind, learning rate, weight decay) over ``params``.

        :param params: the parameters to train.
        """
        params = list(params)
        # foreach: one multi-tensor kernel per update instead of a Python loop over the
        # parameters (torch's default on CPU); the same arithmetic, so the same weights
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.learning_rate, weight_decay=self.weight_decay, foreach=True
            )
        return torch.optim.Adam(
            params, lr=self.learning_rate, weight_decay=self.weight_decay, foreach=True
        )

    @property
    def eval_interval(self) -> int:
        """Examples between validation evaluations."""
        return self.eval_every if self.eval_every is not None else max(1, self.budget // 10)

"""The probe pass: one forward pass over each task's probe set yields both the uncertainty
histograms (the scheduler's observation) and the validation losses and accuracies (the reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_sched.models.base import Batch, MTLModel, TaskOutput
from mtl_sched.uncertainty import UncertaintyMeasure, batch_hard_indices, histogram, uncertainty


@dataclass(frozen=True)
class ProbeConfig:
    """What the probe pass looks at.

    :param bins: histogram bins per task.
    :param measure: uncertainty measure (``"margin"``, ``"least_confidence"``, ``"entropy"``).
    :param pool_size: validation examples per task forming the probe pool (the first ones, so the
        pool is fixed); ``None`` uses the whole validation split. Losses and accuracies for the
        reward are averaged over the pool.
    :param hard_size: how many of the pool's hardest prediction units (highest loss, "batch
        hard") enter the histogram; ``None`` uses every unit of the pool.
    """

    bins: int = 20
    measure: UncertaintyMeasure = "margin"
    pool_size: int | None = None
    hard_size: int | None = None

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise ValueError(f"ProbeConfig.bins must be at least 1; got {self.bins}")
        if self.pool_size is not None and self.pool_size < 1:
            raise ValueError(f"ProbeConfig.pool_size must be >= 1 or None; got {self.pool_size}")
        if self.hard_size is not None and self.hard_size < 1:
            raise ValueError(f"ProbeConfig.hard_size must be >= 1 or None; got {self.hard_size}")
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
def probe(
    model: MTLModel,
    probe_batches: Sequence[Sequence[Batch]],
    config: ProbeConfig,
) -> ProbeResult:
    """Run the probe pass.

    :param model: the multi-task model (put in eval mode for the pass, then restored).
    :param probe_batches: for each task in model order, the collated batches of its probe pool
        (already on the model's device).
    :param config: histogram and probe-set settings.
    """
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()
    try:
        hists, losses, accs, values = [], [], [], []
        for task, batches in zip(model.task_names, probe_batches, strict=True):
            out = _concat_outputs([model.task_output(task, b) for b in batches])
            unit_losses = out.losses()
            probs = out.probabilities()
            hard = batch_hard_indices(unit_losses, config.hard_size).to(probs.device)
            u = uncertainty(probs[hard], config.measure)
            hists.append(histogram(u, config.bins).numpy())
            losses.append(float(unit_losses.mean()))
            accs.append(float((probs.argmax(dim=-1) == out.targets).float().mean()))
            values.append(u.cpu().numpy())
    finally:
        model.train(was_training)
    return ProbeResult(
        histograms=np.stack(hists),
        losses=np.asarray(losses),
        accuracies=np.asarray(accs),
        uncertainties=values,
    )

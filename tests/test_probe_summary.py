"""The all-tasks-at-once probe summary equals the task-by-task one bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_sched.errors import NonFiniteLossError
from mtl_sched.observation.probe_summary import summarize_together
from mtl_sched.observation.probing import ProbeConfig, probe_from_probabilities, summarize_each


def _tasks(
    seed: int, classes: list[int], ties: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    probs, gold = [], []
    for k, c in enumerate(classes):
        n = 5 + 7 * k
        logits = torch.randn(n, c, generator=g) * 2
        if ties:  # repeated rows: equal losses, so the hardest-first order falls back to index
            logits = logits[torch.randint(0, 3, (n,), generator=g)]
        probs.append(torch.softmax(logits, dim=1))
        gold.append(torch.randint(0, c, (n,), generator=g))
    return probs, gold


def _assert_same(together, each) -> None:
    assert together is not None
    np.testing.assert_array_equal(together.histograms, each.histograms)
    assert together.histograms.dtype == each.histograms.dtype
    np.testing.assert_array_equal(together.losses, each.losses)
    np.testing.assert_array_equal(together.accuracies, each.accuracies)
    assert len(together.uncertainties) == len(each.uncertainties)
    for a, b in zip(together.uncertainties, each.uncertainties, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("measure", ["margin", "least_confidence", "entropy"])
@pytest.mark.parametrize("hard_size", [None, 4, 100])
@pytest.mark.parametrize("ties", [False, True])
def test_together_equals_each_with_equal_class_counts(measure, hard_size, ties) -> None:
    probs, gold = _tasks(0, [3, 3, 3, 3], ties)
    config = ProbeConfig(measure=measure, hard_size=hard_size, bins=7)
    nones = [None] * len(probs)
    names = [f"t{k}" for k in range(len(probs))]
    together = summarize_together(probs, gold, nones, measure, 7, hard_size)
    _assert_same(together, summarize_each(probs, config, gold, nones, names, None))


@pytest.mark.parametrize("measure", ["margin", "least_confidence"])
@pytest.mark.parametrize("hard_size", [None, 6])
def test_together_equals_each_with_mixed_class_counts_and_unit_losses(measure, hard_size) -> None:
    probs, gold = _tasks(1, [2, 5, 3, 9, 2], ties=True)
    g = torch.Generator().manual_seed(2)
    losses = [torch.rand(len(t), generator=g, dtype=torch.float64).round(decimals=1) for t in gold]
    config = ProbeConfig(measure=measure, hard_size=hard_size)
    names = [f"t{k}" for k in range(len(probs))]
    together = summarize_together(probs, gold, losses, measure, config.bins, hard_size)
    _assert_same(together, summarize_each(probs, config, gold, losses, names, None))
    assert together.losses.dtype == np.float64


def test_hard_selection_keeps_the_highest_losses_of_each_task() -> None:
    probs = [torch.tensor([[0.9, 0.1], [0.75, 0.25], [0.5, 0.5]]), torch.tensor([[0.2, 0.8]] * 2)]
    losses = [torch.tensor([0.1, 0.7, 0.3]), torch.tensor([0.5, 0.5])]
    gold = [torch.tensor([0, 1, 1]), torch.tensor([1, 1])]
    summary = summarize_together(probs, gold, losses, "margin", 10, hard_size=2)
    # task 0 keeps units 1 (loss 0.7) then 2 (0.3): margins 0.5 and 1.0, in that order
    np.testing.assert_allclose(summary.uncertainties[0], [0.5, 1.0], atol=1e-6)
    assert summary.histograms[0].tolist() == [0.0] * 5 + [0.5] + [0.0] * 3 + [0.5]
    np.testing.assert_allclose(summary.uncertainties[1], [0.4, 0.4], atol=1e-6)
    np.testing.assert_allclose(summary.losses, [1.1 / 3, 0.5], atol=1e-6)
    np.testing.assert_allclose(summary.accuracies, [1 / 3, 1.0])


def test_declines_what_the_task_by_task_path_handles() -> None:
    probs, gold = _tasks(3, [3, 4])
    nones = [None, None]
    assert summarize_together(probs, [gold[0], None], nones, "margin", 5, None) is None
    assert summarize_together(probs, gold, [torch.ones(5), None], "margin", 5, None) is None
    assert summarize_together(probs, gold, nones, "entropy", 5, None) is None
    empty = [probs[0], torch.zeros(0, 4)]
    assert summarize_together(empty, [gold[0], torch.zeros(0)], nones, "margin", 5, None) is None
    doubled = [probs[0].double(), probs[1]]
    assert summarize_together(doubled, gold, nones, "margin", 5, None) is None


def test_non_finite_values_still_name_the_task() -> None:
    probs, gold = _tasks(4, [2, 2, 2])
    probs[1] = probs[1].clone()
    probs[1][0, 0] = float("nan")
    assert summarize_together(probs, gold, [None] * 3, "margin", 5, None) is None
    with pytest.raises(NonFiniteLossError, match="t1"):
        probe_from_probabilities(probs, ProbeConfig(), gold, task_names=["t0", "t1", "t2"])

import math

import pytest
import torch

from mtl_sched.observation.uncertainty import (
    batch_hard_indices,
    entropy,
    histogram,
    least_confidence,
    margin,
    uncertainty,
)

PROBS = torch.tensor([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.45, 0.45, 0.1]])


def test_margin_by_hand():
    # 1 - p1 + p2 per row
    expected = torch.tensor([1 - 0.7 + 0.2, 1.0, 0.0, 1.0])
    torch.testing.assert_close(margin(PROBS), expected)


def test_least_confidence_by_hand():
    expected = torch.tensor([0.3, 2 / 3, 0.0, 0.55])
    torch.testing.assert_close(least_confidence(PROBS), expected)


def test_entropy_by_hand():
    row0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    row3 = -(2 * 0.45 * math.log(0.45) + 0.1 * math.log(0.1)) / math.log(3)
    expected = torch.tensor([row0, 1.0, 0.0, row3])
    torch.testing.assert_close(entropy(PROBS), expected)


@pytest.mark.parametrize("measure", ["margin", "least_confidence", "entropy"])
def test_measures_stay_in_unit_interval(measure):
    probs = torch.softmax(torch.randn(500, 7, generator=torch.Generator().manual_seed(0)) * 4, 1)
    values = uncertainty(probs, measure)
    assert values.shape == (500,)
    assert float(values.min()) >= 0.0 and float(values.max()) <= 1.0


def test_unknown_measure_and_bad_shape_are_rejected():
    with pytest.raises(ValueError, match="unknown uncertainty measure 'variance'"):
        uncertainty(PROBS, "variance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        margin(torch.tensor([0.5, 0.5]))


def test_histogram_by_hand():
    values = torch.tensor([0.0, 0.05, 0.1, 0.55, 0.99, 1.0])
    hist = histogram(values, bins=10)
    expected = torch.zeros(10)
    expected[0] = 2 / 6  # 0.0, 0.05
    expected[1] = 1 / 6  # 0.1
    expected[5] = 1 / 6  # 0.55
    expected[9] = 2 / 6  # 0.99 and 1.0 (the top edge belongs to the last bin)
    torch.testing.assert_close(hist, expected)


def test_histogram_is_normalized_and_empty_input_gives_zeros():
    values = torch.rand(1000, generator=torch.Generator().manual_seed(1))
    assert float(histogram(values, 20).sum()) == pytest.approx(1.0)
    assert torch.equal(histogram(torch.tensor([]), 5), torch.zeros(5))
    with pytest.raises(ValueError, match="bins"):
        histogram(values, 0)


def test_batch_hard_picks_hardest_with_index_tiebreak():
    hardness = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.0])
    assert batch_hard_indices(hardness, 2).tolist() == [1, 3]
    assert batch_hard_indices(hardness, 3).tolist() == [1, 3, 2]
    assert batch_hard_indices(hardness, None).tolist() == [1, 3, 2, 0, 4]
    assert batch_hard_indices(hardness, 99).tolist() == [1, 3, 2, 0, 4]
    with pytest.raises(ValueError, match="probe size"):
        batch_hard_indices(hardness, 0)


def test_batch_hard_is_deterministic_on_many_ties():
    hardness = torch.zeros(1000)
    hardness[::7] = 1.0
    first = batch_hard_indices(hardness, 300)
    assert torch.equal(first, batch_hard_indices(hardness.clone(), 300))
    assert first[:143].tolist() == list(range(0, 1000, 7))

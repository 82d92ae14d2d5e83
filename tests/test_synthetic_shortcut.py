"""The training-only shortcut feature of composed synthetic tasks."""

import hashlib
import math

import numpy as np
import pytest

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.data.synthetic import ComposedTaskSpec, SyntheticTaskSpec, make_synthetic_tasks

SPLITS = ("train", "validation", "test")


def _specs(shortcut: float | None = None) -> list[SyntheticTaskSpec | ComposedTaskSpec]:
    """A base and two tasks built on it; ``None`` leaves the shortcut field at its default."""
    extra = {} if shortcut is None else {"shortcut": shortcut}
    grouped = {"validation_size": 40, "test_size": 60, "label_noise": 0.25, "reads": "classes"}
    readout = {"validation_size": 30, "test_size": 50, "label_noise": 0.1}
    return [
        SyntheticTaskSpec("base", 6, 300, validation_size=50, test_size=80, difficulty=0.3),
        ComposedTaskSpec("grouped", "base", 3, 120, **grouped, **extra),
        ComposedTaskSpec("readout", "base", 2, 90, **readout, **extra),
    ]


def _arrays(task, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = task.split(split)[:]
    return np.asarray(rows["x"], dtype=np.float32), np.asarray(rows["label"], dtype=np.int64)


def _digest(tasks) -> str:
    digest = hashlib.sha256()
    for task in tasks:
        for split in SPLITS:
            for array in _arrays(task, split):
                digest.update(array.tobytes())
    return digest.hexdigest()


def test_no_shortcut_leaves_the_data_as_it_was():
    # the digest of these tasks as generated before composed tasks had a shortcut: a zero
    # shortcut must draw no random numbers, or every stored result would change
    default = make_synthetic_tasks(_specs(), input_dim=5, latent_dim=3, seed=7)
    assert _digest(default) == "bb2eb14f4b146c5ac5e24ad396c37b482418d810f36eff170af385cf6e3e810e"
    explicit = make_synthetic_tasks(_specs(0.0), input_dim=5, latent_dim=3, seed=7)
    assert _digest(explicit) == _digest(default)


@pytest.mark.parametrize("strength", [0.5, 3.0])
def test_shortcut_adds_one_fixed_direction_per_observed_training_label(strength):
    clean = make_synthetic_tasks(_specs(), input_dim=5, latent_dim=3, seed=7)
    shifted = make_synthetic_tasks(_specs(strength), input_dim=5, latent_dim=3, seed=7)
    # the base task carries no shortcut and its data is untouched
    assert _digest(shifted[:1]) == _digest(clean[:1])
    for before, after in zip(clean[1:], shifted[1:], strict=True):
        x_clean, labels = _arrays(before, "train")
        x_shifted, shifted_labels = _arrays(after, "train")
        np.testing.assert_array_equal(shifted_labels, labels)
        difference = x_shifted.astype(np.float64) - x_clean
        np.testing.assert_allclose(np.linalg.norm(difference, axis=1), strength, rtol=1e-5)
        # label noise is on, so a constant shift per label means the direction follows the
        # label the model sees, not the teacher's clean label
        directions = []
        for label in range(after.num_classes):
            rows = difference[labels == label]
            assert len(rows) > 0
            np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), atol=1e-5)
            directions.append(rows[0])
        assert len({tuple(np.round(d, 4)) for d in directions}) == after.num_classes
        for split in ("validation", "test"):
            for array_before, array_after in zip(
                _arrays(before, split), _arrays(after, split), strict=True
            ):
                np.testing.assert_array_equal(array_after, array_before)


def test_shortcut_makes_the_training_labels_easy_and_the_others_not():
    # a strong shortcut: the nearest class direction recovers nearly every training label, but
    # says nothing about the validation labels, which carry no shortcut
    specs = [
        SyntheticTaskSpec("base", 8, 500, difficulty=0.3),
        ComposedTaskSpec("grouped", "base", 4, 400, validation_size=400, reads="classes"),
    ]
    strong = [specs[0], ComposedTaskSpec(**{**specs[1].__dict__, "shortcut": 12.0})]
    clean, shifted = make_synthetic_tasks(specs)[1], make_synthetic_tasks(strong)[1]
    x_train, labels = _arrays(shifted, "train")
    difference = x_train - _arrays(clean, "train")[0]
    directions = np.stack([difference[labels == c][0] / 12.0 for c in range(4)])
    assert np.mean(np.argmax(x_train @ directions.T, axis=1) == labels) > 0.95
    x_valid, valid_labels = _arrays(shifted, "validation")
    assert np.mean(np.argmax(x_valid @ directions.T, axis=1) == valid_labels) < 0.4


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_bad_shortcut_is_rejected(bad):
    with pytest.raises(ValueError, match=r"shortcut=.*finite value >= 0"):
        ComposedTaskSpec("c", "b", shortcut=bad)


def test_members_without_a_shortcut_keep_their_configs():
    for member in ("synthetic-prerequisite", "synthetic-overfit"):
        specs = get_benchmark(member).config["specs"]
        assert all("shortcut" not in spec for spec in specs), member

"""Sparse-parity tasks: labels, nesting, noise, determinism and bad specs."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_sched.data.parity import ParityTaskSpec, make_parity_tasks, parity_labels


def _arrays(task, split):
    rows = task.split(split)[:]
    return np.asarray(rows["x"]), np.asarray(rows["label"])


def test_parity_labels_by_hand() -> None:
    x = np.array([[1.0, -1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert parity_labels(x, [0, 1]).tolist() == [0, 1, 1]
    assert parity_labels(x, [0, 1, 2]).tolist() == [1, 0, 1]


def test_sign_bits_add_binary_digits_to_the_label_by_hand() -> None:
    spec = ParityTaskSpec("A", (0, 1), sign_bits=(2, 3))
    x = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, 1.0]])
    # parity (0, 1, 0) + 2 * [x2 > 0] + 4 * [x3 > 0]
    assert spec.labels(x).tolist() == [0 + 2, 1 + 4, 0 + 2 + 4]
    assert spec.num_classes == 8 and ParityTaskSpec("B", (0,)).num_classes == 2


def test_a_task_with_sign_bits_has_their_classes_and_noise_stays_among_them() -> None:
    spec = ParityTaskSpec("A", (0, 1, 2), train_size=3000, sign_bits=(5,), label_noise=0.3)
    (task,) = make_parity_tasks([spec], input_dim=6, seed=1)
    assert task.num_classes == 4
    x, y = _arrays(task, "train")
    assert set(np.unique(y)) == {0, 1, 2, 3}
    assert 0.26 < np.mean(y != spec.labels(x)) < 0.34
    x, y = _arrays(task, "test")
    assert np.array_equal(y, spec.labels(x))


def test_clean_splits_follow_the_parity_and_nested_tasks_multiply() -> None:
    specs = [
        ParityTaskSpec("A", (0, 1, 2), train_size=300, validation_size=50, test_size=80),
        ParityTaskSpec("B", (0, 1, 2, 7, 9), train_size=300, test_size=80, label_noise=0.3),
    ]
    a, b = make_parity_tasks(specs, input_dim=10, seed=3)
    for split in ("train", "validation", "test"):
        x, y = _arrays(a, split)
        assert set(np.unique(x)) == {-1.0, 1.0}
        assert np.array_equal(y, parity_labels(x, (0, 1, 2)))
    x, y = _arrays(b, "test")
    # the product over (0, 1, 2, 7, 9) is positive where those over (0, 1, 2) and (7, 9) agree
    assert np.array_equal(y, (parity_labels(x, (0, 1, 2)) == parity_labels(x, (7, 9))).astype(int))
    assert len(y) == 80 and a.num_classes == b.num_classes == 2


def test_training_noise_flips_about_its_share_and_only_training_labels() -> None:
    spec = ParityTaskSpec("A", (1, 4), train_size=4000, label_noise=0.25)
    (task,) = make_parity_tasks([spec], input_dim=6, seed=0)
    x, y = _arrays(task, "train")
    flipped = np.mean(y != parity_labels(x, spec.bits))
    assert 0.22 < flipped < 0.28
    x, y = _arrays(task, "validation")
    assert np.array_equal(y, parity_labels(x, spec.bits))


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    specs = [ParityTaskSpec("A", (0, 3), train_size=50)]
    first, again, other = (make_parity_tasks(specs, 8, seed) for seed in (5, 5, 6))
    assert np.array_equal(_arrays(first[0], "train")[0], _arrays(again[0], "train")[0])
    assert not np.array_equal(_arrays(first[0], "train")[0], _arrays(other[0], "train")[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": ()}, "distinct bit indices"),
        ({"bits": (1, 1)}, "distinct bit indices"),
        ({"bits": (-1,)}, "indices >= 0"),
        ({"bits": (0,), "train_size": 0}, "train_size=0"),
        ({"bits": (0,), "label_noise": 1.0}, "label_noise=1.0"),
        ({"bits": (0, 1), "sign_bits": (1,)}, "sign_bits=.1,. .need distinct bits not in bits"),
        ({"bits": (0,), "sign_bits": (2, 2)}, "need distinct bits not in bits"),
        ({"bits": (0,), "sign_bits": (-2,)}, "sign_bits=.-2,. .need indices >= 0"),
    ],
)
def test_bad_specs_are_refused_with_the_field(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ParityTaskSpec("A", **kwargs)


def test_bits_outside_the_input_and_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="bit 8 is outside input_dim=8"):
        make_parity_tasks([ParityTaskSpec("A", (0, 8))], input_dim=8)
    with pytest.raises(ValueError, match="bit 9 is outside input_dim=8"):
        make_parity_tasks([ParityTaskSpec("A", (0,), sign_bits=(9,))], input_dim=8)
    with pytest.raises(ValueError, match="unique"):
        make_parity_tasks([ParityTaskSpec("A", (0,)), ParityTaskSpec("A", (1,))])

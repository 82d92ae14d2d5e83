import numpy as np
import pytest

from mtl_sched.data import SyntheticTaskSpec, make_synthetic_tasks


def _xy(task, split):
    ds = task.split(split)
    return np.asarray(ds["x"]), np.asarray(ds["label"])


def _one_nn_accuracy(task) -> float:
    x_train, y_train = _xy(task, "train")
    x_val, y_val = _xy(task, "validation")
    dist = ((x_val[:, None, :] - x_train[None, :, :]) ** 2).sum(-1)
    return float((y_train[dist.argmin(1)] == y_val).mean())


def test_sizes_classes_and_determinism():
    spec = SyntheticTaskSpec("a", num_classes=3, train_size=50, validation_size=20, test_size=30)
    (task,) = make_synthetic_tasks([spec], input_dim=5, seed=3)
    assert (task.size("train"), task.size("validation"), task.size("test")) == (50, 20, 30)
    assert task.num_classes == 3 and task.label_names == ("0", "1", "2")
    x, y = _xy(task, "train")
    assert x.shape == (50, 5) and set(np.unique(y)) <= {0, 1, 2}
    (again,) = make_synthetic_tasks([spec], input_dim=5, seed=3)
    (other,) = make_synthetic_tasks([spec], input_dim=5, seed=4)
    assert np.array_equal(_xy(again, "train")[0], x)
    assert not np.array_equal(_xy(other, "train")[0], x)


def test_classes_are_roughly_balanced():
    spec = SyntheticTaskSpec("a", num_classes=4, train_size=4000, difficulty=0.7)
    (task,) = make_synthetic_tasks([spec], seed=0)
    share = np.bincount(_xy(task, "train")[1], minlength=4) / 4000
    assert share.min() > 0.5 / 4 and share.max() < 1.5 / 4


def test_label_noise_flips_the_expected_share_of_training_labels_only():
    clean = SyntheticTaskSpec("a", num_classes=3, train_size=4000, validation_size=500)
    noisy = SyntheticTaskSpec(
        "a", num_classes=3, train_size=4000, validation_size=500, label_noise=0.3
    )
    (c,) = make_synthetic_tasks([clean], seed=1)
    (n,) = make_synthetic_tasks([noisy], seed=1)
    flipped = (_xy(c, "train")[1] != _xy(n, "train")[1]).mean()
    assert flipped == pytest.approx(0.3, abs=0.03)
    assert np.array_equal(_xy(c, "validation")[1], _xy(n, "validation")[1])


def test_harmful_task_is_unlearnable_while_a_related_easy_task_is_learnable():
    specs = [
        SyntheticTaskSpec("easy", num_classes=2, train_size=1000, validation_size=400),
        SyntheticTaskSpec(
            "noise", num_classes=2, train_size=1000, validation_size=400, harmful=True
        ),
    ]
    easy, noise = make_synthetic_tasks(specs, input_dim=4, seed=0)
    assert _one_nn_accuracy(easy) > 0.85
    assert abs(_one_nn_accuracy(noise) - 0.5) < 0.08


def test_difficulty_lowers_learnability():
    base = {"num_classes": 3, "train_size": 1500, "validation_size": 500, "relatedness": 0.0}
    easy, hard = make_synthetic_tasks(
        [
            SyntheticTaskSpec("easy", difficulty=0.0, **base),
            SyntheticTaskSpec("hard", difficulty=1.0, **base),
        ],
        input_dim=6,
        seed=2,
    )
    assert _one_nn_accuracy(easy) > _one_nn_accuracy(hard) + 0.05


def test_invalid_specs_name_the_field():
    with pytest.raises(ValueError, match=r"label_noise=1\.0"):
        SyntheticTaskSpec("a", label_noise=1.0)
    with pytest.raises(ValueError, match="num_classes=1"):
        SyntheticTaskSpec("a", num_classes=1)
    with pytest.raises(ValueError, match="unique"):
        make_synthetic_tasks([SyntheticTaskSpec("a"), SyntheticTaskSpec("a")])

import datasets
import numpy as np
import pytest
import torch
from torch import nn

from mtl_sched.benchmarks import Benchmark
from mtl_sched.data.task import Task
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.models.text_classifier import BiLSTMTextClassifier, build_vocabulary
from mtl_sched.training import TrainerConfig
from mtl_sched.transfer import cross_validated_transfer, fold_indices, shared_features


def dense_task(x, labels, name="unseen", num_classes=2, sizes=None):
    """A classification task over dense rows, its examples split train/validation/test."""
    n = len(labels)
    a, b = sizes or (n // 2, 3 * n // 4)
    bounds = {"train": (0, a), "validation": (a, b), "test": (b, n)}
    splits = {
        split: datasets.Dataset.from_dict(
            {"x": np.asarray(x[lo:hi], dtype=np.float32).tolist(), "label": list(labels[lo:hi])}
        )
        for split, (lo, hi) in bounds.items()
    }
    return Task(name=name, splits=splits, num_classes=num_classes)


def separable(n=240, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, dim))
    x[:, 0] = np.where(labels == 1, 1.0, -1.0) * (1.0 + np.abs(x[:, 0]))  # margin of 2
    return x, labels


def identity_model(dim=4):
    """A SharedMLP without hidden layers: its shared features are its inputs."""
    return SharedMLP(dim, {"seen": 2}, hidden_sizes=())


# --- Benchmark.without_task -------------------------------------------------------------


def test_without_task_drops_exactly_that_task(tiny_benchmark):
    full = tiny_benchmark
    reduced = full.without_task("noise")
    assert reduced.task_names == ("easy", "medium", "hard")
    assert full.task_names == ("easy", "medium", "hard", "noise")
    assert all(r is f for r, f in zip(reduced.tasks, full.tasks[:3], strict=True))
    model = reduced.make_model(0)
    assert set(model.heads) == {"easy", "medium", "hard"}
    assert model.task_names == ("easy", "medium", "hard")
    assert reduced.trainer_config == full.trainer_config
    assert reduced.env_episode_steps == full.env_episode_steps
    assert (reduced.name, reduced.description, reduced.version) == (
        full.name,
        full.description,
        full.version,
    )
    assert reduced.better_schedule is None and full.better_schedule is not None
    assert reduced.config["left_out"] == "noise" and "left_out" not in full.config
    assert reduced.fingerprint() != full.fingerprint()
    assert reduced.fingerprint() != full.without_task("easy").fingerprint()
    assert reduced.fingerprint() == full.without_task("noise").fingerprint()
    twice = reduced.without_task("easy")
    assert twice.task_names == ("medium", "hard")
    assert twice.config["left_out"] == ["noise", "easy"]


def test_without_task_reuses_built_tasks_and_rejects_bad_names():
    calls = []
    x, labels = separable(n=40)

    def build_tasks():
        calls.append(1)
        return [dense_task(x, labels, name="a"), dense_task(x, labels, name="b")]

    bench = Benchmark(
        name="pair",
        description="two tasks",
        build_tasks=build_tasks,
        build_model=lambda tasks: SharedMLP(4, {t.name: t.num_classes for t in tasks}),
        trainer_config=TrainerConfig(budget=64),
        episode_steps=3,
    )
    only_b = bench.without_task("a")
    assert only_b.task_names == ("b",) and only_b.episode_steps == 3
    assert only_b.tasks[0] is bench.tasks[1]
    assert len(calls) == 1
    with pytest.raises(KeyError, match=r"'books'.*known tasks: a, b"):
        bench.without_task("books")
    with pytest.raises(ValueError, match="only task"):
        only_b.without_task("b")


# --- folds and features ------------------------------------------------------------------


def test_folds_partition_the_examples_reproducibly():
    parts = fold_indices(23, 5, seed=3)
    assert len(parts) == 5
    assert sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert {len(p) for p in parts} == {4, 5}
    same = fold_indices(23, 5, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(parts, same, strict=True))
    other = fold_indices(23, 5, seed=4)
    assert not all(np.array_equal(p, q) for p, q in zip(parts, other, strict=True))
    with pytest.raises(ValueError, match="folds"):
        fold_indices(23, 1, seed=0)
    with pytest.raises(ValueError, match="folds"):
        fold_indices(3, 4, seed=0)


def test_shared_features_are_the_eval_mode_encoder_output_and_leave_the_model_as_it_was(
    tiny_benchmark,
):
    task = tiny_benchmark.tasks[0]
    model = SharedMLP(16, {"medium": 3}, hidden_sizes=(8,), dropout=0.5)
    model.train()
    model.encoder[0].eval()  # a mixed state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = task.split("validation")
    first = shared_features(model, task, rows, batch_size=7)
    second = shared_features(model, task, rows[:])
    assert first.shape == (len(rows), 8) and not first.requires_grad
    assert torch.equal(first, second)  # no dropout: eval mode
    model.eval()
    with torch.no_grad():
        expected = model.encoder(torch.as_tensor(np.asarray(rows["x"], dtype=np.float32)))
    assert torch.allclose(first, expected)
    model.train()
    model.encoder[0].eval()
    cross_validated_transfer(model, task, seed=0, epochs=5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and model.encoder[2].training and not model.encoder[0].training
    assert all(p.grad is None for p in model.parameters())


# --- cross-validated transfer ------------------------------------------------------------


def test_separable_task_transfers_perfectly_and_random_labels_do_not():
    x, labels = separable()
    accuracies = cross_validated_transfer(identity_model(), dense_task(x, labels), seed=0)
    assert len(accuracies) == 5
    assert min(accuracies) == 1.0
    shuffled = np.random.default_rng(1).permutation(labels)
    chance = cross_validated_transfer(identity_model(), dense_task(x, shuffled), seed=0)
    assert np.mean(chance) <= 0.7


def test_all_splits_are_pooled():
    x, labels = separable(n=24)
    task = dense_task(x, labels, sizes=(8, 16))  # 8 examples per split, 24 in all
    assert len(cross_validated_transfer(identity_model(), task, seed=0, folds=12, epochs=20)) == 12
    with pytest.raises(ValueError, match="folds"):
        cross_validated_transfer(identity_model(), task, seed=0, folds=25)
    with pytest.raises(ValueError, match="folds"):
        cross_validated_transfer(identity_model(), task, seed=0, folds=1)


def test_same_seed_same_accuracies_other_seed_other_folds():
    x, labels = separable(n=200)
    noisy = np.random.default_rng(2).permutation(labels)
    task = dense_task(x, noisy)
    model = identity_model()
    first = cross_validated_transfer(model, task, seed=5, epochs=30)
    assert first == cross_validated_transfer(model, task, seed=5, epochs=30)
    assert first != cross_validated_transfer(model, task, seed=6, epochs=30)


def test_left_out_synthetic_task_on_a_reduced_model(tiny_benchmark):
    full = tiny_benchmark
    model = full.without_task("easy").make_model(0)
    accuracies = cross_validated_transfer(model, full.tasks[0], seed=0, folds=3, epochs=20)
    assert len(accuracies) == 3 and all(0.0 <= a <= 1.0 for a in accuracies)


def test_text_classifier_features_of_an_unseen_domain():
    rng = np.random.default_rng(0)
    words = [["good", "great", "fine"], ["bad", "awful", "poor"]]
    labels = rng.integers(0, 2, size=30)
    tokens = [list(rng.choice(words[y], size=4)) for y in labels]
    splits = {
        split: datasets.Dataset.from_dict({"tokens": tokens[i::3], "label": labels[i::3].tolist()})
        for i, split in enumerate(("train", "validation", "test"))
    }
    unseen = Task(name="books", splits=splits, num_classes=2)
    torch.manual_seed(0)
    model = BiLSTMTextClassifier(
        build_vocabulary([unseen]), {"dvd": 2}, embedding_dim=16, hidden_size=16
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert shared_features(model, unseen, splits["test"]).shape == (10, 32)
    accuracies = cross_validated_transfer(model, unseen, seed=0, folds=3)
    assert np.mean(accuracies) >= 0.9  # two disjoint vocabularies: separable features
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


# --- unsupported models and tasks --------------------------------------------------------


class NoFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def collate(self, task, rows):
        return {"x": torch.tensor(rows["x"]), "label": torch.tensor(rows["label"])}


def test_model_without_features_raises_type_error():
    x, labels = separable(n=20)
    task = dense_task(x, labels)
    with pytest.raises(TypeError, match=r"no features\(batch\).*leave-one-out"):
        cross_validated_transfer(NoFeatures(), task, seed=0)
    with pytest.raises(TypeError, match=r"features\(batch\)"):
        shared_features(NoFeatures(), task, {"x": [[0.0] * 4], "label": [0]})


def test_tagging_task_raises_value_error():
    rows = {"tokens": [["a", "b"], ["c"]], "tags": [[0, 1], [2]]}
    splits = {s: datasets.Dataset.from_dict(rows) for s in ("train", "validation", "test")}
    tagging = Task(name="pos", splits=splits, num_classes=3, kind="tagging")
    with pytest.raises(ValueError, match="'pos' is a tagging task"):
        cross_validated_transfer(identity_model(), tagging, seed=0)

"""`task_from_dataset`: a user's own ``datasets.Dataset`` as a `Task` the built-in models train."""

import random

import datasets
import numpy as np
import pytest

from mtl_sched import SharedMLP, Trainer, TrainerConfig, make_scheduler
from mtl_sched.data.hf_task import task_from_dataset
from mtl_sched.data.task import Task
from mtl_sched.models.sequence_tagger import SequenceTagger
from mtl_sched.models.text_classifier import BiLSTMTextClassifier, build_vocabulary

POSITIVE = ["good", "great", "fine", "nice"]
NEGATIVE = ["bad", "awful", "poor", "sad"]
FILLER = ["the", "movie", "was", "plot", "it"]


def reviews(n: int, seed: int) -> dict[str, list]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = [*rng.sample(FILLER, 3), rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return {"text": texts, "sentiment": labels}


def held_out_task(
    name: str, rows: dict[str, list], inputs: str, labels: str, held_out: int
) -> Task:
    """A task of ``rows`` with ``held_out`` rows each split off for validation and for test."""
    return task_from_dataset(
        name,
        datasets.Dataset.from_dict(rows),
        input_column=inputs,
        label_column=labels,
        validation_size=held_out,
        test_size=held_out,
    )


def round_robin_test_scores(
    model, tasks: list[Task], budget: int, batch_size: int, learning_rate: float
) -> list[float]:
    """The test scores of ``model`` trained on ``tasks`` in turn (seed 0, on the CPU)."""
    config = TrainerConfig(
        budget=budget, batch_size=batch_size, learning_rate=learning_rate, device="cpu"
    )
    result = Trainer(model, tasks, config, seed=0).run(make_scheduler("round-robin"))
    return list(result.test.scores)


def test_string_labels_get_train_ids_and_unseen_labels_come_last():
    data = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["good movie", "bad  film", "great"], "y": ["pos", "neg", "pos"]}
            ),
            "validation": datasets.Dataset.from_dict({"text": ["meh"], "y": ["mixed"]}),
            "test": datasets.Dataset.from_dict({"text": ["Bad!"], "y": ["neg"]}),
        }
    )
    task = task_from_dataset("sentiment", data, input_column="text", label_column="y")
    assert task.kind == "classification" and task.metric == "accuracy"
    # train labels sorted; "mixed" occurs only in validation and is appended
    assert task.label_names == ("neg", "pos", "mixed") and task.num_classes == 3
    assert task.metadata["unseen_in_train"] == ["mixed"]
    assert task.split("train")[:] == {
        "tokens": [["good", "movie"], ["bad", "film"], ["great"]],
        "label": [1, 0, 1],
    }
    assert task.split("validation")["label"] == [2] and task.split("test")["label"] == [0]
    lowered = task_from_dataset(
        "sentiment", data, input_column="text", label_column="y", tokenize=lambda s: list(s.lower())
    )
    assert lowered.split("test")["tokens"] == [["b", "a", "d", "!"]]
    fixed = task_from_dataset(
        "sentiment",
        data,
        input_column="text",
        label_column="y",
        label_names=["pos", "neg", "mixed"],
    )
    assert fixed.split("train")["label"] == [0, 1, 0] and fixed.metadata["unseen_in_train"] == []


def test_int_and_class_label_columns_keep_their_ids():
    rows = {"x": [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], "label": [0, 2, 2, 0]}
    plain = datasets.Dataset.from_dict(rows)
    task = task_from_dataset(
        "vectors", plain, input_column="x", label_column="label", test_size=1, validation_size=1
    )
    # integer labels are class ids: one class more than the largest id of any split
    assert task.label_names == ("0", "1", "2")
    assert set(task.split("train").column_names) == {"x", "label"}
    named = plain.cast_column("label", datasets.ClassLabel(names=["cold", "warm", "hot"]))
    task = task_from_dataset(
        "vectors", named, input_column="x", label_column="label", test_size=1, validation_size=1
    )
    assert task.label_names == ("cold", "warm", "hot")
    every = sorted(
        (*tuple(x), y)
        for split in ("train", "validation", "test")
        for x, y in zip(task.split(split)["x"], task.split(split)["label"], strict=True)
    )
    assert every == sorted((*tuple(x), y) for x, y in zip(rows["x"], rows["label"], strict=True))


def test_one_dataset_is_split_by_seed_and_sizes():
    data = datasets.Dataset.from_dict(reviews(50, seed=0))

    def split_with(seed: int) -> Task:
        return task_from_dataset(
            "r",
            data,
            input_column="text",
            label_column="sentiment",
            validation_size=0.2,
            test_size=5,
            seed=seed,
        )

    task, again, other = split_with(3), split_with(3), split_with(4)
    assert (task.size("train"), task.size("validation"), task.size("test")) == (35, 10, 5)
    assert again.split("test")[:] == task.split("test")[:]
    assert other.split("test")[:] != task.split("test")[:]
    texts = [" ".join(t) for s in ("train", "validation", "test") for t in task.split(s)["tokens"]]
    assert sorted(texts) == sorted(" ".join(t.split()) for t in data["text"])
    limited = task_from_dataset(
        "r", data, input_column="text", label_column="sentiment", limits={"train": 4}
    )
    assert limited.size("train") == 4 and limited.label_names == ("neg", "pos")


def test_token_classification_with_list_labels():
    rows = {
        "words": [["John", "lives", "in", "Rome"], ["Mary", "sleeps"], ["Paris"]] * 4,
        "ner": [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O"], ["B-LOC"]] * 4,
    }
    task = task_from_dataset(
        "ner",
        datasets.Dataset.from_dict(rows),
        input_column="words",
        label_column="ner",
        metric="span-f1",
        validation_size=3,
        test_size=3,
    )
    assert task.kind == "tagging" and task.reference_column == "tags"
    # "O" first, then the other training tags sorted (the CoNLL loaders' order)
    assert task.label_names == ("O", "B-LOC", "B-PER")
    for split in ("train", "validation", "test"):
        for words, tags in zip(task.split(split)["tokens"], task.split(split)["tags"], strict=True):
            expected = rows["ner"][rows["words"].index(words)]
            assert [task.label_names[t] for t in tags] == expected


def test_errors_name_the_column_split_or_row():
    data = datasets.Dataset.from_dict(reviews(20, seed=0))
    with pytest.raises(
        ValueError,
        match=r"input_column 'sentence' is not a column of split 'train'; "
        r"its columns: \['text', 'sentiment'\]",
    ):
        task_from_dataset("r", data, input_column="sentence", label_column="sentiment")
    with pytest.raises(ValueError, match=r"label_column 'label' is not a column"):
        task_from_dataset("r", data, input_column="text", label_column="label")
    with pytest.raises(ValueError, match=r"no 'train' split; its splits: \['test', 'validation'\]"):
        task_from_dataset(
            "r", {"validation": data, "test": data}, input_column="text", label_column="sentiment"
        )
    tags = datasets.Dataset.from_dict({"w": [["a", "b"], ["c"]] * 3, "t": [["X"], ["Y"]] * 3})
    with pytest.raises(ValueError, match=r"row \d has 2 tokens but 1 labels"):
        task_from_dataset(
            "t", tags, input_column="w", label_column="t", validation_size=1, test_size=1
        )
    with pytest.raises(ValueError, match="metric 'span-f1' needs a tagging task"):
        task_from_dataset(
            "r", data, input_column="text", label_column="sentiment", metric="span-f1"
        )
    with pytest.raises(ValueError, match="validation_size as a share must be in"):
        task_from_dataset(
            "r", data, input_column="text", label_column="sentiment", validation_size=1.5
        )
    not_listed = r"split 'train' row \d+ has label 'neg', not among label_names"
    with pytest.raises(ValueError, match=not_listed):
        task_from_dataset(
            "r", data, input_column="text", label_column="sentiment", label_names=["pos", "nope"]
        )


def test_built_tasks_train_with_the_built_in_models():
    sentiment = held_out_task("sentiment", reviews(240, seed=1), "text", "sentiment", 40)
    rows = reviews(240, seed=2)
    # a second task from the same sentences, with int labels: does the text hold a good word?
    rows["has_good"] = [int("good" in t.split()) for t in rows["text"]]
    good = held_out_task("has-good", rows, "text", "has_good", 40)
    tasks = [sentiment, good]
    model = BiLSTMTextClassifier(
        build_vocabulary(tasks),
        {t.name: t.num_classes for t in tasks},
        embedding_dim=16,
        hidden_size=16,
    )
    assert min(round_robin_test_scores(model, tasks, 1600, 16, 1e-2)) >= 0.9

    tagging_rows = {"words": [], "tags": []}
    rng = random.Random(0)
    for _ in range(120):
        sentence = [
            (rng.choice(["the", "a"]), "DET"),
            (rng.choice(["dog", "cat"]), "NOUN"),
            (rng.choice(["runs", "eats"]), "VERB"),
        ]
        tagging_rows["words"].append([w for w, _ in sentence])
        tagging_rows["tags"].append([t for _, t in sentence])
    pos = held_out_task("pos", tagging_rows, "words", "tags", 20)
    tagger = SequenceTagger.for_tasks(
        [pos], use_chars=False, min_word_count=1, embedding_dim=8, hidden_size=8, dropout=0.0
    )
    assert round_robin_test_scores(tagger, [pos], 800, 16, 2e-2) == [1.0]

    vectors = np.random.default_rng(0).normal(size=(200, 3))
    mlp_rows = {"features": vectors.tolist(), "above": (vectors[:, 0] > 0).astype(int).tolist()}
    above = held_out_task("above", mlp_rows, "features", "above", 40)
    mlp = SharedMLP(3, {"above": 2}, hidden_sizes=(8,))
    assert round_robin_test_scores(mlp, [above], 3200, 32, 1e-2)[0] >= 0.9

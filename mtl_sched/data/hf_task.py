"""A `Task` from your own Hugging Face ``datasets.Dataset``: name the input and label columns.

`task_from_dataset` turns a ``datasets.Dataset`` (split here into train, validation and test) or
a ``DatasetDict`` (any mapping of split name to dataset) into the `Task` the built-in loaders
produce, with the columns the built-in models read in ``collate``:

=====================================  ==================  ====================================
input column holds                     label column holds  task (columns, model that reads it)
=====================================  ==================  ====================================
a string (tokenized by ``tokenize``,   one label           ``"classification"``: ``tokens``,
whitespace by default) or a list of                        ``label`` (`BiLSTMTextClassifier`)
strings
equal-length lists of numbers          one label           ``"classification"``: ``x``,
                                                           ``label`` (`SharedMLP`)
a list of strings (the tokens)         one label per token ``"tagging"``: ``tokens``, ``tags``
                                                           (`SequenceTagger`)
=====================================  ==================  ====================================

Label ids
    A ``ClassLabel`` column keeps its ids and names; ``label_names=`` fixes the names (and,
    for string labels, their ids) yourself. Otherwise integer labels are class ids (names
    ``"0"``, ``"1"``, ...; one class more than the largest id of any split), and string labels
    get ids from the **train split only**, as the CoNLL loaders assign them: sorted, ``O``
    first; a label that occurs only in validation or test is appended after them so that
    references stay exact (the model never trains on it), and ``metadata["unseen_in_train"]``
    lists such labels. Word vocabularies are built by the models, from the train split only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import datasets
import numpy as np

from mtl_sched.data.conll import label_names as train_first_label_names
from mtl_sched.data.task import SPLITS, Task, TaskKind

Tokenizer = Callable[[str], list[str]]
SplitSize = int | float


def task_from_dataset(
    name: str,
    data: datasets.Dataset | Mapping[str, datasets.Dataset],
    *,
    input_column: str,
    label_column: str,
    metric: str = "accuracy",
    label_names: Sequence[str] | None = None,
    tokenize: Tokenizer | None = None,
    validation_size: SplitSize = 0.1,
    test_size: SplitSize = 0.1,
    seed: int = 0,
    limits: Mapping[str, int] | None = None,
) -> Task:
    """The `Task` of a dataset's input and label columns (see the module docstring).

    :param name: the task name.
    :param data: one ``datasets.Dataset`` (shuffled with ``seed`` and split into train,
        validation and test), or a ``DatasetDict`` (any mapping) with a ``"train"`` split and
        ``"validation"`` and ``"test"`` splits; a missing validation or test split is carved
        out of train as for one dataset.
    :param input_column: the column holding each example's input: a string, a list of tokens
        or a vector of numbers.
    :param label_column: the column holding the label: one per example (``int``, ``str`` or
        ``ClassLabel``) for classification, a list of them, one per token, for tagging.
    :param metric: ``"accuracy"`` (of examples or tokens); for a tagging task also
        ``"span-f1"`` (label names are IOB chunk tags) or ``"tag-f1"`` (F1 over the tokens not
        tagged ``O``).
    :param label_names: the class names in id order; string labels must be among them and
        integer labels below their number.
    :param tokenize: splits a string input into tokens (default: ``str.split``).
    :param validation_size: share (a float in ``(0, 1)``) or number (an int) of the examples
        held out for validation when ``data`` has no validation split.
    :param test_size: the same for the test split.
    :param seed: seed of the shuffle that carves out missing splits.
    :param limits: keep only the first ``limits[split]`` examples of the splits it names;
        label ids still come from every example.
    :raises ValueError: naming the argument, split, column or row that is wrong (a missing
        column lists the available ones).
    """
    if metric not in ("accuracy", "span-f1", "tag-f1"):
        raise ValueError(f"metric must be 'accuracy', 'span-f1' or 'tag-f1'; got {metric!r}")
    limits = limits or {}
    unknown = sorted(set(limits) - set(SPLITS))
    if unknown:
        raise ValueError(f"limits names unknown split(s) {unknown}; splits: {list(SPLITS)}")
    splits = _three_splits(name, data, validation_size, test_size, seed)
    for split, dataset in splits.items():
        for role, column in (("input_column", input_column), ("label_column", label_column)):
            if column not in dataset.column_names:
                raise ValueError(
                    f"task {name!r}: {role} {column!r} is not a column of split {split!r}; "
                    f"its columns: {dataset.column_names}"
                )
    inputs = {split: list(dataset[input_column]) for split, dataset in splits.items()}
    labels = {split: list(dataset[label_column]) for split, dataset in splits.items()}
    kind: TaskKind = "tagging" if isinstance(_first(labels["train"]), list) else "classification"
    if metric != "accuracy" and kind != "tagging":
        raise ValueError(f"metric {metric!r} needs a tagging task (a list of labels per example)")
    names, ids, unseen = _label_ids(
        name, labels, splits["train"].features[label_column], label_names, kind
    )
    columns = {
        split: _input_columns(name, split, inputs[split], kind, tokenize) for split in splits
    }
    label_key = "tags" if kind == "tagging" else "label"
    for split in splits:
        if kind == "tagging":
            _check_lengths(name, split, columns[split]["tokens"], ids[split])
        columns[split][label_key] = ids[split]
    class_label = datasets.ClassLabel(names=list(names))
    features: dict[str, Any] = {
        label_key: datasets.Sequence(class_label) if kind == "tagging" else class_label
    }
    if "x" in columns["train"]:
        features["x"] = datasets.Sequence(datasets.Value("float32"))
    else:
        features["tokens"] = datasets.Sequence(datasets.Value("string"))
    built = {
        split: datasets.Dataset.from_dict(
            {key: values[: limits.get(split)] for key, values in columns[split].items()},
            features=datasets.Features({key: features[key] for key in columns[split]}),
        )
        for split in SPLITS
    }
    return Task(
        name=name,
        splits=built,
        num_classes=len(names),
        kind=kind,
        label_names=names,
        metric=metric,
        reference_column="tags" if metric != "accuracy" else None,
        metadata={
            "input_column": input_column,
            "label_column": label_column,
            "unseen_in_train": list(unseen),
        },
    )


def _first(values: Sequence[Any]) -> Any:
    return values[0] if len(values) else None


def _three_splits(
    name: str,
    data: datasets.Dataset | Mapping[str, datasets.Dataset],
    validation_size: SplitSize,
    test_size: SplitSize,
    seed: int,
) -> dict[str, datasets.Dataset]:
    """Train, validation and test; the missing ones shuffled out of train with ``seed``."""
    if isinstance(data, datasets.Dataset):
        given: dict[str, datasets.Dataset] = {"train": data}
    elif isinstance(data, Mapping):
        given = dict(data)
        if "train" not in given:
            raise ValueError(
                f"task {name!r}: data has no 'train' split; its splits: {sorted(given)}"
            )
    else:
        raise ValueError(
            f"data must be a datasets.Dataset or a DatasetDict; got {type(data).__name__}"
        )
    missing = [split for split in ("validation", "test") if split not in given]
    if not missing:
        return {split: given[split] for split in SPLITS}
    train = given["train"]
    total = len(train)
    sizes = {
        split: _split_count(argument, value, total)
        for split, argument, value in (
            ("validation", "validation_size", validation_size),
            ("test", "test_size", test_size),
        )
        if split in missing
    }
    if total - sum(sizes.values()) < 1:
        raise ValueError(
            f"task {name!r}: {total} training examples leave none to train on after holding out "
            f"{sizes} (lower validation_size/test_size)"
        )
    order = np.random.default_rng(seed).permutation(total)
    start = 0
    for split, count in sizes.items():
        given[split] = train.select(np.sort(order[start : start + count]))
        start += count
    given["train"] = train.select(np.sort(order[start:]))
    return {split: given[split] for split in SPLITS}


def _split_count(argument: str, value: SplitSize, total: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{argument} must be an int or a float; got {value!r}")
    if isinstance(value, float):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{argument} as a share must be in (0, 1); got {value}")
        return max(1, round(value * total))
    if value < 1:
        raise ValueError(f"{argument} as a count must be at least 1; got {value}")
    return value


def _label_ids(
    name: str,
    labels: Mapping[str, list[Any]],
    feature: Any,
    given_names: Sequence[str] | None,
    kind: TaskKind,
) -> tuple[tuple[str, ...], dict[str, list[Any]], tuple[str, ...]]:
    """Label names in id order, the labels as ids per split, and the names unseen in train."""
    for split, values in labels.items():
        for row, value in enumerate(values):
            if (kind == "tagging") != isinstance(value, list):
                raise ValueError(
                    f"task {name!r}: split {split!r} row {row} has label {value!r}: every "
                    f"example of a {kind} task needs "
                    + ("a list of labels, one per token" if kind == "tagging" else "one label")
                )
    flat = {
        split: [y for row in values for y in row] if kind == "tagging" else list(values)
        for split, values in labels.items()
    }
    for split, values in flat.items():
        odd = next((y for y in values if not isinstance(y, (int, str, np.integer))), None)
        if odd is not None:
            raise ValueError(
                f"task {name!r}: split {split!r} has a label {odd!r}; labels must be integers or "
                "strings"
            )
    class_label = getattr(feature, "feature", feature)
    if given_names is None and isinstance(class_label, datasets.ClassLabel):
        given_names = class_label.names
    unseen: tuple[str, ...] = ()
    if given_names is not None:
        names = tuple(str(n) for n in given_names)
        if len(set(names)) != len(names):
            raise ValueError(f"label_names must be distinct; got {list(names)}")
    elif all(isinstance(y, (int, np.integer)) for values in flat.values() for y in values):
        largest = max(int(y) for values in flat.values() for y in values)
        names = tuple(str(i) for i in range(largest + 1))
    else:
        train = [{"label": [str(y) for y in flat["train"]]}]
        others = [[{"label": [str(y) for y in flat[s]]}] for s in ("validation", "test")]
        names, unseen = train_first_label_names(train, others, "label")
    index = {label: i for i, label in enumerate(names)}
    ids: dict[str, list[Any]] = {}
    for split, values in labels.items():
        if kind == "tagging":
            ids[split] = [
                [_label_id(name, split, row, y, index) for y in tags]
                for row, tags in enumerate(values)
            ]
        else:
            ids[split] = [_label_id(name, split, row, y, index) for row, y in enumerate(values)]
    return names, ids, unseen


def _is_list(values: list[Any]) -> bool:
    return any(isinstance(y, list) for y in values)


def _rows(rows: list[list[Any]]) -> list[tuple[int, list[Any]]]:
    return list(enumerate(rows))


def _label_id(name: str, split: str, row: int, label: Any, index: Mapping[str, int]) -> int:
    if isinstance(label, str):
        if label not in index:
            raise ValueError(
                f"task {name!r}: split {split!r} row {row} has label {label!r}, not among "
                f"label_names {list(index)}"
            )
        return index[label]
    if not 0 <= int(label) < len(index):
        raise ValueError(
            f"task {name!r}: split {split!r} row {row} has label id {label}, outside "
            f"[0, {len(index)}) for the {len(index)} label names"
        )
    return int(label)


def _input_columns(
    name: str, split: str, inputs: list[Any], kind: TaskKind, tokenize: Tokenizer | None
) -> dict[str, list[Any]]:
    """``tokens`` (or ``x`` for numeric vectors) of one split's inputs."""
    split_words = tokenize or str.split
    first = _first(inputs)
    if kind == "classification" and isinstance(first, list) and first and _numeric(first[0]):
        width = len(first)
        for row, vector in enumerate(inputs):
            if not isinstance(vector, list) or len(vector) != width:
                raise ValueError(
                    f"task {name!r}: split {split!r} row {row}: input vectors must all have "
                    f"{width} numbers"
                )
        return {"x": inputs}
    tokens = []
    for row, value in enumerate(inputs):
        if isinstance(value, str):
            if kind == "tagging":
                raise ValueError(
                    f"task {name!r}: split {split!r} row {row}: a tagging task's input_column "
                    "must hold token lists (one label per token), not strings"
                )
            tokens.append(list(split_words(value)))
        elif isinstance(value, list) and all(isinstance(t, str) for t in value):
            tokens.append(value)
        else:
            raise ValueError(
                f"task {name!r}: split {split!r} row {row}: input {value!r} is neither a string, "
                "a list of strings nor a vector of numbers"
            )
    return {"tokens": tokens}


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _check_lengths(name: str, split: str, tokens: list[list[str]], tags: list[list[int]]) -> None:
    for row, (words, row_tags) in enumerate(zip(tokens, tags, strict=True)):
        if len(words) != len(row_tags):
            raise ValueError(
                f"task {name!r}: split {split!r} row {row} has {len(words)} tokens but "
                f"{len(row_tags)} labels"
            )
        if not words:
            raise ValueError(f"task {name!r}: split {split!r} row {row} has no tokens")

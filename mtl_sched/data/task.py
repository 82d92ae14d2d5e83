"""The `Task`: one supervised problem with its data splits, labels and metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import datasets

TaskKind = Literal["classification", "tagging", "seq2seq"]
SPLITS = ("train", "validation", "test")
METRICS: tuple[str, ...] = ("accuracy", "span-f1", "tag-f1", "bleu")


@dataclass
class Task:
    """A named task with ``datasets.Dataset`` splits.

    :param name: unique task name within a benchmark.
    :param splits: ``"train"``, ``"validation"`` and ``"test"`` datasets (all three required,
        none empty: an empty split would be scored 0 and averaged in, or never trained).
    :param num_classes: size of the output label set.
    :param kind: ``"classification"`` (one label per example), ``"tagging"`` (one per token) or
        ``"seq2seq"`` (one per target token).
    :param label_names: human-readable label names, ``num_classes`` of them.
    :param metric: the task's validation/test metric, one of `METRICS`: ``"accuracy"`` (of
        prediction units: examples, tokens or target tokens), ``"span-f1"`` (seqeval),
        ``"tag-f1"`` (F1 over the tokens not tagged ``O``) or ``"bleu"`` (sacrebleu); see
        `mtl_sched.metrics`.
    :param reference_column: the dataset column holding each example's reference for a metric
        other than ``"accuracy"`` (tag ids for span and tag F1, the detokenized target for
        BLEU); the model's ``decode`` predicts values of the same type.
    :param metadata: free-form facts about the task (e.g. how a synthetic task was generated).
    """

    name: str
    splits: dict[str, datasets.Dataset]
    num_classes: int
    kind: TaskKind = "classification"
    label_names: tuple[str, ...] = ()
    metric: str = "accuracy"
    reference_column: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"task {self.name!r} is missing split(s) {missing}")
        for split, dataset in self.splits.items():
            if len(dataset) == 0:
                raise ValueError(f"task {self.name!r}: split {split!r} is empty")
        if self.num_classes < 2:
            raise ValueError(f"task {self.name!r}: num_classes must be at least 2")
        if self.metric not in METRICS:
            raise ValueError(
                f"task {self.name!r}: metric must be one of {METRICS}; got {self.metric!r}"
            )
        if self.metric != "accuracy":
            if self.reference_column is None:
                raise ValueError(
                    f"task {self.name!r}: metric {self.metric!r} needs a reference_column"
                )
            for split, dataset in self.splits.items():
                if self.reference_column not in dataset.column_names:
                    raise ValueError(
                        f"task {self.name!r}: split {split!r} has no reference column "
                        f"{self.reference_column!r}"
                    )
        if not self.label_names:
            self.label_names = tuple(str(i) for i in range(self.num_classes))
        if len(self.label_names) != self.num_classes:
            raise ValueError(
                f"task {self.name!r}: {len(self.label_names)} label names for "
                f"{self.num_classes} classes"
            )

    def split(self, name: str) -> datasets.Dataset:
        """The dataset of split ``name``; raises ``KeyError`` naming the task and split."""
        try:
            return self.splits[name]
        except KeyError:
            raise KeyError(f"task {self.name!r} has no split {name!r}") from None

    def size(self, split: str = "train") -> int:
        """Number of examples in ``split``."""
        return len(self.split(split))

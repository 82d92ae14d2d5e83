"""Sparse-parity tasks: features that appear suddenly, and tasks that need another's features.

All tasks share one input space of random signs, ``x`` uniform on ``{-1, +1}^d``. Task k's
label is the parity of a subset ``S_k`` of the input bits::

    y = 1 if prod_{i in S_k} x_i > 0 else 0

A network trained on a parity of several bits learns nothing for a long plateau and then
learns the task within few steps (the features that multiply the bits form suddenly), and the
plateau grows steeply with the number of bits. A task whose subset contains another task's
(``S_A`` within ``S_B``) multiplies ``A``'s product by that of the extra bits,
``prod_{S_B} = prod_{S_A} * prod_{S_B - S_A}``: once a shared encoder
expresses ``A``'s parity, ``B`` is a parity of a few more bits and quick to learn, while from
``B``'s own data its plateau is far longer than a run. That makes ``A`` a prerequisite of ``B``
whose features exist only after a given number of ``A``'s steps, so a fixed task distribution
delays them (with a share p of the steps, by a factor 1/p) and leaves ``B`` few steps after
them, while a schedule that trains ``A`` first and ``B`` afterwards gives ``B`` the rest of the
run.

``sign_bits`` adds, per listed bit, a binary digit to the label: the bit's sign (``x_i > 0``), so
the task has ``2 ** (1 + len(sign_bits))`` classes and a part a linear model learns at once next
to the parity part that waits for its plateau; on a task with sign bits, progress shows (its loss
falls early and then stalls) before the parity forms, where a plain parity shows none.

``label_noise`` p replaces each *training* label, with probability p, by another of the classes
the labels take (validation and test labels stay clean). Data are a pure function of the specs,
``input_dim`` and ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mtl_sched.data.synthetic import _as_dataset, _corrupt
from mtl_sched.data.task import Task


@dataclass(frozen=True)
class ParityTaskSpec:
    """How to generate one sparse-parity task.

    :param name: task name.
    :param bits: the input bits (indices below ``input_dim``) whose parity is the label.
    :param train_size: training examples.
    :param validation_size: validation examples.
    :param test_size: test examples.
    :param label_noise: probability in ``[0, 1)`` that a training label is replaced by another
        class.
    :param sign_bits: input bits whose signs are further binary digits of the label (distinct
        from ``bits``).
    :param unused_classes: classes the task's head has but no label takes (its loss starts at
        the log of all classes and falls at once as the head learns to ignore them).
    """

    name: str
    bits: tuple[int, ...]
    train_size: int = 8000
    validation_size: int = 200
    test_size: int = 1000
    label_noise: float = 0.0
    sign_bits: tuple[int, ...] = ()
    unused_classes: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.bits or len(set(self.bits)) != len(self.bits):
            problems.append(f"bits={self.bits} (need distinct bit indices)")
        if any(b < 0 for b in self.bits):
            problems.append(f"bits={self.bits} (need indices >= 0)")
        if len(set(self.sign_bits)) != len(self.sign_bits) or set(self.sign_bits) & set(self.bits):
            problems.append(f"sign_bits={self.sign_bits} (need distinct bits not in bits)")
        if any(b < 0 for b in self.sign_bits):
            problems.append(f"sign_bits={self.sign_bits} (need indices >= 0)")
        if self.unused_classes < 0:
            problems.append(f"unused_classes={self.unused_classes} (need >= 0)")
        for field_name in ("train_size", "validation_size", "test_size"):
            if getattr(self, field_name) < 1:
                problems.append(f"{field_name}={getattr(self, field_name)} (need >= 1)")
        if not 0.0 <= self.label_noise < 1.0:
            problems.append(f"label_noise={self.label_noise} (need 0 <= p < 1)")
        if problems:
            raise ValueError(f"parity task {self.name!r}: " + ", ".join(problems))

    @property
    def num_classes(self) -> int:
        """Classes of the task's head: the parity, one binary digit per sign bit, and the unused
        classes."""
        return self.label_classes + self.unused_classes

    @property
    def label_classes(self) -> int:
        """Classes the labels take."""
        return 2 ** (1 + len(self.sign_bits))

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Clean labels of inputs ``x`` (``(n, d)`` random signs): the parity of ``bits`` plus
        ``2 ** (j + 1)`` for each positive ``sign_bits[j]``."""
        y = parity_labels(x, self.bits)
        for j, bit in enumerate(self.sign_bits):
            y = y + (x[:, bit] > 0).astype(np.int64) * 2 ** (j + 1)
        return y


def parity_labels(x: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """1 where the product of ``x``'s entries at ``bits`` is positive, else 0.

    :param x: inputs of random signs, ``(n, d)``.
    :param bits: the bit indices.
    """
    return (np.prod(x[:, list(bits)], axis=1) > 0).astype(np.int64)


def make_parity_tasks(
    specs: Sequence[ParityTaskSpec], input_dim: int = 16, seed: int = 0
) -> list[Task]:
    """Generate one `Task` per spec over a shared input space of random signs.

    :param specs: one spec per task; names must be unique.
    :param input_dim: dimension d of the shared input; every bit index must be below it.
    :param seed: data seed; the same arguments always give the same data.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"parity task names must be unique; got {names}")
    for spec in specs:
        highest = max(spec.bits + spec.sign_bits)
        if highest >= input_dim:
            raise ValueError(
                f"parity task {spec.name!r}: bit {highest} is outside input_dim={input_dim}"
            )
    tasks = []
    for spec, task_seed in zip(specs, np.random.SeedSequence(seed).spawn(len(specs)), strict=True):
        rng = np.random.default_rng(task_seed)
        splits = {}
        for split in ("train", "validation", "test"):
            n = getattr(spec, f"{split}_size")
            x = rng.choice(np.array([-1.0, 1.0]), size=(n, input_dim))
            y = spec.labels(x)
            if split == "train" and spec.label_noise > 0:
                y = _corrupt(y, spec.label_noise, spec.label_classes, rng)
            splits[split] = _as_dataset(x, y)
        tasks.append(
            Task(
                name=spec.name,
                splits=splits,
                num_classes=spec.num_classes,
                kind="classification",
                metric="accuracy",
                metadata={"parity": asdict(spec), "input_dim": input_dim, "seed": seed},
            )
        )
    return tasks

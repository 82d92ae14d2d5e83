"""Synthetic multi-task classification that needs no files.

All tasks share one input space ``x ~ N(0, I_d)``. Task k labels an input with a random teacher
network::

    P_k = sqrt(r_k) * P_shared + sqrt(1 - r_k) * P_own_k        (d x h projections)
    z   = sin(g_k * x P_k)                                      (g_k grows with difficulty)
    y   = argmax_c (z W_k)_c - m_c                              (m_c balances the classes)

``relatedness`` r_k in [0, 1] is how much of the teacher projection a task shares with the others
(1: all related tasks read the same latent features), ``difficulty`` in [0, 1] raises the teacher's
frequency (nearly linear at 0, several oscillations per unit at 1) so that more examples are
needed to reach a given accuracy, and ``label_noise`` p
replaces each *training* label by a uniformly drawn different class with probability p
(validation and test labels stay clean, so scores measure the true function). A ``harmful`` task
has labels drawn uniformly at random in every split, independent of the input: training on it
can only teach the shared encoder to memorize noise, and its best accuracy is chance.

A `ComposedTaskSpec` task builds on another task, its *base*: its teacher reads the base
teacher's latent features ``h = sin(g_base * x P_base)`` through a readout of its own::

    y = argmax_c (h R)_c - m_c

so a model that has learned the base task's features needs only a new linear readout for it,
while a model without them must build the same features from the composed task's own data
(usually too few or too noisy to do so). With ``reads="classes"`` the label is instead a fixed
balanced grouping of the base teacher's classes, ``y = group(argmax_c (h W_base)_c - m_c)``: a
union of cells of the base's partition, close to linear for a model that separates the base's
classes. The base must be listed before the task built on it.

A composed task's ``shortcut`` s > 0 adds ``s * d_y`` to each *training* input, where ``d_y`` is
a fixed random unit vector per class and ``y`` the training label the model sees (after label
noise); validation and test inputs stay clean. This spurious feature predicts the training
label perfectly but is absent where the task is scored, so a model that fits the task through
it before it has features that express the true label learns little that generalizes.

Data are a pure function of the specs, ``input_dim``, ``latent_dim`` and ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import datasets
import numpy as np

from mtl_sched.data.task import Task


def _size_problems(spec: SyntheticTaskSpec | ComposedTaskSpec) -> list[str]:
    """What is wrong with a spec's class count and split sizes (nothing: an empty list)."""
    problems = []
    if spec.num_classes < 2:
        problems.append(f"num_classes={spec.num_classes} (need >= 2)")
    for field_name in ("train_size", "validation_size", "test_size"):
        if getattr(spec, field_name) < 1:
            problems.append(f"{field_name}={getattr(spec, field_name)} (need >= 1)")
    return problems


@dataclass(frozen=True)
class SyntheticTaskSpec:
    """How to generate one synthetic classification task.

    :param name: task name.
    :param num_classes: number of classes (at least 2).
    :param train_size: training examples.
    :param validation_size: validation examples.
    :param test_size: test examples.
    :param difficulty: in ``[0, 1]``; 0 is a nearly linear teacher, 1 a rapidly oscillating one.
    :param label_noise: probability in ``[0, 1)`` that a training label becomes another class.
    :param relatedness: in ``[0, 1]``; share of the teacher projection common to all tasks.
    :param harmful: labels are uniform random in every split (a task that can only hurt).
    """

    name: str
    num_classes: int = 2
    train_size: int = 1000
    validation_size: int = 200
    test_size: int = 1000
    difficulty: float = 0.0
    label_noise: float = 0.0
    relatedness: float = 1.0
    harmful: bool = False

    def __post_init__(self) -> None:
        problems = _size_problems(self)
        if not 0.0 <= self.difficulty <= 1.0:
            problems.append(f"difficulty={self.difficulty} (need 0..1)")
        if not 0.0 <= self.label_noise < 1.0:
            problems.append(f"label_noise={self.label_noise} (need 0 <= p < 1)")
        if not 0.0 <= self.relatedness <= 1.0:
            problems.append(f"relatedness={self.relatedness} (need 0..1)")
        if problems:
            raise ValueError(f"synthetic task {self.name!r}: " + ", ".join(problems))


@dataclass(frozen=True)
class ComposedTaskSpec:
    """A task whose teacher reads the latent features of another task's teacher.

    :param name: task name.
    :param base: name of the task whose teacher features this task's teacher reads; a
        non-harmful `SyntheticTaskSpec` listed earlier.
    :param num_classes: number of classes (at least 2).
    :param train_size: training examples.
    :param validation_size: validation examples.
    :param test_size: test examples.
    :param label_noise: probability in ``[0, 1)`` that a training label becomes another class.
    :param reads: ``"features"``: the teacher is a readout of its own of the base teacher's
        latent features; ``"classes"``: the label is a fixed balanced grouping of the base
        teacher's (clean) classes into ``num_classes`` groups, which needs at most as many
        classes as the base has.
    :param shortcut: strength s >= 0 of a spurious training-only feature: each training input
        gets ``s * d_y`` added (``d_y`` a fixed random unit vector of its observed label ``y``),
        so the training labels are easy to fit without the features that score on validation
        and test (0: none; inputs are standard normal, of norm about ``sqrt(input_dim)``).
    """

    name: str
    base: str
    num_classes: int = 2
    train_size: int = 1000
    validation_size: int = 200
    test_size: int = 1000
    label_noise: float = 0.0
    reads: str = "features"
    shortcut: float = 0.0

    def __post_init__(self) -> None:
        problems = _size_problems(self)
        if not 0.0 <= self.label_noise < 1.0:
            problems.append(f"label_noise={self.label_noise} (need 0 <= p < 1)")
        if not (math.isfinite(self.shortcut) and self.shortcut >= 0.0):
            problems.append(f"shortcut={self.shortcut} (need a finite value >= 0)")
        if self.base == self.name:
            problems.append("base names the task itself")
        if self.reads not in ("features", "classes"):
            problems.append(f"reads={self.reads!r} (need 'features' or 'classes')")
        if problems:
            raise ValueError(f"composed task {self.name!r}: " + ", ".join(problems))


def _teacher_gain(difficulty: float) -> float:
    return 0.3 + 2.7 * difficulty


def _as_dataset(x: np.ndarray, y: np.ndarray) -> datasets.Dataset:
    features = datasets.Features(
        {"x": datasets.Sequence(datasets.Value("float32")), "label": datasets.Value("int64")}
    )
    ds = datasets.Dataset.from_dict({"x": x.astype(np.float32), "label": y}, features=features)
    return ds.with_format("numpy")


def _corrupt(
    labels: np.ndarray, p: float, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    flip = rng.random(labels.shape[0]) < p
    # Adding 1..C-1 modulo C always lands on a different class, uniformly.
    offsets = rng.integers(1, num_classes, size=labels.shape[0])
    return np.where(flip, (labels + offsets) % num_classes, labels)


def make_synthetic_tasks(
    specs: Sequence[SyntheticTaskSpec | ComposedTaskSpec],
    input_dim: int = 16,
    latent_dim: int = 8,
    seed: int = 0,
) -> list[Task]:
    """Generate one `Task` per spec over a shared input space.

    :param specs: one spec per task; names must be unique; a `ComposedTaskSpec` must come
        after its base.
    :param input_dim: dimension d of the shared input.
    :param latent_dim: width h of the teacher's latent layer.
    :param seed: data seed; the same arguments always give the same data.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"synthetic task names must be unique; got {names}")
    if input_dim < 1 or latent_dim < 1:
        raise ValueError("input_dim and latent_dim must be positive")
    root = np.random.SeedSequence(seed)
    shared_seed, *task_seeds = root.spawn(len(specs) + 1)
    shared = np.random.default_rng(shared_seed).normal(size=(input_dim, latent_dim))
    shared /= math.sqrt(input_dim)

    tasks = []
    # name -> (gain, projection, readout, class offsets) of each non-harmful task's teacher
    teachers: dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}
    for spec, task_seed in zip(specs, task_seeds, strict=True):
        if isinstance(spec, ComposedTaskSpec):
            tasks.append(_composed_task(spec, teachers, input_dim, seed, task_seed))
            continue
        rng = np.random.default_rng(task_seed)
        own = rng.normal(size=(input_dim, latent_dim)) / math.sqrt(input_dim)
        projection = math.sqrt(spec.relatedness) * shared + math.sqrt(1 - spec.relatedness) * own
        readout = rng.normal(size=(latent_dim, spec.num_classes))
        gain = _teacher_gain(spec.difficulty)
        sizes = {
            "train": spec.train_size,
            "validation": spec.validation_size,
            "test": spec.test_size,
        }
        inputs = {split: rng.normal(size=(n, input_dim)) for split, n in sizes.items()}
        # Class offsets from a large reference sample make the classes roughly balanced.
        reference = np.sin(gain * rng.normal(size=(20000, input_dim)) @ projection) @ readout
        offsets = _balancing_offsets(reference)
        if not spec.harmful:
            teachers[spec.name] = (gain, projection, readout, offsets)

        splits = {}
        for split, x in inputs.items():
            if spec.harmful:
                y = rng.integers(0, spec.num_classes, size=x.shape[0])
            else:
                y = np.argmax(np.sin(gain * x @ projection) @ readout - offsets, axis=1)
                if split == "train" and spec.label_noise > 0:
                    y = _corrupt(y, spec.label_noise, spec.num_classes, rng)
            splits[split] = _as_dataset(x, y.astype(np.int64))
        tasks.append(
            Task(
                name=spec.name,
                splits=splits,
                num_classes=spec.num_classes,
                kind="classification",
                metric="accuracy",
                metadata={"synthetic": asdict(spec), "input_dim": input_dim, "seed": seed},
            )
        )
    return tasks


def _composed_task(
    spec: ComposedTaskSpec,
    teachers: dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    input_dim: int,
    seed: int,
    task_seed: np.random.SeedSequence,
) -> Task:
    """The task of ``spec``: a readout of its base teacher's latent features, or a grouping of
    its classes (``teachers``: name -> gain, projection, readout and class offsets of every
    non-harmful task generated so far)."""
    if spec.base not in teachers:
        raise ValueError(
            f"composed task {spec.name!r}: base {spec.base!r} must be a non-harmful synthetic "
            f"task listed before it; earlier such tasks: {list(teachers)}"
        )
    gain, projection, base_readout, base_offsets = teachers[spec.base]
    if spec.reads == "classes" and spec.num_classes > base_readout.shape[1]:
        raise ValueError(
            f"composed task {spec.name!r}: grouping the classes of {spec.base!r} needs at most "
            f"{base_readout.shape[1]} classes; got {spec.num_classes}"
        )
    rng = np.random.default_rng(task_seed)
    readout = rng.normal(size=(projection.shape[1], spec.num_classes))
    sizes = {"train": spec.train_size, "validation": spec.validation_size, "test": spec.test_size}
    inputs = {split: rng.normal(size=(n, input_dim)) for split, n in sizes.items()}
    reference = np.sin(gain * rng.normal(size=(20000, input_dim)) @ projection) @ readout
    offsets = _balancing_offsets(reference)
    if spec.reads == "classes":
        # base class i -> group (position of i in a random order) mod num_classes
        groups = np.empty(base_readout.shape[1], dtype=np.int64)
        groups[rng.permutation(groups.size)] = np.arange(groups.size) % spec.num_classes
    labels = {}
    for split, x in inputs.items():
        latent = np.sin(gain * x @ projection)
        if spec.reads == "classes":
            y = groups[np.argmax(latent @ base_readout - base_offsets, axis=1)]
        else:
            y = np.argmax(latent @ readout - offsets, axis=1)
        if split == "train" and spec.label_noise > 0:
            y = _corrupt(y, spec.label_noise, spec.num_classes, rng)
        labels[split] = y.astype(np.int64)
    if spec.shortcut > 0:
        # Drawn after every other draw so that tasks without a shortcut keep their data.
        directions = rng.normal(size=(spec.num_classes, input_dim))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        inputs["train"] = inputs["train"] + spec.shortcut * directions[labels["train"]]
    splits = {split: _as_dataset(inputs[split], labels[split]) for split in inputs}
    return Task(
        name=spec.name,
        splits=splits,
        num_classes=spec.num_classes,
        kind="classification",
        metric="accuracy",
        metadata={"synthetic": asdict(spec), "input_dim": input_dim, "seed": seed},
    )


def _balancing_offsets(logits: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Per-class offsets that make ``argmax(logits - offsets)`` close to uniform over classes."""
    num_classes = logits.shape[1]
    offsets = np.zeros(num_classes)
    scale = np.std(logits) + 1e-8
    for _ in range(iterations):
        share = np.bincount(np.argmax(logits - offsets, axis=1), minlength=num_classes)
        share = share / logits.shape[0]
        offsets += 0.5 * scale * (share - 1.0 / num_classes)
    return offsets

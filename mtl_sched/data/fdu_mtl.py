"""FDU-MTL (Liu, Qiu and Huang 2017): binary sentiment classification in 16 domains.

Fourteen domains are Amazon product reviews (Blitzer et al. 2007), the other two are IMDB and
MR (rt-polarity) movie reviews. Each domain has ``<domain>.task.train`` (train and dev together)
and ``<domain>.task.test`` (400 examples) under ``<data_dir>/fdu_mtl/``; every line is
``label<TAB>text`` with label ``0`` (negative) or ``1`` (positive) and lower-cased text whose
tokens are separated by spaces. Following the public MAN code (Chen and Cardie 2018), the last
200 lines of each ``.task.train`` form the dev (validation) split and the rest the train split.

The ``MR`` files hold cp1252 bytes and ``dvd.task.train`` one invalid UTF-8 sequence: a line that
is not UTF-8 is decoded as cp1252 (never as latin-1, whose byte 0x85 is a line break to
``str.split``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import pyarrow as pa

from mtl_sched.data.paths import DataFormatError, read_lines, require_file, resolve_data_dir
from mtl_sched.data.task import Task

FDU_MTL_SUBDIR = "fdu_mtl"
# The order of seed 002's Table 1.
FDU_MTL_DOMAINS: tuple[str, ...] = (
    "books",
    "electronics",
    "dvd",
    "kitchen_housewares",
    "apparel",
    "camera_photo",
    "health_personal_care",
    "music",
    "toys_games",
    "video",
    "baby",
    "magazines",
    "software",
    "sports_outdoors",
    "imdb",
    "MR",
)
FDU_MTL_LABELS: tuple[str, ...] = ("negative", "positive")
DEV_SIZE = 200
FALLBACK_ENCODING = "cp1252"

Examples = list[tuple[list[str], int]]


def read_fdu_file(path: str | os.PathLike[str]) -> Examples:
    """The ``(tokens, label)`` examples of one ``.task.train`` or ``.task.test`` file.

    Blank lines are skipped.

    :param path: the file.
    :raises FileNotFoundError: when it is missing.
    :raises DataFormatError: naming the file and line of a line that is not ``label<TAB>text``
        with label 0 or 1, or the file when it holds no example (empty or blank).
    """
    path = require_file(path)
    examples: Examples = []
    for number, line in read_lines(path, fallback_encoding=FALLBACK_ENCODING):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise DataFormatError(path, number, "expected 'label<TAB>text' (no tab found)")
        if label not in ("0", "1"):
            raise DataFormatError(path, number, f"label must be 0 or 1; got {label!r}")
        # An empty text is kept (sports_outdoors.task.train has one): dropping it would shift
        # the dev split, and the encoder maps an empty sentence to a zero vector.
        examples.append((text.split(), int(label)))
    if not examples:
        raise DataFormatError(path, None, "no examples found (the file is empty or blank)")
    return examples


def _dataset(examples: Examples) -> datasets.Dataset:
    # Arrow arrays of known type skip the per-example encoding of plain lists (3x faster).
    return datasets.Dataset.from_dict(
        {
            "tokens": pa.array([t for t, _ in examples], type=pa.list_(pa.string())),
            "label": pa.array([y for _, y in examples], type=pa.int64()),
        }
    )


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1 or None; got {value}")


def load_fdu_mtl(
    data_dir: str | os.PathLike[str] | None = None,
    domains: Sequence[str] | None = None,
    max_train: int | None = None,
    max_validation: int | None = None,
    max_test: int | None = None,
    dev_size: int = DEV_SIZE,
) -> list[Task]:
    """One classification `Task` per FDU-MTL domain, with columns ``tokens`` and ``label``.

    :param data_dir: the data directory holding ``fdu_mtl/``; ``None`` reads ``$MTL_SCHED_DATA``.
    :param domains: domains to load, in this order (default: all 16, `FDU_MTL_DOMAINS`).
    :param max_train: keep only the first this many train examples per domain (the files are
        already shuffled, so a prefix keeps both labels).
    :param max_validation: keep only the first this many dev examples per domain.
    :param max_test: keep only the first this many test examples per domain.
    :param dev_size: lines at the end of each ``.task.train`` that form the dev split.
    """
    domains = FDU_MTL_DOMAINS if domains is None else tuple(domains)
    unknown = [d for d in domains if d not in FDU_MTL_DOMAINS]
    if unknown:
        raise ValueError(f"unknown FDU-MTL domain(s) {unknown}; known: {list(FDU_MTL_DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"duplicate FDU-MTL domains in {list(domains)}")
    for name, value in (
        ("max_train", max_train),
        ("max_validation", max_validation),
        ("max_test", max_test),
        ("dev_size", dev_size),
    ):
        _check_limit(name, value)
    root = Path(resolve_data_dir(data_dir)) / FDU_MTL_SUBDIR
    tasks = []
    for domain in domains:
        train_path = root / f"{domain}.task.train"
        labelled = read_fdu_file(train_path)
        if len(labelled) <= dev_size:
            raise DataFormatError(
                train_path,
                None,
                f"{len(labelled)} examples; need more than the {dev_size} dev examples",
            )
        train, dev = labelled[:-dev_size], labelled[-dev_size:]
        test = read_fdu_file(root / f"{domain}.task.test")
        tasks.append(
            Task(
                name=domain,
                splits={
                    "train": _dataset(train[:max_train]),
                    "validation": _dataset(dev[:max_validation]),
                    "test": _dataset(test[:max_test]),
                },
                num_classes=2,
                kind="classification",
                label_names=FDU_MTL_LABELS,
                metric="accuracy",
                metadata={
                    "dataset": "FDU-MTL",
                    "files": [f"{FDU_MTL_SUBDIR}/{domain}.task.{s}" for s in ("train", "test")],
                    "dev": f"last {dev_size} lines of {domain}.task.train",
                },
            )
        )
    return tasks

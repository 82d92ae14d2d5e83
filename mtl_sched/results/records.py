"""What the results store (`mtl_sched.results`) holds about a trial: its key, its metric rows,
its stored record, and the provenance written with it.

A trial is identified by a `TrialKey`; re-running the same key resumes instead of duplicating.
Its configuration is identified by `config_hash`, and the package version and checkout revision
that wrote it (`package_version`, `git_revision`) are stored with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MetricRow",
    "ResultRow",
    "TrialKey",
    "TrialRecord",
    "config_hash",
    "git_revision",
    "package_version",
]


@dataclass(frozen=True)
class TrialKey:
    """What identifies a trial: re-running the same key resumes instead of duplicating.

    :param benchmark: benchmark or study name (e.g. ``"fdu-mtl"``, ``"qmtl-upos"``).
    :param config_hash: hash of every setting that changes results (see `config_hash`).
    :param scheduler: scheduler name, or the method label of a study (e.g. ``"qmtl-k10"``).
    :param seed: the run's seed.
    """

    benchmark: str
    config_hash: str
    scheduler: str
    seed: int


@dataclass(frozen=True)
class MetricRow:
    """One measured number of a trial.

    :param split: ``"train"``, ``"validation"``, ``"test"``, or ``"model"`` for numbers about
        the trained model itself (parameter norms, training time).
    :param task: task name (``"average"`` for the mean over tasks).
    :param metric: metric name (e.g. ``"accuracy"``, ``"span-f1"``, ``"loss"``).
    :param value: the number.
    """

    split: str
    task: str
    metric: str
    value: float


@dataclass(frozen=True)
class ResultRow:
    """A stored metric row joined with its trial's key and configuration.

    :param key: the trial.
    :param config: the trial's configuration (the mapping hashed into ``key.config_hash``).
    :param split: see `MetricRow`.
    :param task: see `MetricRow`.
    :param metric: see `MetricRow`.
    :param value: see `MetricRow`.
    """

    key: TrialKey
    config: dict[str, Any]
    split: str
    task: str
    metric: str
    value: float


@dataclass(frozen=True)
class TrialRecord:
    """A stored trial without its metric rows.

    :param key: the trial.
    :param config: the trial's configuration.
    :param wall_time: seconds the trial took.
    :param examples_seen: training examples consumed.
    :param optimizer_steps: optimizer updates made.
    :param package_version: the ``mtl-sched`` version that wrote the trial.
    :param git_revision: the checkout's commit that wrote the trial, or ``None``.
    :param finished_at: when the trial was written (ISO 8601, UTC).
    """

    key: TrialKey
    config: dict[str, Any]
    wall_time: float
    examples_seen: int
    optimizer_steps: int
    package_version: str
    git_revision: str | None
    finished_at: str


def config_hash(config: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of ``config`` as sorted JSON.

    :param config: every setting that changes results; values JSON cannot encode are hashed
        through ``str``.
    """
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def package_version() -> str:
    """The installed ``mtl-sched`` version, else ``mtl_sched.__version__``, else ``"unknown"``."""
    try:
        return metadata.version("mtl-sched")
    except metadata.PackageNotFoundError:
        import mtl_sched

        return str(getattr(mtl_sched, "__version__", "unknown"))


def git_revision(path: str | os.PathLike[str] | None = None) -> str | None:
    """The commit checked out at ``path``; ``None`` outside a git checkout or without git.

    :param path: a directory inside the checkout; ``None`` is the directory holding the package.
    """
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None

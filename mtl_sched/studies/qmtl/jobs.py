"""One trained model of the Q-MTL study, as a sweep job (`mtl_sched.sweeps.SweepJob`).

The study's models are grouped by `TrialGroup` (one task variant and seed). Every model of a
group is one `QMTLModelJob`, so a sweep backend (in this process, a local pool, Ray) spreads
them over workers, and a finished model is never trained again. The jobs of one group start
from the same bank of initial heads (`MatchedTaggers`), rebuilt identically in each worker from
the seed. STL models also keep their per-token distributions on disk for the ensembles, which
the study combines once every member is stored (`mtl_sched.studies.qmtl.study`).

Rows each job writes (``score`` is token accuracy for UPOS, span F1 for NER, as a fraction):

- ``stl-{j}``: ``score`` (validation, test), ``frobenius_V``, ``frobenius_W`` and
  ``train_seconds`` (split ``model``);
- ``qmtl-k{k}``: ``score`` (heads averaged), ``score_select`` (the head best on validation),
  ``head{j}_score``, ``head{j}_frobenius_V``/``_W``, ``train_seconds``;
- ``pta-k{k}`` (k linear heads, no ReLU layer): ``score``, ``score_select``, ``train_seconds``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl_sched.data.task import Task
from mtl_sched.results import MetricRow, ResultsStore, TrialKey, config_hash
from mtl_sched.studies.qmtl.models import (
    MatchedTaggers,
    TaggerOutputs,
    head_of,
    score_predictions,
    tagger_outputs,
    train_tagger,
)
from mtl_sched.studies.qmtl.setup import (
    QMTLStudyConfig,
    load_ner_task,
    load_upos_task,
    with_label_noise,
)
from mtl_sched.sweeps.job import ProgressReport, TrialOutcome

EVAL_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class TrialGroup:
    """The models trained on one task variant with one seed.

    :param benchmark: ``"qmtl-upos"`` or ``"qmtl-ner"``.
    :param task: treebank name or ``"ner"``.
    :param label_noise: training label-noise rate.
    :param train_fraction: share of the training sentences (NER).
    :param seed: the run seed.
    :param ks: Q-MTL head counts (k > 1) and ensemble sizes to compare with STL.
    :param pta: also train k linear heads without the ReLU layer (k = the largest of ``ks``).
    """

    benchmark: str
    task: str
    label_noise: float
    train_fraction: float
    seed: int
    ks: tuple[int, ...]
    pta: bool

    @property
    def members(self) -> int:
        """STL models needed: the largest ensemble (at least the one STL model)."""
        return max((1, *self.ks))

    @property
    def methods(self) -> list[str]:
        """Labels of the models the group trains (its ensembles are combined afterwards)."""
        methods = [f"qmtl-k{k}" for k in self.ks]
        if self.pta and self.ks:
            methods.append(f"pta-k{max(self.ks)}")
        return methods + [f"stl-{j}" for j in range(self.members)]


def group_config(config: QMTLStudyConfig, group: TrialGroup) -> dict[str, Any]:
    """The configuration recorded (and hashed) with the group's trials.

    :param config: the study configuration.
    :param group: the trial group.
    """
    # a treebank given as a directory is identified by its path too, so that two directories
    # given the same name never share stored results; built-in treebanks keep their old hashes
    directory = dict(config.treebank_dirs).get(group.task)
    return {
        **config.description(),
        "task": group.task,
        "label_noise": group.label_noise,
        "train_fraction": group.train_fraction,
        **({"treebank_dir": directory} if directory else {}),
    }


def trial_key(config: QMTLStudyConfig, group: TrialGroup, method: str) -> TrialKey:
    """The store key of ``method``'s trial in ``group``.

    :param config: the study configuration.
    :param group: the trial group.
    :param method: a model label (``stl-0``, ``qmtl-k10``, ``ensemble-k10``, ...).
    """
    return TrialKey(group.benchmark, config_hash(group_config(config, group)), method, group.seed)


def member_file(
    cache_dir: str | os.PathLike[str], config: QMTLStudyConfig, group: TrialGroup, j: int
) -> Path:
    """Where STL model ``j`` of ``group`` keeps its per-token distributions.

    :param cache_dir: the study's cache directory.
    :param config: the study configuration.
    :param group: the trial group.
    :param j: the STL model's index.
    """
    key = trial_key(config, group, f"stl-{j}")
    return Path(cache_dir) / key.benchmark / key.config_hash / f"seed{key.seed}" / f"stl-{j}.npz"


# Clean tasks loaded by this process: the jobs of one worker share them.
_CLEAN_TASKS: dict[tuple[Any, ...], Task] = {}


def group_task(
    config: QMTLStudyConfig, group: TrialGroup, data_dir: str | os.PathLike[str] | None
) -> Task:
    """The group's task: its treebank (or NER fraction) with its label noise.

    :param config: the study configuration (sentence limits).
    :param group: the trial group.
    :param data_dir: the data directory (``None``: ``$MTL_SCHED_DATA``).
    """
    limits = tuple(sorted(config.limits().items()))
    key = (str(data_dir), limits, group.benchmark, group.task, group.train_fraction)
    if key not in _CLEAN_TASKS:
        _CLEAN_TASKS[key] = (
            load_ner_task(group.train_fraction, config, data_dir)
            if group.benchmark == "qmtl-ner"
            else load_upos_task(group.task, config, data_dir)
        )
    return with_label_noise(_CLEAN_TASKS[key], group.label_noise, group.seed)


@dataclass(frozen=True)
class QMTLModelJob:
    """Train one model of a Q-MTL study group and store its rows, unless they are stored.

    :param config: the study configuration.
    :param group: the model's trial group.
    :param method: ``"stl-{j}"``, ``"qmtl-k{k}"`` or ``"pta-k{k}"``.
    :param cache_dir: the study's cache directory (STL distributions for the ensembles).
    :param data_dir: the data directory (``None``: ``$MTL_SCHED_DATA``).
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    config: QMTLStudyConfig
    group: TrialGroup
    method: str
    cache_dir: str
    data_dir: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.method not in self.group.methods:
            raise ValueError(
                f"{self.method!r} is not a model of this group; "
                f"choose from {', '.join(self.group.methods)}"
            )

    @property
    def label(self) -> str:
        """Short name for progress bars and failure messages."""
        group = self.group
        variant = f" p={group.label_noise:g}" if group.label_noise else ""
        if group.benchmark == "qmtl-ner":
            variant = f" {group.train_fraction:.0%}"
        return f"{group.task}{variant} seed {group.seed} {self.method}"

    @property
    def key(self) -> TrialKey:
        """The store key of the model's trial."""
        return trial_key(self.config, self.group, self.method)

    def _member_index(self) -> int | None:
        return int(self.method[4:]) if self.method.startswith("stl-") else None

    def is_stored(self, finished: Set[TrialKey]) -> bool:
        """Whether the model is stored (an STL model also needs its distributions file).

        :param finished: every trial key of the store.
        """
        j = self._member_index()
        on_disk = j is None or member_file(self.cache_dir, self.config, self.group, j).exists()
        return self.key in finished and on_disk

    def run(
        self, store_path: str, report: ProgressReport | None = None, threads: int | None = 1
    ) -> TrialOutcome:
        """Train the model and store its rows (see the module docstring).

        :param store_path: the results store file.
        :param report: progress callback, ``(examples seen, budget)``.
        :param threads: torch threads of this process; ``None`` leaves the setting alone.
        """
        start = time.perf_counter()
        if threads is not None:
            torch.set_num_threads(threads)
        with ResultsStore(store_path) as store:
            if self.is_stored(store.finished_keys(self.group.benchmark)):
                return TrialOutcome(self.key, False, time.perf_counter() - start)
        task = group_task(self.config, self.group, self.data_dir)
        models = MatchedTaggers(task, self.config.settings, self.group.seed)
        j = self._member_index()
        if j is None:
            k = int(self.method.rpartition("-k")[2])
            model = models.qmtl(k, 0) if self.method.startswith("pta") else models.qmtl(k)
        else:
            model = models.stl(j)
        budget = self.config.settings.epochs * task.size("train")
        on_examples = None if report is None else (lambda seen: report(seen, budget))
        result = train_tagger(
            model, task, self.config.settings, self.group.seed, self.device, on_examples
        )
        outputs = {split: tagger_outputs(model, task, split) for split in EVAL_SPLITS}
        rows = [MetricRow("model", task.name, "train_seconds", result.wall_time)]
        if j is None:
            rows += _head_rows(task, outputs, model, frobenius=self.method.startswith("qmtl"))
        else:
            _save_distributions(member_file(self.cache_dir, self.config, self.group, j), outputs)
            rows += _member_rows(task, outputs, model)
        with ResultsStore(store_path) as store:
            written = store.write_trial(
                self.key,
                rows,
                config=group_config(self.config, self.group),
                wall_time=result.wall_time,
                examples_seen=result.examples_seen,
                optimizer_steps=result.steps,
            )
        return TrialOutcome(self.key, written, time.perf_counter() - start)


def _head_rows(
    task: Task, outputs: dict[str, TaggerOutputs], model: Any, frobenius: bool
) -> list[MetricRow]:
    head_scores = {
        split: [
            score_predictions(task, split, predictions, out.lengths)
            for predictions in out.head_predictions
        ]
        for split, out in outputs.items()
    }
    selected = int(np.argmax(head_scores["validation"]))
    rows = []
    for split, out in outputs.items():
        combined = score_predictions(task, split, out.probabilities.argmax(1), out.lengths)
        rows.append(MetricRow(split, task.name, "score", combined))
        rows.append(MetricRow(split, task.name, "score_select", head_scores[split][selected]))
        if frobenius:
            rows += [
                MetricRow(split, task.name, f"head{j}_score", value)
                for j, value in enumerate(head_scores[split])
            ]
    if frobenius:
        for name, norms in head_of(model).frobenius_norms().items():
            rows += [
                MetricRow("model", task.name, f"head{j}_frobenius_{name}", float(value))
                for j, value in enumerate(norms)
            ]
    return rows


def _member_rows(task: Task, outputs: dict[str, TaggerOutputs], model: Any) -> list[MetricRow]:
    rows = []
    for split, out in outputs.items():
        value = score_predictions(task, split, out.probabilities.argmax(1), out.lengths)
        rows.append(MetricRow(split, task.name, "score", value))
    rows += [
        MetricRow("model", task.name, f"frobenius_{name}", float(norms[0]))
        for name, norms in head_of(model).frobenius_norms().items()
    ]
    return rows


def _save_distributions(path: Path, outputs: dict[str, TaggerOutputs]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, out in outputs.items():
        arrays[split] = out.probabilities.astype(np.float32)
        arrays[f"{split}_lengths"] = out.lengths
    # written under a temporary name first, so an interrupted save never looks finished
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def load_distributions(path: Path) -> dict[str, np.ndarray]:
    """An STL model's stored per-token distributions (``{split}`` and ``{split}_lengths``).

    :param path: its `member_file`.
    """
    if not path.exists():
        raise FileNotFoundError(f"an ensemble member's distributions are missing: {path}")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}

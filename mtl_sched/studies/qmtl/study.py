"""The Q-MTL study (seeds 000 and 001): STL, Q-MTL and ensembles of STL models.

Every trained or combined model is a trial of the results store (`mtl_sched.results`) keyed by
(study benchmark, configuration hash, method label, seed); a finished trial is never run again,
so an interrupted study resumes where it stopped. The study runs in two phases: every model to
train is a sweep job (`mtl_sched.studies.qmtl.jobs.QMTLModelJob`), run in this process, on a
local pool or on Ray (`mtl_sched.sweeps.run_sweep`); then each group's ensembles are combined
here from their members' stored distributions. Method labels and metrics:

============  =================================================================================
label         rows (``score`` is token accuracy for UPOS, span F1 for NER, as a fraction)
============  =================================================================================
``stl-{j}``   the j-th STL model: ``score`` (validation, test), ``frobenius_V``,
              ``frobenius_W`` and ``train_seconds`` (split ``model``)
``qmtl-k{k}`` Q-MTL, k heads with a 20-unit ReLU layer: ``score`` (heads averaged),
              ``score_select`` (the head best on validation), ``head{j}_score``,
              ``head{j}_frobenius_V``/``_W``, ``train_seconds``
``pta-k{k}``  k linear heads (no ReLU layer): ``score``, ``score_select``, ``train_seconds``
``ensemble-   the averaged distributions of ``stl-0`` ... ``stl-{k-1}``: ``score``;
k{k}``        ``train_seconds`` is the members' sum
============  =================================================================================

Every row's configuration holds the tagger settings, the sentence limits, ``label_noise`` and
``train_fraction``. UPOS trials are stored under the benchmark ``qmtl-upos`` (task = treebank),
NER trials under ``qmtl-ner`` (task ``ner``). The ensembles read their members' per-token
distributions, kept as ``.npz`` files under the cache directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_sched.data.task import Task
from mtl_sched.results import MetricRow, ResultRow, ResultsStore, TrialKey
from mtl_sched.studies.qmtl.jobs import (
    EVAL_SPLITS,
    QMTLModelJob,
    TrialGroup,
    group_config,
    group_task,
    load_distributions,
    member_file,
    trial_key,
)
from mtl_sched.studies.qmtl.models import score_predictions
from mtl_sched.studies.qmtl.setup import QMTLStudyConfig
from mtl_sched.sweeps import SweepSummary, run_sweep

STUDY_BENCHMARKS = ("qmtl-upos", "qmtl-ner")

__all__ = ["QMTLStudy", "QMTLStudyRun", "TrialGroup", "plan_groups", "study_rows"]


def plan_groups(config: QMTLStudyConfig) -> list[TrialGroup]:
    """Every `TrialGroup` the configured parts need, in run order.

    :param config: the study configuration.
    """
    parts = set(config.parts)
    table_ks = tuple(sorted({k for k in config.ks if k > 1}))
    noise_ks = (config.noise_k,) if config.noise_k > 1 else ()
    groups = []
    for seed in config.seeds:
        for treebank in config.treebanks:
            for p in sorted({0.0, *config.noise_levels}) if "noise" in parts else [0.0]:
                ks: set[int] = set()
                if p == 0.0 and "table1" in parts:
                    ks.update(table_ks)
                if "noise" in parts or "selection" in parts:
                    ks.update(noise_ks)
                if p == 0.0 and not ks and "table1" not in parts and "selection" not in parts:
                    continue
                groups.append(
                    TrialGroup(
                        "qmtl-upos", treebank, p, 1.0, seed, tuple(sorted(ks)), "selection" in parts
                    )
                )
        if "ner" in parts:
            groups += [
                TrialGroup("qmtl-ner", "ner", 0.0, fraction, seed, noise_ks, False)
                for fraction in config.ner_fractions
            ]
    return groups


@dataclass
class QMTLStudyRun:
    """What one `QMTLStudy.run` did.

    :param sweep: the sweep of the models to train.
    :param ensembles_written: ensembles combined and stored by this run.
    :param ensembles_waiting: ensembles left out because a member is missing (it failed).
    """

    sweep: SweepSummary
    ensembles_written: int
    ensembles_waiting: int

    @property
    def written(self) -> int:
        """Trials this run wrote: trained models and combined ensembles."""
        return self.sweep.written + self.ensembles_written


class QMTLStudy:
    """Runs the study's trials into a results store.

    :param config: what to run.
    :param store: the results store (finished trials are skipped).
    :param cache_dir: where STL models' per-token distributions are kept for the ensembles.
    :param data_dir: the data directory (``None``: ``$MTL_SCHED_DATA``).
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param progress: show progress bars.
    """

    def __init__(
        self,
        config: QMTLStudyConfig,
        store: ResultsStore,
        cache_dir: str | os.PathLike[str],
        data_dir: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.data_dir = data_dir
        self.device = device
        self.progress = progress

    def task(self, group: TrialGroup) -> Task:
        """The group's task: its treebank (or NER fraction) with its label noise."""
        return group_task(self.config, group, self.data_dir)

    def group_config(self, group: TrialGroup) -> dict[str, Any]:
        """The configuration recorded (and hashed) with the group's trials."""
        return group_config(self.config, group)

    def key(self, group: TrialGroup, method: str) -> TrialKey:
        """The store key of ``method``'s trial in ``group``."""
        return trial_key(self.config, group, method)

    def member_file(self, group: TrialGroup, j: int) -> Path:
        """Where STL model ``j`` of ``group`` keeps its per-token distributions."""
        return member_file(self.cache_dir, self.config, group, j)

    def jobs(self) -> list[QMTLModelJob]:
        """Every model the configured parts train, group after group."""
        data_dir = None if self.data_dir is None else str(self.data_dir)
        return [
            QMTLModelJob(self.config, group, method, str(self.cache_dir), data_dir, self.device)
            for group in plan_groups(self.config)
            for method in group.methods
        ]

    def run(
        self, *, backend: str = "local", workers: int = 1, address: str | None = None
    ) -> QMTLStudyRun:
        """Train every missing model (on ``backend``), then combine every missing ensemble.

        :param backend: ``"local"`` or ``"ray"`` (see `run_sweep`).
        :param workers: models trained at once (``local`` with 1: in this process).
        :param address: a Ray cluster's address; ``None`` starts a local Ray instance.
        """
        sweep = run_sweep(
            self.jobs(),
            self.store.path,
            backend=backend,
            workers=workers,
            address=address,
            progress=self.progress,
        )
        written = waiting = 0
        for group in plan_groups(self.config):
            for k in group.ks:
                if not all(self._member_ready(group, j) for j in range(k)):
                    waiting += 1
                    continue
                written += self._combine_ensemble(group, k)
        return QMTLStudyRun(sweep, written, waiting)

    def _member_ready(self, group: TrialGroup, j: int) -> bool:
        return (
            self.store.has_trial(self.key(group, f"stl-{j}"))
            and self.member_file(group, j).exists()
        )

    def _combine_ensemble(self, group: TrialGroup, k: int) -> int:
        key = self.key(group, f"ensemble-k{k}")
        if self.store.has_trial(key):
            return 0
        task = self.task(group)
        members = [load_distributions(self.member_file(group, j)) for j in range(k)]
        seconds = [
            row.value
            for j in range(k)
            for row in self.store.rows(
                benchmark=group.benchmark,
                config_hash=key.config_hash,
                scheduler=f"stl-{j}",
                metric="train_seconds",
            )
            if row.key.seed == group.seed
        ]
        rows = [MetricRow("model", task.name, "train_seconds", float(sum(seconds)))]
        for split in EVAL_SPLITS:
            averaged = np.mean([m[split] for m in members], axis=0)
            lengths = members[0][f"{split}_lengths"]
            value = score_predictions(task, split, averaged.argmax(1), lengths)
            rows.append(MetricRow(split, task.name, "score", value))
        written = self.store.write_trial(
            key,
            rows,
            config=self.group_config(group),
            wall_time=float(sum(seconds)),
            examples_seen=0,
            optimizer_steps=0,
        )
        return int(written)


def study_rows(store: ResultsStore, config: QMTLStudyConfig) -> list[ResultRow]:
    """The stored rows of the study's benchmarks that were produced under ``config``'s tagger
    settings and sentence limits (whatever their label noise or NER fraction).

    :param store: the results store.
    :param config: the study configuration.
    """
    wanted = config.description()
    return [
        row
        for benchmark in STUDY_BENCHMARKS
        for row in store.rows(benchmark=benchmark)
        if all(row.config.get(name) == value for name, value in wanted.items())
    ]

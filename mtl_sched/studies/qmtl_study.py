"""The Q-MTL study (seeds 000 and 001): STL, Q-MTL and ensembles of STL models.

Every trained or combined model is a trial of the results store (`mtl_sched.results`) keyed by
(study benchmark, configuration hash, method label, seed); a finished trial is never run again,
so an interrupted study resumes where it stopped. Method labels and metrics:

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mtl_sched.data.task import Task
from mtl_sched.models.sequence_tagger import SequenceTagger
from mtl_sched.results import MetricRow, ResultRow, ResultsStore, TrialKey, config_hash
from mtl_sched.studies.qmtl_models import (
    MatchedTaggers,
    TaggerOutputs,
    head_of,
    score_predictions,
    tagger_outputs,
    train_tagger,
)
from mtl_sched.studies.qmtl_setup import (
    QMTLStudyConfig,
    load_ner_task,
    load_upos_task,
    with_label_noise,
)

EVAL_SPLITS = ("validation", "test")
STUDY_BENCHMARKS = ("qmtl-upos", "qmtl-ner")


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
        self._clean_tasks: dict[tuple[str, float], Task] = {}

    # ------------------------------------------------------------------------------ data
    def task(self, group: TrialGroup) -> Task:
        """The group's task: its treebank (or NER fraction) with its label noise."""
        key = (group.task, group.train_fraction)
        if key not in self._clean_tasks:
            self._clean_tasks[key] = (
                load_ner_task(group.train_fraction, self.config, self.data_dir)
                if group.benchmark == "qmtl-ner"
                else load_upos_task(group.task, self.config, self.data_dir)
            )
        return with_label_noise(self._clean_tasks[key], group.label_noise, group.seed)

    def group_config(self, group: TrialGroup) -> dict:
        """The configuration recorded (and hashed) with the group's trials."""
        return {
            **self.config.description(),
            "task": group.task,
            "label_noise": group.label_noise,
            "train_fraction": group.train_fraction,
        }

    def key(self, group: TrialGroup, method: str) -> TrialKey:
        """The store key of ``method``'s trial in ``group``."""
        return TrialKey(group.benchmark, config_hash(self.group_config(group)), method, group.seed)

    # ------------------------------------------------------------------------------- run
    def run(self) -> int:
        """Run every missing trial; return how many trials were written."""
        groups = plan_groups(self.config)
        written = 0
        for group in tqdm(groups, desc="Q-MTL study", unit="group", disable=not self.progress):
            written += self.run_group(group)
        return written

    def run_group(self, group: TrialGroup) -> int:
        """Run the missing trials of one group; return how many were written."""
        task = self.task(group)
        models = MatchedTaggers(task, self.config.settings, group.seed)
        written = 0
        for k in group.ks:
            written += self._train_heads(group, task, f"qmtl-k{k}", lambda k=k: models.qmtl(k))
        if group.pta and group.ks:
            k = max(group.ks)
            written += self._train_heads(group, task, f"pta-k{k}", lambda: models.qmtl(k, 0))
        for j in range(group.members):
            written += self._train_member(group, task, models, j)
        for k in group.ks:
            written += self._combine_ensemble(group, task, k)
        return written

    def _train_heads(
        self, group: TrialGroup, task: Task, method: str, build: Callable[[], SequenceTagger]
    ) -> int:
        key = self.key(group, method)
        if self.store.has_trial(key):
            return 0
        model = build()
        result = train_tagger(model, task, self.config.settings, group.seed, self.device)
        head = head_of(model)
        rows = [MetricRow("model", task.name, "train_seconds", result.wall_time)]
        outputs = {split: tagger_outputs(model, task, split) for split in EVAL_SPLITS}
        head_scores = {
            split: [
                score_predictions(task, split, predictions, out.lengths)
                for predictions in out.head_predictions
            ]
            for split, out in outputs.items()
        }
        selected = int(np.argmax(head_scores["validation"]))
        for split, out in outputs.items():
            combined = score_predictions(task, split, out.probabilities.argmax(1), out.lengths)
            rows.append(MetricRow(split, task.name, "score", combined))
            rows.append(MetricRow(split, task.name, "score_select", head_scores[split][selected]))
            if method.startswith("qmtl"):
                rows += [
                    MetricRow(split, task.name, f"head{j}_score", value)
                    for j, value in enumerate(head_scores[split])
                ]
        if method.startswith("qmtl"):
            for name, norms in head.frobenius_norms().items():
                rows += [
                    MetricRow("model", task.name, f"head{j}_frobenius_{name}", float(value))
                    for j, value in enumerate(norms)
                ]
        return self._write(key, group, rows, result.examples_seen, result.steps)

    def _member_file(self, group: TrialGroup, j: int) -> Path:
        key = self.key(group, f"stl-{j}")
        return self.cache_dir / key.benchmark / key.config_hash / f"seed{key.seed}" / f"stl-{j}.npz"

    def _train_member(self, group: TrialGroup, task: Task, models: MatchedTaggers, j: int) -> int:
        key = self.key(group, f"stl-{j}")
        path = self._member_file(group, j)
        if self.store.has_trial(key) and path.exists():
            return 0
        model = models.stl(j)
        result = train_tagger(model, task, self.config.settings, group.seed, self.device)
        outputs = {split: tagger_outputs(model, task, split) for split in EVAL_SPLITS}
        _save_distributions(path, outputs)
        rows = [MetricRow("model", task.name, "train_seconds", result.wall_time)]
        for split, out in outputs.items():
            value = score_predictions(task, split, out.probabilities.argmax(1), out.lengths)
            rows.append(MetricRow(split, task.name, "score", value))
        rows += [
            MetricRow("model", task.name, f"frobenius_{name}", float(norms[0]))
            for name, norms in head_of(model).frobenius_norms().items()
        ]
        return self._write(key, group, rows, result.examples_seen, result.steps)

    def _combine_ensemble(self, group: TrialGroup, task: Task, k: int) -> int:
        key = self.key(group, f"ensemble-k{k}")
        if self.store.has_trial(key):
            return 0
        members = [_load_distributions(self._member_file(group, j)) for j in range(k)]
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
        return self._write(key, group, rows, 0, 0)

    def _write(
        self, key: TrialKey, group: TrialGroup, rows: list[MetricRow], examples: int, steps: int
    ) -> int:
        wall = next(r.value for r in rows if r.metric == "train_seconds")
        written = self.store.write_trial(
            key,
            rows,
            config=self.group_config(group),
            wall_time=wall,
            examples_seen=examples,
            optimizer_steps=steps,
        )
        return int(written)


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


def _load_distributions(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(f"an ensemble member's distributions are missing: {path}")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


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

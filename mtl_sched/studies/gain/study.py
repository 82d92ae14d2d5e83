"""Seed 004's gain prediction on the tasks of a task-relation study.

Each task is described by its data (`dataset_features`, from the same sentences the study's
models saw) and by the learning curve of its single-task models (`curve_features` of the
training-loss curve averaged over the STL seeds). Each ordered pair (main, auxiliary) is
labelled "gain" when the pairwise model beats the single-task model on the main task (mean test
score over seeds), from the study's own results or from a user's CSV of outcomes; the pairs'
42 features, normalized to [0, 1], feed the cross-validated logistic regression.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl_sched.benchmarks.relations import relations_benchmark
from mtl_sched.studies.gain.curves import curve_features
from mtl_sched.studies.gain.features import dataset_features
from mtl_sched.studies.gain.prediction import (
    PAIR_FEATURE_NAMES,
    GainPredictionScores,
    coefficients_table,
    cross_validated_gain_prediction,
    feature_subsets,
    gain_coefficients,
    normalize_columns,
    pair_features,
    scores_table,
)
from mtl_sched.studies.relations.plan import ordered
from mtl_sched.studies.relations.study import RelationsConfig, StudyResults

Outcome = tuple[str, str, bool]  # (main task, auxiliary task, gain)


def task_features(
    config: RelationsConfig,
    results: StudyResults,
    reference_vocabulary: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """The 14 features of every task of the study.

    :param config: the study (its options give the sentences each task's models saw).
    :param results: the study's results; every task needs a stored STL loss curve.
    :param reference_vocabulary: words of a pretrained embedding, for the OOV rate; ``None``
        measures test words unseen in training instead.
    :raises ValueError: naming the tasks without an STL model in the store.
    """
    missing = [t for t in config.tasks if not results.loss_curves.get(t)]
    if missing:
        raise ValueError(
            f"no single-task model of {', '.join(missing)} in the store: run "
            "'mtl-sched study relations' with the stl setting (and the same options) first"
        )
    features = {}
    for name in config.tasks:
        options = {k: v for k, v in config.benchmark_options((name,)).items() if k != "tasks"}
        (task,) = relations_benchmark(tasks=[name], **options).tasks
        train, test = task.split("train")[:], task.split("test")[:]
        tags = [[task.label_names[i] for i in row] for row in train["tags"]]
        data = dataset_features(
            train["tokens"], tags, test["tokens"], task.num_classes, reference_vocabulary
        )
        curves = results.loss_curves[name]
        length = min(len(curve) for curve in curves)
        mean_curve = np.mean([curve[:length] for curve in curves], axis=0)
        features[name] = {**data, **curve_features(mean_curve.tolist())}
    return features


def study_outcomes(results: StudyResults, tasks: Sequence[str]) -> list[Outcome]:
    """Every ordered (main, auxiliary) pair with a stored pairwise and STL result, labelled
    gain when the pair's mean test score on main exceeds main's STL mean.

    :param results: the study's results.
    :param tasks: the study's tasks, in order.
    """
    stats = results.statistics()
    outcomes = []
    for main in tasks:
        alone = stats.get(((main,), main))
        for aux in tasks:
            pair = stats.get((ordered((main, aux), tasks), main)) if aux != main else None
            if alone is not None and pair is not None:
                outcomes.append((main, aux, pair.mean > alone.mean))
    return outcomes


def read_outcomes(path: str | os.PathLike[str], tasks: Sequence[str]) -> list[Outcome]:
    """A user's pairwise outcomes: a CSV with columns ``main``, ``aux`` and either ``gain``
    (1/0, true/false) or ``mtl`` and ``stl`` (scores; gain when ``mtl > stl``).

    :param path: the CSV file.
    :param tasks: the tasks features exist for.
    :raises ValueError: naming the file and line of a bad row or header.
    """
    outcomes = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if not {"main", "aux"} <= fields or not ({"gain"} <= fields or {"mtl", "stl"} <= fields):
            raise ValueError(
                f"{path}, line 1: the header needs main, aux and gain (or mtl and stl); "
                f"got {sorted(fields)}"
            )
        for line, row in enumerate(reader, start=2):
            main, aux = row["main"].strip(), row["aux"].strip()
            unknown = [t for t in (main, aux) if t not in tasks]
            if unknown or main == aux:
                raise ValueError(
                    f"{path}, line {line}: main and aux must be two of {', '.join(tasks)}"
                )
            try:
                if "gain" in fields:
                    value = row["gain"].strip().lower()
                    if value not in ("1", "0", "true", "false"):
                        raise ValueError(value)
                    gain = value in ("1", "true")
                else:
                    gain = float(row["mtl"]) > float(row["stl"])
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}: gain must be 1/0/true/false, mtl and stl numbers"
                ) from None
            outcomes.append((main, aux, gain))
    return outcomes


@dataclass
class GainPrediction:
    """Seed 004's Tables 3 and 4 for one set of outcomes.

    :param scores: feature set name (and "all features") -> cross-validated scores.
    :param coefficients: ``(feature, coefficient)`` of a fit on every pair, by |coefficient|.
    :param outcomes: the labelled pairs.
    """

    scores: dict[str, GainPredictionScores]
    coefficients: list[tuple[str, float]]
    outcomes: list[Outcome]

    def markdown(self) -> str:
        """Both tables and the outcomes, as Markdown."""
        gains = sum(gain for _, _, gain in self.outcomes)
        lines = [
            "## Gain prediction (seed 004 Table 3)",
            "",
            f"{len(self.outcomes)} (main, auxiliary) pairs, {gains} with a gain.",
            "",
            scores_table(self.scores),
            "",
            "## Coefficients (seed 004 Table 4)",
            "",
            coefficients_table(self.coefficients),
            "",
            "Pairs with a gain: "
            + (", ".join(f"{m} +{a}" for m, a, g in self.outcomes if g) or "none")
            + ".",
        ]
        return "\n".join(lines) + "\n"


def predict_gains(
    features: Mapping[str, Mapping[str, float]],
    outcomes: Sequence[Outcome],
    runs: int = 100,
    folds: int = 5,
    seed: int = 0,
) -> GainPrediction:
    """Cross-validate the logistic regression on every feature set and fit the coefficients.

    :param features: task -> its 14 features.
    :param outcomes: the labelled pairs.
    :param runs: randomized cross-validation runs (seed 004: 100).
    :param folds: folds per run (seed 004: 5).
    :param seed: seed of the first run's fold split.
    """
    matrix = normalize_columns(
        np.array([list(pair_features(features[m], features[a]).values()) for m, a, _ in outcomes])
    )
    gains = np.array([gain for _, _, gain in outcomes], dtype=bool)
    scores = {
        name: cross_validated_gain_prediction(matrix, gains, runs, folds, seed, columns)
        for name, columns in feature_subsets(PAIR_FEATURE_NAMES).items()
    }
    coefficients = gain_coefficients(matrix, gains, PAIR_FEATURE_NAMES)
    return GainPrediction(scores, coefficients, list(outcomes))


def write_gain_report(prediction: GainPrediction, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``gain_prediction.md`` and ``gain_outcomes.csv`` to ``out``.

    :param prediction: the result of `predict_gains`.
    :param out: the output directory.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    report = root / "gain_prediction.md"
    report.write_text("# MTL gain prediction\n\n" + prediction.markdown())
    table = root / "gain_outcomes.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["main", "aux", "gain"])
        writer.writerows([m, a, int(g)] for m, a, g in prediction.outcomes)
    return [report, table]

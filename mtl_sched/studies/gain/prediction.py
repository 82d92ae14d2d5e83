"""Predicting MTL gains from task features with logistic regression (seed 004, Tables 3 and 4).

Seed 004 (Bingel & Søgaard, 2017) describes a (main, auxiliary) task pair by the 14 features of
each task (`mtl_sched.studies.gain.features.TASK_FEATURES`) and their main/auxiliary ratios, 42
features normalized to [0, 1], labels it "gain" when multi-task learning beats single-task
learning on the main task, and scores a logistic regression by 100 runs of randomized 5-fold
cross-validation against the majority baseline (Table 3: the accuracy of predicting the
majority class and the F1 of predicting "gain" for every pair). The coefficients of a fit on all
pairs rank the features (Table 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from mtl_sched.reporting.tables import markdown_table
from mtl_sched.studies.gain.features import CURVE_FEATURES, DATASET_FEATURES, TASK_FEATURES

#: the row label of the baseline in `scores_table`: majority-class accuracy, always-gain F1
BASELINE_LABEL = 'Majority baseline (Acc.: majority class; F1: always "gain")'
#: magnitude of a ratio whose auxiliary value is 0 (and the cap of every ratio's magnitude)
RATIO_LIMIT = 1e6
_PREFIXES = {"main": "Main", "aux": "Aux", "ratio": "Main/Aux"}
#: the 42 pair features: the 14 ``main_`` ones, then the 14 ``aux_``, then the 14 ``ratio_``,
#: each block in `TASK_FEATURES` order
PAIR_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{prefix}_{feature}" for prefix in _PREFIXES for feature in TASK_FEATURES
)
# Table 4's feature names
_DISPLAY = dict(
    zip(
        DATASET_FEATURES,
        ("Size", "# Labels", "Tokens/types", "OOV rate", "Label entropy", "Fr. norm", "JSD"),
        strict=True,
    )
)
_DISPLAY |= {f"grad_{p}": f"Curve grad. ({p}%)" for p in (10, 20, 30, 50, 70)}
_DISPLAY |= {"curve_a": "Curve param. a", "curve_c": "Curve param. c"}


def _ratio(main: float, aux: float) -> float:
    if aux == 0:
        return 0.0 if main == 0 else math.copysign(RATIO_LIMIT, main)
    return float(np.clip(main / aux, -RATIO_LIMIT, RATIO_LIMIT))


def pair_features(main: Mapping[str, float], aux: Mapping[str, float]) -> dict[str, float]:
    """The 42 features of a (main, auxiliary) pair, keyed and ordered as `PAIR_FEATURE_NAMES`.

    ``main_<f>`` and ``aux_<f>`` are the tasks' values; ``ratio_<f>`` is ``main / aux``. A zero
    auxiliary value, which the paper leaves open, gives 0 when the main value is 0 too, else
    ``±RATIO_LIMIT`` with the main value's sign; every ratio is capped to ``±RATIO_LIMIT`` so a
    tiny denominator cannot give an infinity. Other keys of the mappings are ignored.

    :param main: the main task's features (at least `TASK_FEATURES`).
    :param aux: the auxiliary task's features.
    :raises ValueError: when a feature is missing or not finite.
    """
    for role, features in (("main", main), ("aux", aux)):
        missing = [name for name in TASK_FEATURES if name not in features]
        if missing:
            raise ValueError(f"the {role} task lacks features: {', '.join(missing)}")
        bad = [name for name in TASK_FEATURES if not math.isfinite(features[name])]
        if bad:
            raise ValueError(f"the {role} task has non-finite features: {', '.join(bad)}")
    out = {f"main_{name}": float(main[name]) for name in TASK_FEATURES}
    out |= {f"aux_{name}": float(aux[name]) for name in TASK_FEATURES}
    out |= {f"ratio_{name}": _ratio(main[name], aux[name]) for name in TASK_FEATURES}
    return out


def normalize_columns(matrix: np.ndarray) -> np.ndarray:
    """Min-max scale each column to [0, 1]; a constant column becomes all 0.

    :param matrix: a 2-D array of finite values, one row per example.
    :raises ValueError: when it is not 2-D or holds a non-finite value.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix; got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("the matrix holds non-finite values")
    low = matrix.min(axis=0)
    span = matrix.max(axis=0) - low
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (matrix - low) / safe, 0.0)


@dataclass(frozen=True)
class GainPredictionScores:
    """Cross-validated scores of the gain classifier and of the baselines.

    Means are over all runs x folds of per-fold scores; standard deviations are over runs of
    each run's mean over its folds (population std, ``ddof=0``). Seed 004's majority baseline
    is ``majority_accuracy`` with ``always_gain_f1``: the F1 of the gain class is 0 whenever
    "no gain" is predicted throughout, so the paper scores F1 against predicting "gain".

    :param accuracy: mean accuracy of the logistic regression.
    :param f1_gain: its mean F1 of the gain class.
    :param majority_accuracy: mean accuracy of predicting the training part's majority class.
    :param majority_f1_gain: mean F1 of the gain class of those majority-class predictions (0
        when "no gain" is the majority of every training part).
    :param always_gain_f1: mean F1 of the gain class when every pair is predicted "gain" (seed
        004's baseline F1: 0.615 for 40 gains of 90 pairs).
    :param accuracy_std: std over runs of ``accuracy``.
    :param f1_gain_std: std over runs of ``f1_gain``.
    :param majority_accuracy_std: std over runs of ``majority_accuracy``.
    :param majority_f1_gain_std: std over runs of ``majority_f1_gain``.
    :param always_gain_f1_std: std over runs of ``always_gain_f1``.
    :param runs: cross-validation runs.
    :param folds: folds per run.
    :param n_examples: number of pairs.
    :param n_gain: number of pairs labelled gain.
    """

    accuracy: float
    f1_gain: float
    majority_accuracy: float
    majority_f1_gain: float
    always_gain_f1: float
    accuracy_std: float
    f1_gain_std: float
    majority_accuracy_std: float
    majority_f1_gain_std: float
    always_gain_f1_std: float
    runs: int
    folds: int
    n_examples: int
    n_gain: int


def _classifier() -> LogisticRegression:
    return LogisticRegression(solver="lbfgs", C=1.0, max_iter=1000)


def _checked(features: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=float)
    y = np.asarray(gains)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (pairs x features); got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"gains must hold one label per row of features ({x.shape[0]}): {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold non-finite values")
    y = y.astype(bool).astype(int)
    if np.unique(y).size < 2:
        raise ValueError("gains hold a single class; both gain and no gain are needed")
    return x, y


def cross_validated_gain_prediction(
    features: np.ndarray,
    gains: np.ndarray,
    runs: int = 100,
    folds: int = 5,
    seed: int = 0,
    columns: Sequence[int] | None = None,
) -> GainPredictionScores:
    """Seed 004's Table 3: ``runs`` runs of randomized ``folds``-fold CV of logistic regression.

    Run r splits with ``StratifiedKFold(folds, shuffle=True, random_state=seed + r)`` when each
    class has at least ``folds`` members, else with ``KFold`` shuffled the same way. Each fold
    fits ``LogisticRegression`` (lbfgs, C = 1, max_iter = 1000) on its training part and scores
    accuracy and F1 of the gain class (``zero_division=0``) on the held-out part; the baseline
    predicts the training part's majority class (gain on a tie), and a second baseline predicts
    gain for every held-out pair (its F1 is the baseline F1 seed 004 reports). A training part
    holding one class only (possible with `KFold`) predicts that class. The paper normalizes the
    features first: give them through `normalize_columns`.

    :param features: one row per pair, one column per feature.
    :param gains: whether multi-task learning beat single-task learning, one per pair.
    :param runs: cross-validation runs, each with its own shuffle.
    :param folds: folds per run.
    :param seed: the first run's ``random_state``.
    :param columns: the feature columns to use (see `feature_subsets`); ``None`` for all.
    :raises ValueError: on mismatched shapes, a single class, fewer examples than folds, fewer
        than 2 folds, no runs or an empty or out-of-range column selection.
    """
    x, y = _checked(features, gains)
    if columns is not None:
        selected = list(columns)
        if not selected or min(selected) < -x.shape[1] or max(selected) >= x.shape[1]:
            raise ValueError(f"columns must pick some of the {x.shape[1]} feature columns")
        x = x[:, selected]
    if runs < 1 or folds < 2:
        raise ValueError(f"runs must be at least 1 and folds at least 2; got {runs}, {folds}")
    if x.shape[0] < folds:
        raise ValueError(f"{x.shape[0]} examples are fewer than the {folds} folds")
    splitter_class = StratifiedKFold if int(np.bincount(y).min()) >= folds else KFold
    # per run, per fold: accuracy, F1, majority accuracy, majority F1, always-gain F1
    scores = np.zeros((runs, folds, 5))
    # the fits are tiny; multi-threaded BLAS only adds overhead, tenfold on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        for run in range(runs):
            splitter = splitter_class(n_splits=folds, shuffle=True, random_state=seed + run)
            for fold, (train, test) in enumerate(splitter.split(x, y)):
                baseline = np.full(test.size, int(2 * y[train].sum() >= train.size))
                if np.unique(y[train]).size < 2:
                    predicted = baseline
                else:
                    predicted = _classifier().fit(x[train], y[train]).predict(x[test])
                scores[run, fold] = [
                    accuracy_score(y[test], predicted),
                    f1_score(y[test], predicted, pos_label=1, zero_division=0),
                    accuracy_score(y[test], baseline),
                    f1_score(y[test], baseline, pos_label=1, zero_division=0),
                    f1_score(y[test], np.ones_like(y[test]), pos_label=1, zero_division=0),
                ]
    means = scores.mean(axis=(0, 1))
    stds = scores.mean(axis=1).std(axis=0, ddof=0)
    return GainPredictionScores(
        *(float(value) for value in means),
        *(float(value) for value in stds),
        runs=runs,
        folds=folds,
        n_examples=int(y.size),
        n_gain=int(y.sum()),
    )


def gain_coefficients(
    features: np.ndarray, gains: np.ndarray, names: Sequence[str]
) -> list[tuple[str, float]]:
    """Seed 004's Table 4: the coefficients of one logistic regression fit on all pairs.

    :param features: one row per pair (normalized, as for `cross_validated_gain_prediction`).
    :param gains: whether multi-task learning beat single-task learning, one per pair.
    :param names: the name of each feature column.
    :returns: ``(name, coefficient)`` by decreasing absolute coefficient (ties keep column order).
    :raises ValueError: on mismatched shapes or a single class.
    """
    x, y = _checked(features, gains)
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} names for {x.shape[1]} feature columns")
    coefficients = _classifier().fit(x, y).coef_[0]
    order = np.argsort(-np.abs(coefficients), kind="stable")
    return [(names[index], float(coefficients[index])) for index in order]


def _split_name(name: str) -> tuple[str, str]:
    """``"main_grad_30"`` -> ``("main", "grad_30")``; ``("", name)`` for other names."""
    prefix, _, feature = name.partition("_")
    return (prefix, feature) if prefix in _PREFIXES and feature in TASK_FEATURES else ("", name)


def feature_subsets(names: Sequence[str]) -> dict[str, list[int]]:
    """Column indices of Table 3's feature sets, keyed by the row label `scores_table` shows.

    ``"All features"``: every column; ``"Data features only"``: the main, auxiliary and ratio
    columns of `DATASET_FEATURES`; ``"Curve features only"``: those of `CURVE_FEATURES`.

    :param names: the feature column names, e.g. `PAIR_FEATURE_NAMES`.
    """
    features = [_split_name(name)[1] for name in names]
    return {
        "All features": list(range(len(names))),
        "Data features only": [i for i, f in enumerate(features) if f in DATASET_FEATURES],
        "Curve features only": [i for i, f in enumerate(features) if f in CURVE_FEATURES],
    }


def scores_table(rows: Mapping[str, GainPredictionScores]) -> str:
    """Seed 004's Table 3 in Markdown: the majority baseline, then one row per feature set.

    The baseline row is seed 004's majority baseline: its accuracy is that of predicting the
    training part's majority class, its F1 that of predicting "gain" for every pair (the
    majority class's own F1 of the gain class is 0 whenever "no gain" is the majority). Cells
    are mean ± std over runs with 3 decimals; a legend line follows the table.

    :param rows: feature-set label -> its scores, all on the same pairs and splits.
    :raises ValueError: when there are no rows or their majority baselines differ (different
        pairs or splits).
    """
    if not rows:
        raise ValueError("no scores to tabulate")
    first = next(iter(rows.values()))

    def setup(s: GainPredictionScores) -> tuple[float, ...]:
        return (s.runs, s.folds, s.n_examples, s.n_gain, s.majority_accuracy, s.always_gain_f1)

    for label, scores in rows.items():
        if not np.allclose(setup(scores), setup(first), rtol=0.0, atol=1e-12):
            raise ValueError(f"row {label!r} was scored on other pairs or splits than the first")

    def cell(mean: float, std: float) -> str:
        return f"{mean:.3f} ± {std:.3f}"

    accuracy = cell(first.majority_accuracy, first.majority_accuracy_std)
    f1 = cell(first.always_gain_f1, first.always_gain_f1_std)
    lines = [[BASELINE_LABEL, accuracy, f1]]
    lines += [
        [label, cell(s.accuracy, s.accuracy_std), cell(s.f1_gain, s.f1_gain_std)]
        for label, s in rows.items()
    ]
    legend = (
        f"Mean ± std over {first.runs} runs of randomized {first.folds}-fold cross-validation "
        f"of logistic regression (std over runs' means, ddof=0); {first.n_examples} pairs, "
        f"{first.n_gain} with a gain. Majority baseline (seed 004's): Acc. of predicting the "
        'training part\'s majority class, F1 (gain) of predicting "gain" for every pair.'
    )
    return markdown_table(["Features", "Acc.", "F1 (gain)"], lines) + "\n\n" + legend + "\n"


def _coefficient_text(value: float) -> str:
    return f"{value:.3f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.1e}"


def coefficients_table(coefs: Sequence[tuple[str, float]]) -> str:
    """Seed 004's Table 4 in Markdown: Feature, Task (Main, Aux or Main/Aux), Coefficient.

    :param coefs: ``(column name, coefficient)`` pairs in the order to show, as
        `gain_coefficients` returns them; names outside `PAIR_FEATURE_NAMES` are shown as given
        with an empty task.
    """
    lines = []
    for name, value in coefs:
        prefix, feature = _split_name(name)
        lines.append(
            [_DISPLAY.get(feature, feature), _PREFIXES.get(prefix, ""), _coefficient_text(value)]
        )
    return markdown_table(["Feature", "Task", "Coefficient"], lines)

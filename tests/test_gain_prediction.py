import math

import numpy as np
import pytest

from mtl_sched.studies.gain.curves import LogCurve, curve_features, fit_log_curve
from mtl_sched.studies.gain.features import (
    CURVE_FEATURES,
    DATASET_FEATURES,
    TASK_FEATURES,
    dataset_features,
)
from mtl_sched.studies.gain.prediction import (
    PAIR_FEATURE_NAMES,
    RATIO_LIMIT,
    coefficients_table,
    cross_validated_gain_prediction,
    feature_subsets,
    gain_coefficients,
    normalize_columns,
    pair_features,
    scores_table,
)

TRAIN = [["The", "cat", "sat"], ["the", "dog"], ["cat", "cat", "the"]]
TAGS = [["A", "B", "C"], ["A", "B"], ["A", "C", "A"]]
TEST = [["the", "cat"], ["bird"]]


# ---- dataset features ----------------------------------------------------------------------


def test_dataset_features_of_a_hand_made_corpus():
    features = dataset_features(TRAIN, TAGS, TEST, num_labels=3)
    assert tuple(features) == DATASET_FEATURES
    assert features["size"] == 3
    assert features["labels"] == 3
    # lowercased: the x3, cat x3, sat, dog -> 8 tokens, 4 types
    assert features["tokens_per_type"] == pytest.approx(8 / 4)
    # tags A x4, B x2, C x2 of 8: -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1/2 ln 2 + ln 2 = 1.5 ln 2
    assert features["label_entropy"] == pytest.approx(1.5 * math.log(2))
    # rows of X: (the 1, cat 1, sat 1), (the 1, dog 1), (cat 2, the 1) -> 3 + 2 + 5 = 10
    assert features["frobenius_norm"] == pytest.approx(math.sqrt(10))
    # no reference vocabulary: test tokens the, cat, bird; bird is unseen in training -> 1/3
    assert features["oov_rate"] == pytest.approx(100 / 3)


def test_case_sensitive_features_count_the_and_The_apart():
    features = dataset_features(TRAIN, TAGS, TEST, num_labels=3, lowercase=False)
    # types The, the, cat, sat, dog: 8 / 5
    assert features["tokens_per_type"] == pytest.approx(1.6)
    # rows: (The, cat, sat) 3, (the, dog) 2, (cat 2, the 1) 5: unchanged
    assert features["frobenius_norm"] == pytest.approx(math.sqrt(10))


def test_label_entropy_of_two_balanced_tags_is_ln_2():
    features = dataset_features([["a", "b"], ["c", "d"]], [["A", "A"], ["B", "B"]], [["a"]], 2)
    assert features["label_entropy"] == pytest.approx(math.log(2))


def test_oov_rate_against_a_reference_vocabulary():
    # training tokens the x3, cat x3, sat, dog: only sat is missing -> 1 / 8 = 12.5%
    features = dataset_features(TRAIN, TAGS, TEST, 3, reference_vocabulary=["THE", "cat", "dog"])
    assert features["oov_rate"] == pytest.approx(12.5)
    # case-sensitive: The, the x2 (vs "THE") and sat are missing -> 4 / 8
    cased = dataset_features(TRAIN, TAGS, TEST, 3, ["THE", "cat", "dog"], lowercase=False)
    assert cased["oov_rate"] == pytest.approx(50.0)


def test_jsd_is_0_for_identical_and_1_for_disjoint_bags_of_words():
    same = dataset_features(TRAIN, TAGS, TRAIN, 3)
    assert same["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert same["oov_rate"] == 0.0
    disjoint = dataset_features(TRAIN, TAGS, [["bird", "fish"]], 3)
    assert disjoint["jsd"] == pytest.approx(1.0)
    assert disjoint["oov_rate"] == 100.0


def test_jsd_of_a_hand_computed_pair():
    # P = (x 1/2, y 1/2), Q = (x 1), M = (x 3/4, y 1/4)
    # KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2), KL(Q||M) = log2(4/3)
    # JSD = (KL(P||M) + KL(Q||M)) / 2 = 3/2 - 3/4 log2 3 = 0.31128
    features = dataset_features([["x", "y"]], [["A", "A"]], [["x", "x"]], 1)
    assert features["jsd"] == pytest.approx(1.5 - 0.75 * math.log2(3))


def test_dataset_features_reject_bad_input():
    with pytest.raises(ValueError, match="tokens but"):
        dataset_features([["a", "b"]], [["A"]], [["a"]], 1)
    with pytest.raises(ValueError, match="tags for"):
        dataset_features([["a"], ["b"]], [["A"]], [["a"]], 1)
    with pytest.raises(ValueError, match="test data has no tokens"):
        dataset_features([["a"]], [["A"]], [[]], 1)
    with pytest.raises(ValueError, match="num_labels"):
        dataset_features([["a"]], [["A"]], [["a"]], 0)


def test_feature_name_constants():
    assert len(DATASET_FEATURES) == 7 and len(CURVE_FEATURES) == 7
    assert TASK_FEATURES == DATASET_FEATURES + CURVE_FEATURES


# ---- learning curves -----------------------------------------------------------------------

FRACTIONS = np.arange(1, 501) / 500


@pytest.mark.parametrize(("a", "b", "c"), [(-0.8, 2.5, 30.0), (0.5, 0.1, 3.0), (-1.5, 4.0, 200.0)])
def test_fit_log_curve_recovers_exact_parameters(a, b, c):
    curve = fit_log_curve(FRACTIONS, a * np.log(c * FRACTIONS + 1) + b)
    assert curve.a == pytest.approx(a, rel=1e-6)
    assert curve.b == pytest.approx(b, rel=1e-6)
    assert curve.c == pytest.approx(c, rel=1e-6)


@pytest.mark.parametrize(("a", "b", "c"), [(-0.8, 2.5, 30.0), (0.5, 0.1, 3.0)])
def test_fit_log_curve_with_small_noise(a, b, c):
    # noise sd 0.01 against a curve spanning 0.69 to 2.7: a and c within 5%, b within 0.02
    noise = np.random.default_rng(0).normal(0.0, 0.01, FRACTIONS.size)
    curve = fit_log_curve(FRACTIONS, a * np.log(c * FRACTIONS + 1) + b + noise)
    assert curve.a == pytest.approx(a, rel=0.05)
    assert curve.c == pytest.approx(c, rel=0.05)
    assert curve.b == pytest.approx(b, abs=0.02)


def test_fit_log_curve_on_a_step_axis_scales_c():
    steps = np.arange(1.0, 25001.0)
    curve = fit_log_curve(steps, -0.8 * np.log(30.0 / 25000 * steps + 1) + 2.5)
    assert curve.c == pytest.approx(30.0 / 25000, rel=1e-6)
    assert curve.a == pytest.approx(-0.8, rel=1e-6)


def test_log_curve_evaluates():
    curve = LogCurve(a=2.0, b=1.0, c=3.0)
    # 2 ln(3 * 1 + 1) + 1
    assert curve(1.0) == pytest.approx(2 * math.log(4) + 1)
    assert np.allclose(curve(np.array([0.0, 1.0])), [1.0, 2 * math.log(4) + 1])


def test_fit_log_curve_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        fit_log_curve(np.arange(5.0), np.arange(4.0))
    with pytest.raises(ValueError, match="3 parameters"):
        fit_log_curve(np.arange(2.0), np.arange(2.0))


def test_gradients_of_a_linear_curve_are_its_slope():
    # L = 3 - 2x: a straight line, so every window's regression slope is exactly -2
    features = curve_features(3 - 2 * FRACTIONS)
    for name in ("grad_10", "grad_20", "grad_30", "grad_50", "grad_70"):
        assert features[name] == pytest.approx(-2.0, abs=1e-9)
    # ten points: the windows widen to the 5 nearest points, still exact on a line
    short = curve_features(3 - 2 * np.arange(1, 11) / 10)
    assert short["grad_30"] == pytest.approx(-2.0, abs=1e-9)


def test_gradients_and_parameters_of_a_log_curve():
    a, b, c = -1.0, 3.0, 20.0
    x = np.arange(1, 1001) / 1000
    features = curve_features(a * np.log(c * x + 1) + b)
    for name, point in [("grad_10", 0.1), ("grad_20", 0.2), ("grad_30", 0.3), ("grad_50", 0.5)]:
        # dL/dx = a c / (c x + 1), e.g. -20 / 3 at 10%; the ±5% window's bias is about
        # h^2 L''' / 10 = 0.0025 * (2 a c^3 / (c x + 1)^3) / 10 = -0.15 there, 2.2%
        assert features[name] == pytest.approx(a * c / (c * point + 1), rel=0.03)
    assert features["curve_a"] == pytest.approx(a, rel=1e-6)
    assert features["curve_c"] == pytest.approx(c, rel=1e-6)
    assert tuple(features) == CURVE_FEATURES


def test_curve_features_drop_nan_and_keep_positions():
    losses = 3 - 2 * FRACTIONS
    losses[::7] = np.nan
    assert curve_features(losses)["grad_20"] == pytest.approx(-2.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 10 finite"):
        curve_features([1.0, 0.9, np.nan, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


# ---- pair features -------------------------------------------------------------------------


def test_pair_features_names_and_ratios():
    main = {name: 2.0 for name in TASK_FEATURES}
    aux = {name: 4.0 for name in TASK_FEATURES}
    main["jsd"], aux["jsd"] = 0.0, 0.0
    main["grad_10"], aux["grad_10"] = -3.0, 0.0
    main["curve_c"], aux["curve_c"] = 5.0, 0.0
    features = pair_features(main, aux)
    assert len(PAIR_FEATURE_NAMES) == 42 and tuple(features) == PAIR_FEATURE_NAMES
    assert PAIR_FEATURE_NAMES[0] == "main_size" and PAIR_FEATURE_NAMES[14] == "aux_size"
    assert PAIR_FEATURE_NAMES[28] == "ratio_size"
    assert features["main_size"] == 2.0 and features["aux_size"] == 4.0
    assert features["ratio_size"] == 0.5  # 2 / 4
    assert features["ratio_jsd"] == 0.0  # 0 / 0 -> 0
    assert features["ratio_grad_10"] == -RATIO_LIMIT  # -3 / 0 -> -limit
    assert features["ratio_curve_c"] == RATIO_LIMIT  # 5 / 0 -> +limit


def test_pair_features_reject_missing_and_non_finite_features():
    full = {name: 1.0 for name in TASK_FEATURES}
    with pytest.raises(ValueError, match="aux task lacks features: jsd"):
        pair_features(full, {k: v for k, v in full.items() if k != "jsd"})
    with pytest.raises(ValueError, match="non-finite"):
        pair_features(full | {"curve_a": math.nan}, full)


def test_normalize_columns():
    matrix = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [2.0, 5.0, 0.0]])
    normalized = normalize_columns(matrix)
    # column 0: (x - 1) / 2; column 1 constant -> 0; column 2: x / 4
    assert np.allclose(normalized, [[0.0, 0.0, 0.5], [1.0, 0.0, 1.0], [0.5, 0.0, 0.0]])
    assert normalized.min() >= 0.0 and normalized.max() <= 1.0
    with pytest.raises(ValueError, match="2-D"):
        normalize_columns(np.zeros(3))


# ---- classifier ----------------------------------------------------------------------------


def separable(n=60, seed=0):
    rng = np.random.default_rng(seed)
    gains = np.arange(n) < int(0.4 * n)  # 24 gains, 36 losses: majority accuracy about 0.6
    informative = np.where(gains, rng.uniform(0.7, 1.0, n), rng.uniform(0.0, 0.3, n))
    features = np.column_stack([rng.uniform(size=n), informative, rng.uniform(size=(n, 2))])
    return normalize_columns(features), gains


def test_cross_validation_on_separable_data_beats_the_majority_baseline():
    features, gains = separable()
    scores = cross_validated_gain_prediction(features, gains, runs=5, seed=3)
    assert scores.accuracy > 0.95 and scores.f1_gain > 0.95
    # stratified folds of 12 hold 7 or 8 of the 36 losses (7+7+7+7+8 = 36), every training part
    # has more losses than gains, so the baseline says "no gain" and its fold accuracies
    # average to 36/60 = 0.6 in every run: std over runs 0, gain-class F1 0
    assert scores.majority_accuracy == pytest.approx(0.6, abs=1e-12)
    assert scores.majority_accuracy_std == pytest.approx(0.0, abs=1e-12)
    assert scores.majority_f1_gain == 0.0
    assert scores.accuracy > scores.majority_accuracy + 0.3
    assert (scores.runs, scores.folds, scores.n_examples, scores.n_gain) == (5, 5, 60, 24)


def test_cross_validation_on_unrelated_labels_stays_near_the_majority_level():
    rng = np.random.default_rng(1)
    features = rng.uniform(size=(100, 5))
    gains = rng.uniform(size=100) < 0.3
    scores = cross_validated_gain_prediction(features, gains, runs=10)
    assert abs(scores.accuracy - scores.majority_accuracy) < 0.1
    assert scores.accuracy < 0.8


def test_cross_validation_is_deterministic_per_seed_and_selects_columns():
    features, gains = separable()
    first = cross_validated_gain_prediction(features, gains, runs=5, seed=7)
    assert cross_validated_gain_prediction(features, gains, runs=5, seed=7) == first
    # without the informative column 1 the classifier loses its signal
    noise_only = cross_validated_gain_prediction(features, gains, runs=5, seed=7, columns=[0, 2, 3])
    assert noise_only.accuracy < first.accuracy - 0.2


def test_cross_validation_falls_back_to_kfold_for_a_rare_class():
    features = np.random.default_rng(2).uniform(size=(12, 3))
    gains = np.zeros(12, dtype=bool)
    gains[[0, 5]] = True  # 2 gains < 5 folds: no stratification possible
    scores = cross_validated_gain_prediction(features, gains, runs=3)
    assert 0.0 <= scores.accuracy <= 1.0 and math.isfinite(scores.f1_gain)


def test_majority_baseline_comes_from_the_training_part():
    # 3 gains, 2 losses, 5 folds of one example (KFold: 2 losses < 5 folds). Holding out a gain
    # leaves 2 vs 2, a tie, which goes to gain: right, F1 1. Holding out a loss leaves 3 gains
    # vs 1 loss: gain, wrong, F1 0. Accuracy and F1 are 3/5 in every run, whatever the shuffle.
    features = np.arange(5.0).reshape(5, 1)
    gains = np.array([True, False, True, False, True])
    scores = cross_validated_gain_prediction(features, gains, runs=4)
    assert scores.majority_accuracy == pytest.approx(0.6)
    assert scores.majority_f1_gain == pytest.approx(0.6)
    assert scores.majority_accuracy_std == pytest.approx(0.0, abs=1e-12)


def test_cross_validation_rejects_bad_input():
    features, gains = separable()
    with pytest.raises(ValueError, match="one label per row"):
        cross_validated_gain_prediction(features, gains[:-1])
    with pytest.raises(ValueError, match="single class"):
        cross_validated_gain_prediction(features, np.ones(60, dtype=bool))
    with pytest.raises(ValueError, match="fewer than the 5 folds"):
        cross_validated_gain_prediction(features[:4], np.array([True, False, True, False]))
    with pytest.raises(ValueError, match="columns"):
        cross_validated_gain_prediction(features, gains, columns=[9])


def test_coefficients_are_sorted_and_the_planted_sign_is_right():
    rng = np.random.default_rng(4)
    features = rng.uniform(size=(80, 4))
    gains = features[:, 2] < 0.5  # gain when column 2 is low: a negative coefficient
    coefs = gain_coefficients(features, gains, ["w", "x", "y", "z"])
    assert [abs(value) for _, value in coefs] == sorted((abs(v) for _, v in coefs), reverse=True)
    assert coefs[0][0] == "y" and coefs[0][1] < 0
    with pytest.raises(ValueError, match="3 names for 4"):
        gain_coefficients(features, gains, ["w", "x", "y"])


def test_feature_subsets_split_data_and_curve_columns():
    subsets = feature_subsets(PAIR_FEATURE_NAMES)
    assert subsets["All features"] == list(range(42))
    data, curve = subsets["Data features only"], subsets["Curve features only"]
    assert len(data) == 21 and len(curve) == 21 and not set(data) & set(curve)
    assert [PAIR_FEATURE_NAMES[i] for i in data[:2]] == ["main_size", "main_labels"]
    assert PAIR_FEATURE_NAMES[curve[0]] == "main_grad_10"
    assert "ratio_curve_c" in [PAIR_FEATURE_NAMES[i] for i in curve]


def test_markdown_tables():
    features, gains = separable()
    rows = {
        "All features": cross_validated_gain_prediction(features, gains, runs=3),
        "Column 1 only": cross_validated_gain_prediction(features, gains, runs=3, columns=[1]),
    }
    table = scores_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| Features | Acc. | F1 (gain) |"
    # accuracy of the majority class ("no gain"), F1 of predicting "gain" for every pair:
    # stratified folds of 12 hold 5, 5, 5, 5 and 4 gains, F1 2g / (g + 12), mean 0.571
    baseline = 'Majority baseline (Acc.: majority class; F1: always "gain")'
    assert lines[2] == f"| {baseline} | 0.600 ± 0.000 | 0.571 ± 0.000 |"
    assert lines[3].startswith("| All features | ") and " ± " in lines[3]
    assert "3 runs of randomized 5-fold" in table
    other = cross_validated_gain_prediction(*separable(seed=9), runs=4)
    with pytest.raises(ValueError, match="other pairs or splits"):
        scores_table({"a": rows["All features"], "b": other})

    coefs = coefficients_table([("main_grad_30", -1.5664), ("ratio_oov_rate", 0.678), ("x", 4e-4)])
    assert coefs.splitlines()[0] == "| Feature | Task | Coefficient |"
    assert "| Curve grad. (30%) | Main | -1.566 |" in coefs
    assert "| OOV rate | Main/Aux | 0.678 |" in coefs
    assert "| x |  | 4.0e-04 |" in coefs

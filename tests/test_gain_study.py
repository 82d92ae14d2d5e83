"""Gain prediction on a relation study: outcomes, user outcome files, features from the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.data.ud_pos import load_ud_tags, load_ud_upos
from mtl_sched.registry import make_scheduler
from mtl_sched.studies.gain.features import TASK_FEATURES
from mtl_sched.studies.gain.study import predict_gains, read_outcomes, study_outcomes
from mtl_sched.studies.relations.study import RelationsConfig, StudyResults
from mtl_sched.sweeps.spec import result_series

TASKS = ("a", "b", "c")


def test_study_outcomes_label_a_gain_when_the_pair_beats_stl_on_main() -> None:
    results = StudyResults(
        scores={
            (("a",), "a"): [0.80, 0.82],
            (("b",), "b"): [0.70, 0.70],
            (("a", "b"), "a"): [0.83, 0.83],  # 0.83 > 0.81: gain for a with b
            (("a", "b"), "b"): [0.69, 0.70],  # 0.695 < 0.70: no gain for b with a
        }
    )
    # c has no results, so no pair with it is labelled
    assert study_outcomes(results, TASKS) == [("a", "b", True), ("b", "a", False)]


def test_user_outcomes_are_read_and_bad_lines_named(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("main,aux,gain\na,b,1\nb,a,false\nc,a,TRUE\n")
    assert read_outcomes(good, TASKS) == [("a", "b", True), ("b", "a", False), ("c", "a", True)]
    scores = tmp_path / "scores.csv"
    scores.write_text("main,aux,mtl,stl\na,b,0.9,0.8\nb,c,0.5,0.6\n")
    assert read_outcomes(scores, TASKS) == [("a", "b", True), ("b", "c", False)]
    cases = {
        "main,other\na,b\n": "line 1: the header",
        "main,aux,gain\na,b,1\na,z,1\n": "line 3: main and aux",
        "main,aux,gain\na,a,1\n": "line 2: main and aux",
        "main,aux,gain\na,b,maybe\n": "line 2: gain must be",
        "main,aux,mtl,stl\na,b,high,0.5\n": "line 2: gain must be",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(ValueError, match=f"bad{i}.csv, {message}"):
            read_outcomes(path, TASKS)


def test_predict_gains_on_features_that_decide_the_label() -> None:
    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(8)]
    # a task helps another when its label entropy is higher; everything else is noise
    noise = [f for f in TASK_FEATURES if f != "label_entropy"]
    features = {
        name: {key: float(rng.random()) for key in noise} | {"label_entropy": float(i)}
        for i, name in enumerate(names)
    }
    outcomes = [(m, a, names.index(a) > names.index(m)) for m in names for a in names if m != a]
    prediction = predict_gains(features, outcomes, runs=5, folds=5)
    everything = prediction.scores["All features"]
    assert everything.accuracy > everything.majority_accuracy + 0.2
    top = dict(prediction.coefficients[:3])
    assert top.get("ratio_label_entropy", 0) < 0 or top.get("aux_label_entropy", 0) > 0
    assert "Majority baseline" in prediction.markdown()


def test_runs_keep_each_tasks_loss_curve() -> None:
    benchmark = get_benchmark("synthetic", small=True)
    result = benchmark.make_trainer(0).run(make_scheduler("greedy"))
    curve = result_series(result)["loss_curve"]
    losses = curve["losses"]
    assert len(losses) == result.steps
    # greedy trains one task per step: one loss per row, the others missing
    assert all(sum(v is not None for v in row) == 1 for row in losses)
    trained = [row.index(next(v for v in row if v is not None)) for row in losses]
    assert trained == [int(np.argmax(r)) for r in result.schedule]


def test_ud_xpos_tags_come_from_the_same_sentences_as_upos(data_dir: Path) -> None:
    limits = {"train": 50, "validation": 10, "test": 10}
    xpos = load_ud_tags("en_ewt", "xpos", "xpos", data_dir, limits)
    upos = load_ud_upos("en_ewt", data_dir, limits)
    assert xpos.split("train")[:]["tokens"] == upos.split("train")[:]["tokens"]
    assert {"NN", "VBD", "DT", "JJ"} <= set(xpos.label_names)
    assert xpos.num_classes > upos.num_classes


def test_task_features_need_the_single_task_models() -> None:
    from mtl_sched.studies.gain.study import task_features

    config = RelationsConfig(TASKS, options={"small": True})
    results = StudyResults(loss_curves={"a": [[1.0] * 20]})
    with pytest.raises(ValueError, match="no single-task model of b, c"):
        task_features(config, results)

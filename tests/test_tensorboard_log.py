"""Run observers: what the Trainer tells them, and the TensorBoard events of runs and sweeps."""

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_synthetic
from mtl_sched.cli import main
from mtl_sched.registry import make_scheduler
from mtl_sched.training.observers import RunObserver
from mtl_sched.training.tensorboard import TensorBoardObserver, run_log_dir, tensorboard_available

needs_tensorboard = pytest.mark.skipif(
    not tensorboard_available(), reason="tensorboard is not installed (pip install tensorboard)"
)


class RecordingObserver:
    def __init__(self) -> None:
        self.evaluations: list[tuple[int, int, np.ndarray, dict[str, float]]] = []
        self.results: list = []

    def on_evaluation(self, step, examples_seen, metrics, task_shares):
        self.evaluations.append((step, examples_seen, metrics.scores.copy(), dict(task_shares)))

    def on_end(self, result):
        self.results.append(result)


def _round_robin_run(observers=()):
    benchmark = tiny_synthetic()
    scheduler = make_scheduler("round-robin", tasks=["easy", "hard"])
    return benchmark.make_trainer(3).run(scheduler, observers=observers)


def test_an_observer_sees_every_evaluation_with_shares_summing_to_one():
    observer = RecordingObserver()
    assert isinstance(observer, RunObserver)
    result = _round_robin_run([observer])
    assert [seen for _, seen, _, _ in observer.evaluations] == [
        seen for seen, _ in result.validation_history
    ]
    for (_, seen, scores, shares), (_, evaluation) in zip(
        observer.evaluations, result.validation_history, strict=True
    ):
        assert list(shares) == ["easy", "medium", "hard", "noise"]
        assert sum(shares.values()) == pytest.approx(1.0)
        np.testing.assert_array_equal(scores, evaluation.scores)
        # one minibatch of 32 at a time, easy first: easy is one minibatch ahead or level
        assert shares["medium"] == shares["noise"] == 0.0
        assert round((shares["easy"] - shares["hard"]) * seen) in (0, 32)
    assert observer.evaluations[-1][3] == pytest.approx(
        {"easy": 0.5, "medium": 0, "hard": 0.5, "noise": 0}
    )
    assert observer.evaluations[-1][0] == result.steps
    assert observer.results == [result]


def test_observers_do_not_change_the_run():
    with_observer = _round_robin_run([RecordingObserver()])
    without = _round_robin_run()
    np.testing.assert_array_equal(with_observer.test.scores, without.test.scores)
    np.testing.assert_array_equal(with_observer.schedule, without.schedule)


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


@needs_tensorboard
def test_tensorboard_events_hold_validation_curves_shares_and_test_scores(tmp_path):
    log_dir = run_log_dir(tmp_path, "synthetic", "round-robin", 3)
    assert log_dir == tmp_path / "synthetic" / "round-robin-seed3"
    result = _round_robin_run([TensorBoardObserver(log_dir)])
    scalars = _scalars(log_dir)
    seen = [examples for examples, _ in result.validation_history]
    for task in result.task_names:
        assert [step for step, _ in scalars[f"validation/{task}/score"]] == seen
        assert [step for step, _ in scalars[f"share/{task}"]] == seen
        assert f"validation/{task}/loss" in scalars and f"share_since_last/{task}" in scalars
    easy = result.task_names.index("easy")
    curve = [value for _, value in scalars["validation/easy/score"]]
    expected = [evaluation.scores[easy] for _, evaluation in result.validation_history]
    np.testing.assert_allclose(curve, expected, rtol=1e-6)
    assert [value for _, value in scalars["share/noise"]] == [0.0] * len(seen)
    assert scalars["share_since_last/easy"][-1][1] == pytest.approx(0.5)
    assert scalars["test/average_score"] == [
        (result.examples_seen, pytest.approx(result.test.average_score))
    ]


@needs_tensorboard
def test_run_writes_events_under_the_tensorboard_flag_and_not_without(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--benchmark", "synthetic", "--small", "--scheduler", "uniform"]
    argv += ["--budget", "256", "--seed", "2"]
    assert main([*argv, "--tensorboard", "tb"]) == 0
    scalars = _scalars(tmp_path / "tb" / "synthetic" / "uniform-seed2")
    assert scalars["share/easy"][-1] == (256, pytest.approx(0.25))
    assert main([*argv, "--no-tensorboard"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tb"]


@needs_tensorboard
def test_compare_writes_one_event_directory_per_trial_beside_the_store(tmp_path):
    argv = ["compare", "--benchmark", "synthetic", "--small", "--budget", "128"]
    argv += ["--schedulers", "uniform,round-robin", "--param", "round-robin.tasks=easy,hard"]
    argv += ["--seeds", "0", "--db", str(tmp_path / "runs.sqlite"), "--no-progress"]
    assert main(argv) == 0
    root = tmp_path / "tensorboard" / "synthetic"
    assert sorted(p.name for p in root.iterdir()) == ["round-robin-seed0", "uniform-seed0"]
    shares = _scalars(root / "round-robin-seed0")
    assert shares["share/medium"][-1] == (128, 0.0)
    assert shares["share/easy"][-1] == (128, pytest.approx(0.5))

import json
import re

from mtl_sched.demo import DemoConfig, run_demo


def test_demo_trains_compares_plots_and_saves(tmp_path):
    config = DemoConfig(
        agent_steps=300,
        eval_seeds=(100,),
        baselines=("uniform", "greedy"),
        out=tmp_path,
        progress=False,
    )
    report = run_demo(config)
    # synthetic-prerequisite documents a phased schedule, compared as well
    labels = ("qls (learned)", "uniform", "greedy", "phased (documented schedule)")
    for label in labels:
        assert label in report
    assert "base share" in report and "composite share" in report
    counts = re.search(r"action counts base (\d+), composite (\d+)", report)
    assert counts is not None and int(counts[1]) + int(counts[2]) == config.agent_steps
    assert (tmp_path / "agent.zip").exists()
    png = (tmp_path / "schedules.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert sorted(results) == sorted(labels)
    # uniform weighting gives both tasks the same share; the others select one task per step
    assert results["uniform"]["task_share"] == [0.5, 0.5]
    for label in labels:
        assert abs(sum(results[label]["task_share"]) - 1.0) < 1e-9


def test_schedule_shares_by_hand():
    import numpy as np

    from mtl_sched.reporting.figures import schedule_shares

    blocks = np.array([[32, 0], [32, 0], [0, 32], [0, 32]])
    assert np.array_equal(schedule_shares(blocks, 2), [[1.0, 0.0], [0.0, 1.0]])
    alternating = np.array([[32, 0], [0, 32], [32, 0], [0, 32]])
    assert np.array_equal(schedule_shares(alternating, 2), [[0.5, 0.5], [0.5, 0.5]])
    weighting = np.array([[32, 32], [32, 32]])
    assert np.array_equal(schedule_shares(weighting, 1), [[0.5], [0.5]])

"""Probe pools (stratified or first), probe options of every benchmark, decision frequency."""

import numpy as np
import pytest
from observation_checks import task_histograms

from mtl_sched.benchmarks import PROBE_OPTIONS, get_benchmark
from mtl_sched.cli import main
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.observation.probing import ProbeConfig, probe_pool_indices


def test_a_stratified_pool_follows_the_label_shares_of_the_split():
    # the split opens with a run of one label, as FDU-MTL's imdb validation reviews do
    labels = np.array([1] * 12 + [0] * 20 + [1] * 8)
    first = probe_pool_indices(40, 8, "first", labels)
    assert first.tolist() == list(range(8)) and set(labels[first]) == {1}
    pool = probe_pool_indices(40, 8, "stratified", labels)
    assert len(pool) == len(set(pool.tolist())) == 8 and (np.diff(pool) > 0).all()
    assert np.bincount(labels[pool]).tolist() == [4, 4]  # 20 of each label in the split
    # the same pool every time: it depends on the labels alone
    assert np.array_equal(pool, probe_pool_indices(40, 8, "stratified", labels))


def test_every_label_present_gets_a_place_and_the_sizes_add_up():
    labels = np.array([0] * 90 + [1] * 9 + [2])
    for size in (3, 5, 10, 37):
        pool = probe_pool_indices(100, size, "stratified", labels)
        counts = np.bincount(labels[pool], minlength=3)
        assert len(pool) == size and (counts >= 1).all()
        assert abs(counts[0] - 0.9 * size) <= 2
    assert len(probe_pool_indices(100, 2, "stratified", labels)) == 2


def test_without_labels_the_pool_is_spread_evenly_and_a_large_pool_is_the_split():
    assert probe_pool_indices(100, 4, "stratified").tolist() == [12, 37, 62, 87]
    assert probe_pool_indices(10, None).tolist() == list(range(10))
    assert probe_pool_indices(10, 50, "first").tolist() == list(range(10))
    with pytest.raises(ValueError, match="selection"):
        probe_pool_indices(10, 4, "random")
    with pytest.raises(ValueError, match=r"ProbeConfig\.selection"):
        ProbeConfig(selection="random")


def test_the_trainer_probes_the_stratified_pool(tiny_benchmark):
    bench = tiny_benchmark.with_probe_options(probe_pool=12)
    trainer = bench.make_trainer(0)
    config = bench.trainer_config.probe
    for k, task in enumerate(bench.tasks):
        labels = np.asarray(task.split("validation")["label"])
        pool = trainer.probe_pool(k, config)
        assert np.array_equal(pool, probe_pool_indices(len(labels), 12, "stratified", labels))
    first = ProbeConfig(pool_size=12, selection="first")
    assert trainer.probe_pool(0, first).tolist() == list(range(12))
    stratified, plain = trainer.probe(config), trainer.probe(first)
    assert stratified.histograms.shape == plain.histograms.shape == (4, 20)
    assert not np.array_equal(stratified.losses, plain.losses)


@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_probe_options_reach_every_benchmark_and_the_environment(observation):
    bench = get_benchmark(
        "synthetic",
        small=True,
        probe_pool=30,
        probe_hard=5,
        probe_measure="entropy",
        probe_selection="first",
        probe_refresh=1,
        decision_steps=3,
    )
    probe = bench.trainer_config.probe
    assert (probe.pool_size, probe.hard_size, probe.measure) == (30, 5, "entropy")
    assert (probe.selection, probe.refresh, bench.decision_steps) == ("first", 1, 3)
    assert bench.fingerprint() != get_benchmark("synthetic", small=True).fingerprint()
    env = MTLSchedulingEnv(bench, observation=observation)
    assert env.steps_per_action == 3 and env.probe_config == probe
    obs, _ = env.reset(seed=0)
    # five batch-hard units per task: every histogram mass is a multiple of 1/5
    histograms = task_histograms(env, obs)
    assert np.allclose(histograms * 5, np.round(histograms * 5), atol=1e-5)
    _, _, _, _, info = env.step(2)
    assert info["examples_seen"] == 3 * bench.trainer_config.batch_size
    assert (
        MTLSchedulingEnv(bench, steps_per_action=1, observation=observation).steps_per_action == 1
    )
    everything = get_benchmark("synthetic", small=True, probe_pool="all", probe_hard=None)
    assert everything.trainer_config.probe.pool_size is None
    assert set(PROBE_OPTIONS) >= {"probe_pool", "probe_hard", "probe_measure", "decision_steps"}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("probe_measure", "variance"),
        ("probe_selection", "random"),
        ("probe_pool", 0),
        ("probe_hard", "some"),
        ("probe_refresh", -1),
        ("probe_refresh", True),
        ("decision_steps", 0),
        ("decision_steps", "all"),
    ],
)
def test_a_bad_probe_option_is_an_error_naming_it(option, value):
    with pytest.raises(ValueError, match=option):
        get_benchmark("synthetic", small=True, **{option: value})


@pytest.mark.parametrize("command", ["run", "compare", "train-agent"])
def test_the_commands_take_probe_options_and_name_a_bad_one(command, tmp_path):
    db = str(tmp_path / "r.sqlite")
    argv = {
        "run": ["run", "--benchmark", "synthetic", "--scheduler", "uniform"],
        "compare": ["compare", "--benchmark", "synthetic", "--schedulers", "uniform", "--db", db],
        "train-agent": ["train-agent", "--steps", "4", "--out", str(tmp_path / "agent")],
    }[command]
    with pytest.raises(SystemExit, match="probe_measure"):
        main([*argv, "--small", "--option", "probe_measure=variance"])
    assert not (tmp_path / "r.sqlite").exists()


def test_run_trains_under_other_probe_options(capsys):
    argv = ["run", "--benchmark", "synthetic", "--small", "--scheduler", "round-robin"]
    argv += ["--option", "probe_measure=least_confidence", "--option", "probe_hard=10"]
    assert main([*argv, "--no-tensorboard"]) == 0
    assert "round-robin" in capsys.readouterr().out


def test_agents_decide_as_often_as_the_benchmark_says_unless_told(tiny_benchmark):
    from mtl_sched.agents.training import AgentSettings

    bench = tiny_benchmark.with_probe_options(decision_steps=3)
    assert AgentSettings().make_env(bench).steps_per_action == 3
    assert AgentSettings(steps_per_action=2).make_env(bench).steps_per_action == 2
    assert MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None).steps_per_action == 1

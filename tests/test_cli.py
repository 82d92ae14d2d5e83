import pytest

from mtl_sched.cli import main
from mtl_sched.registry import scheduler_names


def test_list_schedulers_shows_every_registered_name(capsys):
    assert main(["list", "schedulers"]) == 0
    out = capsys.readouterr().out
    for name in scheduler_names():
        assert f"\n{name} " in f"\n{out}"
    assert "[weighting]" in out and "[selection]" in out


def test_list_benchmarks_shows_tasks_and_sizes(capsys):
    assert main(["list", "benchmarks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthetic:")
    assert "easy (1000 train)" in out and "noise (1000 train)" in out


def test_run_prints_test_metrics_and_accepts_hyperparameters(capsys):
    argv = ["run", "--benchmark", "synthetic", "--scheduler", "round-robin", "--budget", "320"]
    assert main([*argv, "--param", "tasks=['easy', 'hard']"]) == 0
    out = capsys.readouterr().out
    assert "round-robin" in out and "easy:" in out and "noise:" in out
    # round-robin over two of four tasks gives each of them half of the examples
    assert "0.50" in out and "0.00" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--benchmark", "nope", "--scheduler", "uniform"], "unknown benchmark 'nope'"),
        (["run", "--benchmark", "synthetic", "--scheduler", "nope"], "unknown scheduler 'nope'"),
        (["run", "--benchmark", "synthetic", "--scheduler", "qls"], "needs --agent"),
        (
            ["run", "--benchmark", "synthetic", "--scheduler", "uniform", "--param", "alpha=2"],
            "scheduler 'uniform'",
        ),
    ],
)
def test_run_rejects_bad_input_with_a_clear_message(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--benchmark", "synthetic", "--scheduler", "uniform", "--budget", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_demo_flags_reach_the_demo_configuration(monkeypatch, tmp_path, capsys):
    import mtl_sched.demo

    seen = {}

    def fake_run_demo(config):
        seen["config"] = config
        return "report"

    monkeypatch.setattr(mtl_sched.demo, "run_demo", fake_run_demo)
    argv = ["demo", "--agent-steps", "123", "--agent-seed", "4", "--seeds", "7,8"]
    argv += ["--out", str(tmp_path)]
    argv += ["--reward", "loss", "--penalty", "--gamma", "0.5", "--exploration-c", "2"]
    assert main(argv) == 0
    config = seen["config"]
    assert (config.agent_steps, config.agent_seed, config.eval_seeds) == (123, 4, (7, 8))
    assert config.out == tmp_path
    assert (config.reward, config.use_penalty, config.gamma, config.exploration_c) == (
        "loss", True, 0.5, 2.0,
    )
    assert capsys.readouterr().out.strip() == "report"

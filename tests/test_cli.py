import pytest

from mtl_sched.cli import main
from mtl_sched.registry import scheduler_names


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """Runs write TensorBoard events under the working directory by default."""
    monkeypatch.chdir(tmp_path)


def test_list_schedulers_shows_every_registered_name(capsys):
    assert main(["list", "schedulers"]) == 0
    out = capsys.readouterr().out
    for name in scheduler_names():
        assert f"\n{name} " in f"\n{out}"
    assert "[weighting]" in out and "[selection]" in out


def test_list_benchmarks_shows_tasks_and_sizes(capsys, monkeypatch):
    # without a data directory the real-data benchmarks are listed as unavailable (fast)
    monkeypatch.delenv("MTL_SCHED_DATA", raising=False)
    assert main(["list", "benchmarks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthetic:")
    assert "easy (1000/200/1000)" in out and "noise (1000/200/1000)" in out
    assert "\nfdu-mtl: data unavailable (" in out and "MTL_SCHED_DATA" in out


def test_small_picks_each_benchmarks_small_variant(capsys):
    assert main(["list", "benchmarks", "--small"]) == 0
    out = capsys.readouterr().out
    assert "easy (200/60/1000)" in out
    for name in ("fdu-mtl", "tagging", "nmt-aux"):
        assert f"\n{name}: " in out


def test_single_task_references_are_printed_and_then_read_from_the_cache(monkeypatch, capsys):
    argv = [
        "run",
        "--benchmark",
        "synthetic",
        "--small",
        "--single-task",
        "--seed",
        "3",
        "--no-tensorboard",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "seed 3, 160 training examples per task" in first
    scores = [float(line.split()[1]) for line in first.splitlines() if line.startswith("  ")]
    assert len(scores) == 4 and all(0.0 <= s <= 1.0 for s in scores)

    import mtl_sched.references

    def no_recomputation(*args, **kwargs):
        raise AssertionError("the cached references should have been used")

    monkeypatch.setattr(mtl_sched.references, "compute_single_task_references", no_recomputation)
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_run_prints_test_metrics_and_accepts_hyperparameters(capsys):
    argv = [
        "run",
        "--benchmark",
        "synthetic",
        "--scheduler",
        "round-robin",
        "--budget",
        "320",
        "--no-tensorboard",
    ]
    assert main([*argv, "--param", "tasks=['easy', 'hard']"]) == 0
    out = capsys.readouterr().out
    assert "round-robin" in out and "easy:" in out and "noise:" in out
    # round-robin over two of four tasks gives each of them half of the examples
    assert "0.50" in out and "0.00" in out


def test_run_prepares_the_scheduler_and_reports_a_search_cost(capsys):
    argv = [
        "run",
        "--benchmark",
        "synthetic",
        "--scheduler",
        "hand-crafted",
        "--budget",
        "256",
        "--no-tensorboard",
    ]
    argv += ["--param", "candidates=[1, 2]", "--param", "search_budget=64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "hand-crafted" in out and "noise:" in out
    # all ones, then the other candidate for each of the 4 tasks: 5 trials of 64 examples
    assert "spent 320 training examples outside the budget" in out


RUN_UNIFORM = ["run", "--benchmark", "synthetic", "--scheduler"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [*RUN_UNIFORM, "temperature", "--param", "temperature=hot"],
            "hyperparameter 'temperature' expects float; got 'hot'",
        ),
        (
            [*RUN_UNIFORM, "uncertainty", "--param", "form=gaussian"],
            "hyperparameter 'form' expects",
        ),
        (
            [*RUN_UNIFORM, "dtp", "--param", "temperature=2"],
            "scheduler 'dtp' has no hyperparameter 'temperature'",
        ),
        (["run", "--benchmark", "nope", "--scheduler", "uniform"], "unknown benchmark 'nope'"),
        (["run", "--benchmark", "synthetic", "--scheduler", "nope"], "unknown scheduler 'nope'"),
        (["run", "--benchmark", "synthetic", "--scheduler", "qls"], "needs --agent"),
        (["run", "--benchmark", "synthetic"], "give --scheduler NAME or --single-task"),
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
    agent = config.agent
    options = (agent.reward, agent.use_penalty, agent.gamma, agent.exploration_c)
    assert options == ("loss", True, 0.5, 2.0)
    assert capsys.readouterr().out.strip() == "report"


TINY_OPTIONS = [
    "--option",
    "budget=640",
    "--option",
    "train_size=200",
    "--option",
    "hidden_sizes=(16,)",
]


def test_train_agent_trains_resumes_and_its_directory_runs_as_qls(tmp_path, capsys):
    out = tmp_path / "agent"
    common = ["train-agent", "--out", str(out), "--eval-every", "10", "--eval-seeds", "3"]
    common += ["--checkpoint-every", "10", "--no-progress", "--setting", "learning_starts=5"]
    assert main([*common, "--steps", "20", *TINY_OPTIONS]) == 0
    assert "trained 20 steps" in capsys.readouterr().out
    # resuming reads benchmark options and settings from the directory
    assert (
        main(
            [
                "train-agent",
                "--out",
                str(out),
                "--steps",
                "30",
                "--resume",
                "--no-progress",
                "--eval-every",
                "10",
                "--eval-seeds",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "trained 30 steps" in printed and "best greedy validation average" in printed
    with pytest.raises(SystemExit, match="--resume"):
        main([*common, "--steps", "20", *TINY_OPTIONS])
    with pytest.raises(SystemExit, match="has no setting 'gama' \\(did you mean 'gamma'"):
        main([*common, "--steps", "20", "--setting", "gama=0.5", "--out", str(tmp_path / "x")])
    argv = [
        "run",
        "--benchmark",
        "synthetic",
        "--scheduler",
        "qls",
        "--agent",
        str(out),
        "--no-tensorboard",
    ]
    assert main([*argv, "--budget", "320"]) == 0
    printed = capsys.readouterr().out
    assert "qls" in printed
    # how the agent was trained, from its directory
    assert "scheduler notes:\n" in printed and "  training_steps: " in printed
    assert "  training_time: " in printed and " CPU hours, " in printed


@pytest.mark.parametrize(("flags", "expected"), [((), 20_000), (("--steps", "300"), 300)])
def test_train_agent_steps_default_to_the_configuration(monkeypatch, tmp_path, flags, expected):
    import mtl_sched.agents.training as training

    seen = []

    def capture(config, resume=False):
        seen.append(config.steps)
        raise ValueError("stop here")

    monkeypatch.setattr(training, "train_agent", capture)
    argv = ["train-agent", "--benchmark", "synthetic", "--out", str(tmp_path / "a"), *flags]
    with pytest.raises(SystemExit, match="stop here"):
        main(argv)
    assert seen == [expected] and training.TrainAgentConfig.steps == 20_000

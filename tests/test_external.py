"""The hook for external training loops (`SchedulerDriver`) and the external-model example."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.hooks import ProbeData, SchedulerDriver
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import Step
from mtl_sched.training import materialize, take_rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "external_model.py"
NAMES = ["a", "b"]


def model_probe_data(trainer, pool_size):
    """What a user computes by hand: softmax probabilities, labels and unit losses of the model
    on the ``pool_size`` validation rows of each task's probe pool (`Trainer.probe_pool`)."""
    model = trainer.model
    probabilities, targets, losses = [], [], []
    model.eval()
    with torch.no_grad():
        for k, task in enumerate(trainer.tasks):
            columns = materialize(task.split("validation"))
            rows = take_rows(columns, trainer.probe_pool(k, ProbeConfig(pool_size=pool_size)))
            out = model.task_output(task.name, model.collate(task.name, rows))
            probabilities.append(torch.softmax(out.logits, dim=-1))
            targets.append(out.targets)
            losses.append(out.losses())
    model.train()
    return probabilities, targets, losses


def drive_trainer(trainer, driver):
    """A user loop that trains with the trainer's ``train_step`` and plans with the driver;
    returns the examples drawn from each task at each step, shape ``(steps, K)``."""
    budget = trainer.config.budget
    rows = []
    while trainer.examples_seen < budget:
        plan = driver.next_step()
        outcome = trainer.train_step(plan, max_examples=budget - trainer.examples_seen)
        driver.report(outcome.task_losses, outcome.batch_sizes)
        row = np.zeros(trainer.num_tasks, dtype=np.int64)
        row[list(outcome.plan.tasks)] = outcome.batch_sizes
        rows.append(row)
    return np.stack(rows)


# ----------------------------------------------------------------------- histograms
def test_histograms_by_hand():
    # margins 1 - p1 + p2: task a -> 0.1, 0.5, 1.0; task b -> 0.7 (3 classes); 5 bins of 0.2
    probabilities = [
        np.array([[0.95, 0.05], [0.25, 0.75], [0.5, 0.5]]),
        np.array([[0.6, 0.3, 0.1]]),
    ]
    driver = SchedulerDriver(make_scheduler("uniform"), NAMES, probe=ProbeConfig(bins=5))
    result = driver.probe_result(probabilities, targets=[[0, 0, 1], [2]])
    assert np.allclose(result.histograms[0], [1 / 3, 0, 1 / 3, 0, 1 / 3])  # 1.0: last bin
    assert np.allclose(result.histograms[1], [0, 0, 0, 1, 0])
    # argmax: a -> 0, 1, 0 (a tie goes to the first class) against 0, 0, 1; b -> 0 against 2
    assert np.allclose(result.accuracies, [1 / 3, 0.0])
    assert np.allclose(result.losses, [-np.log([0.95, 0.25, 0.5]).mean(), -np.log(0.1)])
    assert result.observation.shape == (10,) and result.observation.dtype == np.float32


def test_batch_hard_keeps_the_units_with_the_highest_loss():
    probabilities = [np.array([[0.95, 0.05], [0.25, 0.75], [0.5, 0.5]]), np.array([[0.6, 0.4]])]
    driver = SchedulerDriver(
        make_scheduler("uniform"), NAMES, probe=ProbeConfig(bins=5, hard_size=2)
    )
    # by targets: NLLs -log 0.95 < -log 0.5 < -log 0.25 keep rows 1 and 2 (margins 0.5, 1.0)
    by_targets = driver.probe_result(probabilities, targets=[[0, 0, 0], [0]])
    assert np.allclose(by_targets.histograms[0], [0, 0, 0.5, 0, 0.5])
    # given unit losses take precedence: rows 0 and 2 (margins 0.1, 1.0)
    by_losses = driver.probe_result(
        probabilities, targets=[[0, 0, 0], [0]], losses=[[3.0, 1.0, 2.0], [0.5]]
    )
    assert np.allclose(by_losses.histograms[0], [0.5, 0, 0, 0, 0.5])
    assert np.allclose(by_losses.losses, [2.0, 0.5])
    with pytest.raises(ValueError, match=r"hard_size=2.*losses or targets"):
        driver.probe_result(probabilities)


@pytest.mark.parametrize("config", [ProbeConfig(bins=20), ProbeConfig(bins=7, hard_size=25)])
def test_histograms_equal_the_trainers_probe_pass(tiny_benchmark, config):
    trainer = tiny_benchmark.make_trainer(seed=3)
    for task in range(4):  # move away from the initial model
        trainer.train_step(Step.select(task))
    pool = 40
    expected = trainer.probe(ProbeConfig(config.bins, pool_size=pool, hard_size=config.hard_size))
    probabilities, targets, losses = model_probe_data(trainer, pool)
    driver = SchedulerDriver(make_scheduler("uniform"), tiny_benchmark.task_names, probe=config)
    result = driver.probe_result(probabilities, targets=targets, losses=losses)
    assert np.array_equal(result.histograms, expected.histograms)
    assert np.allclose(result.losses, expected.losses)
    assert np.array_equal(result.accuracies, expected.accuracies)
    if config.hard_size is None:  # every unit enters: the NLL from targets changes nothing
        by_targets = driver.probe_result(probabilities, targets=targets)
        assert np.array_equal(by_targets.histograms, expected.histograms)
        assert np.allclose(by_targets.losses, expected.losses, atol=1e-5)


def test_mapping_by_task_name_equals_task_order():
    probabilities = [np.array([[0.9, 0.1]]), np.array([[0.2, 0.8], [0.5, 0.5]])]
    driver = SchedulerDriver(make_scheduler("uniform"), NAMES)
    in_order = driver.probe_result(probabilities)
    by_name = driver.probe_result({"b": probabilities[1], "a": probabilities[0]})
    assert np.array_equal(in_order.histograms, by_name.histograms)
    assert np.isnan(in_order.losses).all() and np.isnan(in_order.accuracies).all()


# ------------------------------------------------------------- equivalence with Trainer
@pytest.mark.parametrize(
    ("name", "options"),
    [("random", {}), ("greedy", {}), ("exp3s", {"progress": "loss-change"}), ("uniform", {})],
)
def test_driver_plans_like_the_trainer_for_the_same_seed(tiny_benchmark, name, options):
    expected = tiny_benchmark.make_trainer(seed=5).run(make_scheduler(name, **options))
    trainer = tiny_benchmark.make_trainer(seed=5)
    driver = SchedulerDriver(
        make_scheduler(name, **options), tiny_benchmark.task_names, seed=5, budget=640
    )
    schedule = drive_trainer(trainer, driver)
    # the same feedback gives the same plan at every step, not just the same totals
    assert np.array_equal(schedule, expected.schedule)
    assert driver.step == expected.steps and driver.done
    assert np.array_equal(driver.examples_per_task, expected.examples_per_task)


@pytest.fixture(scope="module")
def untrained_agent(tiny_benchmark):
    # seed 002's flat network reads the flat histograms
    env = MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None, observation="histogram")
    return BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0, buffer_size=10)


def test_qls_through_the_driver_schedules_like_the_trainer(tiny_benchmark, untrained_agent):
    probe = ProbeConfig(bins=20, pool_size=30)
    expected = tiny_benchmark.make_trainer(seed=2).run(
        QLSScheduler(untrained_agent, probe, steps_per_action=2)
    )
    trainer = tiny_benchmark.make_trainer(seed=2)
    driver = SchedulerDriver(
        QLSScheduler(untrained_agent, probe, steps_per_action=2), tiny_benchmark.task_names
    )
    chosen = []
    while trainer.examples_seen < trainer.config.budget:
        probs = targets = None
        if driver.needs_probe:
            probs, targets, _ = model_probe_data(trainer, 30)
        chosen.append(driver.next_task(probs, targets=targets))
        outcome = trainer.train_step(Step.select(chosen[-1]))
        driver.report(outcome.task_losses, outcome.batch_sizes)
    assert chosen == [int(np.flatnonzero(row)[0]) for row in expected.schedule]


def test_qls_through_the_driver_returns_the_argmax_of_q(untrained_agent):
    task_names = ["easy", "medium", "hard", "noise"]
    rng = np.random.default_rng(0)
    driver = SchedulerDriver(QLSScheduler(untrained_agent, ProbeConfig(bins=20)), task_names)
    for _ in range(5):
        logits = [torch.as_tensor(rng.normal(size=(12, 3)) * 3) for _ in task_names]
        probabilities = [torch.softmax(x, dim=-1) for x in logits]
        task = driver.next_task(probabilities)
        observation = driver.last_probe.observation
        with torch.no_grad():
            q_values = untrained_agent.q_net(torch.as_tensor(observation)[None])[0]
        assert task == int(q_values.argmax())
        driver.report(0.5, 32)


def test_probe_fn_is_called_only_when_the_scheduler_decides(untrained_agent):
    calls = []

    def probe_fn():
        calls.append(driver.step)
        return ProbeData([np.full((2, 2), 0.5)] * 4, targets=[[0, 1]] * 4)

    qls = QLSScheduler(untrained_agent, ProbeConfig(bins=20), steps_per_action=3)
    driver = SchedulerDriver(qls, ["w", "x", "y", "z"], probe_fn=probe_fn)
    for _ in range(7):
        driver.next_step()
        driver.report(1.0, 8)
    assert calls == [0, 3, 6]
    assert driver.examples_seen == 56 and driver.step == 7


# ---------------------------------------------------------------------- bookkeeping
def test_report_keeps_the_train_state():
    driver = SchedulerDriver(make_scheduler("uniform"), NAMES, budget=50)
    assert driver.next_step() == Step.weighted([1.0, 1.0])
    outcome = driver.report(torch.tensor([0.7, 0.2]), [16, 16])
    assert outcome.loss == pytest.approx(0.9) and outcome.examples_seen == 32
    state = driver.state()
    assert state.step == 1 and state.examples_seen == 32 and state.budget == 50
    assert state.examples_per_task.tolist() == [16, 16]
    assert np.allclose(state.train_losses, [0.7, 0.2])
    driver.next_step()
    driver.report([0.5, 0.1], [9, 9])
    assert driver.done and driver.examples_per_task.tolist() == [25, 25]


def test_greedy_reads_the_reported_losses():
    driver = SchedulerDriver(make_scheduler("greedy"), ["a", "b", "c"])
    for expected in (0, 1, 2):  # untried tasks first
        assert driver.next_task() == expected
        driver.report([0.3, 0.9, 0.5][expected], 4)
    assert driver.next_task() == 1


def test_report_evaluation_feeds_adaptive_sampling():
    scheduler = make_scheduler("adaptive", references=[0.9, 0.9], alpha=4.0, epsilon=0.01)
    driver = SchedulerDriver(scheduler, NAMES)
    driver.report_evaluation([0.9, 0.3])
    picks = []
    for _ in range(200):
        picks.append(driver.next_task())
        driver.report(1.0, 1)
    assert driver.validation is not None and driver.validation.scores.tolist() == [0.9, 0.3]
    assert np.mean(np.asarray(picks) == 1) > 0.9  # b is far below its reference


def test_combine_uses_the_schedulers_combination():
    driver = SchedulerDriver(make_scheduler("loss-exponentiation", exponent=2.0), NAMES)
    assert driver.owns_combination
    driver.next_step()
    losses = torch.tensor([2.0, 3.0], requires_grad=True)
    loss = driver.combine(losses)
    assert float(loss.detach()) == pytest.approx(13.0)
    loss.backward()
    assert losses.grad.tolist() == [4.0, 6.0]
    plain = SchedulerDriver(make_scheduler("round-robin"), NAMES)
    assert not plain.owns_combination
    plain.next_step()
    assert float(plain.combine(torch.tensor([2.0]))) == 2.0


def test_learnable_terms_are_exposed_for_the_users_optimizer():
    driver = SchedulerDriver(make_scheduler("uncertainty"), NAMES)
    (log_variances,) = driver.parameters()
    assert log_variances.shape == (2,) and log_variances.requires_grad
    assert SchedulerDriver(make_scheduler("uniform"), NAMES).parameters() == []


def test_train_sizes_reach_size_based_schedulers():
    driver = SchedulerDriver(make_scheduler("proportional"), NAMES, train_sizes=[300, 100])
    assert np.allclose(driver.scheduler.probabilities(driver.state()), [0.75, 0.25])
    with pytest.raises(ValueError, match="train_sizes"):
        SchedulerDriver(make_scheduler("proportional"), NAMES)


# ----------------------------------------------------------------------- bad inputs
def qls_driver(agent, names=("w", "x", "y", "z")):
    return SchedulerDriver(QLSScheduler(agent, ProbeConfig(bins=20)), list(names))


GOOD = [np.array([[0.5, 0.5]])] * 4


@pytest.mark.parametrize(
    ("probabilities", "targets", "match"),
    [
        (GOOD[:3], None, r"given for 3 tasks; the scheduler runs 4 tasks"),
        ({"w": GOOD[0], "x": GOOD[0], "y": GOOD[0], "q": GOOD[0]}, None, r"missing.*'z'.*'q'"),
        ([np.array([0.5, 0.5])] * 4, None, r"task 'w'.*shape \(N, C\).*got \(2,\)"),
        ([*GOOD[:3], np.array([[1.0]])], None, r"task 'z'.*C >= 2.*got \(1, 1\)"),
        ([np.array([[0.5, 0.5], [0.7, 0.7]]), *GOOD[1:]], None, r"'w'.*sum to 1.*row 1.*1\.4"),
        ([np.array([[1.5, -0.5]]), *GOOD[1:]], None, r"'w'.*non-negative"),
        ([np.array([[np.nan, 0.5]]), *GOOD[1:]], None, r"'w'.*finite"),
        (GOOD, [[0], [1], [2], [0]], r"task 'y'.*targets must lie in \[0, 2\)"),
        (GOOD, [[0, 1], [1], [1], [0]], r"task 'w'.*targets must have shape \(1,\)"),
        (GOOD, [[0.0], [1], [1], [0]], r"task 'w'.*integer class indices"),
    ],
)
def test_bad_probe_inputs_raise_clear_errors(untrained_agent, probabilities, targets, match):
    driver = qls_driver(untrained_agent)
    with pytest.raises(ValueError, match=match):
        driver.next_step(probabilities, targets=targets)
    assert driver.step == 0  # nothing was planned


def test_missing_probe_data_and_protocol_errors(untrained_agent):
    driver = qls_driver(untrained_agent)
    with pytest.raises(ValueError, match=r"reads the probe at step 0.*probe_fn"):
        driver.next_step()
    with pytest.raises(RuntimeError, match=r"report\(\) needs a planned step"):
        driver.report(1.0, 4)
    driver.next_step(GOOD)
    with pytest.raises(RuntimeError, match="step 0 was planned but not reported"):
        driver.next_step(GOOD)
    with pytest.raises(ValueError, match=r"1 task losses and batch sizes.*got 2 and 1"):
        driver.report([1.0, 2.0], 4)
    with pytest.raises(ValueError, match="finite"):
        driver.report(float("nan"), 4)
    with pytest.raises(ValueError, match="positive integers"):
        driver.report(1.0, 0)
    with pytest.raises(ValueError, match="losses must be per unit"):
        qls_driver(untrained_agent).next_step(GOOD, losses=[[1.0, 2.0]] * 4)


def test_driver_configuration_errors(untrained_agent):
    with pytest.raises(ValueError, match="observes with"):
        SchedulerDriver(
            QLSScheduler(untrained_agent, ProbeConfig(bins=20)),
            list("wxyz"),
            probe=ProbeConfig(bins=10),
        )
    with pytest.raises(ValueError, match=r"\(80,\).*3 tasks x 20 bins"):
        qls_driver(untrained_agent, names=("w", "x", "y"))
    with pytest.raises(ValueError, match="weights every task: use next_step"):
        SchedulerDriver(make_scheduler("uniform"), NAMES).next_task()
    with pytest.raises(ValueError, match="unique"):
        SchedulerDriver(make_scheduler("uniform"), ["a", "a"])
    driver = SchedulerDriver(make_scheduler("uniform"), NAMES)
    driver.next_step()
    with pytest.raises(ValueError, match=r"task_losses must have shape \(2,\)"):
        driver.combine(torch.tensor([1.0]))


# --------------------------------------------------------------------------- example
def test_external_model_example_runs_with_a_tiny_budget(capsys):
    spec = importlib.util.spec_from_file_location("external_model_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    try:
        spec.loader.exec_module(module)
        args = module.parse_args(
            [
                "--train-size",
                "48",
                "--eval-size",
                "16",
                "--probe-size",
                "8",
                "--budget",
                "96",
                "--agent-steps",
                "12",
                "--learning-starts",
                "4",
                "--d-model",
                "8",
                "--nhead",
                "2",
                "--baselines",
                "round-robin",
                "uniform",
                "--device",
                "cpu",
            ]
        )
        assert args.baselines == ("round-robin", "uniform") and args.budget == 96
        results = module.main(args)
    finally:
        del sys.modules[spec.name]
    assert list(results) == ["qls (learned)", "round-robin", "uniform"]
    for result in results.values():
        assert sum(result["examples"].values()) == 96
        assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values())
    assert results["round-robin"]["examples"] == {t: 32 for t in module.TASKS}
    assert results["uniform"]["steps"] == 1 and results["round-robin"]["steps"] == 3
    printed = capsys.readouterr().out
    assert "qls (learned)" in printed and "noisy-majority" in printed

"""A learned scheduler knows its tasks: settings restored from the agent, flat agents refused on
other tasks, task-shared agents run on any task set, and the observation built during a run is
the training environment's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler, agent_context, attach_context
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli import main
from mtl_sched.envs import MTLSchedulingEnv, TaskSetSamplingEnv
from mtl_sched.errors import AgentMismatchError
from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.scheduling import TrainState

SMALL = {"buffer_size": 500, "batch_size": 16, "learning_starts": 50, "seed": 0}


@pytest.fixture(scope="module")
def harmful():
    return get_benchmark("synthetic-harmful", small=True)


@pytest.fixture(scope="module")
def prerequisite():
    return get_benchmark("synthetic-prerequisite", small=True)


def _agent(env, policy, steps=100):
    agent = BoltzmannGumbelDQN(policy, env, **SMALL)
    agent.learn(steps)
    attach_context(agent, env)
    return agent


@pytest.fixture(scope="module")
def flat_agent(harmful):
    env = MTLSchedulingEnv(
        harmful, reference_accuracies=None, steps_per_action=3, observation="histogram"
    )
    return _agent(env, "MlpPolicy")


@pytest.fixture(scope="module")
def shared_agent(harmful, prerequisite):
    env = TaskSetSamplingEnv(
        [harmful.with_tasks(["easy", "noise"]), harmful],
        reference_accuracies=None,
        steps_per_action=2,
        episode_steps=20,
    )
    return _agent(env, "TaskSharedPolicy")


def test_the_context_names_tasks_and_settings(flat_agent, shared_agent):
    flat = agent_context(flat_agent)
    assert flat.observation == "histogram" and not flat.any_task_set
    assert [t.task_names for t in flat.task_sets] == [("easy", "medium", "hard", "noise")]
    assert flat.task_sets[0].steps_per_action == 3
    shared = agent_context(shared_agent)
    assert shared.any_task_set and shared.max_tasks == 4
    assert shared.describe() == "easy,noise | easy,medium,hard,noise"


def test_a_saved_agent_restores_its_settings(flat_agent, harmful, tmp_path):
    flat_agent.save(tmp_path / "agent.zip")
    scheduler = QLSScheduler(tmp_path / "agent.zip")
    assert scheduler.steps_per_action == 3
    assert scheduler.probe_config == harmful.trainer_config.probe
    with pytest.raises(ValueError, match="steps_per_action=3; got 1"):
        QLSScheduler(tmp_path / "agent.zip", steps_per_action=1).reset(harmful.tasks, 0)
    with pytest.raises(ValueError, match="recency_decay"):
        QLSScheduler(tmp_path / "agent.zip", recency_decay=0.5)


def test_another_probe_is_refused_with_the_options_that_match(flat_agent, harmful):
    stored = harmful.trainer_config.probe
    other = dataclasses.replace(stored, pool_size=7, measure="entropy")
    with pytest.raises(AgentMismatchError) as error:
        QLSScheduler(flat_agent, probe=other).reset(harmful.tasks, 0)
    pool = "all" if stored.pool_size is None else stored.pool_size
    assert f"--option probe_pool={pool} --option probe_measure={stored.measure}" in str(error.value)


def test_transfer_runs_a_trained_task_set_with_the_runs_settings(flat_agent, harmful):
    other = dataclasses.replace(harmful.trainer_config.probe, pool_size=7)
    scheduler = QLSScheduler(flat_agent, probe=other, steps_per_action=1, transfer=True)
    result = harmful.make_trainer(0, budget=320).run(scheduler)
    assert scheduler.probe_config == other and scheduler.steps_per_action == 1
    assert result.examples_seen == 320 and "transfer" in result.scheduler_notes
    with pytest.raises(AgentMismatchError, match="flat network"):
        QLSScheduler(flat_agent, transfer=True).reset(harmful.tasks[::-1], 0)


def test_compare_reports_a_mismatched_agent_in_one_line(flat_agent, tmp_path, capsys):
    flat_agent.save(tmp_path / "agent.zip")
    argv = ["compare", "--benchmark", "synthetic-harmful", "--small", "--schedulers", "qls"]
    argv += ["--agent", str(tmp_path / "agent.zip"), "--option", "decision_steps=1"]
    argv += ["--seeds", "0", "--no-progress", "--no-tensorboard"]
    status = main([*argv, "--db", str(tmp_path / "runs.sqlite")])
    out = capsys.readouterr().out
    assert status == 1 and "Traceback" not in out
    failed = out.split("failed: qls seed 0\n", 1)[1].splitlines()[0]
    assert failed.startswith("the agent was trained on these tasks with steps_per_action=3; got 1")
    transfer = ["--param", "qls.transfer=true", "--db", str(tmp_path / "transfer.sqlite")]
    assert main([*argv, *transfer]) == 0


def test_a_flat_agent_is_refused_on_other_tasks(flat_agent, harmful):
    permuted = [harmful.tasks[i] for i in (1, 0, 2, 3)]
    with pytest.raises(AgentMismatchError) as error:
        QLSScheduler(flat_agent).reset(permuted, 0)
    message = str(error.value)
    assert "easy,medium,hard,noise" in message and "medium,easy,hard,noise" in message
    QLSScheduler(flat_agent).reset(harmful.tasks, 0)


def test_a_task_shared_agent_runs_on_any_task_set(shared_agent, harmful, prerequisite):
    runs = {
        "unseen, other K": prerequisite,
        "permuted": harmful.with_tasks(["noise", "hard", "easy", "medium"]),
        "subset": harmful.with_tasks(["medium", "hard", "noise"]),
    }
    for label, benchmark in runs.items():
        scheduler = QLSScheduler(shared_agent)
        scheduler.prepare(benchmark)
        result = benchmark.make_trainer(0, budget=640).run(scheduler)
        assert result.examples_seen == 640, label
        assert result.scheduler_notes["trained_on"] == "easy,noise | easy,medium,hard,noise"
        assert scheduler.steps_per_action == benchmark.decision_steps, label
    trained = QLSScheduler(shared_agent)
    trained.reset(harmful.tasks, 0)
    assert trained.steps_per_action == 2


def test_task_shared_choices_follow_the_tasks_under_a_permutation(shared_agent, harmful):
    """The same state with the tasks listed in another order gets the same task chosen."""
    rng = np.random.default_rng(3)
    bins = harmful.trainer_config.probe.bins
    histograms = rng.dirichlet(np.ones(bins), size=4)
    losses, accuracies = rng.uniform(0.5, 3.0, 4), rng.uniform(0.1, 0.9, 4)
    examples = np.array([64, 16, 0, 32])

    def choice(order):
        scheduler = QLSScheduler(shared_agent)
        scheduler.reset([harmful.tasks[k] for k in order], 0)
        probe = ProbeResult(histograms[order], losses[order], accuracies[order])
        state = TrainState(
            step=0,
            examples_seen=int(examples.sum()),
            budget=1000,
            examples_per_task=examples[order],
            train_losses=losses[order],
            probe=probe,
        )
        return scheduler.task_names[scheduler.plan(state).tasks[0]]

    first = choice([0, 1, 2, 3])
    for order in ([3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        assert choice(order) == first


class _Recorder(QLSScheduler):
    """QLS that records its observations and follows a fixed cycle of actions."""

    def __init__(self, agent, actions):
        super().__init__(agent)
        self.actions = list(actions)
        self.observations = []

    def _choose(self, observation):
        self.observations.append(observation.copy())
        return self.actions[len(self.observations) - 1]


@pytest.mark.parametrize("policy", ["TaskSharedPolicy", "MlpPolicy"])
def test_the_run_observation_is_the_training_observation(harmful, policy):
    observation = "task-features" if policy == "TaskSharedPolicy" else "histogram"
    env_kwargs = {
        "reference_accuracies": None,
        "steps_per_action": 2,
        "observation": observation,
        "recency_decay": 0.8,
        "probe": ProbeConfig(bins=6),
    }
    env = MTLSchedulingEnv(harmful, **env_kwargs)
    agent = BoltzmannGumbelDQN(policy, env, **SMALL)
    attach_context(agent, env)
    actions = [int(a) for a in np.random.default_rng(1).integers(4, size=12)]
    recorder = _Recorder(agent, actions)
    budget = harmful.trainer_config.batch_size * 2 * 12
    harmful.make_trainer(7, budget=budget).run(recorder)

    replay = MTLSchedulingEnv(
        None,
        trainer_factory=lambda seed: harmful.make_trainer(7, budget=budget),
        task_names=harmful.task_names,
        **env_kwargs,
    )
    observed, _ = replay.reset(seed=0)
    assert len(recorder.observations) == len(actions)
    for step, action in enumerate(actions):
        np.testing.assert_allclose(recorder.observations[step], observed, atol=1e-6)
        observed, *_ = replay.step(action)

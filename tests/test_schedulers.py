"""One property suite run over every registered scheduler, then per-scheduler behaviour."""

import math

import numpy as np
import pytest

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.baselines import GreedyScheduler
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.registry import (
    make_scheduler,
    register_scheduler,
    scheduler_class,
    scheduler_infos,
    scheduler_names,
)
from mtl_sched.scheduling import Scheduler, Step, TrainState

BUDGET = 200  # not a multiple of the batch size 32 nor of 4 x 32
SUBSET = ["hard", "easy"]

CASES = [pytest.param(name, {}, id=name) for name in scheduler_names()] + [
    pytest.param("round-robin", {"tasks": SUBSET}, id="round-robin-subset")
]


@pytest.fixture(scope="module")
def qls_agent(tiny_benchmark):
    env = MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None)
    return BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0, buffer_size=1000)


@pytest.fixture
def build(tiny_benchmark, qls_agent):
    """``build(name, kwargs)``: a fresh scheduler (an untrained agent's for ``qls``)."""

    def _build(name, kwargs):
        if name == "qls":
            return QLSScheduler(qls_agent, tiny_benchmark.trainer_config.probe)
        return make_scheduler(name, **kwargs)

    return _build


def run_collecting_plans(scheduler, benchmark, seed=0, budget=BUDGET):
    plans = []
    original = scheduler.plan

    def plan(state):
        step = original(state)
        plans.append(step)
        return step

    scheduler.plan = plan
    result = benchmark.make_trainer(seed, budget=budget).run(scheduler)
    return plans, result


def test_every_registered_scheduler_is_covered():
    names = set(scheduler_names())
    assert {"greedy", "random", "round-robin", "uniform", "qls"} <= names
    assert {p.values[0] for p in CASES} == names
    for info in scheduler_infos():
        assert info.kind in ("selection", "weighting")
        assert info.name and info.description and info.source


# --------------------------------------------------------------------- shared properties
@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_plans_name_valid_tasks_with_finite_non_negative_weights(
    build, tiny_benchmark, name, kwargs
):
    plans, result = run_collecting_plans(build(name, kwargs), tiny_benchmark)
    assert len(plans) == result.steps > 0
    for plan in plans:
        assert isinstance(plan, Step)
        assert all(0 <= t < 4 for t in plan.tasks)
        assert all(math.isfinite(w) and w >= 0 for w in plan.weights)
        assert len(plan.weights) == len(plan.tasks)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_plan_shape_matches_the_scheduler_kind(build, tiny_benchmark, name, kwargs):
    scheduler = build(name, kwargs)
    plans, _ = run_collecting_plans(scheduler, tiny_benchmark)
    if scheduler.kind == "selection":
        assert all(len(p.tasks) == 1 for p in plans)
    else:
        assert scheduler.kind == "weighting"
        # the last step may drop tasks left with no examples; here 200 - 128 = 72 covers all 4
        assert all(p.tasks == (0, 1, 2, 3) for p in plans)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_same_seed_gives_the_same_plan_sequence(build, tiny_benchmark, name, kwargs):
    first, first_result = run_collecting_plans(build(name, kwargs), tiny_benchmark, seed=3)
    second, second_result = run_collecting_plans(build(name, kwargs), tiny_benchmark, seed=3)
    assert first == second
    assert np.array_equal(first_result.schedule, second_result.schedule)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_a_full_run_spends_exactly_the_budget(build, tiny_benchmark, name, kwargs):
    scheduler = build(name, kwargs)
    _, result = run_collecting_plans(scheduler, tiny_benchmark)
    assert result.examples_seen == BUDGET
    assert int(result.schedule.sum()) == BUDGET
    assert result.scheduler == scheduler.name == name
    assert (result.schedule.sum(axis=1) > 0).all()
    per_step = 32 if scheduler.kind == "selection" else 4 * 32
    assert result.steps == math.ceil(BUDGET / per_step)


# ------------------------------------------------------------------------------- greedy
def _state(train_losses, step=0):
    losses = np.asarray(train_losses, dtype=float)
    return TrainState(
        step=step,
        examples_seen=0,
        budget=0,
        examples_per_task=np.zeros(len(losses), dtype=np.int64),
        train_losses=losses,
    )


def test_greedy_tries_untried_tasks_in_order_then_the_highest_loss():
    greedy = make_scheduler("greedy")
    nan = float("nan")
    assert greedy.plan(_state([nan, nan, nan, nan])) == Step.select(0)
    assert greedy.plan(_state([0.5, nan, 9.0, nan])) == Step.select(1)
    assert greedy.plan(_state([0.5, 1.0, 9.0, nan])) == Step.select(3)
    assert greedy.plan(_state([0.5, 1.0, 0.2, 0.7])) == Step.select(1)
    assert greedy.plan(_state([0.5, 3.0, 3.0, 0.7])) == Step.select(1)  # tie: lower index
    assert greedy.plan(_state([4.0, 3.0, 3.0, 0.7])) == Step.select(0)


def test_greedy_run_starts_with_every_task_once(tiny_benchmark):
    plans, _ = run_collecting_plans(make_scheduler("greedy"), tiny_benchmark)
    assert [p.tasks[0] for p in plans[:4]] == [0, 1, 2, 3]


# -------------------------------------------------------------------------- round-robin
def test_round_robin_cycles_in_order(tiny_benchmark):
    every = make_scheduler("round-robin")
    every.reset(tiny_benchmark.tasks, 0)
    assert [every.plan(_state([0.0] * 4, step=s)).tasks[0] for s in range(6)] == [
        0, 1, 2, 3, 0, 1,
    ]
    subset = make_scheduler("round-robin", tasks=SUBSET)
    subset.reset(tiny_benchmark.tasks, 0)
    assert [subset.plan(_state([0.0] * 4, step=s)).tasks[0] for s in range(5)] == [2, 0, 2, 0, 2]


def test_round_robin_subset_trains_only_its_tasks(tiny_benchmark):
    plans, result = run_collecting_plans(
        make_scheduler("round-robin", tasks=SUBSET), tiny_benchmark
    )
    assert [p.tasks[0] for p in plans] == [2, 0, 2, 0, 2, 0, 2]
    assert result.examples_per_task.tolist() == [96, 0, 104, 0]


def test_round_robin_rejects_unknown_or_no_task_names(tiny_benchmark):
    with pytest.raises(ValueError, match="bogus"):
        make_scheduler("round-robin", tasks=["easy", "bogus"]).reset(tiny_benchmark.tasks, 0)
    with pytest.raises(ValueError, match="non-empty subset"):
        make_scheduler("round-robin", tasks=[]).reset(tiny_benchmark.tasks, 0)


# ------------------------------------------------------------------------------ uniform
def test_uniform_weights_every_task_by_one(tiny_benchmark):
    uniform = make_scheduler("uniform")
    uniform.reset(tiny_benchmark.tasks, 0)
    assert uniform.plan(_state([0.0] * 4)) == Step((0, 1, 2, 3), (1.0, 1.0, 1.0, 1.0))
    uniform.reset(tiny_benchmark.tasks[:2], 0)
    assert uniform.plan(_state([0.0] * 2)) == Step((0, 1), (1.0, 1.0))


# ------------------------------------------------------------------------------- random
def _random_choices(tasks, seed, n):
    scheduler = make_scheduler("random")
    scheduler.reset(tasks, seed)
    return [scheduler.plan(_state([0.0] * len(tasks), step=s)).tasks[0] for s in range(n)]


def test_random_is_seeded_and_roughly_uniform(tiny_benchmark):
    tasks = tiny_benchmark.tasks
    choices = _random_choices(tasks, 5, 400)
    assert choices == _random_choices(tasks, 5, 400)
    assert choices != _random_choices(tasks, 6, 400)
    share = np.bincount(choices, minlength=4) / 400
    assert share.shape == (4,)
    assert (share >= 0.15).all() and (share <= 0.35).all()


# ------------------------------------------------------------------------------ registry
def test_unknown_scheduler_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="nope") as err:
        make_scheduler("nope")
    for name in scheduler_names():
        assert name in str(err.value)


def test_bad_hyperparameters_name_the_scheduler():
    with pytest.raises(TypeError, match="'uniform'"):
        make_scheduler("uniform", temperature=2.0)


def test_register_scheduler_refuses_another_class_under_a_taken_name():
    class Impostor(Scheduler):
        name = "greedy"

        def plan(self, state):
            return Step.select(0)

    with pytest.raises(ValueError, match="'greedy' is taken"):
        register_scheduler(Impostor)
    assert scheduler_class("greedy") is GreedyScheduler
    assert register_scheduler(GreedyScheduler) is GreedyScheduler  # same class: a no-op
    assert scheduler_class("greedy") is GreedyScheduler

    class Nameless(Scheduler):
        def plan(self, state):
            return Step.select(0)

    with pytest.raises(ValueError, match="no name"):
        register_scheduler(Nameless)
    assert "" not in scheduler_names()


# ---------------------------------------------------------------------------------- qls
def test_qls_plans_the_agents_greedy_action(tiny_benchmark, qls_agent):
    scheduler = QLSScheduler(qls_agent, tiny_benchmark.trainer_config.probe)
    trainer = tiny_benchmark.make_trainer(0)
    scheduler.reset(trainer.tasks, 0)
    result = trainer.probe(scheduler.probe_config)
    q = qls_agent.q_values(result.observation[None])
    assert scheduler.plan(trainer.state(result)) == Step.select(int(np.argmax(q[0])))
    with pytest.raises(ValueError, match=r"state\.probe"):
        scheduler.plan(trainer.state())

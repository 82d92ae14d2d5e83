"""One property suite run over every registered scheduler, then per-scheduler behaviour."""

import functools
import math
from importlib.util import find_spec

import datasets
import numpy as np
import pytest
import torch

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.baselines import (
    AGGREGATOR_SCHEDULERS,
    AggregatorScheduler,
    GreedyScheduler,
    SamplingScheduler,
)
from mtl_sched.data.task import SPLITS, Task
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.models import SharedMLP
from mtl_sched.registry import (
    coerce_hyperparameters,
    make_scheduler,
    register_scheduler,
    scheduler_class,
    scheduler_infos,
    scheduler_names,
)
from mtl_sched.scheduling import (
    CombineContext,
    EvalOutcome,
    EvalResult,
    Scheduler,
    Step,
    StepOutcome,
    TrainState,
)

BUDGET = 200  # not a multiple of the batch size 32 nor of 4 x 32
SUBSET = ["hard", "easy"]

SEED_002_AND_BANDIT_SCHEDULERS = (
    "uniform", "random", "round-robin", "proportional", "temperature", "hand-crafted", "greedy",
    "loss-exponentiation", "uncertainty", "self-paced", "focal", "dtp", "gradnorm", "adaptive",
    "adaptive-implicit", "prior-easy", "prior-hard", "constant-schedule", "exponential-schedule",
    "sigmoid-schedule", "exp3s", "qls",
)  # fmt: skip
GRADIENT_AGGREGATION_SCHEDULERS = (
    "upgrad", "mgda", "pcgrad", "cagrad", "nash-mtl", "imtl-g", "aligned-mtl", "graddrop",
    "dualproj",
)  # fmt: skip
LOSS_WEIGHTING_SCHEDULERS = ("dwa", "rlw", "famo")
# order matters to these: a fixed cycle, a coordinate search, a policy network over task slots;
# and random draws from torch's generator, the same for a relabelled run only in distribution
ORDER_DEPENDENT = {"round-robin", "hand-crafted", "qls", "pcgrad", "graddrop"}


def installed_marks(name):
    """A skip mark for a scheduler whose optional extra (``jd``) is not installed here."""
    cls = scheduler_class(name)
    if not issubclass(cls, AggregatorScheduler):
        return ()
    missing = [p for p in ("torchjd", *cls.solver_packages) if find_spec(p) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {missing}: the jd extra")


CASES = [pytest.param(name, {}, id=name, marks=installed_marks(name)) for name in scheduler_names()]
CASES += [
    pytest.param("round-robin", {"tasks": SUBSET}, id="round-robin-subset"),
    pytest.param(
        "phased",
        {"stages": [{"hard": 1.0}, {"easy": 1.0, "medium": 2.0}], "fractions": [0.5, 0.5]},
        id="phased-stages",
    ),
]


@pytest.fixture(scope="module")
def qls_agent(tiny_benchmark):
    # seed 002's flat network reads the flat histograms
    env = MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None, observation="histogram")
    return BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0, buffer_size=1000)


@pytest.fixture
def build(tiny_benchmark, qls_agent):
    """``build(name, kwargs)``: a fresh scheduler (an untrained agent's for ``qls``), prepared
    on the tiny benchmark (cached references, a weight search) as runners prepare them."""

    def _build(name, kwargs):
        if name == "qls":
            return QLSScheduler(qls_agent, tiny_benchmark.trainer_config.probe)
        scheduler = make_scheduler(name, **kwargs)
        scheduler.prepare(tiny_benchmark)
        return scheduler

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


@pytest.fixture(scope="module")
def seed_zero_run(tiny_benchmark, qls_agent):
    """``seed_zero_run(name, kwargs)``: (scheduler, plans, result) of one run at seed 0, shared
    by the property tests that only inspect it (each run costs about a second)."""
    runs = {}

    def _run(name, kwargs):
        key = (name, repr(kwargs))
        if key not in runs:
            if name == "qls":
                scheduler = QLSScheduler(qls_agent, tiny_benchmark.trainer_config.probe)
            else:
                scheduler = make_scheduler(name, **kwargs)
                scheduler.prepare(tiny_benchmark)
            runs[key] = (scheduler, *run_collecting_plans(scheduler, tiny_benchmark, seed=0))
        return runs[key]

    return _run


def test_every_registered_scheduler_is_covered():
    names = set(scheduler_names())
    assert set(SEED_002_AND_BANDIT_SCHEDULERS) <= names
    assert {cls.name for cls in AGGREGATOR_SCHEDULERS} == set(GRADIENT_AGGREGATION_SCHEDULERS)
    assert set(GRADIENT_AGGREGATION_SCHEDULERS) <= names
    assert set(LOSS_WEIGHTING_SCHEDULERS) <= names
    assert {p.values[0] for p in CASES} == names
    for info in scheduler_infos():
        assert info.kind in ("selection", "weighting")
        assert info.name and info.description and info.source


# --------------------------------------------------------------------- shared properties
@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_plans_name_valid_tasks_with_finite_non_negative_weights(seed_zero_run, name, kwargs):
    _, plans, result = seed_zero_run(name, kwargs)
    assert len(plans) == result.steps > 0
    for plan in plans:
        assert isinstance(plan, Step)
        assert all(0 <= t < 4 for t in plan.tasks)
        assert all(math.isfinite(w) and w >= 0 for w in plan.weights)
        assert len(plan.weights) == len(plan.tasks)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_plan_shape_matches_the_scheduler_kind(seed_zero_run, name, kwargs):
    scheduler, plans, _ = seed_zero_run(name, kwargs)
    if scheduler.kind == "selection":
        assert all(len(p.tasks) == 1 for p in plans)
    else:
        assert scheduler.kind == "weighting"
        # the last step may drop tasks left with no examples; here 200 - 128 = 72 covers all 4
        assert all(p.tasks == (0, 1, 2, 3) for p in plans)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_same_seed_gives_the_same_plan_sequence(build, seed_zero_run, tiny_benchmark, name, kwargs):
    _, first, first_result = seed_zero_run(name, kwargs)
    second, second_result = run_collecting_plans(build(name, kwargs), tiny_benchmark, seed=0)
    assert first == second
    assert np.array_equal(first_result.schedule, second_result.schedule)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_a_full_run_spends_exactly_the_budget(seed_zero_run, name, kwargs):
    scheduler, _, result = seed_zero_run(name, kwargs)
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
    cycle = [every.plan(_state([0.0] * 4, step=s)).tasks[0] for s in range(6)]
    assert cycle == [0, 1, 2, 3, 0, 1]
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


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("temperature", {"temperature": 3}, {"temperature": 3.0}),
        ("hand-crafted", {"weights": [1, 2.5]}, {"weights": (1.0, 2.5)}),
        ("hand-crafted", {"search_budget": None}, {"search_budget": None}),
        ("hand-crafted", {"search_budget": 64.0}, {"search_budget": 64}),
        ("round-robin", {"tasks": ["easy"]}, {"tasks": ("easy",)}),
        ("exponential-schedule", {"main_task": "hard"}, {"main_task": "hard"}),
        ("exponential-schedule", {"main_task": 2}, {"main_task": 2}),
        ("dtp", {"kpi": "validation"}, {"kpi": "validation"}),
        ("self-paced", {"initial_threshold": 2}, {"initial_threshold": 2.0}),
        (
            "upgrad",
            {"pref_vector": [1, 2.5], "reg_eps": 0},
            {"pref_vector": (1.0, 2.5), "reg_eps": 0.0},
        ),
        ("cagrad", {"c": 1}, {"c": 1.0}),
        ("nash-mtl", {"update_weights_every": 2.0}, {"update_weights_every": 2}),
        ("aligned-mtl", {"scale_mode": "median"}, {"scale_mode": "median"}),
        ("graddrop", {"leak": None}, {"leak": None}),
    ],
)
def test_hyperparameters_are_coerced_to_their_declared_types(name, raw, expected):
    coerced = coerce_hyperparameters(name, raw)
    assert coerced == expected
    assert [type(v) for v in coerced.values()] == [type(v) for v in expected.values()]
    make_scheduler(name, **coerced)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("temperature", {"temperature": "hot"}, "'temperature' expects float; got 'hot'"),
        ("hand-crafted", {"search_budget": 1.5}, "'search_budget' expects"),
        ("hand-crafted", {"weights": [1, "x"]}, "'weights' expects"),
        ("dtp", {"kpi": "test"}, "'kpi' expects"),
        ("gradnorm", {"beta": 1}, "has no hyperparameter 'beta'.*alpha"),
        ("aligned-mtl", {"scale_mode": "max"}, "'scale_mode' expects"),
        ("mgda", {"max_iters": 2.5}, "'max_iters' expects"),
    ],
)
def test_bad_hyperparameter_values_are_named(name, raw, message):
    with pytest.raises(TypeError, match=f"scheduler '{name}'.*{message}"):
        coerce_hyperparameters(name, raw)


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


# ------------------------------------------------------------ permutation equivariance
# A scripted training on four tasks of different sizes, replayed with the tasks listed in
# another order: a scheduler that treats tasks alike must give every task (by name) the same
# weight or probability, and the same combined loss, in both orders. Selection schedulers are
# compared on their distributions; the task actually trained follows a fixed script.
HARNESS_NAMES = ("a", "b", "c", "d")
HARNESS_CLASSES = {"a": 2, "b": 3, "c": 2, "d": 4}
HARNESS_TRAIN_SIZES = {"a": 10, "b": 20, "c": 40, "d": 80}
HARNESS_REFERENCES = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.6}
HARNESS_STEPS = 12
HARNESS_SCRIPT = "abcdddacbbca"  # the task trained at each step by selection schedulers
PERMUTED = ("c", "a", "d", "b")
SYMMETRIC = [
    pytest.param(n, marks=installed_marks(n))
    for n in scheduler_names()
    if scheduler_class(n).task_symmetric
]


def _harness_split(size, classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 3)).astype(np.float32)
    return datasets.Dataset.from_dict({"x": x, "label": rng.integers(classes, size=size)})


@functools.cache
def _harness_tasks(order):
    tasks = []
    for name in order:
        size, classes = HARNESS_TRAIN_SIZES[name], HARNESS_CLASSES[name]
        splits = {split: _harness_split(size, classes, i) for i, split in enumerate(SPLITS)}
        tasks.append(Task(name, splits, num_classes=classes))
    return tasks


def _harness_run(name, order):
    """Per step: name -> weight (weighting) or probability (selection), and the loss value."""
    cls = scheduler_class(name)
    kwargs = {}
    if cls.requires_references:
        kwargs["references"] = [HARNESS_REFERENCES[n] for n in order]
    if name.endswith("-schedule"):
        kwargs["main_task"] = "c"
    scheduler = make_scheduler(name, **kwargs)
    scheduler.reset(_harness_tasks(order), seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        canonical = SharedMLP(3, {n: HARNESS_CLASSES[n] for n in HARNESS_NAMES}, (5,))
    model = SharedMLP(3, {n: HARNESS_CLASSES[n] for n in order}, (5,))
    model.load_state_dict(canonical.state_dict())  # same weights, keyed by task name
    optimizer = torch.optim.SGD([*model.parameters(), *scheduler.parameters()], lr=0.1)
    data_rng = np.random.default_rng(1)
    batches = {
        n: {
            "x": torch.as_tensor(data_rng.normal(size=(8, 3)), dtype=torch.float32),
            "label": torch.as_tensor(data_rng.integers(HARNESS_CLASSES[n], size=8)),
        }
        for n in HARNESS_NAMES
    }
    script_rng = np.random.default_rng(2)
    train_losses = {n: script_rng.uniform(0.5, 2.0, HARNESS_STEPS) for n in HARNESS_NAMES}
    scores = {n: script_rng.uniform(0.2, 1.0, HARNESS_STEPS) for n in HARNESS_NAMES}

    def evaluation(t):
        return EvalResult(
            split="validation",
            losses=np.asarray([train_losses[n][t] for n in order]),
            scores=np.asarray([scores[n][t] for n in order]),
            metric_names=("accuracy",) * len(order),
        )

    records, validation, seen = [], None, 0
    for t in range(HARNESS_STEPS):
        state = TrainState(
            step=t,
            examples_seen=seen,
            budget=8 * 4 * HARNESS_STEPS,
            examples_per_task=np.zeros(len(order), dtype=np.int64),
            train_losses=np.asarray([train_losses[n][t] for n in order]),
            validation=validation,
        )
        if isinstance(scheduler, SamplingScheduler):
            values = scheduler.probabilities(state)
            plan = Step.select(order.index(HARNESS_SCRIPT[t]))
        else:
            plan = scheduler.plan(state)
            values = np.zeros(len(order))
            values[list(plan.tasks)] = plan.weights
        names = [order[k] for k in plan.tasks]
        outputs = [model.task_output(n, batches[n]) for n in names]
        losses = torch.stack([o.loss() for o in outputs])
        context = CombineContext(plan, model, outputs, state, [batches[n] for n in names])
        loss = scheduler.combine(losses, context)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += 8 * len(names)
        records.append(({n: float(v) for n, v in zip(order, values, strict=True)}, loss.item()))
        outcome = StepOutcome(t, plan, tuple(losses.tolist()), loss.item(), (8,) * len(names), seen)
        scheduler.observe(outcome)
        if t % 4 == 3:
            validation = evaluation(t)
            scheduler.observe(EvalOutcome(seen, validation))
    return records


def test_task_symmetry_flags_cover_every_scheduler_but_the_order_dependent_ones():
    assert set(scheduler_names()) - {p.values[0] for p in SYMMETRIC} == ORDER_DEPENDENT


@pytest.mark.parametrize("name", SYMMETRIC)
def test_relabelling_the_tasks_relabels_the_plan(name):
    original = _harness_run(name, HARNESS_NAMES)
    permuted = _harness_run(name, PERMUTED)
    for (values, loss), (permuted_values, permuted_loss) in zip(original, permuted, strict=True):
        for task in HARNESS_NAMES:
            assert permuted_values[task] == pytest.approx(values[task], rel=1e-5, abs=1e-7)
        assert permuted_loss == pytest.approx(loss, rel=1e-5)
    # the script exercises the method: tasks get different values, or values change over time
    # (gradient aggregation weights every loss by one and acts on the gradients instead)
    constant = ("uniform", "random", "loss-exponentiation", "focal", "self-paced")
    if name not in constant + GRADIENT_AGGREGATION_SCHEDULERS:
        differ = any(len({round(v, 9) for v in values.values()}) > 1 for values, _ in original)
        assert differ or original[0][0] != original[-1][0]

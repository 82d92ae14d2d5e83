"""Every registered scheduler's declared needs, checked against what it really reads.

A loop of one's own (`SchedulerDriver`) gives each scheduler exactly what it declares
(`Scheduler.loop_needs`): with all of it every scheduler trains; without any one of it the
driver (or the scheduler) refuses with a `ValueError` naming what is missing.
"""

from __future__ import annotations

import re
import typing

import numpy as np
import pytest
import torch

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.hooks import SchedulerDriver
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.observation.probing import ProbeConfig
from mtl_sched.registry import make_scheduler, scheduler_class, scheduler_names
from mtl_sched.scheduler_needs import (
    NEED_USAGE,
    describe_needs,
    hyperparameter_variants,
    needs_combine,
    needs_table,
)
from mtl_sched.scheduling import COMBINE_ARGUMENTS, LoopNeed, Scheduler

NAMES = ("easy", "medium", "hard", "noise")  # the tasks the untrained agent was built for
INPUT_DIM = 6
BATCH_SIZE = 8
BUDGET = 400
ALL_SCHEDULERS = scheduler_names()
# what a loop cannot be caught omitting: it calls nothing the driver could check
UNCHECKABLE: frozenset[LoopNeed] = frozenset({"evaluation", "parameters"})
NEED_CASES = [
    (name, need)
    for name in ALL_SCHEDULERS
    for need in sorted(scheduler_class(name).default_needs() - UNCHECKABLE)
]


@pytest.fixture(scope="module")
def untrained_agent(tiny_benchmark):
    env = MTLSchedulingEnv(tiny_benchmark, reference_accuracies=None, observation="histogram")
    return BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0, buffer_size=10)


def build_scheduler(name: str, agent, omit: LoopNeed | None = None) -> Scheduler:
    """Scheduler ``name`` given what its needs say it must be given, except ``omit``."""
    if name == "qls":
        return QLSScheduler(agent, ProbeConfig(bins=20))
    needs = scheduler_class(name).default_needs()
    kwargs = {}
    if "references" in needs and omit != "references":
        kwargs["references"] = [0.8] * len(NAMES)
    if "weights" in needs and omit != "weights":
        kwargs["weights"] = [1.0, 2.0, 0.5, 1.0]
    return make_scheduler(name, **kwargs)


def build_driver(scheduler: Scheduler, omit: LoopNeed | None = None) -> SchedulerDriver:
    """A driver over `NAMES` given the scheduler's driver-level needs, except ``omit``."""
    needs = scheduler.loop_needs()
    kwargs: dict[str, typing.Any] = {}
    if "train_sizes" in needs and omit != "train_sizes":
        kwargs["train_sizes"] = [300, 200, 100, 100]
    if "budget" in needs and omit != "budget":
        kwargs["budget"] = BUDGET
    return SchedulerDriver(scheduler, NAMES, seed=3, **kwargs)


class Loop:
    """A user's training loop over a `SharedMLP` on fixed random data, giving the driver
    only what its scheduler declares."""

    def __init__(self, driver: SchedulerDriver) -> None:
        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.driver = driver
        self.model = SharedMLP(INPUT_DIM, {n: 3 for n in NAMES}, hidden_sizes=(8,))
        self.inputs = torch.randn(len(NAMES), 64, INPUT_DIM, generator=generator)
        self.labels = torch.randint(0, 3, (len(NAMES), 64), generator=generator)
        groups = [{"params": self.model.parameters()}]
        if "parameters" in driver.needs:
            groups.append({"params": driver.parameters(), "weight_decay": 0.0})
        self.optimizer = torch.optim.SGD(groups, lr=0.1)
        self.drawn = 0

    def rows(self, k: int, n: int) -> dict[str, np.ndarray]:
        start = self.drawn % 32
        self.drawn += n
        return {
            "x": self.inputs[k, start : start + n].numpy(),
            "label": self.labels[k, start : start + n].numpy(),
        }

    def probe(self) -> list[torch.Tensor]:
        with torch.no_grad():
            return [
                self.model.task_output(n, self.model.collate(n, self.rows(k, 8))).probabilities()
                for k, n in enumerate(NAMES)
            ]

    def step(self, omit: LoopNeed | None = None) -> float:
        """One step; ``omit`` is a need the loop leaves out."""
        driver = self.driver
        probabilities = self.probe() if driver.needs_probe and omit != "probe" else None
        plan = driver.next_step(probabilities)
        sizes = driver.batch_sizes(BATCH_SIZE)
        batches = [
            self.model.collate(NAMES[k], self.rows(k, n))
            for k, n in zip(plan.tasks, sizes, strict=True)
        ]
        outputs = [
            self.model.task_output(NAMES[k], b) for k, b in zip(plan.tasks, batches, strict=True)
        ]
        losses = torch.stack([o.loss() for o in outputs])
        given = {"outputs": outputs, "model": self.model, "batches": batches}
        arguments = {k: v for k, v in given.items() if k in driver.needs and k != omit}
        if driver.owns_combination and omit != "combine":
            loss = driver.combine(losses, **arguments)
        else:
            weights = torch.tensor(plan.weights)
            loss = (weights * losses).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        driver.report(losses.detach(), sizes, loss=loss.detach())
        return float(loss.detach())


def run_loop(name: str, agent, steps: int = 3, scores: list[float] | None = None) -> Loop:
    loop = Loop(build_driver(build_scheduler(name, agent)))
    if scores is not None:
        loop.driver.report_evaluation(scores)
    for _ in range(steps):
        assert np.isfinite(loop.step())
    return loop


# --------------------------------------------------------------------------- declarations
def test_every_need_has_a_usage_and_combine_arguments_are_needs():
    assert set(NEED_USAGE) == set(typing.get_args(LoopNeed))
    assert set(COMBINE_ARGUMENTS) <= set(NEED_USAGE)


@pytest.mark.parametrize("name", ALL_SCHEDULERS)
def test_the_default_instance_needs_what_its_class_declares(name, untrained_agent):
    scheduler = build_scheduler(name, untrained_agent)
    assert scheduler.loop_needs() == type(scheduler).default_needs()
    # a scheduler with its own combination must say so, or a loop would sum the losses
    overrides = type(scheduler).combine is not Scheduler.combine
    assert needs_combine(scheduler.loop_needs()) == overrides
    # single-task references are the same fact as requires_references
    assert ("references" in scheduler.loop_needs()) == scheduler.requires_references


# ------------------------------------------------------------------------- the property
@pytest.mark.parametrize("name", ALL_SCHEDULERS)
def test_a_loop_giving_exactly_the_declared_needs_trains(name, untrained_agent):
    loop = run_loop(name, untrained_agent)
    assert loop.driver.step == 3
    assert loop.driver.examples_seen == int(loop.driver.examples_per_task.sum()) > 0


@pytest.mark.parametrize(("name", "need"), NEED_CASES)
def test_leaving_out_a_declared_need_names_it(name, need, untrained_agent):
    usage = NEED_USAGE[need]
    if need in ("references", "weights"):
        # given to the scheduler itself: its reset (in the driver) refuses to start
        with pytest.raises(ValueError, match=rf"{re.escape(name)}.*{need}=\[\.\.\.\]"):
            build_driver(build_scheduler(name, untrained_agent, omit=need))
        return
    message = re.escape(f"{name} needs {usage.argument}")
    if need in ("train_sizes", "budget"):
        with pytest.raises(ValueError, match=message):
            build_driver(build_scheduler(name, untrained_agent), omit=need)
        return
    loop = Loop(build_driver(build_scheduler(name, untrained_agent)))
    with pytest.raises(ValueError, match=message):
        loop.step(omit=need)
    if need != "probe":
        # refused before the step was recorded: nothing counted, nothing observed
        assert loop.driver.step == 0 and loop.driver.examples_seen == 0


def test_the_messages_of_the_issue_name_the_argument_and_the_call():
    driver = SchedulerDriver(make_scheduler("gradnorm"), NAMES)
    driver.next_step()
    with pytest.raises(ValueError) as caught:
        driver.combine(torch.ones(4, requires_grad=True))
    assert str(caught.value).startswith(
        "gradnorm needs model=: pass driver.combine(losses, model=your_model)"
    )
    driver = SchedulerDriver(make_scheduler("exp3s"), NAMES)
    driver.next_step()
    with pytest.raises(ValueError, match=re.escape("batches=batches")):
        driver.combine(torch.ones(1), model=SharedMLP(INPUT_DIM, {n: 3 for n in NAMES}))


@pytest.mark.parametrize("name", ALL_SCHEDULERS)
def test_evaluation_is_declared_exactly_by_the_schedulers_that_read_it(name, untrained_agent):
    plain = run_loop(name, untrained_agent, steps=6)
    evaluated = run_loop(name, untrained_agent, steps=6, scores=[0.95, 0.05, 0.5, 0.3])
    # the same seeds and data: only what the scheduler made of the scores can differ
    same_tasks = np.array_equal(plain.driver.examples_per_task, evaluated.driver.examples_per_task)
    reads = not same_tasks or plain.step() != evaluated.step()
    assert reads == ("evaluation" in scheduler_class(name).default_needs())


@pytest.mark.parametrize("name", ALL_SCHEDULERS)
def test_parameters_are_declared_exactly_by_schedulers_with_learnable_terms(name, untrained_agent):
    driver = build_driver(build_scheduler(name, untrained_agent))
    assert bool(driver.parameters()) == ("parameters" in driver.needs)


# --------------------------------------------------------------------- hyperparameters
@pytest.mark.parametrize(
    ("name", "options", "needs"),
    [
        ("dtp", {"kpi": "validation"}, {"evaluation"}),
        ("dtp", {"kpi": "validation", "example_gamma": 2.0}, {"evaluation", "outputs"}),
        ("self-paced", {"level": "example"}, {"outputs"}),
        ("exp3s", {"progress": "loss-change"}, set()),
        ("phased", {"stages": [{"easy": 1.0}, {"hard": 1.0}]}, {"budget"}),
    ],
)
def test_hyperparameters_change_the_needs(name, options, needs, untrained_agent):
    scheduler = make_scheduler(name, **options)
    assert scheduler.loop_needs() == needs
    loop = Loop(build_driver(scheduler))
    for _ in range(3):
        assert np.isfinite(loop.step())


def test_dtp_validation_kpi_without_outputs_trains_on_plain_weights():
    driver = SchedulerDriver(make_scheduler("dtp", kpi="validation"), ["a", "b"])
    driver.report_evaluation([0.5, 1.0])
    step = driver.next_step()
    # w = -(1 - k) log k with gamma 1: 0.5 log 2 for a, 0 for a perfect b; rescaled to sum to 2
    assert step.weights == pytest.approx((2.0, 0.0))
    assert float(driver.combine(torch.tensor([2.0, 3.0]))) == pytest.approx(4.0)


# ------------------------------------------------------------------------------- table
def test_the_table_renders_each_scheduler_from_its_declaration():
    table = needs_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == sorted(ALL_SCHEDULERS)
    assert "| `focal` | weighting | `combine(losses, outputs=...)` |  |" in rows
    assert (
        "| `exp3s` | selection | `combine(losses, model=..., batches=...)` | "
        "`progress='loss-change'`: nothing more |"
    ) in rows
    assert (
        "| `dtp` | weighting | `combine(losses, outputs=...)` | "
        "`kpi='validation'`: `driver.report_evaluation(scores)` |"
    ) in rows
    assert "| `uniform` | weighting | nothing more |  |" in rows


def test_describe_needs_orders_combine_first():
    needs: frozenset[LoopNeed] = frozenset({"budget", "combine", "parameters", "batches"})
    assert describe_needs(needs) == (
        "`combine(losses, batches=...)`, `driver.parameters() in your optimizer`, "
        "`SchedulerDriver(budget=)`"
    )
    assert hyperparameter_variants("uniform") == []

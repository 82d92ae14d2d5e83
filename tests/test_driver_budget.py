"""A loop of one's own stops at exactly its budget, drawing what the `Trainer` would draw."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_synthetic
from mtl_sched.hooks import SchedulerDriver
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import Step, fit_to_budget

THREE = Step.weighted([0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    ("plan", "batch_size", "left", "tasks", "sizes"),
    [
        (THREE, 32, None, (0, 1, 2), [32, 32, 32]),
        (THREE, 32, 96, (0, 1, 2), [32, 32, 32]),
        (THREE, 32, 70, (0, 1, 2), [24, 23, 23]),  # 70 = 3 * 23 + 1: the first takes one more
        (THREE, 32, 2, (0, 1), [1, 1]),  # the third task has no example left: dropped
        (Step.select(4), 32, 20, (4,), [20]),
    ],
)
def test_fit_to_budget_by_hand(plan, batch_size, left, tasks, sizes):
    fitted, drawn = fit_to_budget(plan, batch_size, left)
    assert fitted.tasks == tasks and drawn == sizes
    assert fitted.weights == tuple(plan.weights[: len(tasks)])  # the kept tasks keep theirs


def test_fit_to_budget_refuses_nothing_to_draw():
    with pytest.raises(ValueError, match="batch_size"):
        fit_to_budget(THREE, 0, 10)
    with pytest.raises(ValueError, match="examples_left"):
        fit_to_budget(THREE, 32, 0)


def test_the_last_step_shrinks_to_the_budget():
    driver = SchedulerDriver(make_scheduler("uniform"), ["a", "b"], budget=100)
    assert driver.examples_left == 100
    driver.next_step()
    assert driver.batch_sizes(32) == [32, 32]
    driver.report([0.5, 0.5], [32, 32])
    assert driver.examples_left == 36
    driver.next_step()
    assert driver.batch_sizes(32) == [18, 18]
    driver.report([0.5, 0.5], [18, 18])
    assert driver.done and driver.examples_seen == 100 and driver.examples_left == 0
    with pytest.raises(ValueError, match="budget of 100 examples is spent"):
        driver.next_step()


def test_tasks_no_example_is_left_for_leave_the_plan():
    driver = SchedulerDriver(make_scheduler("uniform"), ["a", "b", "c"], budget=98)
    driver.next_step()
    driver.report([1.0, 1.0, 1.0], driver.batch_sizes(32))
    assert driver.next_step() == Step((0, 1), (1.0, 1.0))  # 2 examples for 3 tasks
    assert driver.batch_sizes(32) == [1, 1]
    driver.report([1.0, 1.0], [1, 1])
    assert driver.done and driver.examples_per_task.tolist() == [33, 33, 32]


def test_an_overshooting_step_is_refused_and_nothing_recorded():
    driver = SchedulerDriver(make_scheduler("uniform"), ["a", "b"], budget=50)
    driver.next_step()
    driver.report([0.5, 0.5], [16, 16])
    driver.next_step()
    with pytest.raises(ValueError, match=r"draw 40 examples but the budget of 50 leaves 18"):
        driver.report([0.5, 0.5], [20, 20])
    assert driver.examples_seen == 32 and driver.step == 1
    driver.report([0.5, 0.5], driver.batch_sizes(20))  # the planned step is still pending
    assert driver.examples_seen == 50 and driver.done


def test_without_a_budget_nothing_is_shrunk():
    driver = SchedulerDriver(make_scheduler("uniform"), ["a", "b"])
    assert driver.examples_left is None
    with pytest.raises(RuntimeError, match=r"batch_sizes\(\) needs a planned step"):
        driver.batch_sizes(32)
    driver.next_step()
    assert driver.batch_sizes(1000) == [1000, 1000]
    driver.report([0.5, 0.5], [1000, 1000])
    assert not driver.done


@pytest.mark.parametrize(
    ("name", "budget", "last_row"),
    [
        ("uniform", 642, [1, 1, 0, 0]),  # 5 steps of 4 x 32, then 2 examples for 4 tasks
        ("uniform", 650, [3, 3, 2, 2]),  # 10 left: 10 = 4 * 2 + 2
        ("round-robin", 650, [10, 0, 0, 0]),  # 20 steps of 32; step 20 (task 20 mod 4) takes 10
    ],
)
def test_the_driver_draws_what_the_trainer_draws_at_the_budget(name, budget, last_row):
    benchmark = tiny_synthetic(budget=budget)
    expected = benchmark.make_trainer(seed=1).run(make_scheduler(name))
    assert expected.schedule[-1].tolist() == last_row
    trainer = benchmark.make_trainer(seed=1)
    driver = SchedulerDriver(make_scheduler(name), benchmark.task_names, seed=1, budget=budget)
    rows = []
    while not driver.done:
        plan = driver.next_step()
        sizes = driver.batch_sizes(trainer.config.batch_size)
        outcome = trainer.train_step(plan, max_examples=driver.examples_left)
        assert outcome.plan == plan and list(outcome.batch_sizes) == sizes
        driver.report(outcome.task_losses, sizes)
        row = np.zeros(len(benchmark.task_names), dtype=np.int64)
        row[list(plan.tasks)] = sizes
        rows.append(row)
    assert np.array_equal(np.stack(rows), expected.schedule)
    assert driver.examples_seen == trainer.examples_seen == budget

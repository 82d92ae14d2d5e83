"""Behaviour of the selection baselines: distributions, schedules and bandits."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from mtl_sched.baselines.exp3s import percentile, rescale_reward
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import EvalResult, Step, TrainState

SIZES = (10, 20, 40, 80)


def _tasks(sizes=SIZES):
    return [SimpleNamespace(name=f"t{k}", size=lambda split, n=n: n) for k, n in enumerate(sizes)]


def _state(num_tasks=4, step=0, train_losses=None, scores=None):
    validation = None
    if scores is not None:
        validation = EvalResult(
            "validation", np.zeros(num_tasks), np.asarray(scores), ("accuracy",) * num_tasks
        )
    return TrainState(
        step=step,
        examples_seen=0,
        budget=0,
        examples_per_task=np.zeros(num_tasks, dtype=np.int64),
        train_losses=(
            np.full(num_tasks, np.nan) if train_losses is None else np.asarray(train_losses)
        ),
        validation=validation,
    )


def _shares(scheduler, state, draws=4000):
    picks = [scheduler.plan(state).tasks[0] for _ in range(draws)]
    return np.bincount(picks, minlength=scheduler.num_tasks) / draws


# ----------------------------------------------------------------- size-based sampling
def test_proportional_and_temperature_probabilities():
    proportional = make_scheduler("proportional")
    proportional.reset(_tasks(), 0)
    assert proportional.probabilities(_state()) == pytest.approx(np.array(SIZES) / 150)
    tempered = make_scheduler("temperature", temperature=2.0)
    tempered.reset(_tasks(), 0)
    roots = np.sqrt(SIZES)
    assert tempered.probabilities(_state()) == pytest.approx(roots / roots.sum())
    hot = make_scheduler("temperature", temperature=1e6)
    hot.reset(_tasks(), 0)
    assert hot.probabilities(_state()) == pytest.approx([0.25] * 4, abs=1e-5)
    shares = _shares(proportional, _state())
    assert shares == pytest.approx(np.array(SIZES) / 150, abs=0.03)


# -------------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    ("name", "kwargs", "step", "main"),
    [
        ("constant-schedule", {}, 0, 0.5),
        ("constant-schedule", {"main_probability": 0.8}, 500, 0.8),
        ("exponential-schedule", {}, 0, 0.0),
        ("exponential-schedule", {}, 100, 1 - math.exp(-1)),
        ("exponential-schedule", {"rate": 0.05}, 20, 1 - math.exp(-1)),
        ("sigmoid-schedule", {}, 0, 0.5),
        ("sigmoid-schedule", {}, 100, 1 / (1 + math.exp(-1))),
        ("sigmoid-schedule", {"rate": 0.1}, 30, 1 / (1 + math.exp(-3))),
    ],
)
def test_schedule_probabilities_at_chosen_steps(name, kwargs, step, main):
    scheduler = make_scheduler(name, main_task="t2", **kwargs)
    scheduler.reset(_tasks(), 0)
    p = scheduler.probabilities(_state(step=step))
    assert p[2] == pytest.approx(main)
    assert np.delete(p, 2) == pytest.approx([(1 - main) / 3] * 3)


def test_schedules_take_the_main_task_by_index_and_reject_unknown_ones():
    scheduler = make_scheduler("exponential-schedule", main_task=3)
    scheduler.reset(_tasks(), 0)
    assert np.argmax(scheduler.probabilities(_state(step=1000))) == 3
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_scheduler("sigmoid-schedule", main_task="nope").reset(_tasks(), 0)
    with pytest.raises(ValueError, match="out of range"):
        make_scheduler("sigmoid-schedule", main_task=4).reset(_tasks(), 0)
    late = make_scheduler("sigmoid-schedule", main_task="t1")
    late.reset(_tasks(), 0)
    assert _shares(late, _state(step=1000), draws=500)[1] > 0.95


# --------------------------------------------------------------------------- adaptive
def test_adaptive_oversamples_the_task_furthest_below_its_reference():
    adaptive = make_scheduler("adaptive", references=[0.9, 0.9, 0.6, 0.8])
    adaptive.reset(_tasks(), 0)
    assert adaptive.probabilities(_state()) == pytest.approx([0.25] * 4)  # before evaluating
    state = _state(scores=[0.85, 0.45, 0.6, 0.8])  # ratios 0.944, 0.5, 1, 1
    inverse = np.array([0.9 / 0.85, 2.0, 1.0, 1.0])
    p = adaptive.probabilities(state)
    assert p == pytest.approx(inverse / inverse.sum())
    assert np.argmax(_shares(adaptive, state)) == 1
    sharper = make_scheduler("adaptive", references=[0.9, 0.9, 0.6, 0.8], alpha=2.0)
    sharper.reset(_tasks(), 0)
    assert sharper.probabilities(state)[1] > p[1]
    floored = make_scheduler("adaptive", references=[0.9, 0.9, 0.6, 0.8], epsilon=0.1)
    floored.reset(_tasks(), 0)
    weights = np.array([1.0, 1.0, 10.0, 1.0])  # task 2 scores 0: ratio floored at 0.1
    assert floored.probabilities(_state(scores=[0.9, 0.9, 0.0, 0.8])) == pytest.approx(
        weights / weights.sum()
    )


def test_adaptive_needs_references():
    with pytest.raises(ValueError, match="references"):
        make_scheduler("adaptive").reset(_tasks(), 0)


# ------------------------------------------------------------------------------ exp3s
def test_percentile_matches_numpy_and_rescaling_maps_the_band_to_minus_one_one():
    values = sorted(np.random.default_rng(0).normal(size=37))
    for q in (0, 20, 50, 80, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([3.0], 80) == 3.0
    assert rescale_reward(50.0, 20.0, 80.0) == pytest.approx(0.0)
    assert rescale_reward(65.0, 20.0, 80.0) == pytest.approx(0.5)
    assert rescale_reward(90.0, 20.0, 80.0) == 1.0
    assert rescale_reward(5.0, 20.0, 80.0) == -1.0
    assert rescale_reward(3.0, 3.0, 3.0) == 0.0


def test_exp3s_keeps_a_window_of_raw_rewards():
    exp3s = make_scheduler("exp3s", history_size=3)
    exp3s.reset(_tasks(), 0)
    for raw in (5.0, 1.0, 3.0, 2.0, 4.0):
        exp3s.probabilities(_state())
        exp3s.update(0, raw)
    assert list(exp3s.history) == [3.0, 2.0, 4.0]
    assert exp3s._sorted_history == [2.0, 3.0, 4.0]


def test_exp3s_update_follows_the_fixed_share_formula():
    exp3s = make_scheduler("exp3s", eta=0.1, epsilon=0.2)
    exp3s.reset(_tasks(), 0)
    history, w = [], np.zeros(4)
    for t, (arm, raw) in enumerate([(1, 0.5), (2, -0.3), (1, 0.9), (0, 0.1)], start=1):
        pi = exp3s.probabilities(_state())
        softmax = np.exp(w) / np.exp(w).sum()
        assert pi == pytest.approx(0.8 * softmax + 0.05)
        exp3s.update(arm, raw)
        history.append(raw)
        q_low, q_high = np.percentile(history, [20, 80])
        gains = np.zeros(4)
        gains[arm] = 0.1 * rescale_reward(raw, q_low, q_high) / pi[arm]
        a = 1 / t
        boosted = np.exp(w + gains)
        w = np.log((1 - a) * boosted + a / 3 * (boosted.sum() - boosted))
    expected = 0.8 * np.exp(w) / np.exp(w).sum() + 0.05
    assert exp3s.probabilities(_state()) == pytest.approx(expected)


def test_exp3s_converges_to_the_best_arm_of_a_stationary_bandit():
    exp3s = make_scheduler("exp3s")
    exp3s.reset(_tasks(), 3)
    means = np.array([0.2, 0.5, 0.1, 0.0])
    noise = np.random.default_rng(0)
    picks = []
    for step in range(1500):
        arm = exp3s.plan(_state(step=step)).tasks[0]
        exp3s.update(arm, means[arm] + noise.normal(0, 0.1))
        picks.append(arm)
    late = np.bincount(picks[-500:], minlength=4) / 500
    assert late[1] > 0.8
    assert exp3s.probabilities(_state())[1] > 0.8
    assert (exp3s.probabilities(_state()) >= 0.05 / 4 - 1e-12).all()  # the uniform floor


def test_exp3s_rewards_prediction_gain_in_a_real_run(tiny_benchmark):
    exp3s = make_scheduler("exp3s")
    result = tiny_benchmark.make_trainer(0, budget=320).run(exp3s)
    assert exp3s.updates == result.steps == 10
    assert np.isfinite(list(exp3s.history)).all()
    # early in training most steps lower the loss of the minibatch they trained on
    assert np.mean(np.asarray(exp3s.history) > 0) > 0.5
    cheap = make_scheduler("exp3s", progress="loss-change")
    tiny_benchmark.make_trainer(0, budget=320).run(cheap)
    assert cheap.updates == 10


# ----------------------------------------------------------------------------- greedy
def test_greedy_converges_to_the_best_arm_of_a_stationary_problem():
    """Greedy's "best" arm is the task whose loss stays highest; with noisy but stationary
    losses it is trained most of the time."""
    greedy = make_scheduler("greedy")
    greedy.reset(_tasks(), 0)
    means = np.array([1.0, 2.0, 1.4, 0.5])
    noise = np.random.default_rng(0)
    losses = np.full(4, np.nan)
    picks = []
    for step in range(600):
        arm = greedy.plan(_state(step=step, train_losses=losses)).tasks[0]
        losses[arm] = means[arm] + noise.normal(0, 0.2)
        picks.append(arm)
    assert picks[:4] == [0, 1, 2, 3]
    assert np.bincount(picks[-300:], minlength=4)[1] / 300 > 0.8


def test_sampling_plans_select_one_task():
    scheduler = make_scheduler("temperature")
    scheduler.reset(_tasks(), 0)
    plan = scheduler.plan(_state())
    assert isinstance(plan, Step) and len(plan.tasks) == 1 and plan.weights == (1.0,)

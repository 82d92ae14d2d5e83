"""DWA, RLW and FAMO: hand-computed weights and logits, and full seeded runs."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import tiny_synthetic
from mtl_sched.baselines.dwa import DWAScheduler, dwa_weights
from mtl_sched.baselines.famo import LOG_EPSILON, FAMOScheduler
from mtl_sched.baselines.rlw import RLWScheduler
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import CombineContext, EvalOutcome, EvalResult, Step, StepOutcome

BUDGET = 704  # 5.5 weighting steps (4 tasks x 32 examples): the last one is cut short


def _tasks(num_tasks):
    return [SimpleNamespace(name=f"t{k}") for k in range(num_tasks)]


def _outcome(losses, step=0, tasks=None, skipped=False):
    tasks = tuple(range(len(losses))) if tasks is None else tuple(tasks)
    plan = Step(tasks, (1.0,) * len(tasks))
    return StepOutcome(
        step=step,
        plan=plan,
        task_losses=tuple(float(v) for v in losses),
        loss=float(sum(losses)),
        batch_sizes=(32,) * len(tasks),
        examples_seen=32 * len(tasks) * (step + 1),
        skipped=skipped,
    )


def _started(scheduler, num_tasks, seed=0):
    scheduler.reset(_tasks(num_tasks), seed)
    return scheduler


def _weights(scheduler):
    return np.array(scheduler.plan(None).weights)


def _collect_weights(scheduler, seed):
    plans = []
    original = scheduler.plan

    def plan(state):
        step = original(state)
        plans.append(step.weights)
        return step

    scheduler.plan = plan
    result = tiny_synthetic().make_trainer(seed, budget=BUDGET).run(scheduler)
    return plans, result


# ---------------------------------------------------------------------------------- dwa
def test_dwa_weights_match_the_formula():
    # r = (1/2, 1): the task whose loss halved weighs less
    weights = dwa_weights(np.array([2.0, 1.0]), np.array([1.0, 1.0]), temperature=2.0)
    low, high = math.exp(0.25), math.exp(0.5)
    assert weights == pytest.approx([2 * low / (low + high), 2 * high / (low + high)])
    assert dwa_weights(np.array([1.0, 3.0, 2.0]), np.array([1.0, 3.0, 2.0]), 2.0) == (
        pytest.approx([1.0, 1.0, 1.0])
    )
    assert dwa_weights(np.array([1.0, 4.0]), np.array([2.0, 1.0]), 1e6).sum() == pytest.approx(2)


def test_dwa_weighs_one_for_two_windows_then_follows_the_window_means():
    dwa = _started(DWAScheduler(temperature=2.0, window=2), 2)
    losses = [[4.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0], [1.0, 1.0], [0.5, 3.0]]
    seen = []
    for step, pair in enumerate(losses):
        seen.append(_weights(dwa))
        dwa.observe(_outcome(pair, step))
    # the first two windows (steps 0-3) plan with weight 1
    for weights in seen[:4]:
        assert weights == pytest.approx([1.0, 1.0])
    # the third window's steps: the window means are (3, 1) then (1.5, 2), so r = (0.5, 2)
    a, b = math.exp(0.5 / 2), math.exp(2.0 / 2)
    assert seen[4] == pytest.approx([2 * a / (a + b), 2 * b / (a + b)])
    assert seen[5] == pytest.approx(seen[4])
    # the third window's means (0.75, 2) against (1.5, 2): r = (0.5, 1)
    c, d = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert _weights(dwa) == pytest.approx([2 * c / (c + d), 2 * d / (c + d)])
    assert [m.tolist() for m in dwa.window_means] == [[1.5, 2.0], [0.75, 2.0]]


def test_dwa_ignores_skipped_steps_and_evaluations_and_neutralizes_missing_tasks():
    dwa = _started(DWAScheduler(window=1), 3)
    dwa.observe(_outcome([2.0, 2.0, 2.0]))
    dwa.observe(_outcome([9.0, 9.0, 9.0], skipped=True))
    result = EvalResult("validation", np.ones(3), np.ones(3), ("accuracy",) * 3)
    dwa.observe(EvalOutcome(10, result))
    assert _weights(dwa) == pytest.approx([1.0, 1.0, 1.0])
    # task 2 is missing from the second window: its rate is taken as 1
    dwa.observe(_outcome([1.0, 4.0], tasks=(0, 1)))
    expected = dwa_weights(np.array([2.0, 2.0, 1.0]), np.array([1.0, 4.0, 1.0]), 2.0)
    assert _weights(dwa) == pytest.approx(expected)
    assert expected[0] < expected[2] < expected[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
    ],
)
def test_dwa_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DWAScheduler(**kwargs)


def test_dwa_matches_torchjd_per_epoch_dwa():
    scalarization = pytest.importorskip("torchjd.scalarization")
    reference = scalarization.DWA(temperature=2.0)
    dwa = _started(DWAScheduler(window=3), 3)
    rng = np.random.default_rng(1)
    for step in range(12):
        losses = rng.uniform(0.5, 2.0, size=3)
        tensor = torch.as_tensor(losses)
        expected = reference(tensor)
        plan = dwa.plan(None)
        ours = (torch.as_tensor(plan.weights, dtype=tensor.dtype) * tensor).sum()
        assert ours.item() == pytest.approx(expected.item(), rel=1e-12)
        dwa.observe(_outcome(losses, step))
        if step % 3 == 2:
            reference.step()


# ---------------------------------------------------------------------------------- rlw
def test_rlw_weights_are_the_softmax_of_the_seeded_normal_draws():
    rlw = _started(RLWScheduler(), 4, seed=7)
    draws = np.random.default_rng(7).standard_normal((5, 4))
    for row in draws:
        expected = np.exp(row) / np.exp(row).sum()
        assert _weights(rlw) == pytest.approx(expected, rel=1e-12)
    scaled = _started(RLWScheduler(scale_by_num_tasks=True), 4, seed=7)
    assert _weights(scaled) == pytest.approx(4 * np.exp(draws[0]) / np.exp(draws[0]).sum())


def test_rlw_deals_the_draws_to_the_tasks_by_name():
    listed = RLWScheduler()
    listed.reset([SimpleNamespace(name=n) for n in ("b", "c", "a")], 5)
    draws = np.random.default_rng(5).standard_normal(3)
    by_name = dict(zip("abc", np.exp(draws) / np.exp(draws).sum(), strict=True))
    assert _weights(listed) == pytest.approx([by_name["b"], by_name["c"], by_name["a"]])


def test_rlw_weights_are_a_fresh_distribution_each_step():
    rlw = _started(RLWScheduler(), 3, seed=0)
    weights = np.array([_weights(rlw) for _ in range(2000)])
    assert weights.sum(axis=1) == pytest.approx(np.ones(2000))
    assert (weights > 0).all()
    assert len({tuple(w) for w in weights}) == 2000
    # i.i.d. draws treat the tasks alike: each averages 1/3
    assert weights.mean(axis=0) == pytest.approx([1 / 3] * 3, abs=0.02)


def test_rlw_rejects_a_non_boolean_scale():
    with pytest.raises(ValueError, match="scale_by_num_tasks"):
        RLWScheduler(scale_by_num_tasks="yes")


# --------------------------------------------------------------------------------- famo
def test_famo_loss_is_the_normalized_weighted_log_loss():
    famo = _started(FAMOScheduler(), 2)
    plan = famo.plan(None)
    assert plan.weights == pytest.approx((0.5, 0.5))
    losses = torch.tensor([1.0, 4.0], dtype=torch.float64, requires_grad=True)
    context = CombineContext(plan, None, [], None)
    loss = famo.combine(losses, context)
    # c = 1 / (0.5 / 1 + 0.5 / 4) = 1.6; L = 1.6 (0.5 log 1 + 0.5 log 4)
    assert loss.item() == pytest.approx(0.8 * math.log(4.0))
    loss.backward()
    # the loss gradients c z_k / L_k are a convex combination: 0.8 and 0.2
    assert losses.grad.tolist() == pytest.approx([0.8, 0.2])


def _adam_logits(gradients, lr, decay, betas=(0.9, 0.999), eps=1e-8):
    """Adam with L2 decay, written out, applied from zero logits to ``gradients(xi)``."""
    xi = np.zeros(2)
    first = np.zeros(2)
    second = np.zeros(2)
    for t, gradient in enumerate(gradients, start=1):
        g = gradient(xi) + decay * xi
        first = betas[0] * first + (1 - betas[0]) * g
        second = betas[1] * second + (1 - betas[1]) * g * g
        corrected = first / (1 - betas[0] ** t)
        scale = np.sqrt(second / (1 - betas[1] ** t)) + eps
        xi = xi - lr * corrected / scale
    return xi


def test_famo_logits_after_two_updates_match_a_hand_computation():
    famo = _started(FAMOScheduler(w_lr=0.1, decay=0.01), 2)
    steps = [[1.0, 1.0], [0.5, 1.0], [0.4, 0.9]]
    for step, losses in enumerate(steps):
        famo.observe(_outcome(losses, step))

    def gradient_between(before, after):
        delta = np.log(np.array(before) + LOG_EPSILON) - np.log(np.array(after) + LOG_EPSILON)

        def gradient(xi):
            z = np.exp(xi) / np.exp(xi).sum()
            return z * (delta - z @ delta)

        return gradient

    expected = _adam_logits(
        [gradient_between(steps[0], steps[1]), gradient_between(steps[1], steps[2])],
        lr=0.1,
        decay=0.01,
    )
    # Adam's first step moves each logit by lr against its gradient's sign: task 0's loss halved
    assert expected[0] < -0.09 and expected[1] > 0.09
    assert famo.logits.detach().numpy() == pytest.approx(expected, rel=1e-10)
    assert _weights(famo) == pytest.approx(np.exp(expected) / np.exp(expected).sum())


def test_famo_favours_the_task_whose_loss_falls_slower():
    famo = _started(FAMOScheduler(), 3)
    history = []
    for step in range(40):
        famo.observe(_outcome([0.9**step, 0.97**step, 1.0], step))
        history.append(_weights(famo))
    final = history[-1]
    assert final[0] < final[1] < final[2]
    assert all(np.diff([w[2] for w in history[1:]]) > 0)


def test_famo_bridges_skipped_steps_and_freezes_missing_tasks():
    famo = _started(FAMOScheduler(), 3)
    famo.observe(_outcome([1.0, 1.0, 1.0]))
    famo.observe(_outcome([0.1, 0.1, 0.1], skipped=True))
    famo.observe(_outcome([1.0, 1.0, 1.0], step=2))
    # no change of any log loss: a zero gradient, and Adam's step from zero logits stays at zero
    assert famo.logits.detach().numpy() == pytest.approx([0.0, 0.0, 0.0])
    famo.observe(_outcome([0.5, 2.0], step=3, tasks=(0, 2)))
    # delta = (log 2, 0, -log 2): task 0 improved and loses weight, task 1 is in the middle
    weights = _weights(famo)
    assert weights[0] < weights[1] < weights[2]


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"w_lr": 0.0}, "w_lr"), ({"decay": -1.0}, "decay")]
)
def test_famo_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FAMOScheduler(**kwargs)


def test_famo_matches_torchjd_famo_fed_consecutive_losses():
    scalarization = pytest.importorskip("torchjd.scalarization")
    reference = scalarization.FAMO(3, lr=0.025, weight_decay=1e-3)
    famo = _started(FAMOScheduler(), 3)
    rng = np.random.default_rng(2)
    for step in range(10):
        losses = rng.uniform(0.2, 3.0, size=3)
        tensor = torch.as_tensor(losses, dtype=torch.float32)
        if step > 0:
            # its "before" losses are the previous step's: the pair that observe compares
            reference.update(tensor)
        expected = reference(tensor)
        famo.observe(_outcome(losses, step))
        ours = famo.combine(tensor.double(), CombineContext(famo.plan(None), None, [], None))
        assert ours.item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------------------- full runs
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("dwa", {"window": 1}), ("rlw", {}), ("famo", {"w_lr": 0.1})],
)
def test_a_seeded_run_spends_the_budget_and_repeats_its_weights(name, kwargs):
    first, result = _collect_weights(make_scheduler(name, **kwargs), seed=3)
    again, _ = _collect_weights(make_scheduler(name, **kwargs), seed=3)
    assert result.examples_seen == BUDGET
    assert int(result.schedule.sum()) == BUDGET
    assert result.steps == math.ceil(BUDGET / (4 * 32))
    assert first == again
    # every task every step, and the weights adapt during the run
    assert all(len(w) == 4 for w in first)
    assert len({tuple(np.round(w, 12)) for w in first}) > 1

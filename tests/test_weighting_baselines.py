"""Behaviour of the weighting baselines: checks that a wrong formula or update would fail."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mtl_sched.baselines import HandCraftedScheduler
from mtl_sched.baselines.common import focal_unit_losses
from mtl_sched.baselines.dtp import dtp_weights
from mtl_sched.baselines.hand_crafted import coordinate_search
from mtl_sched.comparison import summary_table
from mtl_sched.models import TaskOutput
from mtl_sched.references import single_task_references
from mtl_sched.registry import make_scheduler, prepared_scheduler
from mtl_sched.scheduling import CombineContext, EvalOutcome, EvalResult, Step, TrainState


def _state(num_tasks, step=0):
    return TrainState(
        step=step,
        examples_seen=0,
        budget=0,
        examples_per_task=np.zeros(num_tasks, dtype=np.int64),
        train_losses=np.full(num_tasks, np.nan),
    )


def _context(plan, outputs=(), model=None, step=0):
    return CombineContext(plan, model, list(outputs), _state(len(plan.tasks), step))


def _fake_tasks(num_tasks):
    return [SimpleNamespace(name=f"t{k}") for k in range(num_tasks)]


def _output(logits, targets):
    return TaskOutput(torch.as_tensor(logits, dtype=torch.float64), torch.as_tensor(targets))


# ---------------------------------------------------------------------------------- dtp
def test_dtp_weights_match_hand_computed_values():
    weights = dtp_weights(np.array([0.5, 0.9, 1.0, 0.0]), gamma=1.0, min_kpi=1e-3)
    expected = [0.5 * math.log(2), 0.1 * -math.log(0.9), 0.0, 0.999 * -math.log(1e-3)]
    assert weights == pytest.approx(expected)
    assert dtp_weights(np.array([0.9]), gamma=2.0)[0] == pytest.approx(0.01 * -math.log(0.9))
    assert dtp_weights(np.array([0.25]), gamma=0.0)[0] == pytest.approx(math.log(4))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_dtp_weights_fall_as_the_kpi_rises(gamma):
    weights = dtp_weights(np.linspace(0.01, 1.0, 50), gamma)
    assert (np.diff(weights) < 0).all()
    assert weights[-1] == 0.0


def test_dtp_smooths_the_minibatch_accuracy_and_plans_with_it():
    dtp = make_scheduler("dtp", gamma=1.0, smoothing=0.1, normalize=False)
    dtp.reset(_fake_tasks(3), 0)
    assert dtp.plan(_state(3)) == Step.weighted([1.0, 1.0, 1.0])  # no KPI yet
    plan = Step((0, 2), (1.0, 1.0))
    # task 0: 3 of 4 right; task 2: 1 of 2 right
    first = [
        _output([[2, 0], [2, 0], [0, 2], [0, 2]], [0, 0, 1, 0]),
        _output([[1, 0], [1, 0]], [0, 1]),
    ]
    dtp.combine(torch.ones(2, dtype=torch.float64), _context(plan, first))
    assert dtp.smoothed_kpis[[0, 2]] == pytest.approx([0.75, 0.5])  # the first KPI is taken as is
    second = [_output([[2, 0]] * 4, [1, 1, 1, 1]), _output([[1, 0], [1, 0]], [0, 0])]
    dtp.combine(torch.ones(2, dtype=torch.float64), _context(plan, second))
    kbar = [0.1 * 0.0 + 0.9 * 0.75, 0.1 * 1.0 + 0.9 * 0.5]
    assert dtp.smoothed_kpis[[0, 2]] == pytest.approx(kbar)
    weights = dtp.plan(_state(3)).weights
    assert weights[0] == pytest.approx(-(1 - kbar[0]) * math.log(kbar[0]))
    assert weights[1] == 1.0
    assert weights[2] == pytest.approx(-(1 - kbar[1]) * math.log(kbar[1]))


def test_dtp_can_follow_the_validation_accuracy():
    dtp = make_scheduler("dtp", kpi="validation", gamma=2.0, smoothing=0.5, normalize=False)
    dtp.reset(_fake_tasks(2), 0)
    result = EvalResult("validation", np.zeros(2), np.array([0.6, 0.9]), ("accuracy",) * 2)
    dtp.observe(EvalOutcome(10, result))
    assert dtp.plan(_state(2)).weights == pytest.approx(tuple(dtp_weights([0.6, 0.9], 2.0)))


def test_dtp_normalized_weights_keep_the_ratios_and_sum_to_the_task_count():
    result = EvalResult("validation", np.zeros(3), np.array([0.5, 0.9, 0.99]), ("accuracy",) * 3)
    raw = make_scheduler("dtp", kpi="validation", normalize=False)
    normalized = make_scheduler("dtp", kpi="validation")  # the default
    for dtp in (raw, normalized):
        dtp.reset(_fake_tasks(3), 0)
        dtp.observe(EvalOutcome(10, result))
    raw_weights = np.array(raw.plan(_state(3)).weights)
    weights = np.array(normalized.plan(_state(3)).weights)
    assert weights.sum() == pytest.approx(3.0)
    assert weights == pytest.approx(raw_weights * 3.0 / raw_weights.sum())
    # 0.99 accuracy: 0.01 * -log(0.99), about 0.0001 raw, stays the hardest task's ~1/3466
    assert weights[0] / weights[2] == pytest.approx((0.5 * math.log(2)) / (0.01 * -math.log(0.99)))


def test_dtp_normalized_weights_of_perfect_tasks_fall_back_to_equal():
    dtp = make_scheduler("dtp", kpi="validation", normalize=True)
    dtp.reset(_fake_tasks(2), 0)
    dtp.observe(
        EvalOutcome(10, EvalResult("validation", np.zeros(2), np.ones(2), ("accuracy",) * 2))
    )
    assert dtp.plan(_state(2)).weights == pytest.approx((1.0, 1.0))


def test_dtp_example_level_focal_loss():
    dtp = make_scheduler("dtp", example_gamma=2.0)
    dtp.reset(_fake_tasks(1), 0)
    output = _output([[2.0, 0.0], [0.0, 1.0]], [0, 0])
    loss = dtp.combine(output.loss().reshape(1), _context(Step.select(0), [output]))
    assert loss.item() == pytest.approx(focal_unit_losses(output, 2.0).mean().item())


# ---------------------------------------------------------------------------- gradnorm
class ToyRegression(nn.Module):
    """GradNorm's toy problem: tasks ``sigma_k tanh((B + eps_k) x)`` of very different scales
    fitted by a shared tanh network with one linear head per task."""

    def __init__(self, num_tasks, width=32):
        super().__init__()
        self.task_names = tuple(f"t{k}" for k in range(num_tasks))
        self.shared = nn.Sequential(
            nn.Linear(10, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh()
        )
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_tasks))

    def shared_parameters(self):
        return self.shared.parameters()

    def last_shared_layer(self):
        return [self.shared[2].weight]

    def output(self, k, x, y):
        prediction = self.heads[k](self.shared(x)).squeeze(-1)
        return TaskOutput(prediction[:, None], y, unit_losses=(prediction - y) ** 2)


def _toy_gradient_norms(model, outputs, weights):
    (shared,) = model.last_shared_layer()
    return np.array(
        [
            w * torch.autograd.grad(o.loss(), shared, retain_graph=True)[0].norm().item()
            for o, w in zip(outputs, weights, strict=True)
        ]
    )


def test_gradnorm_balances_gradient_norms_of_tasks_with_very_different_scales():
    scales = torch.tensor([1.0, 4.0, 16.0])
    torch.manual_seed(0)
    basis = torch.randn(10, 1)
    targets = [basis + 0.3 * torch.randn(10, 1) for _ in scales]
    model = ToyRegression(len(scales), width=16)
    gradnorm = make_scheduler("gradnorm", alpha=0.12)
    gradnorm.reset(_fake_tasks(len(scales)), 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(100):
        x = torch.randn(32, 10)
        ys = [s * torch.tanh(x @ t).squeeze(-1) for s, t in zip(scales, targets, strict=True)]
        plan = gradnorm.plan(_state(3, step))
        outputs = [model.output(k, x, y) for k, y in enumerate(ys)]
        losses = torch.stack([o.loss() for o in outputs])
        loss = gradnorm.combine(losses, _context(plan, outputs, model, step))
        assert loss.item() == pytest.approx((torch.tensor(plan.weights) * losses).sum().item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert sum(gradnorm.plan(_state(3)).weights) == pytest.approx(3.0)
    weights = np.asarray(gradnorm.plan(_state(3)).weights)
    assert weights[0] > weights[1] > weights[2] > 0  # the largest-scale task weighs least
    x = torch.randn(512, 10)
    ys = [s * torch.tanh(x @ t).squeeze(-1) for s, t in zip(scales, targets, strict=True)]
    outputs = [model.output(k, x, y) for k, y in enumerate(ys)]
    balanced = _toy_gradient_norms(model, outputs, weights)
    unweighted = _toy_gradient_norms(model, outputs, np.ones(3))
    assert unweighted.max() / unweighted.min() > 10
    assert balanced.max() / balanced.min() < 2


# ------------------------------------------------------------------------- uncertainty
@pytest.mark.parametrize("form", ["classification", "regression"])
def test_uncertainty_drives_exp_s_toward_each_fixed_task_loss(form):
    losses = torch.tensor([0.3, 1.0, 4.0])
    scheduler = make_scheduler("uncertainty", form=form)
    scheduler.reset(_fake_tasks(3), 0)
    (log_variances,) = scheduler.parameters()
    assert log_variances.tolist() == [0.0, 0.0, 0.0]
    optimizer = torch.optim.Adam(scheduler.parameters(), lr=0.05)
    plan = Step.weighted([1.0] * 3)
    for _ in range(600):
        loss = scheduler.combine(losses, _context(plan))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.exp(log_variances.detach()) == pytest.approx(losses, rel=0.02)
    assert scheduler.plan(_state(3)).weights == pytest.approx((1 / losses).tolist(), rel=0.02)


def test_uncertainty_loss_value_and_gradient():
    scheduler = make_scheduler("uncertainty", initial_log_variance=0.5)
    scheduler.reset(_fake_tasks(2), 0)
    losses = torch.tensor([2.0, 3.0], requires_grad=True)
    loss = scheduler.combine(losses, _context(Step.weighted([1.0, 1.0])))
    assert loss.item() == pytest.approx(math.exp(-0.5) * 5.0 + 1.0)
    loss.backward()
    assert losses.grad.tolist() == pytest.approx([math.exp(-0.5)] * 2)
    assert scheduler.parameters()[0].grad.tolist() == pytest.approx(
        [1 - math.exp(-0.5) * 2.0, 1 - math.exp(-0.5) * 3.0]
    )


def test_the_trainer_trains_scheduler_parameters_with_its_optimizer(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0, budget=256)
    scheduler = make_scheduler("uncertainty")
    trainer.run(scheduler)
    (log_variances,) = scheduler.parameters()
    assert (log_variances.detach() != 0).all()
    groups = trainer.optimizer.param_groups
    assert len(groups) == 2 and groups[1]["params"] == [log_variances]
    assert groups[1]["weight_decay"] == 0.0
    trainer.attach(make_scheduler("uniform"))  # a scheduler without parameters drops the group
    assert len(trainer.optimizer.param_groups) == 1


# ----------------------------------------------------------------- loss exponentiation
def test_loss_exponentiation_value_and_gradient():
    scheduler = make_scheduler("loss-exponentiation")
    scheduler.reset(_fake_tasks(2), 0)
    losses = torch.tensor([0.5, 2.0], requires_grad=True)
    loss = scheduler.combine(losses, _context(scheduler.plan(_state(2))))
    assert loss.item() == pytest.approx(0.5**1.15 + 2.0**1.15)
    loss.backward()
    assert losses.grad.tolist() == pytest.approx([1.15 * 0.5**0.15, 1.15 * 2.0**0.15])


# ------------------------------------------------------------------------------ focal
def test_focal_loss_values():
    output = _output([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], [0, 0, 2])
    p = torch.softmax(output.logits, dim=-1)[torch.arange(3), output.targets]
    expected = -((1 - p) ** 2) * torch.log(p)
    assert focal_unit_losses(output, 2.0) == pytest.approx(expected.tolist())
    assert focal_unit_losses(output, 0.0) == pytest.approx(output.losses().tolist())
    scheduler = make_scheduler("focal")
    scheduler.reset(_fake_tasks(2), 0)
    other = _output([[0.0, 5.0]], [1])
    loss = scheduler.combine(torch.ones(2), _context(Step.weighted([1, 1]), [output, other]))
    assert loss.item() == pytest.approx(
        expected.mean().item() + focal_unit_losses(other, 2.0).item()
    )


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_focal_loss_gradient_matches_the_derivative(gamma):
    p = torch.tensor([0.05, 0.3, 0.6, 0.95], dtype=torch.float64, requires_grad=True)
    output = TaskOutput(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), -torch.log(p))
    focal_unit_losses(output, gamma).sum().backward()
    q = p.detach()
    derivative = gamma * (1 - q) ** (gamma - 1) * torch.log(q) - (1 - q) ** gamma / q
    assert p.grad.tolist() == pytest.approx(derivative.tolist())


# ------------------------------------------------------------------------- self-paced
def test_self_paced_admits_easy_tasks_first_and_the_rest_as_the_threshold_grows():
    scheduler = make_scheduler("self-paced", initial_threshold=1.5, growth=2.5)
    scheduler.reset(_fake_tasks(3), 0)
    losses = torch.tensor([0.2, 1.0, 3.0])
    plan = Step.weighted([1.0] * 3)
    assert scheduler.combine(losses, _context(plan, step=0)).item() == pytest.approx(1.2)
    assert scheduler.combine(losses, _context(plan, step=1)).item() == pytest.approx(4.2)
    linear = make_scheduler("self-paced", regularizer="linear", initial_threshold=2.0)
    linear.reset(_fake_tasks(3), 0)
    value = linear.combine(losses, _context(plan)).item()
    assert value == pytest.approx(0.9 * 0.2 + 0.5 * 1.0 + 0.0 * 3.0)


def test_self_paced_defaults_to_the_median_first_loss_and_never_wastes_a_step():
    scheduler = make_scheduler("self-paced")
    scheduler.reset(_fake_tasks(3), 0)
    plan = Step.weighted([1.0] * 3)
    losses = torch.tensor([0.2, 1.0, 3.0])
    # lambda_0 = 1.0 (the median): only the task under it is admitted
    assert scheduler.combine(losses, _context(plan)).item() == pytest.approx(0.2)
    assert scheduler.threshold(0) == pytest.approx(1.0)
    # later, every loss above the threshold: the easiest task is trained alone
    harder = torch.tensor([5.0, 4.0, 6.0])
    assert scheduler.combine(harder, _context(plan, step=1)).item() == pytest.approx(4.0)


def test_self_paced_example_level_weights_units():
    scheduler = make_scheduler("self-paced", level="example", initial_threshold=1.0)
    scheduler.reset(_fake_tasks(1), 0)
    units = torch.tensor([0.5, 2.0, 0.25, 3.0])
    output = TaskOutput(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), units)
    loss = scheduler.combine(units.mean().reshape(1), _context(Step.select(0), [output]))
    assert loss.item() == pytest.approx((0.5 + 0.25) / 4)


# ---------------------------------------------------------------------- prior easy/hard
@pytest.mark.parametrize(
    ("name", "expected"),
    [("prior-easy", [0.98, 0.01, 0.01, 0.01]), ("prior-hard", [0.01, 0.98, 0.01, 0.01])],
)
def test_prior_weights_favour_the_easiest_or_hardest_task(name, expected):
    scheduler = make_scheduler(name, references=[0.9, 0.4, 0.7, 0.6])
    scheduler.reset(_fake_tasks(4), 0)
    assert scheduler.plan(_state(4)) == Step.weighted(expected)


def test_reference_schedulers_need_references_and_read_the_benchmark_cache(tiny_benchmark):
    scheduler = make_scheduler("prior-easy")
    with pytest.raises(ValueError, match="needs single-task reference accuracies"):
        scheduler.reset(tiny_benchmark.tasks, 0)
    with pytest.raises(ValueError, match="4 finite non-negative accuracies"):
        make_scheduler("prior-hard", references=[0.5, 0.5]).reset(tiny_benchmark.tasks, 0)
    scheduler.prepare(tiny_benchmark)
    scheduler.reset(tiny_benchmark.tasks, 0)
    references = single_task_references(tiny_benchmark)
    assert scheduler.references.tolist() == references.tolist()
    assert scheduler.plan(_state(4)).weights[int(np.argmax(references))] == 0.98
    # the single-task runs (budget / K examples each) count as the method's cost, cached or not
    budget = tiny_benchmark.trainer_config.budget
    assert scheduler.preparation_examples == 4 * (budget // 4)
    again = make_scheduler("prior-easy")
    again.prepare(tiny_benchmark)
    assert again.preparation_examples == scheduler.preparation_examples
    assert make_scheduler("prior-easy", references=[0.5] * 4).preparation_examples == 0


def test_references_follow_the_run_budget(tiny_benchmark):
    budget = tiny_benchmark.trainer_config.budget
    bigger = tiny_benchmark.with_budget(2 * budget)
    assert bigger.tasks is tiny_benchmark.tasks  # shared, not reloaded
    assert bigger.fingerprint() != tiny_benchmark.fingerprint()
    assert bigger.trainer_config.eval_every == tiny_benchmark.trainer_config.eval_every
    assert tiny_benchmark.with_budget(None) is tiny_benchmark
    scheduler = make_scheduler("prior-easy")
    scheduler.prepare(bigger)
    assert scheduler.preparation_examples == 4 * (2 * budget // 4)
    assert bigger.make_trainer(0).run(scheduler).examples_seen == 2 * budget


def test_runners_prepare_each_scheduler(tiny_benchmark):
    scheduler = prepared_scheduler("prior-hard", {}, tiny_benchmark)
    run = tiny_benchmark.make_trainer(0).run(scheduler)
    assert run.examples_seen == tiny_benchmark.trainer_config.budget
    assert run.preparation_examples == 4 * (tiny_benchmark.trainer_config.budget // 4)


def test_adaptive_implicit_weights_are_k_times_the_adaptive_distribution():
    scheduler = make_scheduler("adaptive-implicit", references=[0.8, 0.8])
    scheduler.reset(_fake_tasks(2), 0)
    state = _state(2)
    assert scheduler.plan(state).weights == (1.0, 1.0)
    state.validation = EvalResult("validation", np.zeros(2), np.array([0.8, 0.4]), ("a", "a"))
    # ratios 1 and 1/2: weights 1 and 2, normalized to sum to K = 2
    assert scheduler.plan(state).weights == pytest.approx((2 / 3, 4 / 3))


# ------------------------------------------------------------------------ hand-crafted
class _ScoredTrainer:
    """Stands in for a Trainer: the validation score is a known function of the weights."""

    def __init__(self, score, splits):
        self.config = SimpleNamespace(budget=100, eval_interval=50)
        self.examples_seen = 0
        self.score, self.splits, self.weights = score, splits, None

    def train_step(self, plan, scheduler=None, max_examples=None):
        self.weights = plan.weights
        self.examples_seen += min(40, max_examples)

    def evaluate(self, split):
        self.splits.append(split)
        return SimpleNamespace(average_score=self.score(self.weights))


def test_coordinate_search_finds_the_best_weights_on_validation_and_counts_its_cost():
    best = (2.0, 0.25, 1.0)
    splits = []

    def score(weights):
        return -sum((w - b) ** 2 for w, b in zip(weights, best, strict=True))

    result = coordinate_search(lambda seed: _ScoredTrainer(score, splits), 3)
    assert result.weights == best
    assert result.validation_score == 0.0
    # all ones, then 4 other candidates per task (a vector already scored is not re-trained)
    assert result.trials == 1 + 3 * 4
    assert result.examples == result.trials * 100
    assert set(splits) == {"validation"}


def test_hand_crafted_searches_once_per_benchmark_and_reports_the_cost(tiny_benchmark, monkeypatch):
    settings = {"candidates": [0.5, 2.0], "search_budget": 128}
    scheduler = make_scheduler("hand-crafted", **settings)
    with pytest.raises(ValueError, match="has no weights"):
        scheduler.reset(tiny_benchmark.tasks, 0)
    evaluated = []
    original = type(tiny_benchmark.make_trainer(0)).evaluate

    def spy(self, split="validation"):
        evaluated.append(split)
        return original(self, split)

    monkeypatch.setattr(type(tiny_benchmark.make_trainer(0)), "evaluate", spy)
    scheduler.prepare(tiny_benchmark)
    assert set(evaluated) == {"validation"}
    result = scheduler.search_result
    assert result.trials == 1 + 4 * 2
    assert scheduler.preparation_examples == result.examples == result.trials * 128
    assert len(scheduler.weights) == 4

    again = HandCraftedScheduler(**settings)
    monkeypatch.setattr(
        "mtl_sched.baselines.hand_crafted.coordinate_search",
        lambda *a, **k: pytest.fail("the cached search should have been reused"),
    )
    again.prepare(tiny_benchmark)
    assert again.weights == scheduler.weights
    assert again.preparation_examples == scheduler.preparation_examples
    monkeypatch.undo()
    run = tiny_benchmark.make_trainer(0, budget=256).run(again)
    assert run.preparation_examples == result.examples
    assert run.examples_seen == 256
    table = summary_table({"hand-crafted": [run]}).splitlines()
    assert table[0].rstrip().endswith("search examples")
    assert table[2].rstrip().endswith(str(result.examples))
    free = dataclasses.replace(run, preparation_examples=0)
    assert "search examples" not in summary_table({"uniform": [free]})


def test_hand_crafted_with_given_weights_costs_nothing(tiny_benchmark):
    scheduler = make_scheduler("hand-crafted", weights=[1, 2, 3, 4])
    scheduler.prepare(tiny_benchmark)
    scheduler.reset(tiny_benchmark.tasks, 0)
    assert scheduler.plan(_state(4)) == Step.weighted([1, 2, 3, 4])
    assert scheduler.preparation_examples == 0
    with pytest.raises(ValueError, match="2 weights for 4 tasks"):
        make_scheduler("hand-crafted", weights=[1, 2]).reset(tiny_benchmark.tasks, 0)

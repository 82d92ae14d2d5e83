"""Gradient-aggregation schedulers: the Jacobian they hand to TorchJD, the gradients the
trainer's step applies, known aggregations, full runs, and the optional ``jd`` extra."""

import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from torch import nn

from mtl_sched.baselines import AGGREGATOR_SCHEDULERS, aggregators
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import CombineContext, Step, TrainState

pytestmark = pytest.mark.skipif(
    any(find_spec(p) is None for p in ("torchjd", "quadprog", "cvxpy")),
    reason='needs the jd extra: pip install "mtl-sched[jd]"',
)

NAMES = [cls.name for cls in AGGREGATOR_SCHEDULERS]


class RecordingAggregator:
    """Wraps an aggregator and keeps each Jacobian it is given and the vector it returns."""

    def __init__(self, aggregator):
        self.aggregator = aggregator
        self.calls = []

    def __call__(self, jacobian):
        update = self.aggregator(jacobian)
        self.calls.append((jacobian.clone(), update.clone()))
        return update


def recording(scheduler):
    """``scheduler`` with every aggregator it builds wrapped in a `RecordingAggregator`;
    returns the list of those recorders."""
    recorders = []
    build = scheduler.build_aggregator

    def build_recording(tasks):
        recorders.append(RecordingAggregator(build(tasks)))
        return recorders[-1]

    scheduler.build_aggregator = build_recording
    return recorders


# ------------------------------------------------ the Jacobian and the trainer's gradients
@pytest.mark.parametrize("name", ["upgrad", "mgda", "pcgrad"])
def test_the_trainers_step_applies_the_aggregation_to_shared_and_own_gradients_to_heads(
    tiny_benchmark, name
):
    trainer = tiny_benchmark.make_trainer(0)
    scheduler = make_scheduler(name)
    scheduler.reset(trainer.tasks, 0)
    recorders = recording(scheduler)
    model = trainer.model
    shared = list(model.shared_parameters())
    by_hand = {}
    combine = scheduler.combine

    def combine_after_differentiating_by_hand(losses, context):
        # each task loss differentiated on its own, before the scheduler sees them
        for position, k in enumerate(context.plan.tasks):
            name_k = scheduler.task_names[k]
            heads = list(model.task_parameters(name_k))
            grads = torch.autograd.grad(losses[position], shared + heads, retain_graph=True)
            row = torch.cat([g.reshape(-1) for g in grads[: len(shared)]])
            by_hand[k] = (row, grads[len(shared) :])
        return combine(losses, context)

    scheduler.combine = combine_after_differentiating_by_hand
    plan = scheduler.plan(trainer.state())
    outcome = trainer.train_step(plan, scheduler)

    assert plan.tasks == (0, 1, 2, 3)
    (recorder,) = recorders
    ((jacobian, update),) = recorder.calls
    assert jacobian.shape == (4, sum(p.numel() for p in shared))
    for k in plan.tasks:
        torch.testing.assert_close(jacobian[k], by_hand[k][0], rtol=0, atol=0)
    # the optimizer step leaves .grad as the backward pass wrote it
    written = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(written, update, rtol=0, atol=0)
    for k in plan.tasks:
        heads = list(model.task_parameters(scheduler.task_names[k]))
        for parameter, expected in zip(heads, by_hand[k][1], strict=True):
            torch.testing.assert_close(parameter.grad, expected, rtol=0, atol=0)
    assert outcome.loss == pytest.approx(sum(outcome.task_losses), rel=1e-6)


# ------------------------------------------------------------------ known aggregations
class LinearTasks(nn.Module):
    """Two tasks whose losses are ``<a_k, w> + <c_k, h_k>`` for one shared ``w`` and one head
    ``h_k`` each: the task gradients are ``a_k`` (shared) and ``c_k`` (own), set by hand."""

    def __init__(self, shared_gradients, head_gradients):
        super().__init__()
        self.task_names = ("first", "second")
        self.shared_gradients = torch.tensor(shared_gradients)
        self.head_gradients = torch.tensor(head_gradients)
        self.w = nn.Parameter(torch.tensor([0.3, -0.2]))
        self.heads = nn.ParameterList([nn.Parameter(torch.zeros(2)) for _ in self.task_names])

    def shared_parameters(self):
        return iter([self.w])

    def task_parameters(self, task):
        return iter([self.heads[self.task_names.index(task)]])

    def losses(self):
        return torch.stack(
            [
                self.shared_gradients[k] @ self.w + self.head_gradients[k] @ self.heads[k]
                for k in range(2)
            ]
        )


class NamedTask:
    def __init__(self, name):
        self.name = name


def aggregate_by_hand_built_model(name, shared_gradients, **kwargs):
    """The shared and head ``.grad`` after one ``combine`` and ``backward`` of scheduler
    ``name`` on `LinearTasks`, and the loss value it reported."""
    model = LinearTasks(shared_gradients, [[1.0, 2.0], [3.0, -4.0]])
    scheduler = make_scheduler(name, **kwargs)
    scheduler.reset([NamedTask(n) for n in model.task_names], seed=0)
    state = TrainState(0, 0, 0, np.zeros(2, dtype=np.int64), np.zeros(2))
    losses = model.losses()
    plan = scheduler.plan(state)
    loss = scheduler.combine(losses, CombineContext(plan, model, (), state))
    loss.backward()
    assert loss.item() == pytest.approx(losses.sum().item())
    torch.testing.assert_close(model.heads[0].grad, torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(model.heads[1].grad, torch.tensor([3.0, -4.0]))
    return model.w.grad


@pytest.mark.parametrize(
    ("name", "gradients", "expected"),
    [
        # orthogonal gradients conflict with neither: UPGrad is their mean
        ("upgrad", [[2.0, 0.0], [0.0, 1.0]], [1.0, 0.5]),
        # min over a in [0, 1] of ||a (2, 0) + (1 - a) (0, 1)||: 4a^2 + (1 - a)^2, a = 1/5
        ("mgda", [[2.0, 0.0], [0.0, 1.0]], [0.4, 0.8]),
        # <a, b> = -1: a' = a + b/2 = (0.5, 0.5), b' = b + a = (0, 1), summed
        ("pcgrad", [[1.0, 0.0], [-1.0, 1.0]], [0.5, 1.5]),
        # UPGrad projects each onto the other's half-space, as PCGrad does, but averages
        ("upgrad", [[1.0, 0.0], [-1.0, 1.0]], [0.25, 0.75]),
        # c = 0 is the mean gradient
        ("cagrad", [[1.0, 0.0], [-1.0, 1.0]], [0.0, 0.5]),
    ],
)
def test_known_aggregations_of_two_task_gradients(name, gradients, expected):
    update = aggregate_by_hand_built_model(
        name, gradients, **({"c": 0.0} if name == "cagrad" else {})
    )
    # UPGrad's quadratic program regularizes the Gramian by reg_eps = 1e-4
    torch.testing.assert_close(update, torch.tensor(expected), rtol=0, atol=1e-3)
    if name == "upgrad":
        assert (torch.tensor(gradients) @ update >= -1e-6).all()  # conflicts with no task


def test_upgrad_preference_vector_weights_the_projected_gradients():
    # orthogonal: the projections are the gradients themselves, weighted by the preference
    update = aggregate_by_hand_built_model(
        "upgrad", [[2.0, 0.0], [0.0, 1.0]], pref_vector=(0.25, 3.0)
    )
    torch.testing.assert_close(update, torch.tensor([0.5, 3.0]), rtol=0, atol=1e-3)


# -------------------------------------------------------------------------- full runs
@pytest.mark.parametrize("name", NAMES)
def test_every_method_spends_the_budget_and_repeats_exactly_with_its_seed(tiny_benchmark, name):
    # 130 = 4 x 32 + 2: the last step draws from two tasks only, a smaller Jacobian
    finals, plans = [], []
    for _ in range(2):
        trainer = tiny_benchmark.make_trainer(3, budget=130)
        initial = [p.detach().clone() for p in trainer.model.shared_parameters()]
        scheduler = make_scheduler(name)
        planned = []
        plan = scheduler.plan

        def plan_and_record(state, plan=plan, planned=planned):
            planned.append(plan(state))
            return planned[-1]

        scheduler.plan = plan_and_record
        result = trainer.run(scheduler)
        assert result.examples_seen == 130
        assert result.examples_per_task.tolist() == [33, 33, 32, 32]
        after = trainer.model.shared_parameters()
        assert any(not torch.equal(a, b) for a, b in zip(initial, after, strict=True))
        finals.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        plans.append(planned)
    assert plans[0] == plans[1] == [Step.weighted([1.0] * 4)] * 2
    for key, value in finals[0].items():
        assert torch.equal(value, finals[1][key]), key


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("upgrad", {"pref_vector": (1.0, -1.0)}, "pref_vector"),
        ("upgrad", {"reg_eps": -1.0}, "reg_eps"),
        ("dualproj", {"norm_eps": float("nan")}, "norm_eps"),
        ("graddrop", {"leak": (0.5, 1.5)}, "leak"),
        ("cagrad", {"c": -0.1}, "c must"),
        ("nash-mtl", {"update_weights_every": 0}, "update_weights_every"),
        ("nash-mtl", {"max_norm": -1.0}, "max_norm"),
        ("mgda", {"max_iters": 0}, "max_iters"),
        ("aligned-mtl", {"scale_mode": "max"}, "scale_mode"),
    ],
)
def test_bad_hyperparameters_raise_value_errors_naming_them(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_scheduler(name, **kwargs)


def test_a_per_task_vector_must_match_the_runs_tasks(tiny_benchmark):
    scheduler = make_scheduler("aligned-mtl", pref_vector=(1.0, 1.0))
    with pytest.raises(ValueError, match="pref_vector has 2 values but the run has 4 tasks"):
        scheduler.reset(tiny_benchmark.tasks, 0)


# --------------------------------------------------------------------- the jd extra
def test_without_torchjd_construction_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchjd", None)
    monkeypatch.setitem(sys.modules, "torchjd.aggregation", None)
    for name in NAMES:
        with pytest.raises(ImportError, match=r'pip install "mtl-sched\[jd\]"'):
            make_scheduler(name)


def test_a_missing_solver_names_itself_and_the_extra(monkeypatch):
    real = aggregators.find_spec
    monkeypatch.setattr(aggregators, "find_spec", lambda n: None if n == "cvxpy" else real(n))
    for name in ("cagrad", "nash-mtl"):
        with pytest.raises(ImportError, match=r'needs cvxpy.*pip install "mtl-sched\[jd\]"'):
            make_scheduler(name)
    make_scheduler("mgda")  # needs no solver


def test_the_registry_lists_them_without_torchjd():
    script = (
        "import sys; sys.modules['torchjd'] = None\n"
        "from mtl_sched.baselines import AGGREGATOR_SCHEDULERS\n"
        "print(' '.join(c.info().name for c in AGGREGATOR_SCHEDULERS))\n"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == NAMES

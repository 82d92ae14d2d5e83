"""The ``phased`` scheduler: stages over the budget, each with its own task distribution."""

import numpy as np
import pytest

from mtl_sched.registry import coerce_hyperparameters, make_scheduler
from mtl_sched.scheduling import TrainState

STAGES = [{"hard": 1.0}, {"easy": 1.0, "medium": 3.0}]


def _state(examples_seen, budget=1000, num_tasks=4):
    return TrainState(
        step=0,
        examples_seen=examples_seen,
        budget=budget,
        examples_per_task=np.zeros(num_tasks, dtype=np.int64),
        train_losses=np.zeros(num_tasks),
    )


def test_each_stage_samples_from_its_own_weights(tiny_benchmark):
    phased = make_scheduler("phased", stages=STAGES, fractions=[0.3, 0.7])
    phased.reset(tiny_benchmark.tasks, 0)  # tasks: easy, medium, hard, noise
    assert phased.probabilities(_state(0)).tolist() == [0, 0, 1, 0]
    assert phased.probabilities(_state(299)).tolist() == [0, 0, 1, 0]
    assert phased.probabilities(_state(300)).tolist() == [0.25, 0.75, 0, 0]
    assert phased.probabilities(_state(999)).tolist() == [0.25, 0.75, 0, 0]
    assert phased.stage_index(_state(1000)) == 1  # past the budget: the last stage


def test_a_run_trains_only_the_stage_tasks(tiny_benchmark):
    phased = make_scheduler("phased", stages=STAGES, fractions=[0.5, 0.5])
    result = tiny_benchmark.make_trainer(0, budget=640).run(phased)
    first, second = result.schedule[:10], result.schedule[10:]
    assert first[:, 2].sum() == 320 and first.sum() == 320
    assert second[:, [2, 3]].sum() == 0 and second.sum() == 320
    assert second[:, 1].sum() > second[:, 0].sum()  # medium weighs three times easy


def test_default_is_one_stage_proportional_to_training_set_sizes(tiny_benchmark):
    phased = make_scheduler("phased")
    phased.reset(tiny_benchmark.tasks, 0)
    assert phased.fractions == (1.0,)
    np.testing.assert_allclose(phased.probabilities(_state(0)), [0.25] * 4)


def test_equal_fractions_by_default():
    assert make_scheduler("phased", stages=STAGES * 2).fractions == (0.25,) * 4


def test_hyperparameters_coerce_from_the_command_line():
    raw = {"stages": [{"hard": 1}, {"easy": 2}], "fractions": [0.5, 0.5]}
    coerced = coerce_hyperparameters("phased", raw)
    assert coerced["fractions"] == (0.5, 0.5)
    make_scheduler("phased", **coerced)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stages": []}, "non-empty list"),
        ({"stages": {"hard": 1.0}}, "non-empty list"),
        ({"stages": [{}]}, "stage 0 must be a non-empty mapping"),
        ({"stages": [{"hard": -1.0}]}, "stage 0 weight of 'hard' must be finite"),
        ({"stages": [{"hard": float("nan")}]}, "must be finite"),
        ({"stages": [{"hard": "x"}]}, "must be a number"),
        ({"stages": [{"hard": 0.0}]}, "stage 0 needs a positive weight"),
        ({"stages": STAGES, "fractions": [1.0]}, "1 fractions for 2 stage"),
        ({"stages": STAGES, "fractions": [0.0, 1.0]}, "positive and finite"),
        ({"stages": STAGES, "fractions": [0.5, 0.6]}, "must sum to 1"),
    ],
)
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_scheduler("phased", **kwargs)


def test_unknown_task_names_are_refused_at_reset(tiny_benchmark):
    phased = make_scheduler("phased", stages=[{"hard": 1.0}, {"bogus": 1.0}])
    with pytest.raises(ValueError, match=r"stage 1 names unknown task\(s\) \['bogus'\]"):
        phased.reset(tiny_benchmark.tasks, 0)


def test_a_run_without_budget_is_refused(tiny_benchmark):
    phased = make_scheduler("phased", stages=STAGES)
    phased.reset(tiny_benchmark.tasks, 0)
    with pytest.raises(ValueError, match="no example budget"):
        phased.plan(_state(0, budget=0))

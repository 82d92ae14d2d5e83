import dataclasses
import math

import datasets
import numpy as np
import pytest
import torch

from mtl_sched.benchmarks.synthetic import INPUT_DIM
from mtl_sched.models.shared_mlp import SharedMLP
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import NonFiniteLossError, Step
from mtl_sched.training import TaskSampler, Trainer, TrainerConfig, materialize

BATCH = 32  # the tiny benchmark's batch size


def _history_points(result):
    return [seen for seen, _ in result.validation_history]


# ------------------------------------------------------------------------- budget accounting
@pytest.mark.parametrize(
    ("name", "steps", "last_row"),
    [
        # 20 full minibatches of 32 (640 examples), then the 10 left (step 20 -> task 0)
        ("round-robin", math.ceil(650 / BATCH), [10, 0, 0, 0]),
        # 5 steps of 4 x 32 (640 examples), then the 10 left spread as 3, 3, 2, 2
        ("uniform", math.ceil(650 / (4 * BATCH)), [3, 3, 2, 2]),
    ],
)
def test_run_spends_exactly_a_budget_not_divisible_by_the_batch(
    tiny_benchmark, name, steps, last_row
):
    result = tiny_benchmark.make_trainer(0, budget=650).run(make_scheduler(name))
    assert result.examples_seen == 650
    assert int(result.schedule.sum()) == 650
    assert result.steps == steps == result.schedule.shape[0]
    assert result.schedule.shape[1] == 4
    assert result.schedule[-1].tolist() == last_row
    assert (result.schedule[:-1].max(axis=1) == BATCH).all()
    assert result.examples_per_task.tolist() == result.schedule.sum(axis=0).tolist()
    assert result.task_share.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------- eval cadence
@pytest.mark.parametrize(
    ("name", "budget", "expected"),
    [
        # selection steps of 32: 200 is first crossed at 7 * 32 = 224, 400 at 416, 600 at 608;
        # the budget 650 is not a multiple of 200, so a final evaluation follows at 650
        ("round-robin", 650, [224, 416, 608, 650]),
        # 640: the last step reaches the budget, which is not a multiple of 200 either
        ("round-robin", 640, [224, 416, 608, 640]),
        # 600 is a multiple: the step reaching it is both the crossing and the end (no extra)
        ("round-robin", 600, [224, 416, 600]),
        # weighting steps of 128: 256 crosses 200, 512 crosses 400, 640 crosses 600, then 650
        ("uniform", 650, [256, 512, 640, 650]),
        ("uniform", 640, [256, 512, 640]),
    ],
)
def test_validation_runs_after_each_crossed_multiple_and_at_the_end(
    tiny_benchmark, name, budget, expected
):
    trainer = tiny_benchmark.make_trainer(0, budget=budget, eval_every=200)
    result = trainer.run(make_scheduler(name))
    assert _history_points(result) == expected
    assert all(r.split == "validation" for _, r in result.validation_history)


def test_default_eval_interval_is_a_tenth_of_the_budget():
    assert TrainerConfig(budget=1000).eval_interval == 100
    assert TrainerConfig(budget=5).eval_interval == 1
    assert TrainerConfig(budget=1000, eval_every=64).eval_interval == 64


# ------------------------------------------------------------------------- model selection
def test_model_is_selected_on_validation_and_test_is_touched_once_at_the_end(
    tiny_benchmark, monkeypatch
):
    calls = []
    original = Trainer.evaluate

    def recording(self, split="validation"):
        calls.append(split)
        return original(self, split)

    monkeypatch.setattr(Trainer, "evaluate", recording)
    trainer = tiny_benchmark.make_trainer(1)
    result = trainer.run(make_scheduler("round-robin"))

    assert calls.count("test") == 1 and calls[-1] == "test"
    assert len(calls) == len(result.validation_history) + 1
    assert result.test.split == "test"
    averages = [r.average_score for _, r in result.validation_history]
    assert result.best_validation.average_score == max(averages)
    first_best = averages.index(max(averages))
    assert result.best_examples_seen == result.validation_history[first_best][0]

    again = trainer.evaluate("validation")  # the restored best model
    assert np.array_equal(again.scores, result.best_validation.scores)
    np.testing.assert_allclose(again.losses, result.best_validation.losses, rtol=1e-6)


def test_best_model_is_restored_even_when_it_is_not_the_last(tiny_benchmark, monkeypatch):
    """Fake every validation score but the second as 0: that evaluation must be selected and
    its model restored (its losses differ from the final model's)."""
    real = []
    original = Trainer.evaluate

    def second_is_best(self, split="validation"):
        result = original(self, split)
        if split != "validation":
            return result
        real.append(result)
        if len(real) == 2:
            return result
        return dataclasses.replace(result, scores=np.zeros_like(result.scores))

    monkeypatch.setattr(Trainer, "evaluate", second_is_best)
    trainer = tiny_benchmark.make_trainer(0)
    result = trainer.run(make_scheduler("uniform"))
    monkeypatch.undo()

    assert len(real) == len(result.validation_history) >= 3
    assert result.best_examples_seen == result.validation_history[1][0]
    assert result.best_validation is real[1]
    restored = trainer.evaluate("validation")
    assert np.array_equal(restored.scores, real[1].scores)
    np.testing.assert_allclose(restored.losses, real[1].losses, rtol=1e-6)
    assert not np.allclose(restored.losses, real[-1].losses, rtol=1e-6)


# ------------------------------------------------------------------------------ train_step
def test_max_examples_shrinks_the_minibatches(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0)
    outcome = trainer.train_step(Step.weighted([1, 1, 1, 1]), max_examples=10)
    assert outcome.batch_sizes == (3, 3, 2, 2)
    assert outcome.plan.tasks == (0, 1, 2, 3)
    assert trainer.examples_seen == outcome.examples_seen == 10
    assert trainer.examples_per_task.tolist() == [3, 3, 2, 2]
    assert trainer.step_count == 1

    # fewer examples than tasks: the tasks left with none are dropped from the plan
    outcome = trainer.train_step(Step.weighted([1, 2, 3, 4]), max_examples=2)
    assert outcome.plan.tasks == (0, 1) and outcome.plan.weights == (1.0, 2.0)
    assert outcome.batch_sizes == (1, 1)

    outcome = trainer.train_step(Step.select(2), max_examples=5)
    assert outcome.batch_sizes == (5,)
    outcome = trainer.train_step(Step.select(3), max_examples=1000)
    assert outcome.batch_sizes == (BATCH,)
    assert trainer.examples_seen == 10 + 2 + 5 + BATCH


def test_max_examples_zero_raises_and_leaves_the_trainer_untouched(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0)
    for plan in (Step.select(0), Step.weighted([1, 1, 1, 1])):
        with pytest.raises(ValueError, match="max_examples=0"):
            trainer.train_step(plan, max_examples=0)
    assert trainer.examples_seen == 0 and trainer.step_count == 0
    assert np.isnan(trainer.train_losses).all()


def test_train_step_records_losses_and_counts(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0)
    outcome = trainer.train_step(Step.select(1))
    assert outcome.step == 0 and outcome.batch_sizes == (BATCH,)
    assert trainer.train_losses[1] == pytest.approx(outcome.task_losses[0])
    assert np.isnan(trainer.train_losses[[0, 2, 3]]).all()
    assert outcome.loss == pytest.approx(outcome.task_losses[0])
    state = trainer.state()
    assert state.step == 1 and state.examples_seen == BATCH
    assert state.examples_per_task.tolist() == [0, BATCH, 0, 0]


def test_weighted_loss_is_the_weighted_sum_of_task_losses(tiny_benchmark):
    outcome = tiny_benchmark.make_trainer(0).train_step(Step.weighted([0.5, 2.0, 0.0, 1.0]))
    weights = (0.5, 2.0, 0.0, 1.0)
    expected = sum(w * x for w, x in zip(weights, outcome.task_losses, strict=True))
    assert outcome.loss == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------- Step validation
@pytest.mark.parametrize(
    ("tasks", "weights", "match"),
    [
        ((0,), (-1.0,), "non-negative"),
        ((0,), (float("nan"),), "finite"),
        ((0,), (float("inf"),), "finite"),
        ((0, 0), (1.0, 1.0), "twice"),
        ((), (), "at least one"),
        ((0, 1), (1.0,), "2 tasks but 1 weights"),
        ((-1,), (1.0,), "non-negative"),
    ],
)
def test_invalid_steps_are_rejected(tasks, weights, match):
    with pytest.raises(ValueError, match=match):
        Step(tasks, weights)


def test_step_constructors_and_validate():
    assert Step.select(2) == Step((2,), (1.0,))
    assert Step.weighted([1, 0.5]) == Step((0, 1), (1.0, 0.5))
    with pytest.raises(ValueError):
        Step.weighted([])
    with pytest.raises(ValueError):
        Step.weighted([1.0, float("nan")])
    Step.select(3).validate(4)
    with pytest.raises(ValueError, match=r"\[4\].*only 4 tasks"):
        Step.select(4).validate(4)
    with pytest.raises(ValueError, match="only 4 tasks"):
        Step.weighted([1] * 5).validate(4)


def test_train_step_rejects_an_out_of_range_task(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0)
    with pytest.raises(ValueError, match="only 4 tasks"):
        trainer.train_step(Step.select(4))
    assert trainer.examples_seen == 0


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_run_different_seed_different_schedule(tiny_benchmark):
    def run(seed):
        return tiny_benchmark.make_trainer(seed, budget=320).run(make_scheduler("random"))

    first, second, other = run(5), run(5), run(6)
    assert np.array_equal(first.schedule, second.schedule)
    assert np.array_equal(first.test.scores, second.test.scores)
    assert np.array_equal(first.test.losses, second.test.losses)
    assert _history_points(first) == _history_points(second)
    assert first.seed == 5 and other.seed == 6
    assert not np.array_equal(first.schedule, other.schedule)


# ---------------------------------------------------------------------------- TrainerConfig
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("budget", 0),
        ("budget", -5),
        ("batch_size", 0),
        ("eval_every", 0),
        ("optimizer", "rmsprop"),
    ],
)
def test_trainer_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"TrainerConfig\.{field}.*{value}"):
        TrainerConfig(**{field: value})


def test_trainer_rejects_a_model_for_other_tasks(tiny_benchmark):
    model = tiny_benchmark.make_model(0)
    with pytest.raises(ValueError, match="do not match"):
        Trainer(model, tiny_benchmark.tasks[::-1], tiny_benchmark.trainer_config)


def _dropout_trainer(benchmark, seed):
    torch.manual_seed(0)
    model = SharedMLP(INPUT_DIM, {t.name: t.num_classes for t in benchmark.tasks}, (16,), 0.5)
    return Trainer(model, benchmark.tasks, benchmark.trainer_config, seed=seed)


def test_dropout_masks_follow_the_run_seed_and_leave_the_global_generator_alone(tiny_benchmark):
    runs = []
    for consumed in (0, 7):
        trainer = _dropout_trainer(tiny_benchmark, seed=3)
        losses = []
        for step in range(4):
            torch.rand(consumed + step)  # other draws in the process must not matter
            before = torch.get_rng_state()
            losses.append(trainer.train_step(Step.select(0)).loss)
            assert torch.equal(torch.get_rng_state(), before)
        runs.append(losses)
    assert runs[0] == runs[1]


def test_materialize_stacks_vectors_keeps_ragged_rows_and_respects_selections():
    dataset = datasets.Dataset.from_dict(
        {
            "x": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            "tokens": [["a"], ["b", "c"], []],
            "label": [0, 1, 2],
        }
    ).select([2, 0])
    columns = materialize(dataset)
    assert columns["x"].shape == (2, 2) and columns["x"].tolist() == [[5.0, 6.0], [1.0, 2.0]]
    assert columns["tokens"].dtype == object and columns["tokens"].tolist() == [[], ["a"]]
    assert columns["label"].tolist() == [2, 0]
    assert all(values.flags.writeable for values in columns.values())


def test_a_sampler_restored_from_its_state_draws_what_the_original_draws():
    sampler = TaskSampler(5, np.random.default_rng([0, 1]))
    first = sampler.take(7)  # one epoch and two of the next
    assert sorted(first[:5].tolist()) == [0, 1, 2, 3, 4]
    stored = sampler.state()
    expected = sampler.take(9)
    restored = TaskSampler(5, np.random.default_rng(123))
    restored.load_state(stored)
    assert restored.take(9).tolist() == expected.tolist()
    assert sampler.take(4).tolist() == restored.take(4).tolist()


def test_a_training_step_error_names_the_first_non_finite_task_else_the_combination():
    error = NonFiniteLossError.of_training_step(
        ["a", "b", "c"], [1.0, math.nan, math.inf, 2.0], step=4, hint="lower it"
    )
    assert (error.task, error.step, error.kind, error.hint) == ("b", 4, "training", "lower it")
    assert math.isnan(error.value)
    combined = NonFiniteLossError.of_training_step(["a", "b"], [1.0, 2.0, math.inf], step=0)
    assert combined.task is None and combined.value == math.inf
    assert "of the combined step loss at step 0" in str(combined)

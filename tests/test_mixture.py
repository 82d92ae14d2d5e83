"""`ScheduledMixture`: per-task datasets interleaved by a scheduler that learns from losses."""

import math

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mtl_sched import make_scheduler
from mtl_sched.integrations import ScheduledMixture


def toy_datasets(sizes=(10, 12, 14)) -> dict[str, datasets.Dataset]:
    return {
        name: datasets.Dataset.from_dict(
            {"x": [[float(i), float(k)] for i in range(n)], "label": [i % 2 for i in range(n)]}
        ).with_format("torch")
        for k, (name, n) in enumerate(zip(("a", "b", "c"), sizes, strict=True))
    }


def run(mixture: ScheduledMixture, loss_of, steps: int) -> list[str]:
    order = []
    for step, (task, _) in enumerate(mixture):
        if step == steps:
            break
        order.append(task)
        mixture.report(task, loss_of(task, step))
    return order


def test_greedy_moves_the_mixture_to_the_task_with_a_constant_high_loss():
    mixture = ScheduledMixture(make_scheduler("greedy"), toy_datasets(), batch_size=4)
    order = run(mixture, lambda task, _: 5.0 if task == "b" else 1.0, steps=10)
    # greedy tries every task once in index order, then always takes the highest latest loss
    assert order == ["a", "b", "c"] + ["b"] * 7
    assert mixture.examples_per_task == {"a": 4, "b": 32, "c": 4}
    assert mixture.shares == {"a": 0.1, "b": 0.8, "c": 0.1}
    assert mixture.step == 10


def test_exp3s_shifts_the_mixture_to_learning_progress_not_to_a_high_loss():
    scheduler = make_scheduler("exp3s", progress="loss-change", eta=0.5)
    mixture = ScheduledMixture(scheduler, toy_datasets(), batch_size=2, seed=3)
    counts = {"a": 0, "b": 0, "c": 0}

    def loss_of(task: str, _: int) -> float:
        counts[task] += 1
        # "b" stays high (no progress, reward 0), "c" falls by 0.01 every time it trains (a
        # positive loss change, rescaled to the top reward once the history holds zeros)
        return {"a": 1.0, "b": 5.0, "c": 10.0 - 0.01 * counts["c"]}[task]

    order = run(mixture, loss_of, steps=300)
    policy = scheduler.policy()
    assert policy[2] > 0.9 and policy[0] < 0.05 and policy[1] < 0.05
    assert order[200:].count("c") >= 70
    assert mixture.shares["c"] > 0.75 and mixture.shares["b"] < 0.15


def test_a_weighting_scheduler_weights_each_batch_by_the_reported_losses():
    data = toy_datasets(sizes=(10, 12, 14))
    del data["c"]
    mixture = ScheduledMixture(
        make_scheduler("dwa", temperature=1.0, window=1), data, batch_size=3, budget=23
    )
    losses = {"a": [1.0, 1.0, 1.0], "b": [1.0, 2.0, 2.0]}
    seen, weights = [], []
    for task, batch in mixture:
        step = mixture.step
        seen.append((step, task, len(batch["label"])))
        weights.append(mixture.loss_weight(task))
        mixture.report(task, torch.tensor(losses[task][step]))
        if step == 2 and task == "b":
            break
    # 3 steps of 3 + 3 leave 5 of the 23: the last step draws 3 + 2
    rest = []
    for task, batch in mixture:
        rest.append((task, len(batch["label"])))
        mixture.report(task, 1.0)
    assert rest == [("a", 3), ("b", 2)]
    assert mixture.done and sum(mixture.examples_per_task.values()) == 23
    # every step yields one batch of each task, in plan order
    assert seen == [(s, t, 3) for s in range(3) for t in ("a", "b")]
    # DWA: weights 1 until two window means exist; then 2 softmax([1/1, 2/1])
    assert weights[:4] == [1.0] * 4
    assert weights[4] == pytest.approx(2 / (1 + math.e))
    assert weights[5] == pytest.approx(2 / (1 + math.exp(-1)))


def test_same_seed_same_sequence_and_batches_different_seed_different():
    def sequence(seed: int) -> list[tuple[str, list[float]]]:
        mixture = ScheduledMixture(make_scheduler("random"), toy_datasets(), seed=seed)
        out = []
        for task, batch in mixture:
            out.append((task, batch["x"][:, 0].tolist()))
            mixture.report(task, 1.0)
            if len(out) == 12:
                return out
        raise AssertionError("unreachable")

    first = sequence(7)
    assert first == sequence(7)
    assert first != sequence(8)
    # each task's examples come epoch by epoch: its first 10 draws of "a" are a permutation
    a_rows = [x for task, batch in first for x in batch if task == "a"]
    assert len(a_rows) == 0 or len(set(a_rows[:10])) == len(a_rows[:10])


def test_a_dataloader_over_the_mixture_with_a_collate_function():
    def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
        return {
            "x": torch.stack([e["x"] for e in examples]),
            "label": torch.stack([e["label"] for e in examples]),
        }

    mixture = ScheduledMixture(
        make_scheduler("round-robin"), toy_datasets(), batch_size=5, collate_fn=collate, budget=23
    )
    loader = DataLoader(mixture.as_iterable_dataset(), batch_size=None, num_workers=0)
    shapes, tasks = [], []
    for batch in loader:
        task = mixture.unreported[0]
        tasks.append(task)
        shapes.append(tuple(batch["x"].shape))
        # the task's index is the second feature of every one of its examples
        assert set(batch["x"][:, 1].tolist()) == {float("abc".index(task))}
        mixture.report(task, 1.0)
    assert tasks == ["a", "b", "c", "a", "b"]
    # the last batch shrinks to what is left of the budget: 23 = 4 * 5 + 3
    assert shapes == [(5, 2)] * 4 + [(3, 2)]
    assert mixture.done and sum(mixture.examples_per_task.values()) == 23


def test_plain_lists_and_the_default_collate():
    data = {"one": [np.float32(i) for i in range(4)], "two": [np.float32(-i) for i in range(3)]}
    mixture = ScheduledMixture(make_scheduler("round-robin"), data, batch_size=3, seed=1)
    got = []
    for task, batch in mixture:
        got.append((task, sorted(torch.as_tensor(batch).tolist())))
        mixture.report(task, 0.5)
        if len(got) == 2:
            break
    assert got[0][0] == "one" and set(got[0][1]) <= {0.0, 1.0, 2.0, 3.0}
    assert got[1] == ("two", [-2.0, -1.0, 0.0])


def test_misuse_is_reported():
    with pytest.raises(ValueError, match=r"needs \['combine', 'parameters'\].*SchedulerDriver"):
        ScheduledMixture(make_scheduler("uncertainty"), toy_datasets())
    with pytest.raises(ValueError, match=r"needs \['batches', 'model'\]"):
        ScheduledMixture(make_scheduler("exp3s"), toy_datasets())
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        ScheduledMixture(make_scheduler("greedy"), toy_datasets(), batch_size=0)
    with pytest.raises(ValueError, match=r"datasets\['e'\] is empty"):
        ScheduledMixture(make_scheduler("greedy"), {"e": []})
    mixture = ScheduledMixture(make_scheduler("greedy"), toy_datasets())
    stream = iter(mixture)
    task, _ = next(stream)
    with pytest.raises(ValueError, match="no unreported batch of task 'b'"):
        mixture.report("b", 1.0)
    with pytest.raises(RuntimeError, match=r"report\(task, loss\) the batches of step 0"):
        next(stream)
    with pytest.raises(ValueError, match="non-finite"):
        mixture.report(task, float("nan"))

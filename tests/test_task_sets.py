"""Task subsets of a benchmark and the environment that draws a task set per episode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.envs.task_sets import TaskSetSamplingEnv, task_subsets
from mtl_sched.observation.task_features import task_mask


@pytest.fixture(scope="module")
def many():
    return get_benchmark("synthetic-many", small=True)


def test_with_tasks_keeps_the_named_tasks_in_order(many):
    names = many.task_names
    subset = many.with_tasks([names[3], names[0]])
    assert subset.task_names == (names[3], names[0])
    assert subset.tasks[0] is many.tasks[3]
    assert subset.fingerprint() != many.fingerprint()
    assert subset.fingerprint() != many.with_tasks([names[0], names[3]]).fingerprint()
    model = subset.make_model(0)
    assert model.task_names == subset.task_names


def test_with_tasks_refuses_bad_subsets(many):
    with pytest.raises(KeyError, match="no task 'nope'"):
        many.with_tasks(["nope"])
    with pytest.raises(ValueError, match="repeats"):
        many.with_tasks([many.task_names[0]] * 2)
    with pytest.raises(ValueError, match="at least one"):
        many.with_tasks([])


def test_task_subsets_lists_every_subset_of_the_sizes(many):
    subsets = task_subsets(many, 3, 8)
    assert len(subsets) == sum(math.comb(8, k) for k in range(3, 9))
    assert len({b.task_names for b in subsets}) == len(subsets)
    order = {name: i for i, name in enumerate(many.task_names)}
    for subset in subsets:
        positions = [order[name] for name in subset.task_names]
        assert positions == sorted(positions)
    with pytest.raises(ValueError, match="min_tasks"):
        task_subsets(many, 4, 9)


def _env(seed_sets=None, **kwargs):
    sets = seed_sets or [
        get_benchmark("synthetic-prerequisite", small=True),
        get_benchmark("synthetic-harmful", small=True),
    ]
    return TaskSetSamplingEnv(sets, episode_steps=5, reference_accuracies=None, **kwargs)


def _rollout(env, seed, steps):
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed)
    trace = [(info["task_set"], observation)]
    for _ in range(steps):
        action = rng.choice(np.flatnonzero(env.action_masks()))
        observation, reward, _, truncated, info = env.step(action)
        trace.append((info["task_set"], observation, reward))
        if truncated:
            observation, info = env.reset()
            trace.append((info["task_set"], observation))
    return trace


def test_padded_observation_and_masks_follow_the_drawn_task_set():
    env = _env()
    assert env.max_tasks == 4
    assert env.observation_space.shape[0] == 4
    seen = set()
    for seed in range(6):
        observation, info = env.reset(seed=seed)
        size = env.envs[info["task_set"]].num_tasks
        seen.add(size)
        assert env.observation_space.contains(observation)
        assert task_mask(observation).sum() == size
        assert env.action_masks().tolist() == [True] * size + [False] * (4 - size)
        if size < 4:
            with pytest.raises(ValueError, match="padded"):
                env.step(3)
    assert seen == {2, 4}


def test_same_seed_same_episodes():
    first = _rollout(_env(), 3, 14)
    second = _rollout(_env(), 3, 14)
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2:] == b[2:]


def test_state_round_trip_continues_exactly():
    env = _env()
    _rollout(env, 5, 7)
    state = env.get_state()
    rng = np.random.default_rng(9)
    actions = [rng.integers(2) for _ in range(8)]

    def play(target):
        out = []
        for action in actions:
            observation, reward, _, truncated, info = target.step(action)
            out.append((info["task_set"], observation, reward))
            if truncated:
                observation, info = target.reset()
                out.append((info["task_set"], observation))
        return out

    expected = play(env)
    fresh = _env()
    fresh.set_state(state)
    for a, b in zip(expected, play(fresh), strict=True):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2:] == b[2:]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="at least one task set"):
        TaskSetSamplingEnv([])
    with pytest.raises(ValueError, match="max_tasks"):
        _env(max_tasks=3)
    with pytest.raises(ValueError, match="weights"):
        _env(weights=[1.0])
    with pytest.raises(ValueError, match="task-features"):
        _env(observation="histogram")


def test_weights_choose_the_task_sets():
    env = _env(weights=[0.0, 1.0])
    for seed in range(4):
        _, info = env.reset(seed=seed)
        assert info["task_set"] == 1

"""Per-task feature observations: the features by hand, padding and mask, the environment with
``observation="task-features"`` and its batched version."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from mtl_sched.envs import BatchedSchedulingVecEnv, MTLSchedulingEnv
from mtl_sched.observation.probing import ProbeResult
from mtl_sched.observation.task_features import (
    TASK_FEATURE_NAMES,
    TaskFeatureTracker,
    pad_task_features,
    task_feature_size,
    task_mask,
)

K, BINS = 4, 20
F = BINS + len(TASK_FEATURE_NAMES)
COLUMN = {name: BINS + i for i, name in enumerate(TASK_FEATURE_NAMES)}


def probe(histograms, losses, accuracies):
    return ProbeResult(
        histograms=np.asarray(histograms, dtype=np.float64),
        losses=np.asarray(losses, dtype=np.float64),
        accuracies=np.asarray(accuracies, dtype=np.float64),
    )


def make_env(benchmark, **kwargs):
    """The feature table without the identity column (tests/test_task_identity.py tests it)."""
    kwargs.setdefault("reference_accuracies", None)
    kwargs.setdefault("observation", "task-features")
    if kwargs["observation"] == "task-features":
        kwargs.setdefault("task_vocabulary", None)
    return MTLSchedulingEnv(benchmark, **kwargs)


# --------------------------------------------------------------------------------- features
def test_features_by_hand():
    assert TASK_FEATURE_NAMES == (
        "relative_loss",
        "accuracy",
        "loss_change",
        "recency",
        "example_share",
        "progress",
        "inverse_task_count",
    )
    assert task_feature_size(4) == 11
    tracker = TaskFeatureTracker(3, 4, recency_decay=0.5)
    hist = [[1, 0, 0, 0], [0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]]
    # task 2 starts at zero loss: the 1e-8 floor keeps its relative loss finite
    first = probe(hist, [2.0, 0.5, 0.0], [0.5, 0.25, 1.0])
    tracker.reset(first)
    features = tracker.features(first, np.array([0, 0, 0]), 0, 100)
    assert features.dtype == np.float32 and features.shape == (3, 11)
    np.testing.assert_array_equal(features[:, :4], hist)
    third = 1.0 / 3.0
    expected = [
        # relative, accuracy, change, recency, share, progress, 1/K
        [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, third],
        [1.0, 0.25, 0.0, 0.0, 0.0, 0.0, third],
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, third],
    ]
    np.testing.assert_allclose(features[:, 4:], expected, rtol=1e-6)

    tracker.record(0)
    second = probe(hist, [1.0, 0.75, 1e-9], [0.6, 0.2, 0.9])
    features = tracker.features(second, np.array([32, 0, 0]), 32, 128)
    expected = [
        [0.5, 0.6, 0.5, 0.5, 1.0, 0.25, third],
        [1.5, 0.2, -0.5, 0.0, 0.0, 0.25, third],
        [0.1, 0.9, -0.1, 0.0, 0.0, 0.25, third],
    ]
    np.testing.assert_allclose(features[:, 4:], expected, rtol=1e-5)

    tracker.record(1)
    third_probe = probe(hist, [0.5, 3.0, 1e-9], [0.7, 0.1, 0.9])
    # no budget: progress 0; the loss of task 1 went up sixfold: both clipped
    features = tracker.features(third_probe, np.array([32, 32, 0]), 64, 0)
    expected = [
        [0.25, 0.7, 0.25, 0.25, 0.5, 0.0, third],
        [4.0, 0.1, -1.0, 0.5, 0.5, 0.0, third],
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, third],
    ]
    np.testing.assert_allclose(features[:, 4:], expected, rtol=1e-5)
    # past the budget progress stays 1; the same losses again: no change
    features = tracker.features(third_probe, np.array([32, 32, 0]), 64, 50)
    assert features[:, 4 + 5].tolist() == [1.0] * 3
    assert features[:, 4 + 2].tolist() == [0.0] * 3


def test_tracker_state_resumes_exactly_and_reset_forgets():
    tracker = TaskFeatureTracker(2, 4, recency_decay=0.8)
    hist = [[1, 0, 0, 0], [0, 0, 0, 1]]
    tracker.reset(probe(hist, [1.0, 2.0], [0.5, 0.5]))
    tracker.record(1)
    tracker.features(probe(hist, [0.8, 1.0], [0.5, 0.5]), np.array([0, 8]), 8, 80)
    state = tracker.get_state()
    copy = TaskFeatureTracker(2, 4, recency_decay=0.8)
    copy.set_state(state)
    state["recency"][:] = 7.0  # the state is a copy, not a view
    for tracked in (tracker, copy):
        tracked.record(0)
    later = probe(hist, [0.6, 1.5], [0.5, 0.5])
    a = tracker.features(later, np.array([8, 8]), 16, 80)
    b = copy.features(later, np.array([8, 8]), 16, 80)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:, 4 + 2], [0.2, -0.25])  # against the stored previous losses
    tracker.reset(later)
    fresh = tracker.features(later, np.array([0, 0]), 0, 80)
    assert fresh[:, 4:8].tolist() == [[1, 0.5, 0, 0], [1, 0.5, 0, 0]]


def test_bad_tracker_input_is_refused():
    for kwargs, name in (
        ({"num_tasks": 0, "bins": 4}, "num_tasks"),
        ({"num_tasks": 2, "bins": 0}, "bins"),
        ({"num_tasks": 2, "bins": 4, "recency_decay": 1.0}, "recency_decay"),
        ({"num_tasks": 2, "bins": 4, "recency_decay": None}, "recency_decay"),
    ):
        with pytest.raises(ValueError, match=name):
            TaskFeatureTracker(**kwargs)
    tracker = TaskFeatureTracker(2, 4)
    good = probe([[1, 0, 0, 0], [0, 0, 0, 1]], [1.0, 1.0], [0.5, 0.5])
    with pytest.raises(RuntimeError, match="reset"):
        tracker.features(good, np.zeros(2), 0, 10)
    with pytest.raises(ValueError, match="probe"):
        tracker.reset(probe([[1, 0, 0], [0, 0, 1]], [1.0, 1.0], [0.5, 0.5]))
    tracker.reset(good)
    with pytest.raises(ValueError, match="examples_per_task"):
        tracker.features(good, np.zeros(3), 0, 10)
    with pytest.raises(ValueError, match="task"):
        tracker.record(2)


def test_padding_and_mask():
    features = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    padded = pad_task_features(features, 4)
    assert padded.dtype == np.float32 and padded.shape == (4, 4)
    np.testing.assert_array_equal(padded[:2, :3], features)
    assert padded[:, 3].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert not padded[2:].any()
    assert task_mask(padded).tolist() == [True, True, False, False]
    batch = np.stack([padded, pad_task_features(features[:1], 4)])
    assert task_mask(batch).tolist() == [[True, True, False, False], [True, False, False, False]]
    assert pad_task_features(features, 2)[:, 3].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="max_tasks"):
        pad_task_features(features, 1)
    with pytest.raises(ValueError, match="features"):
        pad_task_features(features.reshape(-1), 4)
    with pytest.raises(ValueError, match="observation"):
        task_mask(np.ones(4))


# ------------------------------------------------------------------------------ environment
def test_env_features_match_the_histogram_env_and_the_probe(tiny_benchmark):
    flat = make_env(tiny_benchmark, observation="histogram")
    env = make_env(tiny_benchmark, max_tasks=6)
    assert env.observation_space.shape == (6, F + 1)
    assert env.observation_space.low.min() == -1 and env.observation_space.high.max() == 4
    assert env.action_space.n == 6
    assert env.action_masks().tolist() == [True] * K + [False] * 2
    assert flat.action_masks().tolist() == [True] * K
    budget = tiny_benchmark.trainer_config.budget
    flat_obs, _ = flat.reset(seed=3)
    obs, info = env.reset(seed=3)
    initial_losses = info["validation_losses"]
    recency = np.zeros(K)
    for step, action in enumerate([None, 0, 1, 1, 3, 2, 1]):
        if action is not None:
            flat_obs, flat_reward, *_ = flat.step(action)
            previous_losses = info["validation_losses"]
            obs, reward, _, _, info = env.step(action)
            assert reward == flat_reward
            recency *= 0.9
            recency[action] += 0.1
        else:
            previous_losses = initial_losses
        assert env.observation_space.contains(obs), step
        np.testing.assert_array_equal(obs[:K, :BINS], flat_obs.reshape(K, BINS))
        assert not obs[K:].any() and task_mask(obs).tolist() == [True] * K + [False] * 2
        losses = info["validation_losses"]
        np.testing.assert_allclose(
            obs[:K, COLUMN["relative_loss"]], losses / initial_losses, rtol=1e-5
        )
        np.testing.assert_allclose(
            obs[:K, COLUMN["accuracy"]], info["validation_accuracies"], rtol=1e-6
        )
        np.testing.assert_allclose(
            obs[:K, COLUMN["loss_change"]],
            (previous_losses - losses) / initial_losses,
            rtol=1e-4,
            atol=1e-7,
        )
        np.testing.assert_allclose(obs[:K, COLUMN["recency"]], recency, rtol=1e-5, atol=1e-7)
        seen = info["examples_seen"]
        np.testing.assert_allclose(
            obs[:K, COLUMN["example_share"]], env.trainer.examples_per_task / max(seen, 1)
        )
        np.testing.assert_allclose(obs[:K, COLUMN["progress"]], seen / budget)
        np.testing.assert_allclose(obs[:K, COLUMN["inverse_task_count"]], 1 / K)


def test_env_refuses_padded_slots_and_bad_settings(tiny_benchmark):
    env = make_env(tiny_benchmark, max_tasks=6)
    env.reset(seed=0)
    for action in (K, 5):
        with pytest.raises(ValueError, match=f"action {action} is a padded slot"):
            env.step(action)
    with pytest.raises(ValueError, match="not a task index"):
        env.step(6)
    assert env.trainer.examples_seen == 0  # nothing trained on a refused action
    with pytest.raises(ValueError, match="max_tasks"):
        make_env(tiny_benchmark, max_tasks=K - 1)
    with pytest.raises(ValueError, match="max_tasks"):
        make_env(tiny_benchmark, observation="histogram", max_tasks=K)
    with pytest.raises(ValueError, match="observation"):
        make_env(tiny_benchmark, observation="flat")


def _rollout(env, seed, actions):
    observations = [env.reset(seed=seed)[0]]
    observations += [env.step(action)[0] for action in actions]
    return np.stack(observations)


def test_env_same_seed_same_observations_and_default_recency(tiny_benchmark):
    actions = [2, 2, 0, 1, 3]
    a = _rollout(make_env(tiny_benchmark), 5, actions)
    b = _rollout(make_env(tiny_benchmark), 5, actions)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _rollout(make_env(tiny_benchmark), 6, actions))
    # recency_decay picks the decay of the recency column (0.9 by default)
    c = _rollout(make_env(tiny_benchmark, recency_decay=0.5), 5, actions)
    assert c[1, 2, COLUMN["recency"]] == pytest.approx(0.5)
    assert a[1, 2, COLUMN["recency"]] == pytest.approx(0.1)
    np.testing.assert_array_equal(
        np.delete(a, COLUMN["recency"], 2), np.delete(c, COLUMN["recency"], 2)
    )


def test_env_state_resumes_mid_episode_exactly(tiny_benchmark):
    env = make_env(tiny_benchmark, recency_decay=0.7)
    env.reset(seed=1)
    for action in (0, 3, 3):
        env.step(action)
    state = env.get_state()
    resumed = make_env(tiny_benchmark, recency_decay=0.7)
    resumed.set_state(state)
    for action in (1, 3, 0, 2):
        obs, reward, *_ = env.step(action)
        r_obs, r_reward, *_ = resumed.step(action)
        np.testing.assert_array_equal(obs, r_obs)
        assert reward == r_reward
    # the resumed run kept its loss history: a loss change is nonzero, not measured from reset
    assert np.abs(r_obs[:, COLUMN["loss_change"]]).max() > 0


def test_env_passes_the_gymnasium_checker(tiny_benchmark):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(make_env(tiny_benchmark, episode_steps=5), skip_render_check=True)


# ------------------------------------------------------------------------------------ batched
def test_batched_env_follows_single_environments(tiny_benchmark):
    n, seed, max_tasks = 3, 11, 6
    kwargs = {
        "reference_accuracies": None,
        "reward": "loss-decrease",
        "observation": "task-features",
        "max_tasks": max_tasks,
        "episode_steps": 6,
    }
    venv = BatchedSchedulingVecEnv(tiny_benchmark, n, **kwargs)
    singles = [MTLSchedulingEnv(tiny_benchmark, **kwargs) for _ in range(n)]
    assert venv.observation_space == singles[0].observation_space
    assert venv.action_space.n == max_tasks
    pool = venv.probe_config.pool_size or 35
    # accuracies may differ by one probe unit; losses and counters only by rounding
    tolerance = np.full(F, 1e-4)
    tolerance[COLUMN["accuracy"] - BINS] = 1.0 / pool + 1e-6

    def assert_close(obs, single_obs):
        # the default rows: features, each task's identity, the mask
        assert obs.shape == (max_tasks, F + 2)
        assert np.abs(obs[:, :BINS] - single_obs[:, :BINS]).sum(axis=1).max() <= 2 / pool + 1e-5
        assert (np.abs(obs[:, BINS:F] - single_obs[:, BINS:F]) <= tolerance[BINS:]).all()
        np.testing.assert_array_equal(obs[:, F:], single_obs[:, F:])

    venv.seed(seed)
    obs = venv.reset()
    for i, env in enumerate(singles):
        assert_close(obs[i], env.reset(seed=seed + i)[0])
    assert np.stack(venv.env_method("action_masks")).tolist() == [[True] * K + [False] * 2] * n
    rng = np.random.default_rng(0)
    for _ in range(venv.episode_steps + 2):  # past an auto-reset
        actions = rng.integers(0, K, size=n)
        obs, _, dones, infos = venv.step(actions)
        for i, env in enumerate(singles):
            s_obs, _, _, truncated, _ = env.step(int(actions[i]))
            assert dones[i] == truncated
            if truncated:
                assert_close(infos[i]["terminal_observation"], s_obs)
                s_obs, _ = env.reset()
            assert_close(obs[i], s_obs)
            assert venv.observation_space.contains(obs[i])
    with pytest.raises(ValueError, match="padded slots"):
        venv.step(np.array([0, K, 1]))

"""The task-shared Q-network policy: size independence, equivariance, masking, a known optimum."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import DummyVecEnv

from mtl_sched.agents import BoltzmannGumbelDQN, boltzmann_gumbel_choice, q_spread
from mtl_sched.agents.task_shared import (
    TaskSharedDQNPolicy,
    TaskSharedQNetwork,
    task_mask,
)

N_FEATURES = 2  # the task's score x_k and a distractor


def task_table(scores: np.ndarray, n_slots: int, rng: np.random.Generator) -> np.ndarray:
    """A padded task table: one row per real task (score, distractor, mask 1), zeros after."""
    table = np.zeros((n_slots, N_FEATURES + 1), dtype=np.float32)
    k = len(scores)
    table[:k, 0] = scores
    table[:k, 1] = rng.uniform(-1.0, 1.0, size=k)
    table[:k, -1] = 1.0
    return table


class PickLargestEnv(gym.Env):
    """One-step episodes: ``K`` tasks (``K`` uniform in ``[min_tasks, max_tasks]``) padded to
    ``n_slots``; reward 1 for choosing the task of largest score among the real tasks. Choosing
    a padded slot raises, so any run that completes never chose one."""

    def __init__(self, n_slots: int = 6, min_tasks: int = 2, max_tasks: int = 5) -> None:
        self.n_slots, self.min_tasks, self.max_tasks = n_slots, min_tasks, max_tasks
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(n_slots, N_FEATURES + 1), dtype=np.float32
        )
        self.action_space = spaces.Discrete(n_slots)
        self.table = np.zeros(self.observation_space.shape, dtype=np.float32)
        self.n_tasks = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.n_tasks = int(self.np_random.integers(self.min_tasks, self.max_tasks + 1))
        scores = self.np_random.uniform(0.0, 1.0, size=self.n_tasks)
        self.table = task_table(scores, self.n_slots, self.np_random)
        return self.table.copy(), {}

    def step(self, action):
        action = int(action)
        if action >= self.n_tasks:
            raise AssertionError(f"padded slot {action} chosen with {self.n_tasks} tasks")
        reward = float(action == int(np.argmax(self.table[: self.n_tasks, 0])))
        # the finished run has no task left: an all-padding terminal observation, whose
        # Q-values must stay finite in the TD target
        return np.zeros_like(self.table), reward, True, False, {}


def make_agent(env=None, seed: int = 0, **kwargs) -> BoltzmannGumbelDQN:
    options = {
        "gamma": 0.0,
        "learning_rate": 2e-3,
        "learning_starts": 200,
        "buffer_size": 5000,
        "batch_size": 64,
        "train_freq": 2,
        "target_update_interval": 100,
        "policy_kwargs": {"net_arch": [32, 32]},
        "seed": seed,
        "device": "cpu",
    }
    options.update(kwargs)
    return BoltzmannGumbelDQN("TaskSharedPolicy", env or PickLargestEnv(), **options)


def q_of(agent: BoltzmannGumbelDQN, tables: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return agent.q_net(torch.as_tensor(tables)).numpy()


def fresh_tables(n: int, n_slots: int, n_tasks: int | None, seed: int):
    """``n`` task tables (``n_tasks`` real, or 2..n_slots at random) and their best slots."""
    rng = np.random.default_rng(seed)
    tables, best = [], []
    for _ in range(n):
        k = n_tasks or int(rng.integers(2, n_slots + 1))
        scores = rng.uniform(0.0, 1.0, size=k)
        tables.append(task_table(scores, n_slots, rng))
        best.append(int(np.argmax(scores)))
    return np.stack(tables), np.array(best)


@pytest.fixture(scope="module")
def trained_agent() -> BoltzmannGumbelDQN:
    agent = make_agent()
    agent.learn(2000)
    return agent


def test_parameter_count_does_not_depend_on_the_number_of_slots():
    counts = [
        sum(
            p.numel() for p in make_agent(PickLargestEnv(n_slots=m, max_tasks=m)).q_net.parameters()
        )
        for m in (3, 8)
    ]
    assert counts[0] == counts[1]
    # encoder 2->32->32, head 96->32->1
    assert counts[0] == (2 * 32 + 32) + (32 * 32 + 32) + (96 * 32 + 32) + (32 + 1)


def test_q_values_are_permutation_equivariant():
    agent = make_agent()
    rng = np.random.default_rng(3)
    table = task_table(rng.uniform(size=4), 6, rng)
    perm = rng.permutation(6)  # moves padded rows too: the Q-values follow the rows
    q = q_of(agent, table[None])[0]
    q_permuted = q_of(agent, table[perm][None])[0]
    np.testing.assert_allclose(q_permuted, q[perm], rtol=1e-5, atol=1e-6)
    assert np.isinf(q[4:]).all()
    # a context that ignored the other tasks would not change when one of them changes
    other = table.copy()
    other[1, 0] += 5.0
    assert not np.isclose(q_of(agent, other[None])[0][0], q[0])


def test_padded_slots_get_minus_infinity_and_an_empty_table_gets_zeros():
    agent = make_agent()
    tables, _ = fresh_tables(20, 6, None, seed=1)
    q = q_of(agent, tables)
    real = tables[..., -1] > 0.5
    assert np.isfinite(q[real]).all()
    assert (q[~real] == -np.inf).all()
    empty = np.zeros((1, 6, N_FEATURES + 1), dtype=np.float32)
    np.testing.assert_array_equal(q_of(agent, empty), np.zeros((1, 6)))


def test_forward_accepts_another_number_of_slots():
    agent = make_agent()
    tables, _ = fresh_tables(5, 8, 7, seed=2)
    q = q_of(agent, tables)
    assert q.shape == (5, 8)
    assert np.isfinite(q[:, :7]).all() and (q[:, 7] == -np.inf).all()
    # slots beyond the training M are scored by the same weights: a task moved into slot 6
    # keeps its Q-value
    swapped = tables.copy()
    swapped[:, [0, 6]] = swapped[:, [6, 0]]
    np.testing.assert_allclose(q_of(agent, swapped)[:, 6], q[:, 0], rtol=1e-5, atol=1e-6)


def test_padded_slots_are_never_chosen_during_training_or_by_predict():
    # a hot, count-scaled exploration after a short warm-up, two environments per step
    env = DummyVecEnv([PickLargestEnv, PickLargestEnv])
    agent = make_agent(
        env, learning_starts=100, exploration_c=50.0, temperature_initial=5.0, buffer_size=1000
    )
    agent.learn(600)  # PickLargestEnv raises on a padded slot
    assert agent.action_counts[5] == 0 and agent.action_counts[:5].min() > 0
    tables, _ = fresh_tables(200, 6, None, seed=4)
    n_tasks = tables[..., -1].sum(axis=1)
    for deterministic in (True, False):
        actions, _ = agent.predict(tables, deterministic=deterministic)
        assert (actions < n_tasks).all()


def test_warm_up_is_uniform_among_the_real_tasks():
    agent = make_agent()
    rng = np.random.default_rng(0)
    tables = np.stack([task_table(rng.uniform(size=k), 6, rng) for k in (2, 5)])
    valid = agent.valid_actions(tables, 6)
    draws = np.stack([agent._uniform_valid_actions(valid) for _ in range(5000)])
    np.testing.assert_array_equal(np.bincount(draws[:, 0], minlength=6)[2:], 0)
    assert np.bincount(draws[:, 1], minlength=6)[5] == 0
    shares = [np.bincount(draws[:, i], minlength=6)[:k] / 5000 for i, k in enumerate((2, 5))]
    np.testing.assert_allclose(shares[0], 1 / 2, atol=0.03)
    np.testing.assert_allclose(shares[1], 1 / 5, atol=0.03)


def test_valid_actions_read_the_mask_of_task_tables_only():
    agent = make_agent()
    rng = np.random.default_rng(0)
    tables = np.stack([task_table(rng.uniform(size=k), 6, rng) for k in (3, 6)])
    expected = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(agent.valid_actions(tables, 6), expected)
    # a flat observation has no mask: every action is valid
    np.testing.assert_array_equal(agent.valid_actions(np.zeros((2, 18)), 6), np.ones((2, 6), bool))
    with pytest.raises(ValueError, match="n_actions"):
        agent.valid_actions(tables, 5)
    with pytest.raises(ValueError, match="no real task"):
        task_mask(np.zeros((6, 3)))


def test_masked_exploration_helpers():
    q = np.array([[1.0, 3.0, -np.inf], [2.0, 2.0, 2.0]])
    valid = np.array([[True, True, False], [True, True, True]])
    np.testing.assert_allclose(q_spread(q, valid), [1.0, 1e-6])
    rng = np.random.default_rng(0)
    # the only untried action is padding: it must not win outright
    counts = np.array([4, 4, 0])
    draws = {boltzmann_gumbel_choice(q[0], counts, 10.0, rng, valid[0]) for _ in range(200)}
    assert draws == {0, 1}
    assert boltzmann_gumbel_choice(q[0], counts, 0.0, rng, valid[0]) == 1
    # an untried valid action still wins outright
    assert boltzmann_gumbel_choice(q[0], np.array([0, 4, 0]), 0.0, rng, valid[0]) == 0


def test_bad_spaces_and_extractors_are_rejected():
    with pytest.raises(ValueError, match="observation_space"):
        BoltzmannGumbelDQN(
            "TaskSharedPolicy",
            gym.make("CartPole-v1"),
            device="cpu",
        )
    with pytest.raises(ValueError, match="features_extractor_class"):
        make_agent(policy_kwargs={"features_extractor_class": FlattenExtractor})


def test_learns_to_pick_the_best_task_for_any_number_of_tasks(trained_agent):
    tables, best = fresh_tables(500, 6, None, seed=11)
    actions, _ = trained_agent.predict(tables, deterministic=True)
    accuracy = (actions == best).mean()
    # uniform choice would be right about mean(1/K) ~ 0.3 of the time
    assert accuracy >= 0.9, accuracy
    # the all-padding terminal observations kept the TD targets finite
    assert all(torch.isfinite(p).all() for p in trained_agent.q_net.parameters())
    # seven tasks in eight slots, never seen in training, scored by the same network
    tables, best = fresh_tables(500, 8, 7, seed=12)
    accuracy = (q_of(trained_agent, tables).argmax(axis=1) == best).mean()
    assert accuracy >= 0.9, accuracy


def test_save_load_keeps_the_policy_and_its_q_values(trained_agent, tmp_path):
    trained_agent.save(tmp_path / "agent")
    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent", device="cpu")
    assert isinstance(loaded.policy, TaskSharedDQNPolicy)
    assert isinstance(loaded.q_net, TaskSharedQNetwork)
    tables, _ = fresh_tables(50, 8, None, seed=5)
    np.testing.assert_array_equal(q_of(loaded, tables), q_of(trained_agent, tables))


def test_seeded_training_reproduces_exactly():
    runs = []
    for _ in range(2):
        agent = make_agent(seed=7, learning_starts=100)
        agent.learn(400)
        runs.append((agent.action_counts.copy(), agent.q_net.state_dict()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for name, tensor in runs[0][1].items():
        assert torch.equal(tensor, runs[1][1][name]), name

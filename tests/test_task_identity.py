"""Task identity for the task-shared network: the identity column of the observation, the learned
embedding that reads it, and agents that tell apart tasks alike in every feature."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from mtl_sched.agents import AgentSettings, BoltzmannGumbelDQN, QLSScheduler, attach_context
from mtl_sched.agents.task_shared import (
    IDENTITY_EMBEDDING_DIM,
    has_identity_column,
    identity_vocabulary_size,
)
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.envs.observation import vocabulary_ids

VOCABULARY = 4  # identities 1..4 known, 0 unknown
GOOD = 3  # the identity whose choice is rewarded


class PickByNameEnv(gym.Env):
    """One-step episodes: 2 to 4 tasks of distinct identities in random slots, every feature
    identical across rows; reward 1 for choosing the task of identity ``GOOD`` (always present).
    Without the identity column the best policy is a guess."""

    def __init__(self, n_slots: int = 4) -> None:
        self.n_slots = n_slots
        low = np.zeros((n_slots, 4), dtype=np.float32)
        high = np.ones((n_slots, 4), dtype=np.float32)
        high[:, 2] = VOCABULARY
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(n_slots)
        self.good_slot = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        k = int(self.np_random.integers(2, self.n_slots + 1))
        others = [i for i in range(1, VOCABULARY + 1) if i != GOOD]
        ids = np.array([GOOD, *self.np_random.choice(others, size=k - 1, replace=False)])
        ids = ids[self.np_random.permutation(k)]
        self.good_slot = int(np.flatnonzero(ids == GOOD)[0])
        table = np.zeros(self.observation_space.shape, dtype=np.float32)
        table[:k, :2] = self.np_random.uniform(size=2)  # the same features in every row
        table[:k, 2] = ids
        table[:k, 3] = 1.0
        self.table = table
        return table.copy(), {}

    def step(self, action):
        reward = float(int(action) == self.good_slot)
        return np.zeros_like(self.table), reward, True, False, {}


def make_agent(task_identity: bool | None, seed: int = 0, env=None) -> BoltzmannGumbelDQN:
    return BoltzmannGumbelDQN(
        "TaskSharedPolicy",
        env or PickByNameEnv(),
        gamma=0.0,
        learning_rate=2e-3,
        learning_starts=200,
        buffer_size=5000,
        batch_size=64,
        train_freq=2,
        target_update_interval=100,
        policy_kwargs={"net_arch": [32, 32], "task_identity": task_identity},
        seed=seed,
        device="cpu",
    )


def q_of(agent, tables: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return agent.q_net(torch.as_tensor(tables, dtype=torch.float32)).numpy()


def greedy_hits(agent, episodes: int = 300) -> float:
    env = PickByNameEnv()
    hits = 0
    for seed in range(10_000, 10_000 + episodes):
        table, _ = env.reset(seed=seed)
        hits += int(q_of(agent, table[None])[0].argmax()) == env.good_slot
    return hits / episodes


def test_vocabulary_ids_by_hand():
    assert vocabulary_ids(["b", "z", "a"], ["a", "b", "c"]) == [2, 0, 1]
    assert vocabulary_ids([], ["a"]) == []


def test_the_identity_column_sits_before_the_mask():
    env = MTLSchedulingEnv(
        "synthetic-prerequisite", task_vocabulary=["x", "composite", "base"], max_tasks=3
    )
    plain = MTLSchedulingEnv("synthetic-prerequisite", max_tasks=3, task_vocabulary=None)
    table, _ = env.reset(seed=4)
    reference, _ = plain.reset(seed=4)
    assert table.shape == (3, reference.shape[1] + 1)
    # base is the vocabulary's third name, composite its second; the padded row is all 0
    np.testing.assert_array_equal(table[:, -2], [3.0, 2.0, 0.0])
    np.testing.assert_array_equal(np.delete(table, -2, axis=1), reference)
    space = env.observation_space
    assert space.contains(table)
    np.testing.assert_array_equal(space.high[:, -2], 3.0)
    np.testing.assert_array_equal(space.low[:, -2], 0.0)
    assert identity_vocabulary_size(space) == 3
    # a task outside the vocabulary is identity 0
    unknown = MTLSchedulingEnv("synthetic-prerequisite", task_vocabulary=["base", "other"])
    np.testing.assert_array_equal(unknown.reset(seed=0)[0][:, -2], [1.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task_vocabulary": []}, "task_vocabulary"),
        ({"task_vocabulary": ["base", "base"]}, "task_vocabulary"),
        ({"task_vocabulary": ["base"], "observation": "histogram"}, "task-features"),
    ],
)
def test_bad_vocabularies_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MTLSchedulingEnv("synthetic-prerequisite", **kwargs)


def test_identity_dropout_hides_whole_episodes_by_seed():
    env = MTLSchedulingEnv("synthetic-harmful", identity_dropout=0.5)
    patterns = []
    for seed in range(12):
        table, _ = env.reset(seed=seed)
        identity = table[:, -2]
        hidden = identity == 0
        # a hidden task is written as outside the vocabulary, a shown one keeps its identity
        np.testing.assert_array_equal(identity[~hidden], np.arange(1, 5)[~hidden])
        for action in (0, 1):
            table, *_ = env.step(action)
            np.testing.assert_array_equal(table[:, -2] == 0, hidden)
        patterns.append(tuple(hidden))
    assert len(set(patterns)) > 3
    again = MTLSchedulingEnv("synthetic-harmful", identity_dropout=0.5)
    assert [tuple(again.reset(seed=s)[0][:, -2] == 0) for s in range(12)] == patterns
    # no dropout draws nothing: the episodes are those of the plain environment
    plain, _ = MTLSchedulingEnv("synthetic-harmful").reset(seed=3)
    none, _ = MTLSchedulingEnv("synthetic-harmful", identity_dropout=0.0).reset(seed=3)
    np.testing.assert_array_equal(plain, none)


def test_identity_dropout_survives_a_state_round_trip():
    env = MTLSchedulingEnv("synthetic-harmful", identity_dropout=0.5)
    seed = next(s for s in range(50) if (env.reset(seed=s)[0][:4, -2] == 0).any())
    state = env.get_state()
    hidden = env.reset(seed=seed)[0][:, -2] == 0
    other = MTLSchedulingEnv("synthetic-harmful", identity_dropout=0.5)
    other.reset(seed=seed + 1)
    other.set_state(state)
    table, *_ = other.step(0)
    np.testing.assert_array_equal(table[:, -2] == 0, hidden)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"identity_dropout": 1.0}, r"\[0, 1\)"),
        ({"identity_dropout": -0.1}, r"\[0, 1\)"),
        ({"identity_dropout": 0.2, "task_vocabulary": None}, "needs a task_vocabulary"),
    ],
)
def test_bad_identity_dropouts_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MTLSchedulingEnv("synthetic-harmful", **kwargs)
    setting = {"task_identity": False} if "task_vocabulary" in kwargs else {}
    with pytest.raises(ValueError, match="identity_dropout"):
        AgentSettings(identity_dropout=kwargs["identity_dropout"], **setting)


def test_a_space_without_identities_is_refused():
    plain = MTLSchedulingEnv("synthetic-prerequisite", task_vocabulary=None)
    with pytest.raises(ValueError, match="task_vocabulary"):
        identity_vocabulary_size(plain.observation_space)
    with pytest.raises(ValueError, match="task_vocabulary"):
        make_agent(True, env=plain)


def test_the_defaults_write_and_read_each_tasks_own_identity():
    env = MTLSchedulingEnv("synthetic-prerequisite")
    assert env.task_vocabulary == ("base", "composite")
    np.testing.assert_array_equal(env.reset(seed=0)[0][:, -2], [1.0, 2.0])
    assert has_identity_column(env.observation_space)
    assert make_agent(None, env=env).q_net.identity_embedding.num_embeddings == 3
    # without the column the default policy reads plain features; the histogram has no rows
    plain = MTLSchedulingEnv("synthetic-prerequisite", task_vocabulary=None)
    assert not has_identity_column(plain.observation_space)
    assert make_agent(None, env=plain).q_net.identity_embedding is None
    histogram = MTLSchedulingEnv("synthetic-prerequisite", observation="histogram")
    assert histogram.task_vocabulary is None
    with pytest.raises(ValueError, match="list of task names"):
        MTLSchedulingEnv("synthetic-prerequisite", task_vocabulary="base")


def test_the_embedding_adds_parameters_independent_of_the_slots():
    plain = make_agent(False)
    counts = [
        sum(p.numel() for p in make_agent(True, env=PickByNameEnv(m)).q_net.parameters())
        for m in (2, 6)
    ]
    assert counts[0] == counts[1]
    # the encoder's first layer reads 8 more inputs; the table has V + 1 rows
    extra = (VOCABULARY + 1) * IDENTITY_EMBEDDING_DIM + IDENTITY_EMBEDDING_DIM * 32
    # without identity the identity column is a feature: one input more than with it
    assert counts[0] == sum(p.numel() for p in plain.q_net.parameters()) + extra - 32


def test_identities_separate_alike_rows_and_follow_them_under_permutation():
    agent = make_agent(True)
    weight = agent.q_net.identity_embedding.weight
    with torch.no_grad():
        weight[1:].normal_()
    table = np.zeros((4, 4), dtype=np.float32)
    table[:3, :2] = 0.5
    table[:3, 2] = [1, 3, 0]
    table[:3, 3] = 1.0
    q = q_of(agent, table[None])[0]
    assert q[0] != q[1]  # same features, other identities
    assert np.isinf(q[3])
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(q_of(agent, table[perm][None])[0], q[perm], rtol=1e-5, atol=1e-6)


class AnonymousEnv(gym.ObservationWrapper):
    """`PickByNameEnv` without its identity column: nothing tells the tasks apart."""

    def __init__(self) -> None:
        super().__init__(PickByNameEnv())
        space = self.env.observation_space
        self.observation_space = spaces.Box(
            np.delete(space.low, 2, axis=1), np.delete(space.high, 2, axis=1), dtype=np.float32
        )

    def observation(self, observation):
        return np.delete(observation, 2, axis=1)


def test_an_agent_learns_which_task_by_its_identity_alone():
    with_identity = make_agent(True)
    with_identity.learn(2500)
    assert greedy_hits(with_identity) >= 0.95
    # the same agent without identities can only guess: about mean(1 / K) = 0.36 right
    anonymous = make_agent(False, env=AnonymousEnv())
    anonymous.learn(1000)
    env = AnonymousEnv()
    hits = [
        int(q_of(anonymous, env.reset(seed=s)[0][None])[0].argmax()) == env.env.good_slot
        for s in range(10_000, 10_300)
    ]
    assert np.mean(hits) < 0.6
    # identity 0 (a task outside the vocabulary) stays the zero vector: training never moves it
    np.testing.assert_array_equal(with_identity.q_net.identity_embedding.weight[0].detach(), 0.0)


def test_save_load_keeps_the_identity_network(tmp_path):
    agent = make_agent(True)
    agent.learn(300)
    agent.save(tmp_path / "agent")
    loaded = BoltzmannGumbelDQN.load(tmp_path / "agent", device="cpu")
    assert loaded.q_net.task_identity and loaded.q_net.identity_embedding is not None
    tables = np.stack([PickByNameEnv().reset(seed=s)[0] for s in range(20)])
    np.testing.assert_array_equal(q_of(loaded, tables), q_of(agent, tables))


def test_settings_build_identity_environments_and_networks():
    harmful = get_benchmark("synthetic-harmful", small=True)
    prerequisite = get_benchmark("synthetic-prerequisite", small=True)
    settings = AgentSettings(task_identity=True)
    vocabulary = settings.env_kwargs([harmful.with_tasks(["noise", "easy"]), harmful])
    assert vocabulary["task_vocabulary"] == ("noise", "easy", "medium", "hard")
    assert AgentSettings(task_identity=False).env_kwargs([harmful])["task_vocabulary"] is None
    # by default: identities for one task set, none for an agent meant for unseen task sets
    assert AgentSettings().env_kwargs([harmful])["task_vocabulary"] == harmful.task_names
    assert AgentSettings().env_kwargs([harmful, prerequisite])["task_vocabulary"] is None
    assert not AgentSettings(policy="flat", observation="histogram").identity_for([harmful])
    mixed = AgentSettings().make_task_set_env([harmful, prerequisite])
    single = AgentSettings().make_env(harmful)
    assert mixed.observation_space.shape[1] == single.observation_space.shape[1] - 1
    assert AgentSettings().make_agent(mixed, seed=0).q_net.identity_embedding is None
    assert AgentSettings(identity_dropout=0.25).env_kwargs([harmful])["identity_dropout"] == 0.25
    # settings stored before identities were the default read as a network without them
    stored = {k: v for k, v in dataclasses.asdict(AgentSettings()).items() if k != "task_identity"}
    assert AgentSettings.from_dict(stored).task_identity is False
    assert AgentSettings.from_dict({**stored, "task_identity": True}).task_identity is True
    env = settings.make_task_set_env([harmful, prerequisite])
    assert env.envs[1].task_vocabulary == ("easy", "medium", "hard", "noise", "base", "composite")
    agent = settings.make_agent(env, seed=0)
    assert agent.q_net.identity_embedding.num_embeddings == 7
    # environments stepped as one batched model write the identities too
    batched = AgentSettings(task_identity=True, n_envs=2).make_vec_env(harmful, seed=0)
    np.testing.assert_array_equal(batched.reset()[:, :, -2], [[1, 2, 3, 4], [1, 2, 3, 4]])
    with pytest.raises(ValueError, match="task_identity"):
        AgentSettings(task_identity=True, policy="flat", observation="histogram")


def test_a_scheduler_gives_each_task_its_trained_identity():
    """QLS rebuilds the identity column from the agent's vocabulary and the run's task names:
    listing the tasks in another order gets the same task chosen, and unknown tasks run."""
    harmful = get_benchmark("synthetic-harmful", small=True)
    env = AgentSettings(task_identity=True).make_env(harmful)
    agent = AgentSettings(task_identity=True, learning_starts=20).make_agent(env, seed=1)
    agent.learn(40)
    with torch.no_grad():
        agent.q_net.identity_embedding.weight.mul_(50.0)  # identities dominate the scores
    attach_context(agent, env)
    chosen = []
    for order in (["easy", "medium", "hard", "noise"], ["noise", "hard", "medium", "easy"]):
        benchmark = harmful.with_tasks(order)
        scheduler = QLSScheduler(agent)
        scheduler.prepare(benchmark)
        result = benchmark.make_trainer(0, budget=64).run(scheduler)
        chosen.append(set(np.asarray(order)[np.flatnonzero(result.examples_per_task)]))
    assert chosen[0] == chosen[1]
    prerequisite = get_benchmark("synthetic-prerequisite", small=True)
    scheduler = QLSScheduler(agent)
    scheduler.prepare(prerequisite)
    assert prerequisite.make_trainer(0, budget=128).run(scheduler).examples_seen == 128

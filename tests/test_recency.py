"""Recency features: the trace by hand, in the environment, and the same in QLSScheduler."""

import warnings

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from mtl_sched.agents import AgentSettings, BoltzmannGumbelDQN, QLSScheduler
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.observation.recency import ChoiceTrace

K, BINS = 4, 20


def test_trace_by_hand():
    trace = ChoiceTrace(3, decay=0.5)
    assert trace.size == 3 and trace.values.tolist() == [0, 0, 0]
    trace.record(0)
    trace.record(1)
    trace.record(1)
    # 0: 0.5 -> 0.25 -> 0.125; 1: 0.5 -> 0.75
    assert trace.values.tolist() == [0.125, 0.75, 0.0]
    extended = trace.extend(np.array([0.3, 0.7], dtype=np.float32))
    assert extended.dtype == np.float32 and extended.tolist() == [
        pytest.approx(0.3),
        pytest.approx(0.7),
        0.125,
        0.75,
        0.0,
    ]
    trace.reset()
    assert trace.values.tolist() == [0, 0, 0]


def test_trace_off_adds_nothing_and_bad_decays_are_refused():
    trace = ChoiceTrace(3, decay=None)
    trace.record(1)
    observation = np.ones(4, dtype=np.float32)
    assert trace.size == 0 and trace.extend(observation) is observation
    for decay in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="recency_decay"):
            ChoiceTrace(3, decay=decay)


def test_environment_appends_the_trace_and_passes_the_checker(tiny_benchmark):
    # seed 002's flat histograms, with the trace appended after them
    env = MTLSchedulingEnv(
        tiny_benchmark, reference_accuracies=None, recency_decay=0.8, observation="histogram"
    )
    assert env.observation_space.shape == (K * BINS + K,)
    obs, _ = env.reset(seed=0)
    assert obs[-K:].tolist() == [0.0] * K
    obs, *_ = env.step(2)
    assert obs[-K:] == pytest.approx([0, 0, 0.2, 0])
    obs, *_ = env.step(0)
    assert obs[-K:] == pytest.approx([0.2, 0, 0.16, 0])
    assert np.allclose(obs[:-K].reshape(K, BINS).sum(axis=1), 1.0)
    obs, _ = env.reset(seed=1)
    assert obs[-K:].tolist() == [0.0] * K
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(
            MTLSchedulingEnv(
                tiny_benchmark,
                reference_accuracies=None,
                recency_decay=0.8,
                episode_steps=5,
                observation="histogram",
            )
        )


def test_qls_sees_the_same_observations_as_the_environment(tiny_benchmark):
    """A greedy rollout in the environment and a Trainer run under QLS choose the same tasks."""
    # seed 002's flat network on histograms followed by the trace
    settings = AgentSettings(
        observation="histogram",
        policy="flat",
        recency_decay=0.7,
        steps_per_action=2,
        learning_starts=0,
        net_arch=(K,),
    )
    env = settings.make_env(tiny_benchmark)
    agent = settings.make_agent(env, seed=0)
    assert isinstance(agent, BoltzmannGumbelDQN)
    # Q(s, a) = bias_a - trace_a: the least recently trained task, ties to the highest index
    hidden, _, output = agent.q_net.q_net
    with torch.no_grad():
        hidden.weight.zero_()
        hidden.bias.zero_()
        hidden.weight[:, K * BINS :] = torch.eye(K)
        output.weight.copy_(-torch.eye(K))
        output.bias.copy_(torch.arange(K) * 1e-3)
    obs, _ = env.reset(seed=5)
    trainer_seed = env.trainer.seed
    env_actions = []
    for _ in range(env.episode_steps):
        action, _ = agent.predict(obs, deterministic=True)
        env_actions.append(int(action))
        obs, *_ = env.step(action)
    assert env_actions[:4] == [3, 2, 1, 0]

    scheduler = QLSScheduler.from_env(agent, env)
    assert scheduler.recency_decay == 0.7 and scheduler.steps_per_action == 2
    result = tiny_benchmark.make_trainer(trainer_seed).run(scheduler)
    qls_actions = result.schedule.argmax(axis=1)[::2].tolist()
    assert qls_actions == env_actions

    # the agent now carries its trace's decay, so a scheduler given none restores it ...
    restored = QLSScheduler(agent, env.probe_config, steps_per_action=2)
    restored.reset(tiny_benchmark.tasks, 0)
    assert restored.recency_decay == 0.7
    # ... while an agent carrying no settings is refused on observations without the trace
    without = QLSScheduler(settings.make_agent(env, seed=0), env.probe_config, steps_per_action=2)
    with pytest.raises(ValueError, match=r"\(84,\)"):
        without.reset(tiny_benchmark.tasks, 0)

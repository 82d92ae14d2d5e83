"""End to end: a briefly trained agent's greedy schedule against ``uniform`` on ``synthetic``.

The benchmark is ``synthetic`` with a narrower shared encoder (32-16 instead of 64-32): with less
capacity to spare, the random-label task costs uniform weighting more, so a schedule that leaves
it out has a clear margin to find (uniform scores 0.572 on validation over run seeds 100-102). The
agent learns from the accuracy increase (in percentage points) and sees how recently each task
was trained besides the uncertainty histograms. Seeds are fixed, so the outcome is the same at
every run on one machine; the margins asserted are a fraction of those measured.

Seed 002's flat network on the flat histograms, after 3000 steps: validation average 0.628
against 0.572, harmful-task share 0.000 against 0.25. Shorter trainings of it are not reliable:
after 1500 steps, agents of seeds 0, 1 and 2 reached 0.611, 0.548 and 0.579.

The default task-shared network on per-task rows with these settings (accuracy-increase reward,
seed 1) reaches 0.600 after 3000 steps (harmful-task share 0.044), under the asserted margin, and
0.612 after 1500: this test pins seed 002's network. The default agent's own end-to-end test is
`tests/test_plugin_recipe.py`; its measured results are `benchmarks/learned_vs_best.py`'s.
"""

import dataclasses

import numpy as np
import pytest

from mtl_sched.agents import AgentSettings, QLSScheduler
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.registry import make_scheduler

EVAL_SEEDS = (100, 101, 102)
SETTINGS = AgentSettings(
    reward="accuracy-increase",
    reward_scale=100.0,
    steps_per_action=4,
    recency_decay=0.8,
    gamma=0.9,
    exploration_c=1.0,
    learning_starts=200,
    target_update_interval=200,
)
FLAT_SETTINGS = dataclasses.replace(SETTINGS, observation="histogram", policy="flat")


@pytest.fixture(scope="module")
def benchmark():
    return get_benchmark("synthetic", hidden_sizes=(32, 16))


def assert_beats_uniform_and_avoids_the_harmful_task(benchmark, settings, agent_steps):
    """Train an agent of ``settings`` for ``agent_steps`` steps (seed 1); its greedy schedule must
    beat uniform weighting by 0.03 in validation average and train the random-label task on
    under 5% of the examples."""
    env = settings.make_env(benchmark)
    agent = settings.make_agent(env, seed=1, total_steps=agent_steps)
    agent.learn(agent_steps)

    def runs(make):
        return [benchmark.make_trainer(seed).run(make()) for seed in EVAL_SEEDS]

    learned = runs(lambda: QLSScheduler.from_env(agent, env))
    uniform = runs(lambda: make_scheduler("uniform"))
    noise = benchmark.task_names.index("noise")

    def score(results):
        return float(np.mean([r.best_validation.average_score for r in results]))

    def noise_share(results):
        return float(np.mean([r.task_share[noise] for r in results]))

    assert all(r.examples_seen == benchmark.trainer_config.budget for r in learned + uniform)
    assert score(learned) > score(uniform) + 0.03
    assert noise_share(uniform) == pytest.approx(0.25)
    assert noise_share(learned) < 0.05


def test_a_briefly_trained_agent_beats_uniform_and_avoids_the_harmful_task(benchmark):
    assert_beats_uniform_and_avoids_the_harmful_task(benchmark, FLAT_SETTINGS, 3000)

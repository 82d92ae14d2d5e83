"""End to end: briefly trained agents' greedy schedules against ``uniform`` on ``synthetic``.

The benchmark is ``synthetic`` with a narrower shared encoder (32-16 instead of 64-32): with less
capacity to spare, the random-label task costs uniform weighting more, so a schedule that leaves
it out has a clear margin to find (validation average over run seeds 100-102: uniform 0.572, the
documented schedule, round-robin over the three real tasks, 0.641). The agent learns from the
accuracy increase (in percentage points) and sees how recently each task was trained besides the
uncertainty histograms.

Seed 002's flat network on the flat histograms, three agents (seeds 0, 1, 2) of 3000 steps each:
every one leaves the random-label task out (its share 0.000, 0.000, 0.009), and their validation
averages are 0.5725, 0.5979 and 0.6004 (the best recovers 41% of the gap between uniform and the
documented schedule; seed 0's never trains ``hard``). Seeds fix each outcome on one machine, but
not across processors: float kernels differ with the instruction set, and a brief training
amplifies the difference (agent seed 1 reached 0.628 on another 2-core machine, 0.598 on the
AVX-512 Xeon of the numbers above). So the test asserts what holds for every agent seed (the
harmful task left out) and, for the best of the three by validation average, a quarter of the
gap.

The default task-shared network on per-task rows with these settings reaches 0.581 and 0.634
after 3000 steps (agent seeds 0 and 1; harmful-task share 0.027 and 0.036): this test pins seed
002's network. The default agent's own end-to-end test is `tests/test_plugin_recipe.py`; its
measured results are `benchmarks/learned_vs_best.py`'s.
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


AGENT_SEEDS = (0, 1, 2)


def run_all(benchmark, make_scheduler_for_run):
    return [benchmark.make_trainer(seed).run(make_scheduler_for_run()) for seed in EVAL_SEEDS]


def validation_average(results) -> float:
    return float(np.mean([r.best_validation.average_score for r in results]))


def noise_share(benchmark, results) -> float:
    noise = benchmark.task_names.index("noise")
    return float(np.mean([r.task_share[noise] for r in results]))


def test_briefly_trained_agents_avoid_the_harmful_task_and_the_best_beats_uniform(benchmark):
    """Three agents of seed 002's network, 3000 steps each: every greedy schedule trains the
    random-label task on under 5% of the examples, and the best of them by validation average
    recovers a quarter of the gap between uniform weighting and the documented schedule."""
    averages = []
    for agent_seed in AGENT_SEEDS:
        env = FLAT_SETTINGS.make_env(benchmark)
        agent = FLAT_SETTINGS.make_agent(env, seed=agent_seed, total_steps=3000)
        agent.learn(3000)
        learned = run_all(benchmark, lambda: QLSScheduler.from_env(agent, env))  # noqa: B023
        assert all(r.examples_seen == benchmark.trainer_config.budget for r in learned)
        assert noise_share(benchmark, learned) < 0.05
        averages.append(validation_average(learned))
    uniform = run_all(benchmark, lambda: make_scheduler("uniform"))
    assert noise_share(benchmark, uniform) == pytest.approx(0.25)
    tasks = ["easy", "medium", "hard"]
    documented = run_all(benchmark, lambda: make_scheduler("round-robin", tasks=tasks))
    low, high = validation_average(uniform), validation_average(documented)
    assert high > low + 0.05
    assert max(averages) > low + 0.25 * (high - low)

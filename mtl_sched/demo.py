"""The end-to-end demo (``mtl-sched demo``): learn a schedule, then compare it with baselines.

1. Build ``synthetic-prerequisite`` (the task set where the schedule must change during the run:
   ``composite`` only becomes learnable once ``base`` has shaped the shared features) and its
   scheduling environment with the default settings.
2. Train the default agent (`BoltzmannGumbelDQN` with the task-shared Q-network) on it.
3. Run the learned scheduler (greedy), the baselines and the benchmark's documented schedule on
   fresh seeds at the same example budget, print mean and std of the final average test
   accuracy and each task's share of the examples, and plot which task each scheduler trained
   over time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler, TqdmCallback
from mtl_sched.agents.training import AgentSettings
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.comparison import compare_schedulers, summary_table
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.registry import make_scheduler
from mtl_sched.reporting.figures import plot_schedules


@dataclass
class DemoConfig:
    """Settings of the demo.

    :param benchmark: registered benchmark name.
    :param agent_steps: environment steps of agent training.
    :param agent_seed: seed of agent training (environment and network).
    :param eval_seeds: fresh seeds on which every scheduler is run.
    :param baselines: baseline scheduler names to compare with.
    :param out: directory for the agent, the plot and the results.
    :param agent: environment and DQN settings of the agent.
    :param progress: show progress bars.
    """

    benchmark: str = "synthetic-prerequisite"
    agent_steps: int = 20_000
    agent_seed: int = 0
    eval_seeds: tuple[int, ...] = (100, 101, 102)
    baselines: tuple[str, ...] = ("uniform", "random", "round-robin", "proportional", "greedy")
    out: Path = field(default_factory=lambda: Path("demo-output"))
    agent: AgentSettings = field(default_factory=AgentSettings)
    progress: bool = True


def train_scheduler_agent(config: DemoConfig) -> tuple[BoltzmannGumbelDQN, MTLSchedulingEnv]:
    """Train a Boltzmann-Gumbel DQN on the benchmark's scheduling environment."""
    env = config.agent.make_env(get_benchmark(config.benchmark))
    agent = config.agent.make_agent(env, config.agent_seed, total_steps=config.agent_steps)
    callback = TqdmCallback(config.agent_steps) if config.progress else None
    agent.learn(config.agent_steps, callback=callback)
    return agent, env


def run_demo(config: DemoConfig) -> str:
    """Run the demo; returns the printed report."""

    start = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    benchmark = get_benchmark(config.benchmark)
    agent, env = train_scheduler_agent(config)
    agent.save(config.out / "agent.zip")
    factories = {"qls (learned)": lambda: QLSScheduler.from_env(agent, env)}
    for name in config.baselines:
        factories[name] = lambda name=name: make_scheduler(name)
    recipe = benchmark.better_schedule
    if recipe is not None:
        label = f"{recipe.scheduler} (documented schedule)"
        factories[label] = lambda: make_scheduler(recipe.scheduler, **recipe.kwargs)
    results = compare_schedulers(benchmark, factories, config.eval_seeds, progress=config.progress)

    plot_path = plot_schedules(
        {label: runs[0] for label, runs in results.items()}, config.out / "schedules.png"
    )
    table = summary_table(results)
    elapsed = time.perf_counter() - start
    lines = [
        f"benchmark {benchmark.name}: tasks {', '.join(benchmark.task_names)}; "
        f"budget {benchmark.trainer_config.budget} training examples per run",
        f"agent: {config.agent_steps} environment steps, reward {config.agent.reward!r}, "
        f"penalty {'on' if config.agent.use_penalty else 'off'}, gamma {config.agent.gamma}; "
        "action counts "
        + ", ".join(
            f"{n} {c}" for n, c in zip(benchmark.task_names, agent.action_counts, strict=True)
        ),
        f"final average test accuracy over seeds {list(config.eval_seeds)}:",
        table,
        f"schedule plot: {plot_path}",
        f"agent saved to: {config.out / 'agent.zip'}",
        f"demo took {elapsed:.0f} s",
    ]
    report = "\n".join(lines)
    summary = {
        label: {
            "test_average": [r.test.average_score for r in runs],
            "task_share": np.mean([r.task_share for r in runs], axis=0).tolist(),
        }
        for label, runs in results.items()
    }
    (config.out / "results.json").write_text(
        json.dumps(
            {"config": asdict(config) | {"out": str(config.out)}, "results": summary},
            indent=2,
            default=str,
        )
    )
    return report

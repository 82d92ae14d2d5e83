"""The end-to-end demo (``mtl-sched demo``): learn a schedule, then compare it with baselines.

1. Build ``synthetic-prerequisite`` (the task set where the schedule must change during the run:
   ``composite`` only becomes learnable once ``base`` has shaped the shared features) and its
   scheduling environment with the default settings.
2. Train the default agent (`BoltzmannGumbelDQN` with the task-shared Q-network) on it and save
   it with its environment settings and the training examples it consumed.
3. Compare the saved agent (``qls``, greedy), the baselines and the benchmark's documented
   schedule on fresh seeds at the same example budget, as ``mtl-sched compare`` would: one trial
   per (scheduler, seed) through the sweep harness into ``results.sqlite`` in the output
   directory (`mtl_sched.comparison.run_comparison`). Then print the report
   ``mtl-sched report`` writes for it: test score per task and ``AVG`` by scheduler with seed
   003's ▲/▼ marks against ``uniform``, the cost of each scheduler's runs, and the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl_sched.agents import BoltzmannGumbelDQN, TqdmCallback
from mtl_sched.agents.preparation import ExamplesSeenCallback, PreparationLedger
from mtl_sched.agents.training import AgentSettings
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.benchmarks.base import Benchmark
from mtl_sched.comparison import run_comparison
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.registry import scheduler_class, scheduler_names
from mtl_sched.reporting.report import DEFAULT_BASELINE

#: the registered name the saved agent runs under
LEARNED = "qls"
#: the demo's results store, in its output directory
STORE_NAME = "results.sqlite"


@dataclass
class DemoConfig:
    """Settings of the demo.

    :param benchmark: registered benchmark name.
    :param agent_steps: environment steps of agent training.
    :param agent_seed: seed of agent training (environment and network).
    :param eval_seeds: fresh seeds on which every scheduler is run; with fewer than two, the
        table carries no ▲/▼ marks (the std of one seed is 0).
    :param baselines: baseline scheduler names to compare with; ``uniform`` among them is the
        column the marks compare with.
    :param out: directory for the agent, the results store and the report's files.
    :param agent: environment and DQN settings of the agent.
    :param progress: show progress bars.
    """

    benchmark: str = "synthetic-prerequisite"
    agent_steps: int = 4_000
    agent_seed: int = 0
    eval_seeds: tuple[int, ...] = (100, 101, 102)
    baselines: tuple[str, ...] = ("uniform", "random", "round-robin", "proportional", "greedy")
    out: Path = field(default_factory=lambda: Path("demo-output"))
    agent: AgentSettings = field(default_factory=AgentSettings)
    progress: bool = True


def train_scheduler_agent(config: DemoConfig) -> tuple[BoltzmannGumbelDQN, MTLSchedulingEnv]:
    """Train a Boltzmann-Gumbel DQN on the benchmark's scheduling environment.

    The agent carries its environment settings and the training examples its training consumed
    (`mtl_sched.agents.context`), so that the saved agent runs as ``qls`` with the observation
    it was trained on and its cost is reported.

    :param config: the demo settings.
    """
    env = config.agent.make_env(get_benchmark(config.benchmark))
    agent = config.agent.make_agent(env, config.agent_seed, total_steps=config.agent_steps)
    ledger = PreparationLedger({}, env, n_envs=1)
    callbacks: list[Any] = [ExamplesSeenCallback(ledger)]
    if config.progress:
        callbacks.append(TqdmCallback(config.agent_steps))
    agent.learn(config.agent_steps, callback=callbacks)
    ledger.attach(agent)
    return agent, env


def demo_schedulers(
    config: DemoConfig, benchmark: Benchmark
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The compared scheduler names (the learned one, the baselines, the benchmark's documented
    schedule when it has one) and the documented schedule's hyperparameters.

    :param config: the demo settings.
    :param benchmark: the benchmark.
    :raises ValueError: when ``baselines`` names an unknown scheduler, repeats a name or names
        the learned scheduler or the documented schedule's (each column of the table is one
        scheduler name).
    """
    recipe = benchmark.better_schedule
    reserved = {LEARNED: "the learned scheduler"}
    if recipe is not None:
        reserved[recipe.scheduler] = f"{benchmark.name}'s documented schedule"
    for name in config.baselines:
        if name in reserved:
            raise ValueError(
                f"baselines must not name {name!r}: the demo runs it as {reserved[name]}"
            )
    if len(set(config.baselines)) != len(config.baselines):
        raise ValueError(f"baselines names a scheduler twice: {', '.join(config.baselines)}")
    known = scheduler_names()
    if unknown := [name for name in config.baselines if name not in known]:
        raise ValueError(f"baselines: unknown scheduler {unknown[0]!r}; known: {', '.join(known)}")
    names = [LEARNED, *config.baselines]
    params: dict[str, dict[str, Any]] = {}
    if recipe is not None:
        names.append(recipe.scheduler)
        params[recipe.scheduler] = dict(recipe.kwargs)
    return names, params


def _fresh_store(path: Path) -> Path:
    """Remove an earlier demo's store: its qls trials have the same key (the agent's path) as
    this run's, so the sweep would skip them and report the earlier agent."""
    for sidecar in ("", "-wal", "-shm"):
        Path(f"{path}{sidecar}").unlink(missing_ok=True)
    return path


def _columns(config: DemoConfig, benchmark: Benchmark) -> list[str]:
    """One line per compared scheduler: what it is."""
    lines = [f"  {LEARNED}: the agent trained above, choosing greedily"]
    for name in config.baselines:
        role = " (the baseline of the ▲/▼ marks)" if name == DEFAULT_BASELINE else ""
        lines.append(f"  {name}{role}: {scheduler_class(name).description}")
    recipe = benchmark.better_schedule
    if recipe is not None:
        lines.append(
            f"  {recipe.scheduler}: the benchmark's documented schedule {recipe.kwargs}; "
            f"{recipe.rationale}"
        )
    return lines


def run_demo(config: DemoConfig) -> str:
    """Run the demo; returns the printed report.

    :param config: the demo settings.
    """
    start = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    if not config.eval_seeds:
        raise ValueError("eval_seeds must hold at least one seed")
    benchmark = get_benchmark(config.benchmark)
    # bad names fail here, before the agent trains
    schedulers, params = demo_schedulers(config, benchmark)
    agent, _ = train_scheduler_agent(config)
    agent_path = config.out / "agent.zip"
    agent.save(agent_path)
    store = _fresh_store(config.out / STORE_NAME)
    report = run_comparison(
        config.benchmark,
        schedulers,
        config.eval_seeds,
        store,
        config.out,
        scheduler_params=params,
        agent=agent_path,
        progress=config.progress,
    )
    counts = ", ".join(
        f"{n} {c}" for n, c in zip(benchmark.task_names, agent.action_counts, strict=True)
    )
    lines = [
        f"benchmark {benchmark.name}: tasks {', '.join(benchmark.task_names)}; "
        f"budget {benchmark.trainer_config.budget} training examples per run",
        f"agent: {config.agent_steps} environment steps, reward {config.agent.reward!r}, "
        f"penalty {'on' if config.agent.use_penalty else 'off'}, gamma {config.agent.gamma}; "
        f"action counts {counts}; saved to {agent_path}",
        f"compared on seeds {', '.join(map(str, config.eval_seeds))}, each scheduler with the "
        "same budget, one trial per scheduler and seed:",
        *_columns(config, benchmark),
        "",
        report.markdown,
        f"results store: {store} (the same report: mtl-sched report --db {store} "
        f"--benchmark {benchmark.name})",
        f"report files: {', '.join(str(path) for path in report.paths)}",
        f"demo took {time.perf_counter() - start:.0f} s",
    ]
    return "\n".join(lines)

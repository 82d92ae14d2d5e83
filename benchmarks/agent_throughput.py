"""Environment steps per second of agent training with one environment and with N at once.

`BoltzmannGumbelDQN.learn` runs with the default `AgentSettings` on the benchmark, once on one
`MTLSchedulingEnv` and once on ``--n-envs`` environments (`AgentSettings.make_vec_env`: one
batched model when the benchmark's model batches, as ``synthetic``'s does; one process per
environment otherwise). Each agent first collects its ``learning_starts`` warm-up steps
untimed; then ``--steps`` environment steps of ``learn`` are timed, ``--repeats`` times in turn
for the configurations, and each configuration's fastest repeat is reported (slower repeats
measure other load on a shared machine).

DQN's gradient updates cost per update, not per environment step, and SB3 counts
``train_freq`` in steps of all environments at once: with N environments the agent makes N times
fewer gradient updates per environment step. The table says how many each configuration made;
``--matched-updates`` adds a row where the N-environment agent takes N gradient steps per update
(``gradient_steps = N``), as many per environment step as with one environment.

The last line is ``speedup <steps per second with N environments / with one>`` (SB3's default
update count).

    python benchmarks/agent_throughput.py
    python benchmarks/agent_throughput.py --n-envs 8 --steps 2000 --matched-updates
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtl_sched.agents import AgentSettings, BoltzmannGumbelDQN
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.envs import BatchedSchedulingVecEnv
from mtl_sched.script_args import parse_args_into, parse_key_value


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to train on"})
    option: list[str] = field(
        default_factory=list, metadata={"help": "benchmark option KEY=VALUE (repeatable)"}
    )
    n_envs: int = field(default=16, metadata={"help": "environments of the batched run"})
    steps: int = field(default=3_000, metadata={"help": "timed env steps per repeat"})
    repeats: int = field(default=3, metadata={"help": "timed repeats of each configuration"})
    seed: int = field(default=0, metadata={"help": "seed of the agents and environments"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(
        default="process",
        metadata={"help": "process (CPU time of this process: steady on a shared machine) or wall"},
    )
    matched_updates: bool = field(
        default=False,
        metadata={"help": "also time N envs with as many gradient updates per env step as one"},
    )


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


@dataclass
class Run:
    """One configuration under measurement.

    :param label: its row label.
    :param agent: the agent (warmed up).
    :param n_envs: environments it steps at once.
    :param rates: env steps per second of each timed repeat.
    :param updates: gradient steps per env step of the timed repeats.
    """

    label: str
    agent: BoltzmannGumbelDQN
    n_envs: int
    rates: list[float] = field(default_factory=list)
    updates: float = 0.0


def make_run(args: Args, label: str, n_envs: int, gradient_steps: int, total: int) -> Run:
    options: dict[str, Any] = dict(parse_key_value(text) for text in args.option)
    benchmark = get_benchmark(args.benchmark, **options)
    settings = AgentSettings(n_envs=n_envs)
    if n_envs == 1:
        env: Any = settings.make_env(benchmark)
    else:
        env = settings.make_vec_env(benchmark, args.seed)
        if args.clock == "process" and not isinstance(env.unwrapped, BatchedSchedulingVecEnv):
            raise SystemExit(
                f"{args.benchmark} runs its environments in subprocesses, whose time the process "
                "clock misses: use --clock wall"
            )
    agent = settings.make_agent(env, seed=args.seed, total_steps=total)
    agent.gradient_steps = gradient_steps
    agent.learn(settings.learning_starts)  # warm-up: the replay buffer fills, no updates yet
    return Run(label, agent, n_envs)


def main(args: Args) -> float:
    torch.set_num_threads(args.threads)
    if args.clock not in ("process", "wall"):
        raise SystemExit(f"--clock must be process or wall; got {args.clock!r}")
    if args.n_envs < 2:
        raise SystemExit("--n-envs must be at least 2")
    clock = time.process_time if args.clock == "process" else time.perf_counter
    total = AgentSettings().learning_starts + args.steps * args.repeats + args.n_envs
    n = args.n_envs
    runs = [
        make_run(args, "1 env", 1, 1, total),
        make_run(args, f"{n} envs", n, 1, total),
    ]
    if args.matched_updates:
        runs.append(make_run(args, f"{n} envs, {n} gradient steps/update", n, n, total))
    if args.clock == "process" and any(r.agent.device.type == "cuda" for r in runs):
        raise SystemExit("process time misses the GPU's work: use --clock wall on CUDA")
    for _ in range(args.repeats):
        for run in runs:
            agent = run.agent
            steps, updates = agent.num_timesteps, agent._n_updates
            start = clock()
            agent.learn(args.steps, reset_num_timesteps=False)
            seconds = clock() - start
            run.rates.append((agent.num_timesteps - steps) / seconds)
            run.updates = (agent._n_updates - updates) / (agent.num_timesteps - steps)

    settings = AgentSettings()
    print(
        f"{args.benchmark}: {args.steps} timed env steps x {args.repeats} repeats per "
        f"configuration after {settings.learning_starts} warm-up steps, default AgentSettings "
        f"(train_freq {settings.train_freq}), {args.clock} clock, {args.threads} thread(s)"
    )
    print(
        f"{'configuration':<36} {'env steps/s':>12} {'ms/env step':>12} {'grad steps/env step':>20}"
    )
    for run in runs:
        best = max(run.rates)
        print(f"{run.label:<36} {best:>12.1f} {1e3 / best:>12.3f} {run.updates:>20.4f}")
    speedup = max(runs[1].rates) / max(runs[0].rates)
    print(f"speedup {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main(parse_args())

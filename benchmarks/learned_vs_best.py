"""Learned schedules against ``uniform`` and the documented best schedule, on held-out run seeds.

For every agent seed, trains a scheduler agent with ``train-agent``'s defaults (an output directory
per seed under ``--out``: a finished run is reused, an interrupted one resumed), then runs its best
agent greedily (`QLSScheduler`) on the run seeds and scores the model selected on validation (test
scores by default; ``--split validation`` with run seeds of their own is for choosing designs).
``uniform``, the benchmark's documented schedule (``better_schedule``, label ``recipe``) and, on
``synthetic-prerequisite``, every fixed task distribution run on the same run seeds; on a
benchmark outside the synthetic family also ``random`` and ``round-robin``. The agents'
training episodes draw their trainer seeds from the agent seed's generator and their greedy
evaluations (model selection) use seeds 1000 and 1001, never the run seeds scored here.

``--train-on`` trains on other benchmarks than the one scored (zero-shot transfer: the agent never
saw ``--benchmark``); ``--task-subsets 3-8`` trains on every subset of that many tasks of each.

Prints, per contender, the mean and sample standard deviation over the run seeds; per agent seed,
its learned schedule's mean, the share of the uniform-to-recipe gap it recovers and whether seed
003's rule (``mean1 - 1.5 std1 > mean2 + 1.5 std2``, sample standard deviations) puts it above
``uniform`` and above each other contender. The last line is ``gap_recovered X``: the mean over
agent seeds of ``(learned - uniform) / (recipe - uniform)`` (``nan`` without a recipe).

    python benchmarks/learned_vs_best.py --benchmark synthetic-harmful --agent-seeds 0,1,2,3,4
    python benchmarks/learned_vs_best.py --benchmark synthetic-many \\
        --train-on synthetic-harmful,synthetic-overfit,synthetic-prerequisite
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from benchmark_args import BenchmarkArgs

from mtl_sched.agents import AgentSettings, QLSScheduler, TrainAgentConfig, train_agent
from mtl_sched.agents.training import Terminated, check_stored_settings, complete_checkpoints
from mtl_sched.benchmarks import Benchmark
from mtl_sched.benchmarks.synthetic_family import FAMILY, family_contenders
from mtl_sched.registry import make_scheduler
from mtl_sched.reporting.tables import higher
from mtl_sched.scheduling import Scheduler
from mtl_sched.script_args import comma_separated, parse_args_into, parse_key_value


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores); the
    benchmark options (``--option``, ``--small``, ``--data-dir``) apply to the benchmarks
    trained on too."""

    benchmark: str = field(default="synthetic-harmful", metadata={"help": "benchmark scored"})
    agent_seeds: str = field(default="0,1,2,3,4", metadata={"help": "comma-separated"})
    seeds: str = field(default="0,1,2,3,4", metadata={"help": "run seeds scored"})
    split: str = field(default="test", metadata={"help": "test, or validation"})
    train_on: str = field(
        default="", metadata={"help": "benchmarks to train on (default: --benchmark)"}
    )
    task_subsets: str = field(default="", metadata={"help": "e.g. 3-8: train on task subsets"})
    steps: int = field(default=0, metadata={"help": "agent training steps (0: the default)"})
    eval_seeds: str = field(
        default="", metadata={"help": "seeds of the agents' greedy evaluations (default: theirs)"}
    )
    setting: list[str] = field(default_factory=list, metadata={"help": "agent setting KEY=VALUE"})
    out: str = field(default="runs/learned-vs-best", metadata={"help": "agents' directories"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def contenders(benchmark: Benchmark) -> list[tuple[str, str, dict]]:
    """The baselines run beside the learned schedule."""
    if benchmark.name in FAMILY:
        return family_contenders(benchmark.name)
    # beside uniform, the two other schedules that need no state nor search
    runs: list[tuple[str, str, dict]] = [
        ("uniform", "uniform", {}),
        ("random", "random", {}),
        ("round-robin", "round-robin", {}),
    ]
    if benchmark.better_schedule is not None:
        recipe = benchmark.better_schedule
        runs.append(("recipe", recipe.scheduler, dict(recipe.kwargs)))
    return runs


def scores(benchmark: Benchmark, scheduler: Scheduler, seeds: Sequence[int], split: str):
    """Average score of the selected model on ``split`` per run seed."""
    scheduler.prepare(benchmark)
    values = []
    for seed in seeds:
        result = benchmark.make_trainer(seed).run(scheduler)
        chosen = result.test if split == "test" else result.best_validation
        values.append(chosen.average_score)
    return np.asarray(values)


def trained_agent(args: Args, seed: int) -> Path:
    """Train (or resume, or reuse) the agent of ``seed``; returns its output directory."""
    train_on = args.train_on or args.benchmark
    subsets = args.task_subsets.replace("-", ",")
    # one directory per training setup, so that runs of other settings never share agents
    label = train_on.replace(",", "+") + (f"-subsets-{args.task_subsets}" if subsets else "")
    label += f"-steps-{args.steps}" if args.steps else ""
    label += f"-eval-{args.eval_seeds.replace(',', '_')}" if args.eval_seeds else ""
    label += "".join(f"-{text.replace('=', '-')}" for text in sorted(args.setting))
    label += "".join(f"-option-{text.replace('=', '-')}" for text in sorted(args.option))
    label += "-small" if args.small else ""
    out = Path(args.out) / label / f"seed-{seed}"
    settings = AgentSettings(**dict(parse_key_value(text) for text in args.setting))
    options = args.benchmark_options()
    config = TrainAgentConfig(
        out=out,
        benchmark=train_on,
        benchmark_options=options,
        seed=seed,
        agent=settings,
        progress=False,
        **({"steps": args.steps} if args.steps else {}),
        **(
            {"eval_seeds": comma_separated(int, "integers")(args.eval_seeds)}
            if args.eval_seeds
            else {}
        ),
        **({"task_subsets": comma_separated(int, "integers")(subsets)} if subsets else {}),
    )
    if (out / "agent.zip").is_file():
        check_stored_settings(config)  # a finished agent of other settings is refused, not reused
    else:
        resume = bool(out.is_dir() and complete_checkpoints(out))
        wall, cpu = time.perf_counter(), time.process_time()
        train_agent(config, resume=resume)
        print(
            f"agent {seed:2d} {'resumed and ' if resume else ''}trained in "
            f"{(time.perf_counter() - wall) / 60:.1f} min of wall time, "
            f"{(time.process_time() - cpu) / 60:.1f} min of CPU time",
            flush=True,  # a redirected log shows each agent as it finishes
        )
    return out


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def main(args: Args) -> float:
    """Print the table; return the mean share of the uniform-to-recipe gap recovered."""
    torch.set_num_threads(args.threads)
    if args.split not in ("test", "validation"):
        raise SystemExit(f"--split must be test or validation; got {args.split!r}")
    run_seeds = comma_separated(int, "integers")(args.seeds)
    agent_seeds = comma_separated(int, "integers")(args.agent_seeds)
    benchmark = args.make_benchmark()
    print(
        f"benchmark={args.benchmark} split={args.split} run seeds={args.seeds} "
        f"agent seeds={args.agent_seeds} trained on={args.train_on or args.benchmark}"
        + (f" subsets={args.task_subsets}" if args.task_subsets else ""),
        flush=True,
    )
    found: dict[str, np.ndarray] = {}
    for label, name, kwargs in contenders(benchmark):
        found[label] = scores(benchmark, make_scheduler(name, **kwargs), run_seeds, args.split)
        mean, std = _mean_std(found[label])
        print(f"{label:20s} {mean:.4f} ± {std:.4f}", flush=True)
    uniform = found["uniform"]
    recipe = found.get("recipe")
    recovered = []
    for seed in agent_seeds:
        out = trained_agent(args, seed)
        learned = scores(benchmark, QLSScheduler(out), run_seeds, args.split)
        mean, std = _mean_std(learned)
        share = math.nan
        if recipe is not None and recipe.mean() != uniform.mean():
            share = (mean - uniform.mean()) / (recipe.mean() - uniform.mean())
        recovered.append(share)
        above = [
            label
            for label, values in found.items()
            if len(run_seeds) > 1 and higher(mean, std, *_mean_std(values))
        ]
        print(
            f"learned (agent {seed:2d})   {mean:.4f} ± {std:.4f}  gap recovered {share:.3f}  "
            f"above by the rule: {', '.join(above) or 'none'}",
            flush=True,
        )
    gap = float(np.mean(recovered))
    print(f"gap_recovered {gap:.3f}")
    return gap


if __name__ == "__main__":
    try:
        main(parse_args())
    except KeyboardInterrupt as interrupt:
        # an agent in training wrote a checkpoint, and finished agents are kept
        print("stopped; the same command resumes the agent in training", file=sys.stderr)
        sys.exit(143 if isinstance(interrupt, Terminated) else 130)
    except ValueError as error:  # settings refused, or an agent directory of other settings
        sys.exit(f"error: {error}")

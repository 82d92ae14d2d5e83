"""``mtl-sched train-agent``: train a scheduler agent with checkpoints, greedy evaluation and
resume; ``--benchmark a,b`` and ``--task-subsets LO-HI`` train it on several task sets.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def _task_subsets(text: str) -> tuple[int, int]:
    """``"LO-HI"`` (or ``"N"``, for ``N-N``) as task counts."""
    low, separator, high = text.partition("-")
    try:
        bounds = (int(low), int(high if separator else low))
    except ValueError:
        bounds = (0, 0)
    if min(bounds) < 1 or bounds[0] > bounds[1]:
        raise ValueError(
            f"--task-subsets must be LO-HI with task counts 1 <= LO <= HI (e.g. 3-8); got {text!r}"
        )
    return bounds


def _benchmark_list(text: str) -> str:
    """The comma-separated benchmark names of ``--benchmark``, each registered."""
    from mtl_sched.benchmarks import benchmark_names

    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in benchmark_names():
            raise ValueError(
                f"--benchmark: unknown benchmark {name!r}; registered: "
                f"{', '.join(benchmark_names())}"
            )
    return ",".join(names)


def run_train_agent(args: argparse.Namespace, source_options: dict[str, Any]) -> int:
    """Run ``mtl-sched train-agent`` and print where the agent went; the exit status.

    :param args: the parsed arguments of the command.
    :param source_options: the benchmark options of ``--data-dir`` and ``--small``.
    """
    from mtl_sched.agents.training import (
        AgentSettings,
        Terminated,
        TrainAgentConfig,
        stored_identity,
        train_agent,
    )

    steps = args.steps if args.steps is not None else TrainAgentConfig.steps
    try:
        # A resumed run takes its identity from disk; flags given explicitly must agree with it.
        stored = stored_identity(args.out) if args.resume else {}
        agent_values = dict(stored.get("agent", {})) | dict(args.setting)
        options = dict(stored.get("benchmark_options", {})) | source_options | dict(args.option)
        eval_seeds = args.eval_seeds or tuple(stored.get("eval_seeds", (1_000, 1_001)))
        benchmark = stored.get("benchmark", "synthetic")
        if args.benchmark is not None:
            benchmark = _benchmark_list(args.benchmark)
        subsets = stored.get("task_subsets")
        if args.task_subsets is not None:
            subsets = _task_subsets(args.task_subsets)
        # a run's stored settings take the defaults of the time they were written
        settings = AgentSettings.from_dict if args.resume else AgentSettings.from_options
        config = TrainAgentConfig(
            out=args.out,
            benchmark=benchmark,
            benchmark_options=options,
            task_subsets=None if subsets is None else tuple(subsets),
            steps=steps,
            seed=args.seed if args.seed is not None else stored.get("seed", 0),
            agent=settings(agent_values),
            eval_every=args.eval_every,
            eval_seeds=eval_seeds,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
        )
        result = train_agent(config, resume=args.resume)
    except KeyboardInterrupt as interrupt:
        what = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        print(
            f"{what}; a checkpoint was written to {args.out}. Continue with: "
            f"mtl-sched train-agent --out {args.out} --steps {steps} --resume",
            file=sys.stderr,
        )
        return 128 + int(signal.SIGTERM) if isinstance(interrupt, Terminated) else 130
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise SystemExit(f"mtl-sched train-agent: {err}") from None
    best = (
        f"best greedy validation average {result.best_score:.4f} at step {result.best_timesteps}"
        if result.best_timesteps >= 0
        else "no greedy evaluation ran"
    )
    print(
        f"trained {result.timesteps} steps into {result.out}; {best}\n"
        f"run it: mtl-sched run --benchmark {config.benchmark_names[0]} --scheduler qls "
        f"--agent {result.out}"
    )
    return 0

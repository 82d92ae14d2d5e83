"""The ``mtl-sched`` command.

- ``mtl-sched demo``: learn a schedule on ``synthetic`` and compare it with baselines.
- ``mtl-sched list schedulers|benchmarks``: what is available.
- ``mtl-sched run --benchmark B --scheduler S``: one training run, test metrics printed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be comma-separated integers; got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects KEY=VALUE; got {text!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word is a string
    return key.replace("-", "_"), value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-sched", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train a scheduler agent on 'synthetic' and compare")
    demo.add_argument("--agent-steps", type=_positive, default=None, help="agent training steps")
    demo.add_argument("--agent-seed", type=int, default=None, help="seed of agent training")
    demo.add_argument(
        "--seeds", type=_parse_seeds, default=None, help="evaluation seeds, e.g. 100,101,102"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument(
        "--reward", choices=["loss", "loss-decrease"], default=None, help="environment reward"
    )
    demo.add_argument(
        "--penalty", action="store_true", help="apply the 95%%-of-single-task accuracy penalty"
    )
    demo.add_argument("--gamma", type=float, default=None, help="discount factor")
    demo.add_argument("--exploration-c", type=float, default=None, help="Boltzmann-Gumbel C")

    listing = commands.add_parser("list", help="list schedulers or benchmarks")
    listing.add_argument("what", choices=["schedulers", "benchmarks"])

    run = commands.add_parser("run", help="train once under a scheduler and print test metrics")
    run.add_argument("--benchmark", required=True, help="benchmark name (see 'list benchmarks')")
    run.add_argument("--scheduler", required=True, help="scheduler name (see 'list schedulers')")
    run.add_argument("--seed", type=int, default=0, help="run seed")
    run.add_argument("--budget", type=_positive, default=None, help="training examples")
    run.add_argument("--agent", type=Path, default=None, help="saved agent (for --scheduler qls)")
    run.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scheduler hyperparameter (repeatable), e.g. --param tasks=\"['easy','hard']\"",
    )
    return parser


def _list(what: str) -> str:
    if what == "schedulers":
        from mtl_sched.registry import scheduler_infos

        infos = scheduler_infos()
        width = max(len(i.name) for i in infos)
        return "\n".join(
            f"{i.name.ljust(width)}  [{i.kind}] {i.description} ({i.source})" for i in infos
        )
    from mtl_sched.benchmarks import benchmark_names, get_benchmark

    lines = []
    for name in benchmark_names():
        bench = get_benchmark(name)
        sizes = ", ".join(f"{t.name} ({t.size('train')} train)" for t in bench.tasks)
        lines.append(f"{name}: {bench.description}\n    tasks: {sizes}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> str:
    from mtl_sched.benchmarks import get_benchmark
    from mtl_sched.comparison import summary_table
    from mtl_sched.registry import make_scheduler

    benchmark = get_benchmark(args.benchmark)
    params = dict(args.param)
    if args.scheduler == "qls":
        if args.agent is None:
            raise SystemExit("mtl-sched run: --scheduler qls needs --agent PATH (a saved agent)")
        if not args.agent.exists():
            raise SystemExit(f"mtl-sched run: --agent {args.agent} does not exist")
        params.setdefault("agent", args.agent)
        params.setdefault("probe", benchmark.trainer_config.probe)
    scheduler = make_scheduler(args.scheduler, **params)
    overrides = {"budget": args.budget} if args.budget else {}
    result = benchmark.make_trainer(args.seed, **overrides).run(scheduler, progress=True)
    per_task = "\n".join(
        f"  {name}: {score:.4f}"
        for name, score in zip(result.task_names, result.test.scores, strict=True)
    )
    return (
        f"{summary_table({args.scheduler: [result]})}\n"
        f"test accuracy per task (model selected on validation at "
        f"{result.best_examples_seen} examples):\n{per_task}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtl-sched`` console script."""
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    if args.command == "list":
        print(_list(args.what))
    elif args.command == "run":
        try:
            print(_run(args))
        except (KeyError, TypeError, ValueError) as err:
            raise SystemExit(f"mtl-sched run: {err}") from None
    elif args.command == "demo":
        from mtl_sched.demo import DemoConfig, run_demo

        config = DemoConfig(out=args.out, progress=not args.no_progress, use_penalty=args.penalty)
        for option, attribute in [
            ("agent_steps", "agent_steps"),
            ("agent_seed", "agent_seed"),
            ("seeds", "eval_seeds"),
            ("reward", "reward"),
            ("gamma", "gamma"),
            ("exploration_c", "exploration_c"),
        ]:
            value = getattr(args, option)
            if value is not None:
                setattr(config, attribute, value)
        print(run_demo(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())

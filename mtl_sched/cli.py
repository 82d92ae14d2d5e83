"""The ``mtl-sched`` command.

- ``mtl-sched demo``: learn a schedule on ``synthetic`` and compare it with baselines.
- ``mtl-sched train-agent --steps N --out DIR``: train a scheduler agent (checkpoints, resume);
  ``--benchmark a,b`` and ``--task-subsets 3-8`` train it on several task sets.
- ``mtl-sched list schedulers|benchmarks``: what is available.
- ``mtl-sched run --benchmark B --scheduler S``: one training run, test metrics printed.
- ``mtl-sched run --benchmark B --single-task``: the cached single-task reference scores.
- ``mtl-sched compare --benchmark B --schedulers a,b --seeds 0,1,2``: a resumable sweep into a
  results store (local process pool or Ray), see `mtl_sched.cli_compare`.
- ``mtl-sched report --db FILE --benchmark B``: tables and figures of a sweep.
- ``mtl-sched study qmtl``: STL vs Q-MTL vs ensembles (seeds 000/001), see `mtl_sched.cli_study`.

Benchmarks on real data read it from ``--data-dir`` or ``$MTL_SCHED_DATA``; ``--small`` picks a
benchmark's small variant (a few hundred examples per task, a tiny model).

Your own model and tasks: ``mtl-sched --import MODULE <command> ...`` (repeatable, before the
command) imports ``MODULE``, which registers benchmarks or schedulers (`register_benchmark`,
`register_scheduler`), and adds it to ``$MTL_SCHED_IMPORT`` so that sweep workers import it too;
setting ``MTL_SCHED_IMPORT=MODULE[,MODULE...]`` instead does the same (see `mtl_sched.plugins`).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mtl_sched.cli_compare import add_compare_parser, run_compare
from mtl_sched.cli_report import add_report_parser, run_report
from mtl_sched.cli_study import add_study_parser, run_study
from mtl_sched.cli_train import run_train_agent
from mtl_sched.envs.scheduling_env import REWARD_KINDS
from mtl_sched.plugins import IMPORT_ENV, export_plugins, import_plugins
from mtl_sched.results import ResultsStoreError
from mtl_sched.script_args import parse_key_value, positive_int, seed_list

_parse_seeds = seed_list


def _add_benchmark_source(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $MTL_SCHED_DATA)"
    )
    command.add_argument(
        "--small", action="store_true", help="the benchmark's small variant (tests, smoke runs)"
    )


def _benchmark_options(args: argparse.Namespace) -> dict[str, Any]:
    """The factory options that --data-dir and --small ask for (only those given)."""
    options: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        options["data_dir"] = str(args.data_dir)
    if getattr(args, "small", False):
        options["small"] = True
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-sched", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--import",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import MODULE first (repeatable): a module of your own that registers benchmarks "
            f"or schedulers; added to ${IMPORT_ENV}, so sweep workers import it too"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="train the default agent on 'synthetic-prerequisite' and compare"
    )
    demo.add_argument("--agent-steps", type=positive_int, default=None, help="agent training steps")
    demo.add_argument("--agent-seed", type=int, default=None, help="seed of agent training")
    demo.add_argument(
        "--seeds", type=_parse_seeds, default=None, help="evaluation seeds, e.g. 100,101,102"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--reward", choices=REWARD_KINDS, default=None, help="environment reward")
    demo.add_argument(
        "--penalty", action="store_true", help="apply the 95%%-of-single-task accuracy penalty"
    )
    demo.add_argument("--gamma", type=float, default=None, help="discount factor")
    demo.add_argument("--exploration-c", type=float, default=None, help="Boltzmann-Gumbel C")

    train = commands.add_parser(
        "train-agent", help="train a scheduler agent with checkpoints and greedy evaluation"
    )
    train.add_argument(
        "--benchmark",
        default=None,
        help="benchmark name, or several separated by commas (default: synthetic)",
    )
    train.add_argument(
        "--task-subsets",
        default=None,
        metavar="LO-HI",
        help="train on every subset of LO to HI tasks of each benchmark, e.g. 3-8",
    )
    train.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="total agent steps (default: TrainAgentConfig's)",
    )
    train.add_argument("--out", type=Path, required=True, help="output directory of the run")
    train.add_argument("--seed", type=int, default=None, help="seed of the agent (default: 0)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--eval-every", type=int, default=2_000, help="steps between greedy evaluations (0: none)"
    )
    train.add_argument(
        "--eval-seeds",
        type=_parse_seeds,
        default=None,
        help="evaluation run seeds (default: 1000,1001; when resuming, the run's own)",
    )
    train.add_argument(
        "--checkpoint-every", type=positive_int, default=1_000, help="steps between checkpoints"
    )
    train.add_argument(
        "--option",
        type=parse_key_value,
        action="append",
        default=[],
        help="benchmark option (repeatable), e.g. --option budget=4800",
    )
    train.add_argument(
        "--setting",
        type=parse_key_value,
        action="append",
        default=[],
        help="agent setting (repeatable; see AgentSettings), e.g. --setting gamma=0.5",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_benchmark_source(train)

    listing = commands.add_parser("list", help="list schedulers or benchmarks")
    listing.add_argument("what", choices=["schedulers", "benchmarks"])
    _add_benchmark_source(listing)

    run = commands.add_parser("run", help="train once under a scheduler and print test metrics")
    run.add_argument("--benchmark", required=True, help="benchmark name (see 'list benchmarks')")
    run.add_argument("--scheduler", default=None, help="scheduler name (see 'list schedulers')")
    run.add_argument(
        "--single-task",
        action="store_true",
        help="compute (or read from the cache) and print the single-task reference scores",
    )
    run.add_argument("--seed", type=int, default=0, help="run seed")
    run.add_argument("--budget", type=positive_int, default=None, help="training examples")
    run.add_argument(
        "--agent", type=Path, default=None, help="saved agent .zip or train-agent directory (qls)"
    )
    run.add_argument(
        "--param",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scheduler hyperparameter (repeatable), e.g. --param tasks=\"['easy','hard']\"",
    )
    run.add_argument(
        "--option",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="benchmark option (repeatable), e.g. --option probe_measure=entropy",
    )
    _add_benchmark_source(run)
    add_compare_parser(commands)
    add_report_parser(commands)
    add_study_parser(commands)
    return parser


def _list(what: str, options: dict[str, Any]) -> tuple[str, list[str]]:
    """The listing, and one line per benchmark whose data could not be read."""
    if what == "schedulers":
        from mtl_sched.registry import scheduler_infos

        infos = scheduler_infos()
        width = max(len(i.name) for i in infos)
        return "\n".join(
            f"{i.name.ljust(width)}  [{i.kind}] {i.description} ({i.source})" for i in infos
        ), []
    from mtl_sched.benchmarks import benchmark_names, get_benchmark

    lines, failures = [], []
    for name in benchmark_names():
        try:
            bench = get_benchmark(name, **options)
            sizes = ", ".join(
                f"{t.name} ({t.size('train')}/{t.size('validation')}/{t.size('test')})"
                for t in bench.tasks
            )
        except FileNotFoundError as err:
            lines.append(f"{name}: data unavailable ({err})")
            continue
        except (OSError, ValueError) as err:
            lines.append(f"{name}: data unreadable ({err})")
            failures.append(f"{name}: {err}")
            continue
        lines.append(f"{name}: {bench.description}\n    tasks (train/validation/test): {sizes}")
    return "\n".join(lines), failures


def _single_task(benchmark: Any, seed: int) -> str:
    from mtl_sched.references import reference_budget, single_task_references

    scores = single_task_references(benchmark, seed=seed)
    budget = reference_budget(benchmark)
    rows = "\n".join(
        f"  {task.name}: {score:.4f} ({task.metric})"
        for task, score in zip(benchmark.tasks, scores, strict=True)
    )
    return (
        f"single-task validation scores on {benchmark.name} (seed {seed}, {budget} training "
        f"examples per task, cached by benchmark configuration and seed):\n{rows}"
    )


def _run(args: argparse.Namespace) -> str:
    from mtl_sched.benchmarks import get_benchmark
    from mtl_sched.comparison import summary_table
    from mtl_sched.registry import prepared_scheduler
    from mtl_sched.sweeps.spec import check_benchmark_options

    if args.scheduler is None and not args.single_task:
        raise SystemExit("mtl-sched run: give --scheduler NAME or --single-task")
    if args.agent is not None and (args.single_task or args.scheduler != "qls"):
        raise ValueError(
            "--agent is read by the qls scheduler only; drop it or use --scheduler qls"
        )
    options = _benchmark_options(args) | dict(args.option)
    check_benchmark_options(args.benchmark, options)
    benchmark = get_benchmark(args.benchmark, **options).with_budget(args.budget)
    if args.single_task:
        return _single_task(benchmark, args.seed)
    # single-task references and weight searches come from the benchmark (cached on disk)
    scheduler = prepared_scheduler(args.scheduler, dict(args.param), benchmark, args.agent)
    result = benchmark.make_trainer(args.seed).run(scheduler, progress=True)
    per_task = "\n".join(
        f"  {name}: {score:.4f} ({metric})"
        for name, score, metric in zip(
            result.task_names, result.test.scores, result.test.metric_names, strict=True
        )
    )
    lines = [
        summary_table({args.scheduler: [result]}),
        f"test score per task (model selected on validation at "
        f"{result.best_examples_seen} examples):\n{per_task}",
    ]
    if result.preparation_examples:
        lines.append(
            f"before the run, the scheduler spent {result.preparation_examples} training "
            "examples outside the budget (e.g. a weight search on validation data)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtl-sched`` console script."""
    args = build_parser().parse_args(argv)
    try:
        export_plugins(args.plugins)
        import_plugins()  # those of $MTL_SCHED_IMPORT: a bad name fails here, in one line
    except ValueError as err:
        raise SystemExit(f"mtl-sched: {err}") from None
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    if args.command == "list":
        listing, failures = _list(args.what, _benchmark_options(args))
        print(listing)
        if failures:
            raise SystemExit(f"mtl-sched list: cannot read {'; '.join(failures)}")
    elif args.command == "run":
        try:
            print(_run(args))
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise SystemExit(f"mtl-sched run: {err}") from None
    elif args.command == "study":
        try:
            print(run_study(args))
        except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
            raise SystemExit(f"mtl-sched study {args.study}: {err}") from None
    elif args.command == "compare":
        try:
            text, status = run_compare(args)
        except KeyboardInterrupt:
            print(
                f"interrupted; finished trials are in {args.db}. Re-run the same command to "
                "run only the missing ones.",
                file=sys.stderr,
            )
            return 130
        except (ImportError, KeyError, OSError, ResultsStoreError, TypeError, ValueError) as err:
            raise SystemExit(f"mtl-sched compare: {err}") from None
        except sqlite3.DatabaseError as err:
            raise SystemExit(
                f"mtl-sched compare: {args.db}: unusable results store ({err})"
            ) from None
        print(text)
        return status
    elif args.command == "report":
        try:
            print(run_report(args))
        except (OSError, ResultsStoreError, ValueError) as err:
            raise SystemExit(f"mtl-sched report: {err}") from None
        except sqlite3.DatabaseError as err:
            raise SystemExit(
                f"mtl-sched report: {args.db}: unusable results store ({err})"
            ) from None
    elif args.command == "train-agent":
        return run_train_agent(args, _benchmark_options(args))
    elif args.command == "demo":
        from mtl_sched.demo import DemoConfig, run_demo

        config = DemoConfig(out=args.out, progress=not args.no_progress)
        config.agent.use_penalty = args.penalty
        for option, target, attribute in [
            ("agent_steps", config, "agent_steps"),
            ("agent_seed", config, "agent_seed"),
            ("seeds", config, "eval_seeds"),
            ("reward", config.agent, "reward"),
            ("gamma", config.agent, "gamma"),
            ("exploration_c", config.agent, "exploration_c"),
        ]:
            value = getattr(args, option)
            if value is not None:
                setattr(target, attribute, value)
        print(run_demo(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())

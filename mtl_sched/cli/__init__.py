"""The ``mtl-sched`` command.

- ``mtl-sched demo``: learn a schedule on ``synthetic`` and compare it with baselines.
- ``mtl-sched train-agent --steps N --out DIR``: train a scheduler agent (checkpoints, resume);
  ``--benchmark a,b`` and ``--task-subsets 3-8`` train it on several task sets.
- ``mtl-sched list schedulers|benchmarks``: what is available; ``list settings``,
  ``list options BENCHMARK`` and ``list params SCHEDULER``: the keys of ``--setting``,
  ``--option`` and ``--param`` with their types and defaults (see `mtl_sched.cli.list`).
- ``mtl-sched run --benchmark B --scheduler S``: one training run, test metrics printed.
- ``mtl-sched run --benchmark B --single-task``: the cached single-task reference scores.
- ``mtl-sched compare --benchmark B --schedulers a,b --seeds 0,1,2``: a resumable sweep into a
  results store (local process pool or Ray), see `mtl_sched.cli.compare`.
- ``mtl-sched report --db FILE --benchmark B``: tables and figures of a sweep.
- ``mtl-sched migrate --db FILE``: rekey a store's trials written by an earlier version.
- ``mtl-sched study qmtl``: STL vs Q-MTL vs ensembles (seeds 000/001), see `mtl_sched.cli.study`.

Each command's parser and runner are a module of this package (`mtl_sched.cli.run`,
`mtl_sched.cli.train_agent`, ...); what several commands share is in `mtl_sched.cli.common`,
`mtl_sched.cli.keys` (``KEY=VALUE`` flags) and `mtl_sched.cli.examples` (help examples).

Benchmarks on real data read it from ``--data-dir`` or ``$MTL_SCHED_DATA``; ``--small`` picks a
benchmark's small variant (a few hundred examples per task, a tiny model).

A list value of a ``KEY=VALUE`` flag is ``a,b,c`` or a JSON list. ``run`` and ``compare`` write
TensorBoard events (validation curves, task shares) when tensorboard is installed, as
``train-agent`` does (`mtl_sched.training.tensorboard`).

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

import torch

from mtl_sched import __version__
from mtl_sched.cli.common import (
    EPILOG_FORMATTER,
    add_command,
    add_epilogs,
    benchmark_source_options,
    command_epilog,
)
from mtl_sched.cli.compare import add_compare_parser, run_compare
from mtl_sched.cli.list import add_list_parser, listing
from mtl_sched.cli.migrate import add_migrate_parser, run_migrate
from mtl_sched.cli.report import add_report_parser, run_report
from mtl_sched.cli.run import add_run_parser, run_run
from mtl_sched.cli.study import add_study_parser, run_study
from mtl_sched.cli.train_agent import add_train_parser, run_train_agent
from mtl_sched.envs.scheduling_env import REWARD_KINDS
from mtl_sched.plugins import IMPORT_ENV, export_plugins, import_plugins
from mtl_sched.results import ResultsStoreError
from mtl_sched.script_args import positive_int, seed_list

DEMO_EXAMPLES = (
    "mtl-sched demo",
    "mtl-sched demo --agent-steps 4000 --seeds 100,101 --out demo-output --reward loss --penalty",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtl-sched",
        description=__doc__.splitlines()[0],
        epilog=command_epilog(),
        formatter_class=EPILOG_FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"mtl-sched {__version__}")
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

    demo = add_command(
        commands,
        "demo",
        "train the default agent on 'synthetic-prerequisite' and compare",
        DEMO_EXAMPLES,
    )
    demo.add_argument("--agent-steps", type=positive_int, default=None, help="agent training steps")
    demo.add_argument("--agent-seed", type=int, default=None, help="seed of agent training")
    demo.add_argument(
        "--seeds", type=seed_list, default=None, help="evaluation seeds, e.g. 100,101,102"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--reward", choices=REWARD_KINDS, default=None, help="environment reward")
    demo.add_argument(
        "--penalty", action="store_true", help="apply the 95%%-of-single-task accuracy penalty"
    )
    demo.add_argument("--gamma", type=float, default=None, help="discount factor")
    demo.add_argument("--exploration-c", type=float, default=None, help="Boltzmann-Gumbel C")

    add_train_parser(commands)
    add_list_parser(commands)
    add_run_parser(commands)
    add_compare_parser(commands)
    add_report_parser(commands)
    add_migrate_parser(commands)
    add_study_parser(commands)
    add_epilogs(parser)
    return parser


def _message(err: Exception) -> str:
    """The message of ``err`` (a `KeyError`'s without the quotes ``str`` adds)."""
    if isinstance(err, KeyError) and len(err.args) == 1:
        return str(err.args[0])
    return str(err)


def _unusable_store(command: str, db: Path, err: sqlite3.DatabaseError) -> SystemExit:
    """The one-line exit of ``command`` for a ``--db`` that SQLite cannot use."""
    return SystemExit(f"mtl-sched {command}: {db}: unusable results store ({err})")


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
        try:
            text, failures = listing(args)
        except (KeyError, ValueError) as err:
            raise SystemExit(f"mtl-sched list: {_message(err)}") from None
        print(text)
        if failures:
            raise SystemExit(f"mtl-sched list: cannot read {'; '.join(failures)}")
    elif args.command == "run":
        try:
            print(run_run(args))
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise SystemExit(f"mtl-sched run: {_message(err)}") from None
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
            raise SystemExit(f"mtl-sched compare: {_message(err)}") from None
        except sqlite3.DatabaseError as err:
            raise _unusable_store("compare", args.db, err) from None
        print(text)
        return status
    elif args.command == "report":
        try:
            print(run_report(args))
        except (OSError, ResultsStoreError, ValueError) as err:
            raise SystemExit(f"mtl-sched report: {err}") from None
        except sqlite3.DatabaseError as err:
            raise _unusable_store("report", args.db, err) from None
    elif args.command == "migrate":
        try:
            print(run_migrate(args))
        except (OSError, KeyError, ResultsStoreError, ValueError) as err:
            raise SystemExit(f"mtl-sched migrate: {_message(err)}") from None
        except sqlite3.DatabaseError as err:
            raise _unusable_store("migrate", args.db, err) from None
    elif args.command == "train-agent":
        return run_train_agent(args, benchmark_source_options(args))
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

"""``mtl-sched compare``: run every (scheduler, seed) of a benchmark into the results store.

Re-running the same command skips the trials already stored; ``mtl-sched report`` turns the
store into tables and figures. ``--leave-one-out`` runs seed 002's transfer study instead: each
scheduler trains the shared encoder on every task but one, and a new head on the frozen encoder
is cross-validated on the task left out.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from mtl_sched.cli.common import (
    add_benchmark_option_flag,
    add_benchmark_source,
    add_command,
    add_key_value_flag,
    add_tensorboard_arguments,
    benchmark_source_options,
    tensorboard_root,
)
from mtl_sched.script_args import comma_separated, parse_key_value, positive_int, seed_list
from mtl_sched.sweeps.backends import BACKENDS

# a trial that failed with one of these is reported by its message alone, not its traceback
_ONE_LINE_ERROR = re.compile(
    r"^[\w.]*\b(?:NonFiniteLossError|DataFormatError|AgentMismatchError): (.+)$"
)

_name_list = comma_separated(str, "names")
EXAMPLES = (
    "mtl-sched compare --benchmark synthetic --schedulers uniform,greedy,round-robin "
    "--param round-robin.tasks=easy,medium,hard",
    "mtl-sched compare --benchmark synthetic --schedulers uniform,temperature --seeds 0,1,2,3 "
    "--param temperature.temperature=5 --db synthetic.sqlite --workers 2",
    "mtl-sched compare --benchmark fdu-mtl --small --budget 12800 --schedulers uniform,qls "
    "--agent runs/qls-fdu --tensorboard runs/tensorboard",
    "mtl-sched compare --benchmark fdu-mtl --small --leave-one-out --left-out books,dvd "
    "--schedulers uniform,greedy --no-tensorboard",
)


def _scheduler_param(text: str) -> tuple[str, str, Any]:
    """``SCHEDULER.KEY=VALUE`` as ``(scheduler, key, value)``."""
    key, value = parse_key_value(text)
    scheduler, dot, name = key.partition(".")
    if not dot or not scheduler or not name:
        raise argparse.ArgumentTypeError(f"expected SCHEDULER.KEY=VALUE; got {text!r}")
    return scheduler.replace("_", "-"), name, value


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of where a sweep's trials run: ``--backend``, ``--workers``, ``--address``
    and ``--no-progress`` (read back by `sweep_options`).

    :param parser: the command's parser.
    """
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="where trials run")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="trials at once (local: 1 runs in this process, more use spawned processes)",
    )
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (default: start a local instance)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def sweep_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `run_sweep` keyword arguments of the flags `add_sweep_arguments` added.

    :param args: the parsed arguments.
    """
    return {
        "backend": args.backend,
        "workers": args.workers,
        "address": args.address,
        "progress": not args.no_progress,
    }


def add_compare_parser(commands: Any) -> None:
    """Add the ``compare`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    compare = add_command(
        commands,
        "compare",
        "run schedulers over seeds on a benchmark into a results store",
        EXAMPLES,
    )
    compare.add_argument("--benchmark", required=True, help="benchmark name")
    compare.add_argument(
        "--schedulers", type=_name_list, required=True, help="e.g. uniform,greedy,qls"
    )
    compare.add_argument("--seeds", type=seed_list, default=(0, 1, 2), help="e.g. 0,1,2")
    compare.add_argument(
        "--budget", type=positive_int, default=None, help="training examples per run"
    )
    compare.add_argument(
        "--db", type=Path, default=Path("results.sqlite"), help="results store (SQLite file)"
    )
    add_sweep_arguments(compare)
    compare.add_argument("--agent", type=Path, default=None, help="saved agent of 'qls'")
    add_key_value_flag(
        compare,
        "--param",
        "a scheduler's hyperparameter (repeatable; keys: 'list params SCHEDULER'); a list "
        "value as a,b,c or a JSON list",
        parse=_scheduler_param,
        metavar="SCHEDULER.KEY=VALUE",
    )
    add_benchmark_option_flag(compare, "probe_measure=entropy")
    compare.add_argument(
        "--leave-one-out",
        action="store_true",
        help="seed 002's transfer study: train without each task, cross-validate a new head",
    )
    compare.add_argument(
        "--left-out",
        type=_name_list,
        default=None,
        help="with --leave-one-out: the tasks to leave out (default: every task)",
    )
    compare.add_argument(
        "--folds", type=positive_int, default=5, help="cross-validation folds (--leave-one-out)"
    )
    add_benchmark_source(compare)
    add_tensorboard_arguments(compare, "tensorboard/ beside --db")


def compare_inputs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The benchmark options and each scheduler's hyperparameters of ``compare``'s flags,
    checked (names, keys, value types) and converted, before anything is built.

    :param args: parsed ``compare`` arguments.
    :raises KeyError: an unknown benchmark or scheduler, naming the known ones.
    :raises ValueError: an unknown key (naming the known ones), or a ``--param`` of a
        scheduler that ``--schedulers`` does not name.
    :raises TypeError: a value that does not fit its key's type.
    """
    from mtl_sched.benchmarks import benchmark_factory
    from mtl_sched.cli.keys import coerce_benchmark_options
    from mtl_sched.registry import coerce_hyperparameters

    benchmark_factory(args.benchmark)
    options = benchmark_source_options(args) | dict(args.option)
    options = coerce_benchmark_options(args.benchmark, options)
    raw: dict[str, dict[str, Any]] = defaultdict(dict)
    for scheduler, key, value in args.param:
        raw[scheduler][key] = value
    if unknown := sorted(set(raw) - set(args.schedulers)):
        raise ValueError(
            f"--param sets {', '.join(unknown)}, which --schedulers does not name "
            f"({','.join(args.schedulers)})"
        )
    params = {name: coerce_hyperparameters(name, raw.get(name, {})) for name in args.schedulers}
    return options, {name: values for name, values in params.items() if values}


def run_compare(args: argparse.Namespace) -> tuple[str, int]:
    """Run the sweep ``args`` describe; return the summary text and the exit status.

    :param args: parsed ``compare`` arguments.
    """
    from mtl_sched.results import ResultsStore
    from mtl_sched.sweeps import plan_trials, run_sweep
    from mtl_sched.sweeps.logged_trial import with_tensorboard
    from mtl_sched.sweeps.spec import cached_benchmark

    # unknown names, keys and values fail here, before any training
    options, params = compare_inputs(args)
    cached_benchmark(args.benchmark, options)  # so do bad probe options (nothing is loaded)
    if args.left_out is not None and not args.leave_one_out:
        raise ValueError("--left-out needs --leave-one-out")
    if "qls" in args.schedulers and args.agent is None and "agent" not in params.get("qls", {}):
        raise ValueError("--schedulers includes qls, which needs --agent PATH (a saved agent)")
    if args.agent is not None and "qls" not in args.schedulers:
        raise ValueError(
            "--agent is read by the qls scheduler only, which --schedulers does not name"
        )
    if args.agent is not None and not args.agent.exists():
        raise ValueError(f"--agent {args.agent} does not exist")
    with ResultsStore(args.db):  # an unusable --db fails here, before any training
        pass
    left_out = None
    if args.leave_one_out:
        tasks = cached_benchmark(args.benchmark, options).task_names
        left_out = list(args.left_out or tasks)
        if unknown := [name for name in left_out if name not in tasks]:
            raise ValueError(
                f"--left-out names {', '.join(unknown)}; {args.benchmark} has tasks "
                f"{', '.join(tasks)}"
            )
    specs = plan_trials(
        args.benchmark,
        args.schedulers,
        args.seeds,
        benchmark_options=options,
        budget=args.budget,
        scheduler_params=params,
        agent=args.agent,
        left_out=left_out,
        folds=args.folds,
    )
    root = tensorboard_root(args, args.db.parent / "tensorboard")
    jobs = specs if root is None else with_tensorboard(specs, root)
    summary = run_sweep(jobs, args.db, **sweep_options(args))
    summary.failures = [(label, one_line_error(error)) for label, error in summary.failures]
    text = summary.describe(args.db)
    if not summary.failures:
        report = f"mtl-sched report --db {args.db} --benchmark {args.benchmark}"
        text += f"\ntables and figures: {report}"
    if root is not None:
        text += f"\nTensorBoard events: tensorboard --logdir {root}"
    return text, 1 if summary.failures else 0


def one_line_error(error: str) -> str:
    """The message of a failed trial's `NonFiniteLossError`, `DataFormatError` or
    `AgentMismatchError` (errors of the data, the model or a trained agent given, whose
    traceback says nothing more); any other error unchanged.

    :param error: the failure text of a trial (a formatted traceback).
    """
    for line in reversed(error.splitlines()):
        match = _ONE_LINE_ERROR.match(line)
        if match:
            return match.group(1)
    return error

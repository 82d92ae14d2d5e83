"""``mtl-sched list``: what is available and which keys the ``KEY=VALUE`` flags take.

- ``list schedulers`` / ``list benchmarks``: the registered names (benchmarks with their tasks
  and split sizes, or why their data cannot be read);
- ``list settings``: the ``train-agent --setting`` keys;
- ``list options BENCHMARK``: the ``--option`` keys of a benchmark;
- ``list params SCHEDULER``: the ``--param`` keys (hyperparameters) of a scheduler.

The keys are listed with their types, defaults and the first sentence of their documentation
(`mtl_sched.cli.keys`).
"""

from __future__ import annotations

import argparse
from typing import Any

from mtl_sched.cli.common import add_benchmark_source, add_command, benchmark_source_options

LISTINGS = ("schedulers", "benchmarks", "settings", "options", "params")
_NEEDS_NAME = {"options": "BENCHMARK", "params": "SCHEDULER"}
EXAMPLES = (
    "mtl-sched list schedulers",
    "mtl-sched list benchmarks --small",
    "mtl-sched list settings",
    "mtl-sched list options synthetic",
    "mtl-sched list params round-robin",
)


def add_list_parser(commands: Any) -> None:
    """Add the ``list`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    listing = add_command(
        commands,
        "list",
        "list schedulers, benchmarks, agent settings, benchmark options or hyperparameters",
        EXAMPLES,
    )
    listing.add_argument("what", choices=LISTINGS)
    listing.add_argument(
        "name", nargs="?", default=None, help="benchmark of 'options', scheduler of 'params'"
    )
    add_benchmark_source(listing)


def check_list_arguments(args: argparse.Namespace) -> None:
    """Refuse a listing without the name it needs, or with one it does not take.

    :param args: parsed ``list`` arguments.
    :raises ValueError: naming what to give.
    """
    needed = _NEEDS_NAME.get(args.what)
    if needed is not None and args.name is None:
        raise ValueError(f"give the {needed.lower()}: mtl-sched list {args.what} {needed}")
    if needed is None and args.name is not None:
        raise ValueError(f"'list {args.what}' takes no name; got {args.name!r}")
    if args.what == "options":
        from mtl_sched.benchmarks import benchmark_factory

        benchmark_factory(args.name)
    elif args.what == "params":
        from mtl_sched.registry import scheduler_class

        scheduler_class(args.name)


def _schedulers() -> str:
    from mtl_sched.registry import scheduler_infos

    infos = scheduler_infos()
    width = max(len(i.name) for i in infos)
    return "\n".join(
        f"{i.name.ljust(width)}  [{i.kind}] {i.description} ({i.source})" for i in infos
    )


def _benchmarks(options: dict[str, Any]) -> tuple[str, list[str]]:
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


def listing(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The listing ``args`` ask for, and one line per benchmark whose data could not be read.

    :param args: parsed ``list`` arguments.
    :raises KeyError: an unknown benchmark or scheduler name, naming the known ones.
    :raises ValueError: a missing or extra name.
    """
    from mtl_sched.cli.keys import format_keys, option_keys, param_keys, setting_keys

    check_list_arguments(args)
    if args.what == "schedulers":
        return _schedulers(), []
    if args.what == "benchmarks":
        return _benchmarks(benchmark_source_options(args))
    if args.what == "settings":
        title = "train-agent --setting KEY=VALUE (AgentSettings):"
        return format_keys(title, setting_keys()), []
    if args.what == "options":
        title = f"--option KEY=VALUE of benchmark {args.name!r}:"
        return format_keys(title, option_keys(args.name)), []
    title = f"--param KEY=VALUE of scheduler {args.name!r} (compare: {args.name}.KEY=VALUE):"
    return format_keys(title, param_keys(args.name)), []

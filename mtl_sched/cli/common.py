"""Flags and help text that several ``mtl-sched`` commands share.

- `add_benchmark_source` / `benchmark_source_options`: ``--data-dir`` and ``--small``;
- `add_tensorboard_arguments` / `tensorboard_root`: ``--tensorboard DIR`` and
  ``--no-tensorboard``;
- `command_epilog`: the listings line and a command's examples, shown at the end of its
  ``--help`` (`mtl_sched.cli.examples` checks every example there); `add_command` adds a
  command with that epilog;
- `add_key_value_flag` / `add_benchmark_option_flag`: a repeatable ``KEY=VALUE`` flag, and
  ``--option`` (a benchmark option) in particular.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtl_sched.script_args import parse_key_value

# Quoted so that no line starts with "mtl-sched": such lines are examples, checked as such.
LISTINGS = (
    "listings: 'mtl-sched list schedulers|benchmarks|settings' (--setting keys),\n"
    "  'mtl-sched list options BENCHMARK' (--option keys), "
    "'mtl-sched list params SCHEDULER' (--param keys)"
)
# What `command_epilog` and `add_epilogs` give a parser: its epilog keeps its line breaks.
EPILOG_FORMATTER = argparse.RawDescriptionHelpFormatter


def command_epilog(examples: Sequence[str] = ()) -> str:
    """A command's ``--help`` epilog: the listings line, then its example command lines.

    :param examples: complete command lines (each starting with ``mtl-sched``).
    """
    text = LISTINGS
    if examples:
        text += "\n\nexamples:\n" + "\n".join(f"  {line}" for line in examples)
    return text


def add_command(
    commands: Any, name: str, summary: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """Add the command ``name``, its examples shown at the end of its ``--help``.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    :param name: the command's name.
    :param summary: the one-line help of the command in the listing of commands.
    :param examples: complete command lines (each starting with ``mtl-sched``).
    :returns: the command's parser.
    """
    return commands.add_parser(
        name, help=summary, epilog=command_epilog(examples), formatter_class=EPILOG_FORMATTER
    )


def add_epilogs(parser: argparse.ArgumentParser) -> None:
    """Give every command under ``parser`` that has no epilog the listings line.

    :param parser: the top-level parser, its subcommands already added.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if not command.epilog:
                    command.epilog = LISTINGS
                    command.formatter_class = EPILOG_FORMATTER
                add_epilogs(command)


def add_benchmark_source(command: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` and ``--small`` (read back by `benchmark_source_options`).

    :param command: the command's parser.
    """
    command.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $MTL_SCHED_DATA)"
    )
    command.add_argument(
        "--small", action="store_true", help="the benchmark's small variant (tests, smoke runs)"
    )


def benchmark_source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The factory options that ``--data-dir`` and ``--small`` ask for (only those given).

    :param args: the parsed arguments.
    """
    options: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        options["data_dir"] = str(args.data_dir)
    if getattr(args, "small", False):
        options["small"] = True
    return options


def add_key_value_flag(
    command: argparse.ArgumentParser,
    flag: str,
    help_text: str,
    parse: Callable[[str], Any] = parse_key_value,
    metavar: str = "KEY=VALUE",
) -> None:
    """Add a repeatable ``flag`` whose parsed values are collected in a list (empty by default).

    :param command: the command's parser.
    :param flag: the flag, e.g. ``"--param"``.
    :param help_text: the flag's help.
    :param parse: turns one value into what the list holds (`parse_key_value` by default).
    :param metavar: the value's name in the help.
    """
    command.add_argument(
        flag, type=parse, action="append", default=[], metavar=metavar, help=help_text
    )


def add_benchmark_option_flag(command: argparse.ArgumentParser, example: str) -> None:
    """Add ``--option KEY=VALUE``, a benchmark option (repeatable).

    :param command: the command's parser.
    :param example: a ``KEY=VALUE`` shown in the help.
    """
    add_key_value_flag(
        command,
        "--option",
        f"benchmark option (repeatable; keys: 'list options BENCHMARK'), e.g. --option {example}",
    )


def add_tensorboard_arguments(command: argparse.ArgumentParser, default: str) -> None:
    """Add ``--tensorboard DIR`` and ``--no-tensorboard`` (read back by `tensorboard_root`).

    :param command: the command's parser.
    :param default: where the events go without ``--tensorboard``, for the help text.
    """
    group = command.add_mutually_exclusive_group()
    group.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "write validation curves and task shares as TensorBoard events under DIR, one "
            f"folder per benchmark/scheduler-seed (default: {default}; needs the tensorboard "
            "package, without which no events are written)"
        ),
    )
    group.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard events")


def tensorboard_root(args: argparse.Namespace, default: Path) -> Path | None:
    """The TensorBoard root the flags ask for; ``None`` for ``--no-tensorboard``, or when
    tensorboard is not installed and ``--tensorboard`` was not given.

    :param args: the parsed arguments.
    :param default: the root without ``--tensorboard``.
    :raises ValueError: ``--tensorboard DIR`` without the tensorboard package.
    """
    from mtl_sched.training.tensorboard import tensorboard_available

    if args.no_tensorboard:
        return None
    if not tensorboard_available():
        if args.tensorboard is not None:
            raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")
        return None
    return args.tensorboard if args.tensorboard is not None else default

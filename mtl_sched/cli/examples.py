"""Whether a documented ``mtl-sched`` command line would be accepted, checked without running it.

`check_command_line` parses a command line with the real parser and then checks what the
commands check before they build anything: the benchmark and scheduler names, and every
``--setting``, ``--option`` and ``--param`` key and value type. It calls the commands' own
checks (`mtl_sched.cli.run.run_inputs`, `mtl_sched.cli.compare.compare_inputs`,
`mtl_sched.cli.train_agent.check_train_inputs`, `mtl_sched.cli.list.check_list_arguments`), so a
documented example and the command cannot disagree.

The examples come from `help_examples` (the command lines in every command's ``--help``, and
each ``e.g. --flag VALUE`` of an argument's help, completed into a command line) and from
`markdown_examples` (the ``mtl-sched`` lines of a Markdown file's shell blocks).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Values of the flags an ``e.g.`` example of another flag of the same command is completed with
# (every required flag needs one; ``run`` needs a scheduler to check ``--param``).
PLACEHOLDERS = {
    "benchmark": "synthetic",
    "scheduler": "uniform",
    "schedulers": "uniform",
    "out": "runs/example",
    "db": "results.sqlite",
}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FOR_EXAMPLE = re.compile(r"e\.g\. (\S+)(?: (\S+))?")


# the info strings of fenced blocks read as shell commands
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "shell-session", "zsh"})
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_HEADING = re.compile(r"^#{1,2} (?P<title>.*?)[ #]*$")
# a line whose command runs ``mtl-sched`` (after a prompt and environment assignments)
_COMMAND_LINE = re.compile(
    r"^\s*(?:\$\s+)?(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:mtl-sched|python3? -m mtl_sched)(?:\s|$)"
)


class ExampleError(ValueError):
    """A documented command line that the command would refuse."""


@dataclass(frozen=True)
class FencedBlock:
    """One fenced code block of a Markdown text.

    :param info: the first word of the fence's info string, lower-cased (``"python"``,
        ``"bash"``, ``""``).
    :param section: the title of the level-1 or level-2 heading the block is under (``""``
        before the first).
    :param line: the line of its opening fence (1-based).
    :param lines: its lines, without the fence's indentation.
    :param preceding: the last non-blank line before the fence, stripped (where a marker such
        as ``<!-- not-run: reason -->`` stands).
    """

    info: str
    section: str
    line: int
    lines: tuple[str, ...]
    preceding: str = ""


def _parse(argv: Sequence[str]) -> argparse.Namespace | None:
    """``argv`` parsed by the real parser; ``None`` for ``--help``/``--version``."""
    from mtl_sched.cli import build_parser

    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(list(argv))
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return None
        lines = messages.getvalue().strip().splitlines()
        raise ExampleError(lines[-1] if lines else f"argparse exit {exit_.code}") from None


def _unverifiable_plugins(modules: Sequence[str]) -> bool:
    """Import the ``--import`` modules; ``True`` when one cannot be found (its names are then
    unknown here)."""
    if any(importlib.util.find_spec(module) is None for module in modules):
        return True
    for module in modules:
        importlib.import_module(module)
    return False


def _registered(benchmarks: Sequence[str], schedulers: Sequence[str]) -> bool:
    from mtl_sched.benchmarks import benchmark_names
    from mtl_sched.registry import scheduler_names

    return set(benchmarks) <= set(benchmark_names()) and set(schedulers) <= set(scheduler_names())


def _check_train_agent(args: argparse.Namespace, lenient: bool) -> None:
    from mtl_sched.agents.settings import AgentSettings
    from mtl_sched.cli.common import benchmark_source_options
    from mtl_sched.cli.train_agent import (
        DEFAULT_BENCHMARK,
        benchmark_list,
        check_train_inputs,
        task_subset_bounds,
    )

    if args.task_subsets is not None:
        task_subset_bounds(args.task_subsets)
    text = args.benchmark or DEFAULT_BENCHMARK
    if lenient and not _registered(text.split(","), []):
        return
    options = benchmark_source_options(args) | dict(args.option)
    settings = dict(args.setting)
    check_train_inputs(benchmark_list(text).split(","), options, settings)
    if not args.resume:  # a resumed run's settings combine with the stored ones
        AgentSettings.from_options(settings)


def check_command_line(argv: Sequence[str]) -> None:
    """Check a command line (without the leading ``mtl-sched``) as the command would, short
    of building a benchmark: flags, names, keys and value types.

    With an ``--import`` module that cannot be found here, benchmark and scheduler names that
    are not registered may be the module's: their keys are not checked.

    :param argv: the arguments.
    :raises ExampleError: naming what the command would refuse.
    """
    from mtl_sched.cli.compare import compare_inputs
    from mtl_sched.cli.list import check_list_arguments
    from mtl_sched.cli.run import run_inputs

    args = _parse(argv)
    if args is None:
        return
    lenient = _unverifiable_plugins(args.plugins)
    try:
        if args.command == "run":
            schedulers = [args.scheduler] if args.scheduler else []
            if not lenient or _registered([args.benchmark], schedulers):
                run_inputs(args)
        elif args.command == "compare":
            if not lenient or _registered([args.benchmark], args.schedulers):
                compare_inputs(args)
        elif args.command == "train-agent":
            _check_train_agent(args, lenient)
        elif args.command == "list" and not lenient:
            check_list_arguments(args)
    except (KeyError, TypeError, ValueError) as err:
        raise ExampleError(str(err).strip("'\"")) from None


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _flag_example(match: re.Match[str], action: argparse.Action) -> list[str]:
    """The ``--flag VALUE`` of an ``e.g.`` in ``action``'s help (``e.g. 0,1,2`` is the
    action's own flag's value)."""
    first, second = match.group(1), match.group(2)
    if first.startswith("--"):
        words = [first] if second is None else [first, second]
    else:
        long_flags = [o for o in action.option_strings if o.startswith("--")]
        words = [long_flags[0], first]
    value = words[-1]
    # the example may end a parenthesis or a clause of the help text
    while value and (
        value[-1] in ",;." or (value[-1] == ")" and value.count(")") > value.count("("))
    ):
        value = value[:-1]
    return [*words[:-1], value]


def _completed(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``words`` with a `PLACEHOLDERS` value for each flag of the table they lack.

    :raises KeyError: for a required flag the table lacks.
    """
    for action in parser._actions:
        if not action.option_strings or action.option_strings[0] in words:
            continue
        if action.dest in PLACEHOLDERS:
            words = [*words, action.option_strings[0], PLACEHOLDERS[action.dest]]
        elif action.required:
            raise KeyError(f"no placeholder for the required flag {action.option_strings[0]}")
    return words


def help_examples(
    parser: argparse.ArgumentParser, path: Sequence[str] = ()
) -> list[tuple[str, list[str]]]:
    """Every example of the ``--help`` texts of ``parser`` and its subcommands, as
    ``(where, argv)``: each line starting with ``mtl-sched`` (the epilogs' examples), and each
    ``e.g.`` of an optional argument's help, completed with `PLACEHOLDERS` for the required
    flags.

    :param parser: the ``mtl-sched`` parser (`mtl_sched.cli.build_parser`).
    :param path: the subcommand names leading to ``parser`` (for the recursion).
    """
    where = " ".join(["mtl-sched", *path, "--help"])
    examples = []
    for line in parser.format_help().splitlines():
        if line.strip().startswith("mtl-sched "):
            examples.append((where, shlex.split(line.strip())[1:]))
    for action in parser._actions:
        if not action.option_strings or not action.help:
            continue
        for match in _FOR_EXAMPLE.finditer(" ".join(action.help.split())):
            words = _flag_example(match, action)
            examples.append((f"{where} ({words[0]})", [*path, *_completed(parser, words)]))
    for name, command in _subcommands(parser):
        examples += help_examples(command, [*path, name])
    return examples


def fenced_blocks(text: str) -> list[FencedBlock]:
    """The fenced code blocks of the Markdown ``text``, in order. Fences may be indented (in a
    list item); a ``#`` line inside a block is code, not a heading.

    :param text: the Markdown.
    :raises ValueError: when a fence is never closed.
    """
    blocks: list[FencedBlock] = []
    section, preceding = "", ""
    opening: tuple[int, re.Match[str], str] | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = _FENCE.match(line)
        if opening is None:
            if fence:
                opening, body = (number, fence, preceding), []
            elif heading := _HEADING.match(line):
                section = heading.group("title")
            preceding = line.strip() or preceding
            continue
        start, opened, before = opening
        if fence and not fence.group("info") and fence.group("fence").startswith(opened["fence"]):
            info = opened.group("info").split(" ")[0].lower()
            blocks.append(FencedBlock(info, section, start, tuple(body), before))
            opening, preceding = None, line.strip()
            continue
        indent = len(opened.group("indent"))
        body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
    if opening is not None:
        raise ValueError(f"text: the fence opened on line {opening[0]} is never closed")
    return blocks


def _is_shell(block: FencedBlock) -> bool:
    """Whether ``block`` holds shell commands: its language says so, or it is unlabelled and
    its first command runs ``mtl-sched`` (a Python, Mermaid or output block never is)."""
    if block.info in SHELL_LANGUAGES:
        return True
    commands = [line for line in block.lines if line.strip() and line.lstrip()[0] != "#"]
    return not block.info and bool(commands) and bool(_COMMAND_LINE.match(commands[0]))


def _commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, split at ``;``, ``&&``, ``||`` and ``|``, with
    comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word.strip(";&|"):
            commands[-1].append(word)
        else:
            commands.append([])
    return [words for words in commands if words]


def markdown_examples(text: str, source: str = "README.md") -> list[tuple[str, list[str]]]:
    """The ``mtl-sched`` command lines of ``text``'s shell blocks, as ``(where, argv)``, where
    ``where`` is ``SOURCE:LINE (SECTION)`` (the level-1 or level-2 heading, when there is one).

    Shell blocks are ```` ```bash ````, ``sh``, ``shell``, ``console`` and unlabelled blocks
    whose first command runs ``mtl-sched``; Python and other blocks are never read. In a
    ``console`` block, or one whose first line has a ``$`` prompt, only prompted lines are
    commands (the others are output). Continued lines (ending with a backslash) are joined,
    comments and leading environment assignments (``OMP_NUM_THREADS=1``) dropped, and
    ``python -m mtl_sched`` counts as ``mtl-sched``; after ``export MTL_SCHED_IMPORT=MODULE``
    in a block, or with the assignment before the command, it gets ``--import MODULE``, as
    the variable does.

    :param text: the Markdown.
    :param source: the file's name, for ``where``.
    :raises ExampleError: for an ``mtl-sched`` line the shell could not split (an unclosed
        quotation).
    """
    examples: list[tuple[str, list[str]]] = []
    for block in filter(_is_shell, fenced_blocks(text)):
        first = next((line for line in block.lines if line.strip()), "")
        transcript = block.info == "console" or first.lstrip().startswith("$")
        imports: list[str] = []
        pending, start = "", 0
        for offset, line in enumerate(block.lines, start=block.line + 1):
            if not pending:
                start = offset
            pending += line.rstrip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            logical, pending = pending.strip(), ""
            if transcript and not logical.startswith("$"):
                continue
            where = f"{source}:{start}" + (f" ({block.section})" if block.section else "")
            try:
                commands = _commands(logical.removeprefix("$"))
            except ValueError as err:
                if _COMMAND_LINE.match(logical):
                    raise ExampleError(f"{where}: {err}") from None
                continue  # not a command line of ours
            for words in commands:
                argv, imports = _example(words, imports)
                if argv is not None:
                    examples.append((where, argv))
    return examples


def _example(words: list[str], imports: list[str]) -> tuple[list[str] | None, list[str]]:
    """The arguments of the simple command ``words`` when it runs ``mtl-sched`` (else
    ``None``), and the ``--import`` flags of the block after it."""
    if words[:1] == ["export"]:
        for assignment in words[1:]:
            imports = _imported(assignment, imports)
        return None, imports
    own_imports = imports
    while words and _ASSIGNMENT.match(words[0]):
        own_imports, words = _imported(words[0], own_imports), words[1:]
    if words[:3] in (["python", "-m", "mtl_sched"], ["python3", "-m", "mtl_sched"]):
        words = ["mtl-sched", *words[3:]]
    if words[:1] != ["mtl-sched"]:
        return None, imports
    return [*own_imports, *words[1:]], imports


def _imported(assignment: str, imports: list[str]) -> list[str]:
    """``imports`` after the shell assignment ``assignment`` (``MTL_SCHED_IMPORT=a,b`` sets
    them; other variables leave them)."""
    name, _, value = assignment.partition("=")
    if name != "MTL_SCHED_IMPORT":
        return imports
    return [word for module in value.split(",") if module for word in ("--import", module)]

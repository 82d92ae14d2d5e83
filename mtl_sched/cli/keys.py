"""The ``KEY=VALUE`` keys of the command line: what they are and whether a given one exists.

Three flags take keys: ``train-agent --setting`` (the fields of `AgentSettings`), ``--option``
(the keyword arguments of a benchmark's factory, plus the probe options every benchmark takes)
and ``run --param``/``compare --param`` (a scheduler's constructor arguments). Each key is
described by `KeyInfo`: its type and default from the signature, its help from the ``:param:``
line of the docstring. ``mtl-sched list settings|options BENCHMARK|params SCHEDULER`` prints
these descriptions; `check_setting_keys`, `coerce_benchmark_options` and
`mtl_sched.registry.coerce_hyperparameters` refuse unknown keys (naming the known ones) and
convert values to the declared types, for the commands and for the check of the documented
examples alike.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mtl_sched.script_args import check_keys, coerce_keyword_values, describe_type

SETTINGS_HINT = " (see 'mtl-sched list settings')"
OPTIONS_HINT = " (see 'mtl-sched list options {}')"

_PARAM_LINE = re.compile(r"^\s*:param\s+(\w+):\s*(.*)$")
_FIELD_END = re.compile(r"^\s*(:\w+|$)")
# Probe options are not factory arguments (`Benchmark.with_probe_options` applies them): the
# `ProbeConfig` field each one sets, whose docstring describes it.
_PROBE_FIELDS = {
    "probe_pool": "pool_size",
    "probe_hard": "hard_size",
    "probe_measure": "measure",
    "probe_selection": "selection",
    "probe_refresh": "refresh",
}
_COUNT_OR_ALL = ("probe_pool", "probe_hard", "probe_refresh")


@dataclass(frozen=True)
class KeyInfo:
    """One ``KEY=VALUE`` key as the listings show it.

    :param name: the key.
    :param type: its type, as error messages name it (``int or None``, ``one of 'a', 'b'``).
    :param default: its default, as Python writes it, or a phrase (``"the benchmark's"``).
    :param help: one line from the docstring (empty when the docstring says nothing).
    """

    name: str
    type: str
    default: str
    help: str


def docstring_params(*objects: Any) -> dict[str, str]:
    """The ``:param name: text`` entries of the objects' docstrings, each on one line with
    reStructuredText's backquotes removed (the first object naming a parameter wins).

    :param objects: classes or functions.
    """
    found: dict[str, str] = {}
    for obj in objects:
        name, text = None, []
        for line in [*inspect.cleandoc(obj.__doc__ or "").splitlines(), ""]:
            match = _PARAM_LINE.match(line)
            if name is not None and (match or _FIELD_END.match(line)):
                found.setdefault(name, " ".join(text))
                name = None
            if match:
                name, text = match.group(1), [match.group(2).strip()]
            elif name is not None:
                text.append(line.strip())
    return {key: re.sub(r"`{1,2}([^`]*)`{1,2}", r"\1", value) for key, value in found.items()}


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop or semicolon outside parentheses (the one line a
    listing shows).

    :param text: a docstring entry.
    """
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ".;" and text[i + 1 : i + 2] in (" ", ""):
            return text[:i]
    return text


def _default_text(default: Any) -> str:
    return "required" if default is inspect.Parameter.empty else repr(default)


def _signature_keys(
    function: Any, hints: Mapping[str, Any], helps: Mapping[str, str]
) -> list[KeyInfo]:
    keys = []
    for name, param in inspect.signature(function).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind = hints.get(name, param.annotation)
        described = "any" if kind is inspect.Parameter.empty else describe_type(kind)
        keys.append(KeyInfo(name, described, _default_text(param.default), helps.get(name, "")))
    return keys


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except (NameError, TypeError):
        return {}  # annotations naming types imported for type checking only stay unchecked


def setting_keys() -> list[KeyInfo]:
    """The ``train-agent --setting`` keys: the fields of `AgentSettings`."""
    from mtl_sched.agents.settings import AgentSettings

    hints, helps = _hints(AgentSettings), docstring_params(AgentSettings)
    return [
        KeyInfo(f.name, describe_type(hints[f.name]), repr(f.default), helps.get(f.name, ""))
        for f in dataclasses.fields(AgentSettings)
    ]


def check_setting_keys(keys: Iterable[str]) -> None:
    """Refuse ``--setting`` keys that are not `AgentSettings` fields.

    :param keys: the keys given.
    :raises UnknownKeyError: naming the key and the known ones.
    """
    from mtl_sched.agents.settings import AgentSettings

    known = [f.name for f in dataclasses.fields(AgentSettings)]
    check_keys(keys, known, "the agent", "setting", SETTINGS_HINT)


def _probe_keys() -> list[KeyInfo]:
    from mtl_sched.benchmarks.base import PROBE_OPTIONS, Benchmark
    from mtl_sched.observation.probing import ProbeConfig

    hints, helps = _hints(ProbeConfig), docstring_params(ProbeConfig, Benchmark)
    keys = []
    for name in PROBE_OPTIONS:
        field_name = _PROBE_FIELDS.get(name, name)
        if name in _COUNT_OR_ALL:
            kind = "int or 'all'"
        elif field_name in hints:
            kind = describe_type(hints[field_name])
        else:
            kind = "int"
        keys.append(KeyInfo(name, kind, "the benchmark's", helps.get(field_name, "")))
    return keys


def _takes_any_keyword(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True  # nothing to check against: the factory decides
    return any(p.kind is p.VAR_KEYWORD for p in parameters)


def option_keys(benchmark: str) -> list[KeyInfo]:
    """The ``--option`` keys of ``benchmark``: its factory's keyword arguments, then the probe
    options every benchmark takes (`mtl_sched.benchmarks.base.PROBE_OPTIONS`).

    :param benchmark: registered benchmark name.
    :raises KeyError: naming the known benchmarks, for an unknown name.
    """
    from mtl_sched.benchmarks import benchmark_factory

    factory = benchmark_factory(benchmark)
    keys = _signature_keys(factory, _hints(factory), docstring_params(factory))
    taken = {key.name for key in keys}
    return keys + [key for key in _probe_keys() if key.name not in taken]


def coerce_benchmark_options(benchmark: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``benchmark``'s keys and converted to their declared types
    (``hidden_sizes=16,8`` -> ``(16, 8)``), before anything is built.

    An unregistered benchmark is left to `mtl_sched.benchmarks.get_benchmark` (whose error
    names the known ones), as is a factory that takes any keyword.

    :param benchmark: benchmark name.
    :param options: option name -> value, e.g. parsed from ``--option KEY=VALUE``.
    :raises UnknownKeyError: naming the benchmark, the key and the known keys.
    :raises TypeError: ``benchmark option '<key>' expects <type>; got <value>``.
    """
    from mtl_sched.benchmarks import benchmark_factory, benchmark_names

    if benchmark not in benchmark_names():
        return dict(options)
    factory = benchmark_factory(benchmark)
    if not _takes_any_keyword(factory):
        known = [key.name for key in option_keys(benchmark)]
        check_keys(
            options, known, f"benchmark {benchmark!r}", "option", OPTIONS_HINT.format(benchmark)
        )
    hints = _hints(factory)
    hints.pop("return", None)
    return coerce_keyword_values(hints, options, "benchmark option")


def param_keys(scheduler: str) -> list[KeyInfo]:
    """The ``--param`` keys of ``scheduler``: its constructor's keyword arguments.

    :param scheduler: registered scheduler name.
    :raises KeyError: naming the known schedulers, for an unknown name.
    """
    from mtl_sched.registry import scheduler_class, scheduler_hyperparameters

    cls = scheduler_class(scheduler)
    helps = docstring_params(cls, cls.__init__)
    return [
        KeyInfo(
            name,
            "any" if p.annotation is inspect.Parameter.empty else describe_type(p.annotation),
            _default_text(p.default),
            helps.get(name, ""),
        )
        for name, p in scheduler_hyperparameters(scheduler).items()
    ]


def format_keys(title: str, keys: Iterable[KeyInfo]) -> str:
    """A listing: ``title``, then one ``name (type, default ...)`` line per key with the first
    sentence of its help indented below.

    :param title: the first line.
    :param keys: the keys.
    """
    lines = [title]
    for key in keys:
        lines.append(f"  {key.name} ({key.type}; default {key.default})")
        if key.help:
            indent = " " * 6
            lines += textwrap.wrap(
                first_sentence(key.help), 100, initial_indent=indent, subsequent_indent=indent
            )
    if len(lines) == 1:
        lines.append("  (none)")
    return "\n".join(lines)

"""Command-line parsing shared by the runnable scripts: a typed dataclass becomes the flags.

Each field of the arguments dataclass becomes ``--field-name`` (dashes for underscores), with
``field(metadata={"help": ...})`` as its help text. The field's type decides the flag:

- ``bool``: a switch (``--flag`` sets it; ``--no-flag`` clears it when the default is true);
- ``list[T]``: repeatable (``--option a --option b``);
- ``tuple[T, ...]``: a flag taking several values (``--baselines uniform round-robin``); given
  twice, it takes the values of both;
- ``T | None``: a value of type ``T``;
- anything else: a value converted by the type itself.

`parse_key_value` reads the ``KEY=VALUE`` pairs of ``--option``/``--setting`` flags;
`comma_separated` makes argparse types for lists such as ``--seeds 0,1,2``, and `seed_list` is
the one for seeds (distinct, non-negative). `coerce_value` and `coerce_keyword_values` check such
values against the types a function or dataclass declares; a list- or tuple-typed value may be
given as ``a,b,c`` as well as a Python or JSON list. `check_keys` refuses unknown keys with an
`UnknownKeyError` naming the known ones.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import json
import numbers
import os
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

ArgsT = TypeVar("ArgsT")
ItemT = TypeVar("ItemT")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1.

    :param text: the flag's value.
    :raises argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text}")
    return value


def comma_separated(
    convert: Callable[[str], ItemT], kind: str
) -> Callable[[str], tuple[ItemT, ...]]:
    """An argparse ``type`` reading ``"a,b,c"`` as a non-empty tuple of ``convert``-ed values.

    :param convert: converts one item (``int``, ``float``, ``str.strip``...).
    :param kind: what the items are, for the error message (e.g. ``"integers"``).
    """

    def parse(text: str) -> tuple[ItemT, ...]:
        try:
            values = tuple(convert(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind}; got {text!r}"
            ) from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one of the {kind}; got {text!r}")
        return values

    return parse


def seed_list(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated seeds, each a non-negative integer given once.

    :param text: the flag's value, e.g. ``"0,1,2"``.
    :raises argparse.ArgumentTypeError: for anything else (a negative or repeated seed included).
    """
    seeds = comma_separated(int, "integers")(text)
    if negative := [seed for seed in seeds if seed < 0]:
        raise argparse.ArgumentTypeError(f"seeds must be non-negative; got {negative[0]}")
    if repeated := sorted({seed for seed in seeds if seeds.count(seed) > 1}):
        raise argparse.ArgumentTypeError(
            f"seed {repeated[0]} is given twice in {text!r}; give each seed once"
        )
    return seeds


def parse_value(raw: str) -> Any:
    """A command-line value: a Python literal (``4``, ``(16, 8)``, ``['a', 'b']``), else JSON
    (``true``, ``null``, ``{"a": 1}``), else the text itself (a bare word is a string).

    ``a,b,c`` stays one string unless its items are literals (``64,32`` is ``(64, 32)``);
    `coerce_value` splits it for a list- or tuple-typed parameter only.

    :param raw: the text after ``KEY=``.
    """
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_key_value(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` as ``(key, value)``, the value read by `parse_value`.

    Dashes in the key become underscores, so ``steps-per-action=4`` names ``steps_per_action``;
    in a scoped key (``fdu-mtl.budget``) only the part after the last dot changes.

    :param text: the pair.
    :raises argparse.ArgumentTypeError: when there is no ``=`` or no key.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    scope, dot, name = key.rpartition(".")
    return scope + dot + name.replace("-", "_"), parse_value(raw)


class UnknownKeyError(ValueError, TypeError):
    """A ``KEY=VALUE`` key that the setting, option or hyperparameter list does not have.

    A `ValueError` (bad input); also a `TypeError`, which a call with that unknown keyword
    would have raised, so existing handlers of either still catch it.
    """


def check_keys(
    given: Iterable[str], known: Collection[str], owner: str, what: str, hint: str = ""
) -> None:
    """Refuse keys of ``given`` that are not in ``known``, naming the known ones.

    :param given: the keys given (e.g. of ``--option KEY=VALUE`` flags).
    :param known: the valid keys.
    :param owner: what has the keys, for the message (e.g. ``"benchmark 'synthetic'"``).
    :param what: what one key names, for the message (e.g. ``"option"``).
    :param hint: appended to the message (e.g. the listing command that describes the keys).
    :raises UnknownKeyError: ``<owner> has no <what> '<key>' (did you mean ...?); its <what>s:
        ...``.
    """
    for key in given:
        if key in known:
            continue
        close = difflib.get_close_matches(key, list(known), n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        listed = ", ".join(known) or "none"
        raise UnknownKeyError(f"{owner} has no {what} {key!r}{guess}; its {what}s: {listed}{hint}")


class _Mismatch(Exception):
    pass


def _split_items(text: str, item: Any) -> list[Any]:
    """``"a,b,c"`` as the items of a list of ``item``: each kept as text when ``item`` takes
    text, read by `parse_value` otherwise (``"1,x"`` for ints gives ``[1, "x"]``, which the
    caller then refuses); ``item`` ``Any`` (unknown) keeps the text."""
    items = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        try:
            items.append(part if item is Any else _coerce(part, item))
        except _Mismatch:
            items.append(parse_value(part))
    return items


def _coerce(value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation`` when the conversion loses nothing; ``_Mismatch`` otherwise."""
    if annotation in (Any, inspect.Parameter.empty) or isinstance(
        annotation, (str, typing.TypeVar)
    ):
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for member in args:
            try:
                return _coerce(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _Mismatch
    if isinstance(value, bool):
        raise _Mismatch  # a switch is not a number
    if annotation is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if annotation is float:
        if isinstance(value, numbers.Real):
            return float(value)
        raise _Mismatch
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if annotation is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch
    if origin is os.PathLike or annotation is os.PathLike:
        if isinstance(value, os.PathLike):
            return value
        raise _Mismatch
    if origin in (Sequence, list, tuple):
        fixed_length = origin is tuple and args and args[-1] is not Ellipsis
        if isinstance(value, str):
            value = _split_items(value, Any if fixed_length or not args else args[0])
        elif isinstance(value, numbers.Number):
            value = [value]  # one number for a list: ``net_arch=64`` is ``(64,)``
        elif not isinstance(value, (list, tuple)):
            raise _Mismatch
        if fixed_length:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        converted = [_coerce(v, item) for v in value]
        return converted if origin is list else tuple(converted)
    if origin in (Mapping, dict):
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch
    return value  # an annotation this module cannot check: the callee checks it


def describe_type(annotation: Any) -> str:
    """A type annotation as an error message names it (``int or None``, ``one of 'a', 'b'``).

    :param annotation: the resolved annotation.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is None and isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("collections.abc.", "").replace("typing.", "")


def coerce_value(value: Any, annotation: Any) -> Any:
    """``value`` converted to the declared type ``annotation`` when that loses nothing (``2`` ->
    ``2.0`` for a ``float``, a list -> a tuple for ``tuple[int, ...]``, ``"true"`` -> ``True``).

    :param value: the value, e.g. a Python literal parsed from ``KEY=VALUE``.
    :param annotation: the resolved type annotation (``int | None``, a ``Literal``...); one this
        function cannot check (a protocol, a forward reference) accepts every value.
    :raises TypeError: ``expects <type>; got <value>`` when the value does not fit.
    """
    try:
        return _coerce(value, annotation)
    except _Mismatch:
        raise TypeError(f"expects {describe_type(annotation)}; got {value!r}") from None


def coerce_keyword_values(
    hints: Mapping[str, Any], values: Mapping[str, Any], what: str
) -> dict[str, Any]:
    """``values`` with each one named in ``hints`` converted by `coerce_value`.

    :param hints: name -> resolved annotation (``typing.get_type_hints`` of a function or a
        dataclass); names missing from it are passed on unchecked.
    :param values: name -> value.
    :param what: what the values are, for the error message (e.g. ``"agent setting"``).
    :raises TypeError: ``<what> '<name>' expects <type>; got <value>``.
    """
    converted = dict(values)
    for name, value in values.items():
        if name in hints:
            try:
                converted[name] = coerce_value(value, hints[name])
            except TypeError as err:
                raise TypeError(f"{what} {name!r} {err}") from None
    return converted


def _value_type(kind: Any) -> Any:
    """The converter of one value: the non-``None`` member of an optional type."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(t for t in typing.get_args(kind) if t is not type(None))
    return kind


def build_parser(args_class: type, description: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with one flag per field of the dataclass ``args_class``.

    :param args_class: a dataclass whose fields all have defaults and a ``"help"`` metadata.
    :param description: the parser's description (default: the first line of the class's
        docstring).
    """
    if not dataclasses.is_dataclass(args_class):
        raise TypeError(f"{args_class!r} is not a dataclass")
    if description is None:
        lines = (args_class.__doc__ or "").strip().splitlines()
        description = lines[0] if lines else ""
    parser = argparse.ArgumentParser(description=description)
    hints = typing.get_type_hints(args_class)
    for option in dataclasses.fields(args_class):
        flag = f"--{option.name.replace('_', '-')}"
        kind = hints[option.name]
        help_text = option.metadata.get("help", "")
        if option.default is not dataclasses.MISSING:
            default = option.default
        elif option.default_factory is not dataclasses.MISSING:
            default = option.default_factory()
        else:
            raise TypeError(f"{args_class.__name__}.{option.name} needs a default")
        origin = typing.get_origin(kind)
        if kind is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(flag, action=action, default=default, help=help_text)
        elif origin is list:
            (member,) = typing.get_args(kind) or (str,)
            # default None: "append" would add the flags to a default list instead of replacing it
            parser.add_argument(
                flag,
                action="append",
                type=member,
                default=None,
                help=f"{help_text} (repeatable; default: {default!r})",
            )
        elif origin is tuple:
            member = typing.get_args(kind)[0] if typing.get_args(kind) else str
            # "extend": a repeated flag adds its values instead of silently replacing the first
            parser.add_argument(
                flag,
                nargs="+",
                action="extend",
                type=member,
                default=None,
                help=f"{help_text} (default: {' '.join(map(str, default))})",
            )
        else:
            parser.add_argument(
                flag,
                type=_value_type(kind),
                default=default,
                help=f"{help_text} (default: {default!r})",
            )
    return parser


def parse_args_into(
    args_class: type[ArgsT], argv: Sequence[str] | None = None, description: str | None = None
) -> ArgsT:
    """An ``args_class`` instance from the command line.

    :param args_class: the arguments dataclass (see the module docstring for the flag rules).
    :param argv: the arguments (default: ``sys.argv[1:]``).
    :param description: the ``--help`` description (default: the class docstring's first line).
    """
    parser = build_parser(args_class, description)
    values = vars(parser.parse_args(None if argv is None else list(argv)))
    hints = typing.get_type_hints(args_class)
    for option in dataclasses.fields(args_class):
        origin = typing.get_origin(hints[option.name])
        if origin in (tuple, list) and values[option.name] is None:
            del values[option.name]  # not given: the dataclass's own default
        elif origin is tuple:
            values[option.name] = tuple(values[option.name])
    return args_class(**values)

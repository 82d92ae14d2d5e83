"""Schedulers by name: ``make_scheduler("greedy")``.

Built-in schedulers register themselves when `mtl_sched.baselines` and `mtl_sched.agents` are
imported; lookups import them on first use, so ``import mtl_sched`` stays light. Lookups also
import the plugin modules named in ``$MTL_SCHED_IMPORT`` (`mtl_sched.plugins`), whose schedulers
then resolve like the built-in ones.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from mtl_sched.plugins import import_plugins
from mtl_sched.scheduling import Scheduler, SchedulerInfo
from mtl_sched.script_args import check_keys, coerce_value

if typing.TYPE_CHECKING:
    from mtl_sched.benchmarks.base import Benchmark

_SCHEDULERS: dict[str, type[Scheduler]] = {}
# Baselines load first; the agents (and stable-baselines3 with them) only when needed.
_BUILTIN_MODULES = ("mtl_sched.baselines", "mtl_sched.agents")

S = TypeVar("S", bound=type[Scheduler])
# Appended to an unknown-hyperparameter error: where the keys are described.
PARAMS_HINT = " (see 'mtl-sched list params {}')"


def register_scheduler(cls: S) -> S:
    """Class decorator adding a `Scheduler` subclass to the registry under ``cls.name``.

    Registering the same class twice is a no-op; another class under a taken name is an error.
    """
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    existing = _SCHEDULERS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"scheduler name {cls.name!r} is taken by {existing.__module__}.{existing.__qualname__}"
        )
    _SCHEDULERS[cls.name] = cls
    return cls


def _load_schedulers(until: str | None = None) -> None:
    import_plugins()
    for module in _BUILTIN_MODULES:
        if until is not None and until in _SCHEDULERS:
            return
        importlib.import_module(module)


def scheduler_names() -> list[str]:
    """Names of every registered scheduler, in registration order."""
    _load_schedulers()
    return list(_SCHEDULERS)


def scheduler_class(name: str) -> type[Scheduler]:
    """The scheduler class registered as ``name``; ``KeyError`` lists the known names."""
    _load_schedulers(until=name)
    try:
        return _SCHEDULERS[name]
    except KeyError:
        raise KeyError(
            f"unknown scheduler {name!r}; known schedulers: {', '.join(_SCHEDULERS)}"
        ) from None


def make_scheduler(name: str, **kwargs: Any) -> Scheduler:
    """Instantiate the scheduler registered as ``name`` with keyword hyperparameters."""
    cls = scheduler_class(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"scheduler {name!r}: {err}") from None


def scheduler_infos() -> list[SchedulerInfo]:
    """Name, description, source and kind of every registered scheduler."""
    return [cls.info() for cls in (scheduler_class(n) for n in scheduler_names())]


def scheduler_hyperparameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword hyperparameters of scheduler ``name``: parameter name -> its signature entry
    (annotation resolved to a type, default)."""
    cls = scheduler_class(name)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except NameError:
        hints = {}  # annotations naming types imported for type checking only stay unchecked
    params = {}
    for key, param in inspect.signature(cls.__init__).parameters.items():
        if key == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        params[key] = param.replace(annotation=hints.get(key, param.annotation))
    return params


def coerce_hyperparameters(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``raw`` hyperparameters against scheduler ``name``'s signature and convert them to
    the declared types (``2`` -> ``2.0`` for a float, ``"a,b"`` or a list -> a tuple for a
    sequence, ...). An unannotated parameter whose default is a list or tuple is a sequence.

    :param name: registered scheduler name.
    :param raw: parameter name -> value, e.g. parsed from ``--param KEY=VALUE``.
    :raises UnknownKeyError: (a `ValueError` and a `TypeError`) naming the scheduler, the
        unknown key and the known ones.
    :raises TypeError: naming the scheduler and the value that does not fit.
    """
    params = scheduler_hyperparameters(name)
    check_keys(raw, params, f"scheduler {name!r}", "hyperparameter", PARAMS_HINT.format(name))
    converted = {}
    for key, value in raw.items():
        annotation = params[key].annotation
        if annotation is inspect.Parameter.empty and isinstance(params[key].default, tuple):
            annotation = tuple[Any, ...]
        elif annotation is inspect.Parameter.empty and isinstance(params[key].default, list):
            annotation = list[Any]
        try:
            converted[key] = coerce_value(value, annotation)
        except TypeError as err:
            raise TypeError(f"scheduler {name!r}: hyperparameter {key!r} {err}") from None
    return converted


def prepared_scheduler(
    name: str,
    raw_params: Mapping[str, Any],
    benchmark: Benchmark,
    agent: str | Path | None = None,
) -> Scheduler:
    """A scheduler ready to run on ``benchmark``: hyperparameters checked, a ``qls`` agent and
    probe attached, and ``prepare`` done (single-task references, weight searches; both cached
    on disk).

    :param name: registered scheduler name.
    :param raw_params: hyperparameters as given (converted by `coerce_hyperparameters`).
    :param benchmark: the benchmark the scheduler will run on.
    :param agent: a saved agent ``.zip`` or ``train-agent`` directory; ``qls`` needs one.
    :raises ValueError: ``qls`` without an agent, or an agent path that does not exist.
    """
    params = coerce_hyperparameters(name, dict(raw_params))
    if name == "qls":
        agent = params.get("agent", agent)
        if agent is None:
            raise ValueError("scheduler 'qls' needs --agent PATH (a saved agent)")
        if not Path(agent).exists():
            raise ValueError(f"scheduler 'qls': agent {agent} does not exist")
        params["agent"] = agent
        params.setdefault("probe", benchmark.trainer_config.probe)
        if not Path(agent).is_dir():
            # a bare saved agent: decide as often as the benchmark's environment does
            params.setdefault("steps_per_action", benchmark.decision_steps)
    scheduler = make_scheduler(name, **params)
    scheduler.prepare(benchmark)
    return scheduler

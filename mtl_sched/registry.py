"""Schedulers by name: ``make_scheduler("greedy")``.

Built-in schedulers register themselves when `mtl_sched.baselines` and `mtl_sched.agents` are
imported; lookups import them on first use, so ``import mtl_sched`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from mtl_sched.scheduling import Scheduler, SchedulerInfo

_SCHEDULERS: dict[str, type[Scheduler]] = {}
# Baselines load first; the agents (and stable-baselines3 with them) only when needed.
_BUILTIN_MODULES = ("mtl_sched.baselines", "mtl_sched.agents")

S = TypeVar("S", bound=type[Scheduler])


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


def _load_builtins(until: str | None = None) -> None:
    for module in _BUILTIN_MODULES:
        if until is not None and until in _SCHEDULERS:
            return
        importlib.import_module(module)


def scheduler_names() -> list[str]:
    """Names of every registered scheduler, in registration order."""
    _load_builtins()
    return list(_SCHEDULERS)


def scheduler_class(name: str) -> type[Scheduler]:
    """The scheduler class registered as ``name``; ``KeyError`` lists the known names."""
    _load_builtins(until=name)
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

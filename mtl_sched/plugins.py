"""Benchmarks and schedulers of your own, visible to every command and every worker process.

A plugin is any importable module that registers benchmarks (`register_benchmark`) or
schedulers (`register_scheduler`) when imported. Name it in ``$MTL_SCHED_IMPORT``
(comma-separated module names) or with ``mtl-sched --import MODULE``: the benchmark and
scheduler registries import the named modules before their first lookup, so spawned sweep
workers, which inherit the environment variable, resolve the same names as the command that
started them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

IMPORT_ENV = "MTL_SCHED_IMPORT"

# modules already imported (or being imported: a plugin that looks up a benchmark while it is
# imported must not import itself again)
_IMPORTED: set[str] = set()
_last_env_value: str | None = None


def _module_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def import_plugins(modules: Iterable[str] | None = None, source: str | None = None) -> None:
    """Import the plugin modules, each once per process, so that what they register is there.

    :param modules: module names; ``None`` reads the comma-separated list in
        ``$MTL_SCHED_IMPORT`` (re-read only when the variable changes, so registry lookups
        can call this every time).
    :param source: where the names came from, for the error message (default: the variable's
        name, or ``"modules"`` when ``modules`` is given).
    :raises ValueError: naming the module and ``source``, for a module that cannot be imported.
    """
    global _last_env_value
    if modules is None:
        env_value = os.environ.get(IMPORT_ENV, "")
        if env_value == _last_env_value:
            return
        names = _module_names(env_value)
        source = source or f"${IMPORT_ENV}"
    else:
        env_value = None
        names = [name.strip() for name in modules]
        source = source or "modules"
    for name in names:
        if name in _IMPORTED:
            continue
        if not name:
            raise ValueError(f"{source}: empty module name")
        _IMPORTED.add(name)
        try:
            importlib.import_module(name)
        except Exception as err:
            _IMPORTED.discard(name)  # a later call reports the same failure again
            raise ValueError(
                f"{source}: cannot import plugin module {name!r} ({type(err).__name__}: {err})"
            ) from err
    if env_value is not None:
        _last_env_value = env_value


def export_plugins(modules: Iterable[str], source: str = "--import") -> None:
    """Add ``modules`` to ``$MTL_SCHED_IMPORT`` and import them.

    Through the variable, processes started from this one (sweep workers) and later registry
    lookups here see the same plugins.

    :param modules: module names to add (those already listed are kept once).
    :param source: where the names came from, for the error message.
    :raises ValueError: naming the module and ``source``, for a module that cannot be imported.
    """
    names = [name.strip() for name in modules]
    if not names:
        return
    import_plugins(names, source=source)
    listed = _module_names(os.environ.get(IMPORT_ENV, ""))
    os.environ[IMPORT_ENV] = ",".join(listed + [n for n in dict.fromkeys(names) if n not in listed])

"""Named tagging tasks that studies combine freely (the task-relation study of seed 003).

=========  ===========================================  ====  ========
task       data                                         tags  metric
=========  ===========================================  ====  ========
``upos``   UD English-EWT, universal POS                17    accuracy
``xpos``   UD English-EWT, Penn Treebank POS            49    accuracy
``chunk``  CoNLL-2000 chunks (WSJ 15-18, IOB2)          23    span F1
``pos``    CoNLL-2000 Penn Treebank POS (WSJ 15-18)     44    accuracy
``ner``    CoNLL-2003 English NER (IOB2)                9     span F1
=========  ===========================================  ====  ========

Seed 003 scores every task with span F1 without the O tag; for POS tags, where every token is a
one-token span of a non-O tag, that equals token accuracy, which is what ``upos``, ``xpos`` and
``pos`` report. `register_tagging_task` adds a user's own task (any loader returning a tagging
`Task` with ``tokens`` and ``tags`` columns). Loaded tasks are kept per process, keyed by name,
data directory and limits, so that the many models of a study read each file once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from mtl_sched.data.conll import load_conll2000, load_conll2003
from mtl_sched.data.task import Task
from mtl_sched.data.ud_pos import load_ud_tags

# (data directory or None, per-split sentence limits or None) -> the task
TaskLoader = Callable[[str | os.PathLike[str] | None, Mapping[str, int] | None], Task]


def _conll2000_task(name: str) -> TaskLoader:
    def load(data_dir: Any, limits: Mapping[str, int] | None) -> Task:
        return next(t for t in load_conll2000(data_dir, limits=limits) if t.name == name)

    return load


_LOADERS: dict[str, TaskLoader] = {
    "upos": lambda data_dir, limits: load_ud_tags("en_ewt", "upos", "upos", data_dir, limits),
    "xpos": lambda data_dir, limits: load_ud_tags("en_ewt", "xpos", "xpos", data_dir, limits),
    "chunk": _conll2000_task("chunk"),
    "pos": _conll2000_task("pos"),
    "ner": lambda data_dir, limits: load_conll2003(data_dir, limits),
}
_LOADED: dict[tuple[str, str, tuple[tuple[str, int], ...]], Task] = {}


def register_tagging_task(name: str, loader: TaskLoader) -> None:
    """Make ``name`` available to the task-relation study (re-registering replaces).

    :param name: the task name (it labels rows and columns of the study's tables).
    :param loader: ``(data_dir, limits) -> Task``; the task must have ``tokens`` and ``tags``
        columns and train, validation and test splits, and should keep only the first
        ``limits[split]`` sentences of the splits ``limits`` names.
    """
    _LOADERS[name] = loader
    for key in [key for key in _LOADED if key[0] == name]:
        del _LOADED[key]


def tagging_task_names() -> list[str]:
    """Names of every registered tagging task."""
    return list(_LOADERS)


def load_tagging_task(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    limits: Mapping[str, int] | None = None,
) -> Task:
    """The registered task ``name`` (loaded once per process for each data directory and
    limits).

    :param name: a name of `tagging_task_names`.
    :param data_dir: the data directory; ``None`` reads ``$MTL_SCHED_DATA``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names.
    :raises KeyError: for an unknown name, listing the known ones.
    """
    if name not in _LOADERS:
        raise KeyError(
            f"unknown tagging task {name!r}; known tasks: {', '.join(_LOADERS)} "
            "(add one with register_tagging_task)"
        )
    key = (name, str(data_dir or os.environ.get("MTL_SCHED_DATA", "")), _frozen(limits))
    if key not in _LOADED:
        task = _LOADERS[name](data_dir, limits)
        if task.kind != "tagging" or task.name != name:
            raise ValueError(
                f"the loader of {name!r} returned a {task.kind} task named {task.name!r}; "
                f"it must return a tagging task named {name!r}"
            )
        _LOADED[key] = task
    return _LOADED[key]


def _frozen(limits: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((limits or {}).items()))

"""Named tagging tasks that studies combine freely (the task-relation study of seed 003).

============  ===========================================  ====  ===========================
task          data                                         tags  metric
============  ===========================================  ====  ===========================
``upos``      UD English-EWT, universal POS                17    accuracy
``xpos``      UD English-EWT, Penn Treebank POS            49    accuracy
``chunk``     CoNLL-2000 chunks (WSJ 15-18, IOB2)          23    span F1
``pos``       CoNLL-2000 Penn Treebank POS (WSJ 15-18)     44    accuracy
``ner``       CoNLL-2003 English NER (IOB2)                9     span F1
``mwe``       STREUSLE 3.0 multiword expressions (B I O)   3     span F1
``semtr``     SemCor semantic traits                       11    tag F1
``supsense``  STREUSLE 3.0 supersenses                     112   tag F1
============  ===========================================  ====  ===========================

Seed 003 scores every task with span F1 without the O tag; for POS tags, where every token is a
one-token span of a non-O tag, that equals token accuracy, which is what ``upos``, ``xpos`` and
``pos`` report. ``semtr`` and ``supsense`` also tag single tokens, but most of their tokens are
``O`` (66 % and 57 %), so they report F1 over the tokens not tagged ``O`` (``tag-f1``), which
leaves those out as seed 003 does. See `mtl_sched.data.streusle` and `mtl_sched.data.semcor` for
how those tasks are read.

`register_tagging_task` adds a user's own task (any loader returning a tagging `Task` with
``tokens`` and ``tags`` columns), and `register_conll_task` one read from CoNLL-style files
(`mtl_sched.data.conll_files.ConllTaskSpec`). Loaded tasks are kept per process, keyed by name,
data directory and limits, so that the many models of a study read each file once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mtl_sched.data.conll import load_conll2000, load_conll2003
from mtl_sched.data.conll_files import (
    ConllTaskSpec,
    conll_task_spec,
    conll_task_specs,
    load_conll_task,
)
from mtl_sched.data.semcor import load_semcor_semtr
from mtl_sched.data.streusle import load_streusle
from mtl_sched.data.task import Task
from mtl_sched.data.ud_pos import load_ud_tags

# (data directory or None, per-split sentence limits or None) -> the task
TaskLoader = Callable[[str | os.PathLike[str] | None, Mapping[str, int] | None], Task]


def _one_of(load_tasks: Callable[..., list[Task]], name: str) -> TaskLoader:
    """The loader of task ``name`` among those ``load_tasks(data_dir, limits=...)`` returns."""

    def load(data_dir: Any, limits: Mapping[str, int] | None) -> Task:
        return next(t for t in load_tasks(data_dir, limits=limits) if t.name == name)

    return load


_LOADERS: dict[str, TaskLoader] = {
    "upos": lambda data_dir, limits: load_ud_tags("en_ewt", "upos", "upos", data_dir, limits),
    "xpos": lambda data_dir, limits: load_ud_tags("en_ewt", "xpos", "xpos", data_dir, limits),
    "chunk": _one_of(load_conll2000, "chunk"),
    "pos": _one_of(load_conll2000, "pos"),
    "ner": lambda data_dir, limits: load_conll2003(data_dir, limits),
    "mwe": _one_of(load_streusle, "mwe"),
    "semtr": lambda data_dir, limits: load_semcor_semtr(data_dir, limits),
    "supsense": _one_of(load_streusle, "supsense"),
}
BUILT_IN_TASKS: tuple[str, ...] = tuple(_LOADERS)
_CONLL_SPECS: dict[str, ConllTaskSpec] = {}
_LOADED: dict[tuple[str, str, tuple[tuple[str, int], ...]], Task] = {}


def register_tagging_task(name: str, loader: TaskLoader) -> None:
    """Make ``name`` available to the task-relation study (re-registering replaces).

    :param name: the task name (it labels rows and columns of the study's tables).
    :param loader: ``(data_dir, limits) -> Task``; the task must have ``tokens`` and ``tags``
        columns and train, validation and test splits, and should keep only the first
        ``limits[split]`` sentences of the splits ``limits`` names.
    """
    _LOADERS[name] = loader
    _CONLL_SPECS.pop(name, None)
    for key in [key for key in _LOADED if key[0] == name]:
        del _LOADED[key]


def register_conll_task(spec: ConllTaskSpec | Mapping[str, Any] | str) -> str:
    """Make a task read from CoNLL-style files available under its name; registering an equal
    spec again keeps the task already loaded.

    :param spec: a `ConllTaskSpec`, its ``as_option()`` mapping or the command-line form
        ``NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]``.
    :return: the task name.
    :raises ValueError: for a malformed spec, or a name of a built-in task (`BUILT_IN_TASKS`).
    """
    spec = conll_task_spec(spec)
    if spec.name in BUILT_IN_TASKS:
        raise ValueError(
            f"conll task name {spec.name!r} is taken by a built-in task "
            f"({', '.join(BUILT_IN_TASKS)})"
        )
    if _CONLL_SPECS.get(spec.name) != spec:
        register_tagging_task(spec.name, lambda _data_dir, limits: load_conll_task(spec, limits))
        _CONLL_SPECS[spec.name] = spec
    return spec.name


def register_conll_tasks(
    specs: Sequence[ConllTaskSpec | Mapping[str, Any] | str] | str | None,
) -> list[ConllTaskSpec]:
    """Register every task of a ``conll_tasks`` benchmark option.

    :param specs: tasks as `register_conll_task` takes them, one command-line form, or
        ``None``.
    :return: the specs, in order.
    :raises ValueError: for a malformed spec, a built-in name, or a name given twice.
    """
    parsed = conll_task_specs(specs)
    for spec in parsed:
        register_conll_task(spec)
    return parsed


def tagging_task_names() -> list[str]:
    """Names of every registered tagging task."""
    return list(_LOADERS)


def checked_task_names(tasks: str | Sequence[str]) -> tuple[str, ...]:
    """The task names of a benchmark's ``tasks`` option, checked.

    :param tasks: registered task names, as a sequence or comma-separated.
    :raises ValueError: naming ``tasks`` when it is empty, repeats a name or names an
        unregistered task (listing the registered ones).
    """
    names = tuple(t for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t)
    unknown = [t for t in names if t not in _LOADERS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"tasks must name distinct registered tagging tasks; got {list(names)}; "
            f"registered: {', '.join(_LOADERS)}"
        )
    return names


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

"""SemCor semantic traits (``semtr``) as a tagging task (seed 003's SEMTR).

Martínez Alonso and Plank (2017) map SemCor's supersenses onto 10 coarse EuroWordNet semantic
traits (``Mental``, ``Object``, ``Agentive``...; ``O`` for untagged words, 11 tags in all).
``<data_dir>/semcor_semantictraits/semcor_semantictraits_{train,dev,test}.conll`` hold one
token per line as ``word<TAB>trait`` and a blank line after each sentence, e.g. ``said	Mental``.
The task keeps their own train, dev (validation) and test splits (13874 / 1567 / 4697
sentences). As in seed 003 it is scored by F1 over the tokens not tagged ``O`` (``"tag-f1"``,
`mtl_sched.metrics.tag_f1`): 66 % of the tokens are ``O``, and token accuracy would count them.
The files are read as a `ConllTaskSpec` (word field 0, tag field 1, tab-separated, no comment
lines), so malformed lines are reported with their file and line as for any user CoNLL file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mtl_sched.data.conll_files import ConllTaskSpec, load_conll_task
from mtl_sched.data.paths import resolve_data_dir
from mtl_sched.data.task import Task

SEMCOR_DIR = "semcor_semantictraits"
SEMTR_METRIC = "tag-f1"


def semtr_spec(data_dir: str | os.PathLike[str] | None = None) -> ConllTaskSpec:
    """The files and columns of the ``semtr`` task.

    :param data_dir: the data directory holding ``semcor_semantictraits/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    """
    root = resolve_data_dir(data_dir) / SEMCOR_DIR
    train, validation, test = (
        str(root / f"semcor_semantictraits_{split}.conll") for split in ("train", "dev", "test")
    )
    return ConllTaskSpec(
        "semtr",
        train,
        validation,
        test,
        word_column=0,
        tag_column=1,
        separator="\t",
        comment_prefix=None,
        metric=SEMTR_METRIC,
    )


def load_semcor_semtr(
    data_dir: str | os.PathLike[str] | None = None, limits: Mapping[str, int] | None = None
) -> Task:
    """The ``semtr`` task (F1 over the tokens not tagged ``O``).

    :param data_dir: the data directory holding ``semcor_semantictraits/``; ``None`` reads
        ``$MTL_SCHED_DATA``.
    :param limits: keep only the first ``limits[split]`` sentences of the splits it names.
    """
    return load_conll_task(semtr_spec(data_dir), limits)

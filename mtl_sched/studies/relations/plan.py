"""Which task sets the task-relation study trains, and how their results are compared (seed 003).

Settings, for tasks ``T``:

- ``STL``: every task alone.
- pairwise (``+s``): every pair ``{s, t}``; one model serves the ``+s`` row of column ``t`` and
  the ``+t`` row of column ``s``.
- ``All``: every task together.
- ``Oracle``: for each test task ``t``, ``t`` with every task ``s`` that is beneficial to it
  pairwise (``{s, t}`` scores *higher* on ``t`` than ``t`` alone); a task without beneficial
  partners has no Oracle set. As in the reports, a pair counts only when it and ``t`` alone
  have at least two seeds each (`mtl_sched.reporting.tables.rule_applies`): one seed has std 0,
  under which every higher mean would count; `oracle_sets` logs a warning saying so.
- ``All - u`` (all but one): every task but ``u``.

Seed 003's comparison: with means and standard deviations over seeds, result 1 is *higher*
than result 2 when ``mean1 - k std1 > mean2 + k std2`` and *lower* when
``mean1 + k std1 < mean2 - k std2`` (k = 1.5). Task sets are tuples in the study's task order,
so that one set has one name whatever order it was built in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mtl_sched.reporting.tables import FEW_SEEDS_NOTE, MIN_RULE_SEEDS, higher, rule_applies

log = logging.getLogger(__name__)

STL, PAIRWISE, ALL, ORACLE, ALL_BUT_ONE = "stl", "pairwise", "all", "oracle", "all-but-one"
SETTINGS: tuple[str, ...] = (STL, PAIRWISE, ALL, ORACLE, ALL_BUT_ONE)
TaskSet = tuple[str, ...]


@dataclass(frozen=True)
class Score:
    """A task's test score over seeds in one task set.

    :param mean: mean over seeds.
    :param std: population standard deviation over seeds.
    :param n: number of seeds.
    """

    mean: float
    std: float
    n: int


# (task set, test task) -> the test task's score in the model of that set
Stats = Mapping[tuple[TaskSet, str], Score]


def compare(first: Score, second: Score, k: float = 1.5) -> str | None:
    """``"higher"`` or ``"lower"`` when seed 003's rule separates ``first`` from ``second``,
    else ``None``.

    :param first: the result being judged.
    :param second: the reference result.
    :param k: interval half-width in standard deviations.
    """
    if higher(first.mean, first.std, second.mean, second.std, k):
        return "higher"
    if higher(second.mean, second.std, first.mean, first.std, k):
        return "lower"
    return None


def marked(first: Score, second: Score, k: float) -> str | None:
    """Seed 003's rule (`compare`) on two results with enough seeds for it: ``"higher"``,
    ``"lower"`` or ``None`` (also when either has fewer than two seeds).

    :param first: the result being judged.
    :param second: the reference result.
    :param k: the rule's width.
    """
    return compare(first, second, k) if rule_applies(first.n, second.n) else None


def relation(stats: Stats, tasks: Sequence[str], helper: str, test: str, k: float) -> str | None:
    """How learning ``test`` with ``helper`` compares with learning it alone: ``"higher"``,
    ``"lower"`` or ``None`` (also when either result is missing or has fewer than two seeds).

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks, in order.
    :param helper: the other task of the pair.
    :param test: the test task.
    :param k: the rule's width.
    """
    if helper == test:
        return None
    pair = stats.get((ordered((helper, test), tasks), test))
    alone = stats.get(((test,), test))
    if pair is None or alone is None:
        return None
    return marked(pair, alone, k)


def ordered(tasks: Sequence[str], order: Sequence[str]) -> TaskSet:
    """``tasks`` as a set in ``order``'s order.

    :param tasks: task names (no repeats).
    :param order: every task of the study, in order.
    :raises ValueError: naming a task that is not in ``order``, or a repeated task.
    """
    unknown = [t for t in tasks if t not in order]
    if unknown or len(set(tasks)) != len(tasks):
        raise ValueError(f"task set {list(tasks)} must name distinct tasks of {list(order)}")
    return tuple(t for t in order if t in tasks)


def setting_sets(tasks: Sequence[str], settings: Sequence[str]) -> list[TaskSet]:
    """The task sets of the settings that need no results (all but ``oracle``), without
    repeats, in the order STL, pairs, All, all-but-one.

    :param tasks: the study's tasks, in order.
    :param settings: names from `SETTINGS`.
    :raises ValueError: for an unknown setting or fewer than two tasks.
    """
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    if len(tasks) < 2 or len(set(tasks)) != len(tasks):
        raise ValueError(f"a relation study needs at least two distinct tasks; got {list(tasks)}")
    sets: list[TaskSet] = []
    if STL in settings:
        sets += [(t,) for t in tasks]
    if PAIRWISE in settings:
        sets += [(s, t) for i, s in enumerate(tasks) for t in tasks[i + 1 :]]
    if ALL in settings:
        sets.append(tuple(tasks))
    if ALL_BUT_ONE in settings and len(tasks) > 2:
        sets += [tuple(t for t in tasks if t != left_out) for left_out in tasks]
    unique: list[TaskSet] = []
    for task_set in sets:
        if task_set not in unique:
            unique.append(task_set)
    return unique


def _pairs(
    scores: Mapping[tuple[TaskSet, str], Score], tasks: Sequence[str], test: str
) -> list[tuple[str, Score, Score]]:
    """``(other task, pair's score on test, test's score alone)`` for every pair with results."""
    alone = scores.get(((test,), test))
    if alone is None:
        return []
    found = []
    for other in tasks:
        pair = scores.get((ordered((other, test), tasks), test)) if other != test else None
        if pair is not None:
            found.append((other, pair, alone))
    return found


def beneficial(
    scores: Mapping[tuple[TaskSet, str], Score], tasks: Sequence[str], test: str, k: float = 1.5
) -> list[str]:
    """The tasks whose pairwise model scores *higher* on ``test`` than ``test`` alone; a pair
    counts only when it and ``test`` alone have enough seeds for the rule (`rule_applies`).

    :param scores: ``(task set, test task) -> Score``; needs the STL and pairwise sets.
    :param tasks: the study's tasks, in order.
    :param test: the test task.
    :param k: the rule's width.
    """
    return [
        other
        for other, pair, alone in _pairs(scores, tasks, test)
        if marked(pair, alone, k) == "higher"
    ]


def unjudged_pairs(
    scores: Mapping[tuple[TaskSet, str], Score], tasks: Sequence[str], test: str
) -> list[str]:
    """The tasks whose pair with ``test`` cannot count as beneficial for lack of seeds: the
    pair's result on ``test`` or ``test`` alone has fewer than two (`rule_applies`).

    :param scores: ``(task set, test task) -> Score``; needs the STL and pairwise sets.
    :param tasks: the study's tasks, in order.
    :param test: the test task.
    """
    return [
        other
        for other, pair, alone in _pairs(scores, tasks, test)
        if not rule_applies(pair.n, alone.n)
    ]


def oracle_sets(
    scores: Mapping[tuple[TaskSet, str], Score], tasks: Sequence[str], k: float = 1.5
) -> dict[str, TaskSet]:
    """Each test task's Oracle set: itself and its beneficial partners (tasks without any are
    left out). Pairs with fewer than two seeds are not judged (see `beneficial`); when there are
    any, a warning says how many and why.

    :param scores: ``(task set, test task) -> Score`` with the STL and pairwise sets.
    :param tasks: the study's tasks, in order.
    :param k: the rule's width.
    """
    oracles = {}
    unjudged = 0
    for test in tasks:
        partners = beneficial(scores, tasks, test, k)
        unjudged += len(unjudged_pairs(scores, tasks, test))
        if partners:
            oracles[test] = ordered((test, *partners), tasks)
    if unjudged:
        log.warning(
            "Oracle sets: %d pairwise results were not judged (they or STL have fewer than %d "
            "seeds) and add no task to an Oracle set; %s",
            unjudged,
            MIN_RULE_SEEDS,
            FEW_SEEDS_NOTE,
        )
    return oracles

"""Reading scheduler-comparison sweeps back from the results store.

A sweep writes one trial per (scheduler, seed), or per (scheduler, left-out task, seed) for the
leave-one-out kind, into `mtl_sched.results.ResultsStore`. Every trial's configuration names its
comparison (``config["comparison"]``, shared by all trials of one sweep) and its kind
(``config["kind"]``: ``"compare"`` or ``"leave-one-out"``); this module groups trials by those
two, picks one comparison, and turns its metric rows into the per-seed values that
`mtl_sched.reporting.tables.comparison_table` reads.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_sched.reporting.tables import GIVEN_AVERAGE
from mtl_sched.results import ResultsStore, TrialRecord

__all__ = [
    "COMPARE",
    "LEAVE_ONE_OUT",
    "SPLITS",
    "Comparison",
    "ReportError",
    "SchedulerCost",
    "comparisons",
    "costs",
    "open_store",
    "pick_comparison",
    "seed_series",
    "split_values",
    "transfer_values",
]

COMPARE, LEAVE_ONE_OUT = "compare", "leave-one-out"
#: the splits a comparison table can be read from
SPLITS = ("test", "validation")
#: values[scheduler][task] = one value per seed, aligned by seed (NaN where missing)
Values = dict[str, dict[str, list[float]]]


class ReportError(ValueError):
    """The store holds nothing that answers the request (no such benchmark or comparison)."""


@dataclass(frozen=True)
class Comparison:
    """The stored trials of one sweep.

    :param id: the sweep's ``config["comparison"]``.
    :param kind: ``"compare"`` or ``"leave-one-out"``.
    :param benchmark: the benchmark name.
    :param trials: its trials, ordered by scheduler, then left-out task, then seed; one per
        (scheduler, left-out task, seed), the most recently finished.
    :param superseded: older trials of the same (scheduler, left-out task, seed) under other
        settings (other hyperparameters, or an older scheduler version) that ``trials`` leaves
        out.
    """

    id: str
    kind: str
    benchmark: str
    trials: tuple[TrialRecord, ...]
    superseded: int = 0

    @property
    def last_finished(self) -> str:
        """When its most recent trial was written (ISO 8601, UTC)."""
        return max(trial.finished_at for trial in self.trials)

    @property
    def schedulers(self) -> tuple[str, ...]:
        """The scheduler labels, sorted."""
        return tuple(sorted({trial.key.scheduler for trial in self.trials}))

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every seed any of its trials ran, sorted."""
        return tuple(sorted({trial.key.seed for trial in self.trials}))

    @property
    def tasks(self) -> tuple[str, ...]:
        """The benchmark's tasks in its order (``config["tasks"]``)."""
        return tuple(self.trials[0].config.get("tasks", ()))

    @property
    def metrics(self) -> dict[str, str]:
        """Task -> metric name (``config["metrics"]``)."""
        return dict(self.trials[0].config.get("metrics", {}))

    @property
    def budget(self) -> Any:
        """Training examples per run (``config["budget"]``)."""
        return self.trials[0].config.get("budget")

    @property
    def setting(self) -> str:
        """What a compare and a leave-one-out sweep share when run on the same benchmark setup."""
        config = self.trials[0].config
        shared = {name: config.get(name) for name in _SHARED_SETTING}
        return json.dumps(shared, sort_keys=True, default=str)

    def describe(self) -> str:
        """One line naming the comparison: id, kind, size, budget and last finish time."""
        older = f"; {self.superseded} older trials of other settings left out" * bool(
            self.superseded
        )
        return (
            f"{self.id} ({self.kind}: {len(self.trials)} trials, {len(self.schedulers)} "
            f"schedulers, {len(self.seeds)} seeds, budget {self.budget}, last finished "
            f"{self.last_finished}{older})"
        )


_SHARED_SETTING = ("benchmark", "benchmark_fingerprint", "benchmark_options", "budget")


@dataclass(frozen=True)
class SchedulerCost:
    """What a scheduler's runs cost, means over its trials.

    :param scheduler: the scheduler label.
    :param seeds: how many seeds it ran.
    :param wall_time: seconds per run (``("run", "all", "wall_time")``, else the trial's).
    :param cpu_time: CPU seconds per run, over the runs that measured it
        (``("run", "all", "cpu_time")``; NaN when none did).
    :param examples_seen: training examples per run (the trial's ``examples_seen``).
    :param optimizer_steps: optimizer updates per run (the trial's ``optimizer_steps``).
    :param preparation_examples: examples spent before the run outside the budget, such as
        hand-crafted's weight search or adaptive's single-task runs
        (``("run", "all", "preparation_examples")``, else 0).
    """

    scheduler: str
    seeds: int
    wall_time: float
    cpu_time: float
    examples_seen: float
    optimizer_steps: float
    preparation_examples: float


def open_store(path: str | os.PathLike[str]) -> ResultsStore:
    """Open an existing results store for reading (opening a missing path would create one).

    :param path: the SQLite file.
    :raises FileNotFoundError: when there is no such file.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"results store {path} does not exist")
    return ResultsStore(path)


def _left_out(trial: TrialRecord) -> str:
    return str(trial.config.get("left_out", ""))


def comparisons(store: ResultsStore, benchmark: str) -> list[Comparison]:
    """The comparisons stored for ``benchmark``, the most recently finished first.

    :param store: the results store.
    :param benchmark: the benchmark name.
    :raises ReportError: when the store holds no comparison trials of ``benchmark``; the message
        names the store file and the benchmarks it does hold.
    """
    trials = [trial for trial in store.trials(benchmark) if "comparison" in trial.config]
    if not trials:
        held = sorted({trial.key.benchmark for trial in store.trials()})
        holds = f"it holds {', '.join(held)}" if held else "it is empty"
        raise ReportError(
            f"results store {store.path} holds no scheduler-comparison trials of benchmark "
            f"{benchmark!r}; {holds}"
        )
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    for trial in trials:
        ident = (str(trial.config["comparison"]), str(trial.config.get("kind", COMPARE)))
        groups.setdefault(ident, []).append(trial)
    found = []
    for (ident, kind), group in groups.items():
        # a scheduler rerun under other settings in the same sweep setup: its newest trial counts
        newest: dict[tuple[str, str, int], TrialRecord] = {}
        for trial in sorted(group, key=lambda t: t.finished_at):
            newest[_trial_order(trial)] = trial
        kept = tuple(sorted(newest.values(), key=_trial_order))
        found.append(Comparison(ident, kind, benchmark, kept, len(group) - len(kept)))
    # the id breaks ties between comparisons finished in the same second
    return sorted(found, key=lambda c: (c.last_finished, c.id), reverse=True)


def _trial_order(trial: TrialRecord) -> tuple[str, str, int]:
    return trial.key.scheduler, _left_out(trial), trial.key.seed


def pick_comparison(
    found: Sequence[Comparison], comparison: str | None = None, kind: str | None = None
) -> Comparison | None:
    """The comparison named ``comparison``, else the most recent one of ``kind``.

    :param found: the benchmark's comparisons, most recent first (see `comparisons`).
    :param comparison: a comparison id; ``None`` for the most recent.
    :param kind: with no id, only comparisons of this kind; ``None`` for any.
    :returns: the comparison, or ``None`` when no comparison has ``kind``.
    :raises ReportError: when ``comparison`` is not among ``found``; the message lists them.
    """
    if comparison is not None:
        for candidate in found:
            if candidate.id == comparison:
                return candidate
        known = "\n  ".join(c.describe() for c in found) or "none"
        raise ReportError(f"no comparison {comparison!r}; the stored ones are:\n  {known}")
    return next((c for c in found if kind is None or c.kind == kind), None)


def _seeds_by_scheduler(comparison: Comparison) -> dict[str, list[int]]:
    seeds: dict[str, set[int]] = {}
    for trial in comparison.trials:
        seeds.setdefault(trial.key.scheduler, set()).add(trial.key.seed)
    return {scheduler: sorted(found) for scheduler, found in sorted(seeds.items())}


def _fill(
    comparison: Comparison, found: dict[tuple[str, str, int], float], tasks: Sequence[str]
) -> Values:
    """values[scheduler][task] aligned on the scheduler's seeds, NaN where a value is missing."""
    values: Values = {}
    for scheduler, seeds in _seeds_by_scheduler(comparison).items():
        values[scheduler] = {
            task: [found.get((scheduler, task, seed), math.nan) for seed in seeds]
            for task in tasks
            if any((scheduler, task, seed) in found for seed in seeds)
        }
    return values


def split_values(store: ResultsStore, comparison: Comparison, split: str = "test") -> Values:
    """The per-seed ``score`` of every task on ``split``, the stored average as ``"average"``.

    :param store: the results store.
    :param comparison: a comparison of kind ``"compare"``.
    :param split: ``"test"`` or ``"validation"``.
    :returns: ``values[scheduler][task]``, one value per seed of the scheduler in seed order.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    keys = {trial.key for trial in comparison.trials}
    rows = store.rows(benchmark=comparison.benchmark, split=split, metric="score")
    found = {(r.key.scheduler, r.task, r.key.seed): r.value for r in rows if r.key in keys}
    return _fill(comparison, found, [*comparison.tasks, GIVEN_AVERAGE])


def transfer_values(store: ResultsStore, comparison: Comparison) -> tuple[Values, list[str]]:
    """The leave-one-out transfer score of every left-out task, per seed.

    :param store: the results store.
    :param comparison: a comparison of kind ``"leave-one-out"``.
    :returns: ``values[scheduler][left_out]`` (one value per seed of the scheduler, in seed
        order) and the left-out tasks in the benchmark's task order.
    """
    keys = {trial.key for trial in comparison.trials}
    rows = store.rows(benchmark=comparison.benchmark, split="transfer", metric="score")
    found = {(r.key.scheduler, r.task, r.key.seed): r.value for r in rows if r.key in keys}
    left_out = {task for _, task, _ in found}
    order = [task for task in comparison.tasks if task in left_out]
    tasks = order + sorted(left_out - set(order))
    return _fill(comparison, found, tasks), tasks


def costs(store: ResultsStore, comparison: Comparison) -> list[SchedulerCost]:
    """The mean cost of each scheduler's trials, in scheduler order.

    :param store: the results store.
    :param comparison: the comparison.
    """
    keys = {trial.key for trial in comparison.trials}
    run = {
        (r.key, r.metric): r.value
        for r in store.rows(benchmark=comparison.benchmark, split="run", task="all")
        if r.key in keys
    }
    out = []
    for scheduler, seeds in _seeds_by_scheduler(comparison).items():
        trials = [t for t in comparison.trials if t.key.scheduler == scheduler]
        wall = [run.get((t.key, "wall_time"), t.wall_time) for t in trials]
        cpu = [run.get((t.key, "cpu_time"), math.nan) for t in trials]
        prep = [run.get((t.key, "preparation_examples"), 0.0) for t in trials]
        out.append(
            SchedulerCost(
                scheduler,
                len(seeds),
                _mean(wall),
                _mean(cpu),
                _mean([t.examples_seen for t in trials]),
                _mean([t.optimizer_steps for t in trials]),
                _mean(prep),
            )
        )
    return out


def _mean(values: Sequence[float]) -> float:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else math.nan


def seed_series(store: ResultsStore, comparison: Comparison, name: str) -> dict[str, list[Any]]:
    """Each scheduler's series ``name``, one per trial that holds it, in seed order.

    :param store: the results store.
    :param comparison: the comparison.
    :param name: the series name (``"validation_curve"``, ``"schedule"``,
        ``"probe_histograms"``).
    """
    out: dict[str, list[Any]] = {}
    for trial in comparison.trials:
        data = store.series(trial.key, name)
        if data is not None:
            out.setdefault(trial.key.scheduler, []).append(data)
    return out


def _setting_text(key: str, value: Any) -> str:
    text = str(value)
    if text.startswith("sha256:"):
        text = text[: len("sha256:") + 12]  # enough of a digest to tell agents apart
    return f"{key}={text}"


def scheduler_settings(store: ResultsStore, comparison: Comparison) -> dict[str, list[str]]:
    """Per scheduler of ``comparison``, how its runs were set: the hyperparameters given on the
    command line (``scheduler_params``, an agent by the start of its digest) and the notes the
    runs stored (``scheduler_notes``: how ``qls``'s agent was trained, ...), one line per
    distinct setting among its runs; schedulers with neither are left out.

    :param store: the results store.
    :param comparison: the comparison.
    """
    found: dict[str, list[str]] = {}
    for trial in comparison.trials:
        params = trial.config.get("scheduler_params") or {}
        notes = store.series(trial.key, "scheduler_notes") or {}
        parts = [_setting_text(key, params[key]) for key in sorted(params)]
        parts += [f"{key}: {notes[key]}" for key in sorted(notes)]
        lines = found.setdefault(trial.key.scheduler, [])
        if parts and "; ".join(parts) not in lines:
            lines.append("; ".join(parts))
    return {scheduler: lines for scheduler, lines in found.items() if lines}

"""The scheduler-comparison report of one benchmark: Markdown, CSV tables and PNG figures.

`write_report` reads a results store: the main table (one comparison's scores per task and
scheduler on a split), the cost of each scheduler's runs, the leave-one-out transfer table when
the benchmark has one, and the figures from the stored series.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtl_sched.reporting.collect import (
    COMPARE,
    LEAVE_ONE_OUT,
    Comparison,
    SchedulerCost,
    comparisons,
    costs,
    open_store,
    pick_comparison,
    scheduler_settings,
    seed_series,
    split_values,
    transfer_values,
)
from mtl_sched.reporting.figures import write_figures
from mtl_sched.reporting.tables import (
    FEW_SEEDS_NOTE,
    ComparisonTable,
    comparison_table,
    markdown_table,
    to_csv,
    to_markdown,
)
from mtl_sched.results import ResultsStore

__all__ = ["DEFAULT_BASELINE", "Report", "cost_markdown", "make_report", "write_report"]

#: the baseline column when none is named and the comparison has it
DEFAULT_BASELINE = "uniform"
COST_FIELDS = (
    "scheduler",
    "seeds",
    "wall_time",
    "cpu_time",
    "examples_seen",
    "optimizer_steps",
    "preparation_examples",
)


@dataclass
class Report:
    """A report's Markdown, the files written for it and notes on what was skipped.

    :param markdown: the report text.
    :param paths: the files written (empty without an output directory).
    :param notes: figures or tables left out, and why.
    """

    markdown: str
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _number(value: float, digits: int = 0) -> str:
    return "-" if not math.isfinite(value) else f"{value:,.{digits}f}"


def cost_markdown(rows: Sequence[SchedulerCost]) -> str:
    """The cost table as Markdown with its legend line.

    :param rows: one cost per scheduler.
    """
    lines = [
        [
            c.scheduler,
            str(c.seeds),
            _number(c.wall_time, 1),
            _number(c.cpu_time, 1),
            _number(c.examples_seen),
            _number(c.optimizer_steps),
            _number(c.preparation_examples),
        ]
        for c in rows
    ]
    header = [
        "scheduler",
        "seeds",
        "wall time (s)",
        "CPU time (s)",
        "examples seen",
        "optimizer steps",
        "search examples",
    ]
    legend = (
        'Means over each scheduler\'s runs (CPU time: over the runs that measured it; "-" '
        "where none did). Search examples: training examples spent before the "
        "run, outside the budget (hand-crafted's weight search, the single-task reference runs "
        "of adaptive and prior, the training of qls's agent: its episodes and greedy "
        "evaluations)."
    )
    return markdown_table(header, lines) + "\n\n" + legend + "\n"


def _cost_csv(rows: Sequence[SchedulerCost], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COST_FIELDS)
        for c in rows:
            writer.writerow(
                [
                    c.scheduler,
                    c.seeds,
                    repr(c.wall_time),
                    repr(c.cpu_time),
                    repr(c.examples_seen),
                    repr(c.optimizer_steps),
                    repr(c.preparation_examples),
                ]
            )
    return path


def _baseline(requested: str | None, columns: Sequence[str], strict: bool) -> str | None:
    """The baseline column: the requested one (an error when absent and ``strict``), else
    `DEFAULT_BASELINE` when present, else none."""
    if requested is None:
        return DEFAULT_BASELINE if DEFAULT_BASELINE in columns else None
    if requested in columns:
        return requested
    if strict:
        raise ValueError(
            f"baseline {requested!r} is not among the schedulers: {', '.join(columns)}"
        )
    return None


def _pair(
    found: Sequence[Comparison], comparison: str | None
) -> tuple[Comparison | None, Comparison | None]:
    """The compare comparison and the leave-one-out one to report together.

    A named comparison fixes its own kind; the other kind is the most recent one run on the same
    benchmark setting (definition, options, budget), else the most recent of that kind.
    """
    if comparison is not None:
        chosen = pick_comparison(found, comparison)
    else:
        chosen = pick_comparison(found, kind=COMPARE) or pick_comparison(found)
    if chosen is None:
        return None, None
    other_kind = LEAVE_ONE_OUT if chosen.kind == COMPARE else COMPARE
    others = [c for c in found if c.kind == other_kind]
    other = next((c for c in others if c.setting == chosen.setting), None)
    other = other or (others[0] if others else None)
    return (chosen, other) if chosen.kind == COMPARE else (other, chosen)


def _main_section(
    store: ResultsStore,
    main: Comparison,
    split: str,
    baseline: str | None,
    out: Path | None,
    report: Report,
) -> list[str]:
    values = split_values(store, main, split)
    chosen = _baseline(baseline, list(values), strict=True)
    columns = _ordered(values, chosen)
    table = comparison_table({c: values[c] for c in columns}, main.tasks, baseline=chosen)
    _note_unmarked(table, f"{split} table", report)
    lines = [
        f"## {split.capitalize()} score per task",
        "",
        f"Comparison {main.describe()}.",
        "",
        to_markdown(table, metrics=main.metrics, split=split),
    ]
    if out is not None:
        report.paths.append(to_csv(table, out / f"{main.benchmark}-{split}.csv"))
    cost_csv = f"{main.benchmark}-cost.csv"
    return lines + _cost_section(store, main, columns, "Cost per run", cost_csv, out, report)


def _cost_section(
    store: ResultsStore,
    comparison: Comparison,
    columns: Sequence[str],
    title: str,
    csv_name: str,
    out: Path | None,
    report: Report,
) -> list[str]:
    """The cost table of ``comparison``'s schedulers in ``columns`` order, under ``title``, and
    written to ``csv_name`` in ``out``."""
    by_scheduler = {cost.scheduler: cost for cost in costs(store, comparison)}
    rows = [by_scheduler[c] for c in columns if c in by_scheduler]
    if out is not None:
        report.paths.append(_cost_csv(rows, out / csv_name))
    lines = [f"## {title}", "", cost_markdown(rows)]
    settings = scheduler_settings(store, comparison)
    described = [f"- {c}: {line}" for c in columns for line in settings.get(c, [])]
    if described:
        lines += ["Scheduler settings (given on the command line, and noted by the runs):", ""]
        lines += [*described, ""]
    return lines


def _note_unmarked(table: ComparisonTable, name: str, report: Report) -> None:
    """Add a note when seed 003's rule left cells of ``table`` unmarked for too few seeds."""
    compared, skipped = table.comparisons()
    if skipped:
        which = "no ▲/▼ marks" if skipped == compared else f"{skipped} of {compared} cells unmarked"
        report.notes.append(f"{name}: {which}; {FEW_SEEDS_NOTE}")


def _ordered(values: dict[str, dict[str, list[float]]], baseline: str | None) -> list[str]:
    """The baseline column first, then the others in name order."""
    return sorted(values, key=lambda column: (column != baseline, column))


def _transfer_section(
    store: ResultsStore, loo: Comparison, baseline: str | None, out: Path | None, report: Report
) -> list[str]:
    values, tasks = transfer_values(store, loo)
    if not tasks:
        report.notes.append(f"leave-one-out comparison {loo.id} has no transfer rows yet")
        return []
    chosen = _baseline(baseline, list(values), strict=False)
    if baseline is not None and chosen is None:
        report.notes.append(
            f"leave-one-out table: baseline {baseline!r} did not run there, so no marks"
        )
    columns = _ordered(values, chosen)
    table = comparison_table({c: values[c] for c in columns}, tasks, baseline=chosen)
    _note_unmarked(table, "leave-one-out table", report)
    if out is not None:
        report.paths.append(to_csv(table, out / f"{loo.benchmark}-leave-one-out.csv"))
    lines = [
        "## Leave-one-out transfer",
        "",
        f"Comparison {loo.describe()}. Each row is the task left out of training: the mean "
        "5-fold cross-validated accuracy of a new head on the frozen encoder trained on the "
        "other tasks.",
        "",
        to_markdown(table, row_title="left-out task"),
    ]
    title, cost_csv = "Leave-one-out cost per run", f"{loo.benchmark}-leave-one-out-cost.csv"
    return lines + _cost_section(store, loo, columns, title, cost_csv, out, report)


def make_report(
    store_path: str | os.PathLike[str],
    benchmark: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    comparison: str | None = None,
    split: str = "test",
    baseline: str | None = None,
) -> Report:
    """Build the report of ``benchmark``'s scheduler comparison; see `write_report`.

    :param store_path: the results store file.
    :param benchmark: the benchmark name.
    :param out_dir: where to write the Markdown, CSV and PNG files; ``None`` writes nothing.
    :param comparison: the comparison id; ``None`` for the most recently finished one.
    :param split: the main table's split, ``"test"`` or ``"validation"``.
    :param baseline: the column marks compare with; ``None`` for ``"uniform"`` when it ran.
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    report = Report("")
    with open_store(store_path) as store:
        main, loo = _pair(comparisons(store, benchmark), comparison)
        lines = [f"# Scheduler comparison on {benchmark}", ""]
        if main is not None:
            lines += _main_section(store, main, split, baseline, out, report)
        else:
            report.notes.append(f"{benchmark} has no compare comparison, only leave-one-out")
        if loo is not None:
            lines += _transfer_section(store, loo, baseline, out, report)
        if out is not None and main is not None:
            figures, notes = write_figures(
                seed_series(store, main, "validation_curve"),
                seed_series(store, main, "schedule"),
                seed_series(store, main, "probe_histograms"),
                out,
            )
            report.paths += figures
            report.notes += notes
            lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    report.markdown = "\n".join(lines)
    if out is not None:
        path = out / f"{benchmark}-{split}.md"
        path.write_text(report.markdown, encoding="utf-8")
        report.paths.insert(0, path)
    return report


def write_report(
    store_path: str | os.PathLike[str],
    benchmark: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    comparison: str | None = None,
    split: str = "test",
    baseline: str | None = None,
) -> str:
    """The Markdown report of ``benchmark``'s scheduler comparison, written to ``out_dir`` too.

    The report holds the main table (tasks and AVG by scheduler on ``split``), the cost table and,
    when the benchmark has a leave-one-out comparison, the transfer table. With ``out_dir`` it
    writes ``<benchmark>-<split>.md``, ``<benchmark>-<split>.csv``, ``<benchmark>-cost.csv``,
    ``<benchmark>-leave-one-out.csv`` (when there is one) and the figures ``curves.png``,
    ``schedules.png`` and ``histograms.png`` (each when some series feeds it).

    :param store_path: the results store file.
    :param benchmark: the benchmark name.
    :param out_dir: the output directory; ``None`` writes nothing.
    :param comparison: the comparison id; ``None`` for the most recently finished one.
    :param split: the main table's split, ``"test"`` or ``"validation"``.
    :param baseline: the column marks compare with; ``None`` for ``"uniform"`` when it ran,
        else no marks.
    :raises FileNotFoundError: when the store file does not exist.
    :raises ValueError: for a benchmark without trials, an unknown comparison id or a baseline
        that is not a column (the message names what exists).
    """
    return make_report(
        store_path, benchmark, out_dir, comparison=comparison, split=split, baseline=baseline
    ).markdown

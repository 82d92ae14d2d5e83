"""Scheduler-comparison tables on plain numbers: cells, ranks, marks, Markdown and CSV.

The shape follows seed 002's Table 2: one row per task plus the average (``AVG``), one column per
scheduler, each cell the mean and standard deviation over seeds, the three best means of a row
ranked. A difference against the baseline column is marked only under seed 003's rule (see
`higher`), and only between cells of at least `MIN_RULE_SEEDS` seeds each (`rule_applies`): the
std of one seed is 0, under which the rule would mark every difference. Nothing here reads the
results store; `mtl_sched.reporting.collect` does.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "AVERAGE",
    "FEW_SEEDS_NOTE",
    "HIGHER",
    "LOWER",
    "MIN_RULE_SEEDS",
    "Cell",
    "ComparisonTable",
    "comparison_table",
    "higher",
    "markdown_table",
    "rule_applies",
    "to_csv",
    "to_markdown",
]

#: label of the row averaging the tasks
AVERAGE = "AVG"
#: the task name under which a per-seed average over tasks may be given to `comparison_table`
GIVEN_AVERAGE = "average"
HIGHER, LOWER = "higher", "lower"
#: the fewest seeds each of two results needs before seed 003's rule compares them
MIN_RULE_SEEDS = 2
#: why results with fewer than `MIN_RULE_SEEDS` seeds carry no mark
FEW_SEEDS_NOTE = (
    f"results over fewer than {MIN_RULE_SEEDS} seeds are not marked: seed 003's rule compares "
    "mean ± k·std intervals, and the std of one seed is 0, so every difference would be marked"
)
CSV_FIELDS = ("task", "scheduler", "mean", "std", "n", "rank", "mark")

_RANK_SIGNS = {1: "¹", 2: "²", 3: "³"}
_MARK_SIGNS = {HIGHER: "▲", LOWER: "▼"}
# means closer than this are a tie; a float average of equal scores can differ in the last bit
_TIE = 1e-12


@dataclass(frozen=True)
class Cell:
    """One (row, scheduler) cell: statistics over seeds, rank within the row, mark vs baseline.

    :param mean: mean over seeds (NaN when there are none).
    :param std: population standard deviation over seeds (``ddof=0``; NaN when there are none).
    :param n: number of seeds with a finite value.
    :param rank: 1, 2 or 3 for the three highest means of the row, else ``None``.
    :param mark: ``"higher"`` or ``"lower"`` than the baseline by seed 003's rule, else ``None``
        (also when this cell or the baseline's has fewer than `MIN_RULE_SEEDS` seeds).
    """

    mean: float
    std: float
    n: int
    rank: int | None = None
    mark: str | None = None


@dataclass(frozen=True)
class ComparisonTable:
    """A comparison table: tasks and ``AVG`` as rows, schedulers as columns.

    :param rows: row labels in order, the tasks then `AVERAGE`.
    :param columns: scheduler labels in order.
    :param cells: ``(row, column)`` -> `Cell`, for every row and column.
    :param baseline: the column the marks compare with, or ``None`` (no marks).
    :param k: the rule's width in standard deviations.
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]
    baseline: str | None
    k: float

    def cell(self, row: str, column: str) -> Cell:
        """The cell of ``row`` and ``column``.

        :param row: a task name or `AVERAGE`.
        :param column: a scheduler label.
        """
        return self.cells[row, column]

    def seed_counts(self) -> tuple[int, int]:
        """The smallest and largest number of seeds of the cells that have any (0, 0 if none)."""
        counts = [cell.n for cell in self.cells.values() if cell.n > 0]
        return (min(counts), max(counts)) if counts else (0, 0)

    def comparisons(self) -> tuple[int, int]:
        """How many (row, column) cells could be compared with the baseline's cell of their row
        (both hold seeds) and how many of those the rule left unmarked for too few seeds
        (`rule_applies`); ``(0, 0)`` without a baseline."""
        if self.baseline is None:
            return 0, 0
        compared = skipped = 0
        for (row, column), cell in self.cells.items():
            base = self.cells[row, self.baseline]
            if column == self.baseline or cell.n == 0 or base.n == 0:
                continue
            compared += 1
            skipped += not rule_applies(cell.n, base.n)
        return compared, skipped


def higher(mean1: float, std1: float, mean2: float, std2: float, k: float = 1.5) -> bool:
    """Seed 003's rule: result 1 is higher than result 2 when ``mean1 - k*std1 > mean2 + k*std2``.

    Exactly touching intervals are not higher; "lower" is ``higher`` with the results swapped.

    :param mean1: mean of result 1 over seeds.
    :param std1: its standard deviation over seeds (the repo uses numpy's population std,
        ``ddof=0``).
    :param mean2: mean of result 2.
    :param std2: its standard deviation.
    :param k: interval half-width in standard deviations.
    """
    return bool(mean1 - k * std1 > mean2 + k * std2)


def rule_applies(n1: int, n2: int) -> bool:
    """Whether seed 003's rule may compare a result over ``n1`` seeds with one over ``n2``: both
    need at least `MIN_RULE_SEEDS` seeds (with one seed the std is 0 and the rule would call
    every difference higher or lower).

    :param n1: seeds of result 1.
    :param n2: seeds of result 2.
    """
    return n1 >= MIN_RULE_SEEDS and n2 >= MIN_RULE_SEEDS


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _stats(values: Sequence[float]) -> Cell:
    array = _finite(values)
    if array.size == 0:
        return Cell(math.nan, math.nan, 0)
    return Cell(float(array.mean()), float(array.std(ddof=0)), int(array.size))


def _per_seed_average(
    scheduler: str, per_task: Mapping[str, Sequence[float]], tasks: Sequence[str]
) -> np.ndarray:
    """Each seed's mean over ``tasks``; NaN for a seed lacking any task."""
    present = [task for task in tasks if task in per_task]
    lengths = {len(per_task[task]) for task in present}
    if len(lengths) > 1:
        raise ValueError(
            f"scheduler {scheduler!r}: tasks have different numbers of seeds "
            f"({sorted(lengths)}); give the values aligned by seed, NaN where one is missing"
        )
    if not lengths:
        return np.zeros(0)
    (seeds,) = lengths
    stacked = np.asarray(
        [per_task[task] if task in per_task else [math.nan] * seeds for task in tasks],
        dtype=float,
    )
    return stacked.mean(axis=0)


def _ranks(means: Sequence[float]) -> list[int | None]:
    """Competition ranks by descending mean (ties share the better rank), kept only for 1-3."""
    finite = [m for m in means if math.isfinite(m)]
    ranks: list[int | None] = []
    for mean in means:
        if not math.isfinite(mean):
            ranks.append(None)
            continue
        rank = 1 + sum(other > mean + _TIE for other in finite)
        ranks.append(rank if rank <= 3 else None)
    return ranks


def _mark(cell: Cell, base: Cell, k: float) -> str | None:
    if not rule_applies(cell.n, base.n):
        return None
    if higher(cell.mean, cell.std, base.mean, base.std, k):
        return HIGHER
    if higher(base.mean, base.std, cell.mean, cell.std, k):
        return LOWER
    return None


def comparison_table(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    tasks: Sequence[str],
    *,
    baseline: str | None,
    k: float = 1.5,
) -> ComparisonTable:
    """Build the comparison table from per-seed values.

    Each cell holds the mean, the population standard deviation (numpy's default ``ddof=0``)
    and the count of the finite values; NaN values (a seed that has no number) are left out.
    The ``AVG`` row uses ``values[scheduler]["average"]`` when given (the stored per-seed average),
    else each seed's mean over ``tasks`` (a seed lacking a task drops out of it). Ranks go by
    mean, highest first, ties sharing the better rank; only ranks 1-3 are kept. A cell is marked
    against the baseline's only when both have at least `MIN_RULE_SEEDS` seeds.

    :param values: ``values[scheduler][task]`` = that scheduler's values of the task, one per seed,
        aligned by seed across tasks (NaN where a seed has none).
    :param tasks: the task rows in order (without ``"average"``).
    :param baseline: the column every other column is marked against, or ``None`` for no marks.
    :param k: the rule's width in standard deviations (see `higher`).
    :raises ValueError: when ``baseline`` is not one of the schedulers.
    """
    columns = tuple(values)
    if baseline is not None and baseline not in values:
        raise ValueError(
            f"baseline {baseline!r} is not among the schedulers: {', '.join(columns) or 'none'}"
        )
    task_rows = tuple(task for task in tasks if task != GIVEN_AVERAGE)
    stats: dict[tuple[str, str], Cell] = {}
    for column, per_task in values.items():
        for task in task_rows:
            stats[task, column] = _stats(per_task.get(task, ()))
        if GIVEN_AVERAGE in per_task:
            average = np.asarray(per_task[GIVEN_AVERAGE], dtype=float)
        else:
            average = _per_seed_average(column, per_task, task_rows)
        stats[AVERAGE, column] = _stats(average)
    rows = (*task_rows, AVERAGE)
    cells: dict[tuple[str, str], Cell] = {}
    for row in rows:
        ranks = _ranks([stats[row, column].mean for column in columns])
        for column, rank in zip(columns, ranks, strict=True):
            cell = stats[row, column]
            mark = None
            if baseline is not None and column != baseline:
                mark = _mark(cell, stats[row, baseline], k)
            cells[row, column] = Cell(cell.mean, cell.std, cell.n, rank, mark)
    return ComparisonTable(rows, columns, cells, baseline, k)


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table.

    :param header: the column titles.
    :param lines: the body, one sequence of cell texts per line.
    """
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def _cell_text(cell: Cell) -> str:
    if cell.n == 0:
        return "-"
    # stored scores are fractions (BLEU too: task_score divides it by 100), so x100 gives
    # percent for accuracy and span F1 and BLEU points for BLEU
    text = f"{cell.mean * 100:.1f} ± {cell.std * 100:.1f}"
    if cell.rank is not None:
        text += " " + _RANK_SIGNS[cell.rank]
    if cell.mark is not None:
        text += " " + _MARK_SIGNS[cell.mark]
    return text


def _units(metrics: Mapping[str, str] | None) -> str:
    used = set((metrics or {}).values())
    if "bleu" in used:
        return "% for accuracy and span F1, BLEU points for BLEU (stored score x 100)"
    return "%"


def _legend(table: ComparisonTable, metrics: Mapping[str, str] | None, split: str | None) -> str:
    low, high = table.seed_counts()
    seeds = f"{high} seed{'s' if high != 1 else ''}" if low == high else f"{low}-{high} seeds"
    where = f" on the {split} split" if split else ""
    text = (
        f"Mean ± std over {seeds}{where}, in {_units(metrics)}; std is the population std over "
        "seeds (ddof=0). ¹ ² ³: the first, second and third highest mean of the row (ties share "
        "the better rank)."
    )
    if table.baseline is None:
        return text + " No baseline column, so no ▲/▼ marks."
    compared, skipped = table.comparisons()
    if compared and skipped == compared:
        return text + f" No ▲/▼ marks: {FEW_SEEDS_NOTE}."
    text += (
        f" ▲ / ▼: higher / lower than the baseline {table.baseline} by seed 003's rule, "
        f"A is higher than B when mean_A - {table.k:g}·std_A > mean_B + {table.k:g}·std_B; "
        "no mark: the intervals overlap."
    )
    if skipped:
        text += f" {skipped} of {compared} cells left unmarked: {FEW_SEEDS_NOTE}."
    return text


def to_markdown(
    table: ComparisonTable,
    *,
    metrics: Mapping[str, str] | None = None,
    split: str | None = None,
    row_title: str = "task",
) -> str:
    """The table as Markdown with a legend line under it.

    Cells read like ``90.4 ± 0.3 ¹ ▲``: mean ± std x 100 with one decimal, the rank as a
    superscript, ▲ / ▼ for higher / lower than the baseline.

    :param table: the table.
    :param metrics: task -> metric name; when the tasks mix metrics each row names its own.
    :param split: the split the scores come from, named in the legend.
    :param row_title: the title of the row-label column.
    """
    mixed = len(set((metrics or {}).values())) > 1
    header = [row_title] + [
        f"{column} (baseline)" if column == table.baseline else column for column in table.columns
    ]
    lines = []
    for row in table.rows:
        label = f"{row} ({metrics[row]})" if mixed and metrics and row in metrics else row
        lines.append([label] + [_cell_text(table.cell(row, c)) for c in table.columns])
    return markdown_table(header, lines) + "\n\n" + _legend(table, metrics, split) + "\n"


def to_csv(table: ComparisonTable, path: str | os.PathLike[str]) -> Path:
    """Write one line per (row, scheduler): task, scheduler, mean, std, n, rank, mark.

    Means and standard deviations are written as stored (fractions) at full precision; an empty
    rank or mark means none.

    :param table: the table.
    :param path: the CSV file to write (its directory is created).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for row in table.rows:
            for column in table.columns:
                cell = table.cell(row, column)
                rank = "" if cell.rank is None else cell.rank
                writer.writerow(
                    [row, column, repr(cell.mean), repr(cell.std), cell.n, rank, cell.mark or ""]
                )
    return path

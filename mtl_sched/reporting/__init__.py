"""The scheduler-comparison report (``mtl-sched report``): tables, store reading and figures.

- `mtl_sched.reporting.tables`: cells, ranks, seed 003's marks, Markdown and CSV, on plain numbers.
- `mtl_sched.reporting.collect`: the comparisons a results store holds and their per-seed values.
- `mtl_sched.reporting.figures`: validation curves, selection heatmaps, probe histograms.
- `mtl_sched.reporting.report`: `write_report`, all of the above for one benchmark.
"""

from mtl_sched.reporting.report import make_report, write_report
from mtl_sched.reporting.tables import comparison_table, higher, to_csv, to_markdown

__all__ = ["comparison_table", "higher", "make_report", "to_csv", "to_markdown", "write_report"]

"""``mtl-sched report``: the scheduler-comparison report of a benchmark from a results store.

Prints the Markdown (main table, cost table, leave-one-out table) and, with ``--out``, writes it
with the CSV tables and the figures; see `mtl_sched.reporting.report.write_report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mtl_sched.reporting.collect import SPLITS


def add_report_parser(commands: Any) -> None:
    """Add the ``report`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    report = commands.add_parser(
        "report", help="tables and figures comparing the schedulers of a stored sweep"
    )
    report.add_argument("--db", type=Path, required=True, help="the results store (SQLite file)")
    report.add_argument("--benchmark", required=True, help="the benchmark to report on")
    report.add_argument(
        "--out", type=Path, default=None, help="write the Markdown, CSV and PNG files here"
    )
    report.add_argument(
        "--comparison", default=None, help="comparison id (default: the most recently finished)"
    )
    report.add_argument(
        "--split", choices=SPLITS, default="test", help="split of the main table (default: test)"
    )
    report.add_argument(
        "--baseline",
        default=None,
        help="column the ▲/▼ marks compare with (default: uniform when it ran)",
    )


def run_report(args: argparse.Namespace) -> str:
    """Run ``mtl-sched report``; return the report's Markdown and the files written.

    :param args: the parsed ``report`` arguments.
    """
    from mtl_sched.reporting.report import make_report

    if args.db.is_dir():
        raise ValueError(f"--db {args.db} is a directory, not a results store file")
    report = make_report(
        args.db,
        args.benchmark,
        args.out,
        comparison=args.comparison,
        split=args.split,
        baseline=args.baseline,
    )
    return "\n".join([report.markdown, *(f"wrote {path}" for path in report.paths)])

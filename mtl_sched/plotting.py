"""Figures of what schedulers did: a plain re-export of `mtl_sched.reporting.figures`, the one
home of the package's figures, kept importable for one release; import from there instead.
"""

from mtl_sched.reporting.figures import (
    SchedulePanel,
    plot_schedule_counts,
    plot_schedules,
    save_figure,
    schedule_shares,
)

__all__ = [
    "SchedulePanel",
    "plot_schedule_counts",
    "plot_schedules",
    "save_figure",
    "schedule_shares",
]

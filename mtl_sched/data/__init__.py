"""Tasks and their data."""

from mtl_sched.data.synthetic import SyntheticTaskSpec, make_synthetic_tasks
from mtl_sched.data.task import SPLITS, Task, TaskKind

__all__ = ["SPLITS", "SyntheticTaskSpec", "Task", "TaskKind", "make_synthetic_tasks"]

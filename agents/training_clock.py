"""The CPU and wall time a ``train-agent`` run took, over all its resumes: ``cost.json``.

Every checkpoint holds the times up to it (``checkpoints/step-<timesteps>/cost.json``) and the
run's directory the newest ones (``cost.json``, written with each checkpoint and at the end). A
resume starts from its checkpoint's times, so the steps an interruption lost and the resumed run
takes again are counted once, as in an uninterrupted run; the time the interrupted process spent
after its last checkpoint is not counted. CPU time is `time.process_time` of the training
process: every thread, the greedy evaluations included. A run resumed from a checkpoint written
before times were kept starts from zero, and ``cost.json`` says so (``"complete": false``).

``cost.json`` holds ``timesteps``, ``cpu_seconds``, ``wall_seconds`` and ``complete``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mtl_sched.agents.evaluation import write_json_atomically

COST_FILE = "cost.json"


def read_cost(folder: Path) -> dict[str, Any] | None:
    """The ``cost.json`` in ``folder`` (a checkpoint or a run's directory); ``None`` when it is
    missing or unreadable.

    :param folder: where to look.
    """
    try:
        stored = json.loads((folder / COST_FILE).read_text())
        return {
            "timesteps": int(stored["timesteps"]),
            "cpu_seconds": float(stored["cpu_seconds"]),
            "wall_seconds": float(stored["wall_seconds"]),
            "complete": bool(stored.get("complete", True)),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


class TrainingClock:
    """CPU and wall seconds of a training run, counted from the process's start of training.

    :param cpu_seconds: CPU seconds of the run before this process (those of a resumed
        checkpoint).
    :param wall_seconds: wall seconds of the run before this process.
    :param complete: whether those counts cover the whole run before this process.
    """

    def __init__(
        self, cpu_seconds: float = 0.0, wall_seconds: float = 0.0, complete: bool = True
    ) -> None:
        self.cpu_before, self.wall_before, self.complete = cpu_seconds, wall_seconds, complete
        self._cpu_start, self._wall_start = time.process_time(), time.perf_counter()

    @classmethod
    def resumed_from(cls, checkpoint: Path | None) -> TrainingClock:
        """The clock of a run starting fresh (``None``) or resuming from ``checkpoint``.

        :param checkpoint: the checkpoint folder the run resumes from.
        """
        if checkpoint is None:
            return cls()
        stored = read_cost(checkpoint)
        if stored is None:
            return cls(complete=False)
        return cls(stored["cpu_seconds"], stored["wall_seconds"], stored["complete"])

    def totals(self, timesteps: int) -> dict[str, Any]:
        """The run's times so far, as ``cost.json`` holds them.

        :param timesteps: environment steps trained so far.
        """
        return {
            "timesteps": int(timesteps),
            "cpu_seconds": self.cpu_before + time.process_time() - self._cpu_start,
            "wall_seconds": self.wall_before + time.perf_counter() - self._wall_start,
            "complete": self.complete,
        }

    def write(self, folders: list[Path], timesteps: int) -> dict[str, Any]:
        """Write the times so far as ``cost.json`` into each of ``folders``; return them.

        :param folders: a checkpoint folder, the run's directory.
        :param timesteps: environment steps trained so far.
        """
        totals = self.totals(timesteps)
        for folder in folders:
            write_json_atomically(folder / COST_FILE, totals)
        return totals

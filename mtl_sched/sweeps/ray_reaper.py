"""Ends the processes of a local Ray instance when the process that started it ends.

Ray's own processes (raylet, GCS server, workers) die with the driver that started them, but the
agents its raylet starts (``DashboardAgent``, ``RuntimeEnvAgent``) wait about a minute for the dead
GCS before they exit, and may outlive a ``kill -9`` of the driver. `mtl_sched.sweeps.backends`
runs this file as a script (standard library only, so it starts at once) in a session of its own
and writes the pids of the instance's processes to its stdin. It keeps track of their
descendants, and when its stdin ends (the driver exited, killed or not) it kills those still
running, each checked against the start time it had when first seen (a reused pid is left alone).
Linux only: it reads ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

POLL_SECONDS = 0.5


def processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, start time in clock ticks since boot)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                # the command name may hold spaces and parentheses: split after its last ")"
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        if fields[0] != "Z":
            found[int(name)] = (int(fields[1]), fields[19])
    return found


def watch() -> dict[int, str]:
    """Track the processes named on stdin and their descendants until stdin ends; returns
    pid -> start time of every process tracked."""
    roots: set[int] = set()
    tracked: dict[int, str] = {}
    while True:
        readable, _, _ = select.select([0], [], [], POLL_SECONDS)
        data = os.read(0, 4096) if readable else None
        if data:
            roots.update(int(pid) for pid in data.split())
        for pid, (parent, start) in processes().items():
            if pid != os.getpid() and (pid in roots or parent in tracked):
                tracked[pid] = start
        if data == b"":
            return tracked


def main() -> None:
    """Watch, then kill every tracked process still running with the start time it had."""
    tracked = watch()
    alive = processes()
    for pid, start in tracked.items():
        if pid in alive and alive[pid][1] == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()

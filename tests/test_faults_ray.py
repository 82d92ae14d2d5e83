"""A killed ``compare --backend ray`` takes every process of its local Ray instance with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_faults_kill import _alive

pytest.importorskip("ray", reason="the Ray backend needs the ray extra")

DRIVER = textwrap.dedent(
    """
    import time
    from mtl_sched.sweeps.backends import run_on_ray

    class Sleeps:
        def run(self, store_path, report, threads=None):
            time.sleep(600)

    def ready(progress):
        print("ready", flush=True)

    for _ in run_on_ray([Sleeps()], "unused.sqlite", ready, workers=1):
        pass
    """
)


def _descendants(root: int) -> set[int]:
    """Every running descendant of ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_killed_ray_driver_takes_every_ray_process_with_it(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    ray_processes: set[int] = set()
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "ready"  # a trial runs on the Ray worker
        time.sleep(1.0)  # the node's agents are up
        ray_processes = _descendants(driver.pid)
        titles = {Path(f"/proc/{pid}/cmdline").read_bytes() for pid in ray_processes}
        assert any(b"DashboardAgent" in title for title in titles), titles
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, ray_processes)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in ray_processes if _alive(pid)], "Ray processes outlived it"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in ray_processes:  # whatever survived, so that no test inherits it
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

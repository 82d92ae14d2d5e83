"""Where trials run: in this process, on a local pool of spawned processes, or on Ray.

Every backend runs jobs (a comparison's `TrialSpec`, or a `mtl_sched.sweeps.job.SweepJob` such
as a study's model) through `run_job`, passes `Progress` ``(index, examples seen, budget)``
to a callback while job ``index`` trains, and yields `Finished` ``(index, outcome, error)``
when it ends (``error`` is the formatted exception of a job that failed; the other jobs go
on), so the sweep's bookkeeping and progress display do not depend on the backend.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import queue as queue_module
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_sched.sweeps.job import ProgressReport, SweepJob, TrialOutcome
from mtl_sched.sweeps.spec import TrialSpec
from mtl_sched.sweeps.trial import run_trial

BACKENDS = ("local", "ray")
# Seconds between progress messages of one trial: frequent enough for a bar, cheap to send.
_REPORT_INTERVAL = 0.5
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Progress:
    """Trial ``index`` has seen ``examples`` of its ``budget`` training examples."""

    index: int
    examples: int
    budget: int


@dataclass(frozen=True)
class Finished:
    """Trial ``index`` ended: ``outcome`` when it succeeded, ``error`` (a traceback) when not."""

    index: int
    outcome: TrialOutcome | None
    error: str | None = None


OnProgress = Callable[[Progress], None]
# What a sweep runs: comparison trials and the jobs of studies.
Job = TrialSpec | SweepJob


def run_job(
    job: Job, store_path: str, report: ProgressReport | None = None, threads: int | None = 1
) -> TrialOutcome:
    """Run ``job`` and store its results, unless they are stored: a comparison trial by
    `run_trial`, any other job by its own ``run``.

    :param job: the trial or job.
    :param store_path: the results store file.
    :param report: progress callback, ``(examples seen, budget)``.
    :param threads: torch threads of this process (one per worker, so that workers do not
        oversubscribe the cores); ``None`` leaves the setting alone.
    """
    if isinstance(job, TrialSpec):
        return run_trial(job, store_path, report, threads)
    return job.run(store_path, report, threads)


def _throttled(index: int, send: Callable[[Progress], None]) -> Callable[[int, int], None]:
    last = [0.0]

    def report(seen: int, budget: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _REPORT_INTERVAL or seen >= budget:
            last[0] = now
            send(Progress(index, seen, budget))

    return report


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def run_in_process(
    specs: Sequence[Job], store_path: str, on_progress: OnProgress
) -> Iterator[Finished]:
    """Run the jobs one after another in this process (no process start-up cost).

    :param specs: the jobs to run, in order.
    :param store_path: the results store file.
    :param on_progress: receives the trials' progress.
    """
    for index, spec in enumerate(specs):
        on_progress(Progress(index, 0, 0))
        try:
            outcome = run_job(spec, store_path, _throttled(index, on_progress), threads=None)
        except Exception as exc:  # one failed job must not stop the sweep
            yield Finished(index, None, _error_text(exc))
            continue
        yield Finished(index, outcome)


# ----------------------------------------------------------------------------- local pool
_worker_queue: Any = None
_parent_pid: int | None = None
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent() -> None:
    """Ask the kernel (Linux) to SIGKILL this process when its parent ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no usable libc: the parent pid checks remain
        pass


def _exit_if_orphaned() -> None:
    """End this worker at once when the sweep process that started it is gone."""
    if _parent_pid is not None and os.getppid() != _parent_pid:
        os._exit(1)


def _init_pool_worker(progress_queue: Any, parent_pid: int | None = None) -> None:
    """Set up a pool worker: its progress queue, and its end when the sweep process ends.

    :param progress_queue: where the worker's trials report their progress.
    :param parent_pid: the sweep process; the worker exits as soon as it has another parent
        (the parent died), on Linux by a kernel signal, elsewhere before each trial and at
        each progress report.
    """
    global _worker_queue, _parent_pid
    _worker_queue = progress_queue
    _parent_pid = parent_pid
    _die_with_parent()
    _exit_if_orphaned()  # the parent may have died before the signal was asked for


def _pool_trial(spec: Job, store_path: str, index: int) -> TrialOutcome:
    _exit_if_orphaned()
    send = _throttled(index, _worker_queue.put)

    def report(seen: int, budget: int) -> None:
        _exit_if_orphaned()
        send(seen, budget)

    _worker_queue.put(Progress(index, 0, 0))
    return run_job(spec, store_path, report, threads=1)


def _drain(progress_queue: Any, on_progress: OnProgress, empty: type[Exception]) -> None:
    while True:
        try:
            on_progress(progress_queue.get_nowait())
        except empty:
            return


def run_on_pool(
    specs: Sequence[Job], store_path: str, on_progress: OnProgress, workers: int
) -> Iterator[Finished]:
    """Run the jobs on ``workers`` spawned processes with one torch thread each.

    :param specs: the jobs; started in this order.
    :param store_path: the results store file.
    :param on_progress: receives the trials' progress.
    :param workers: processes in the pool.
    """
    context = multiprocessing.get_context("spawn")
    progress_queue = context.Queue()
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_pool_worker,
        initargs=(progress_queue, os.getpid()),
    )
    try:
        futures = {
            executor.submit(_pool_trial, spec, store_path, index): index
            for index, spec in enumerate(specs)
        }
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            _drain(progress_queue, on_progress, queue_module.Empty)
            for future in done:
                error = future.exception()
                if error is None:
                    yield Finished(futures[future], future.result())
                else:
                    yield Finished(futures[future], None, _error_text(error))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        progress_queue.close()


# ----------------------------------------------------------------------------- Ray
def _start_ray_reaper(node_pids: Sequence[int]) -> subprocess.Popen[bytes] | None:
    """Start the helper that ends every process of the local Ray instance whose processes are
    ``node_pids`` when this process ends (Linux; ``None`` elsewhere)."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return None
    # its own session: a Ctrl-C in the terminal must not end it before it has done its work
    # run as a script, not as a package module: it imports the standard library only, so it
    # is watching before Ray could be killed
    reaper = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ray_reaper.py"))],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    assert reaper.stdin is not None
    reaper.stdin.write(" ".join(map(str, node_pids)).encode() + b"\n")
    reaper.stdin.flush()
    return reaper


def _local_ray_pids(ray: Any) -> list[int]:
    """The pids of the processes of the local Ray instance this process started."""
    node = ray._private.worker._global_node
    return [
        info.process.pid
        for infos in node.all_processes.values()
        for info in infos
        if info.process is not None
    ]


def _ray_trial(spec: Job, store_path: str, index: int, progress_queue: Any) -> TrialOutcome:
    report = _throttled(index, progress_queue.put)
    progress_queue.put(Progress(index, 0, 0))
    return run_job(spec, store_path, report, threads=1)


def run_on_ray(
    specs: Sequence[Job],
    store_path: str,
    on_progress: OnProgress,
    workers: int,
    address: str | None = None,
) -> Iterator[Finished]:
    """Run the jobs as Ray tasks of one CPU each.

    Without ``address`` a local Ray instance with ``workers`` CPUs is started (and stopped at
    the end; on Linux, Ray ends its node and the workers running trials when this process is
    killed, and a helper process ends the agents Ray's node started); with one, the trials go to
    that cluster, whose nodes must have ``mtl-sched``
    installed and see ``store_path`` (a shared filesystem).

    :param specs: the jobs.
    :param store_path: the results store file.
    :param on_progress: receives the jobs' progress.
    :param workers: CPUs of the local instance (ignored with ``address``).
    :param address: a running cluster's address (e.g. ``"ray://head:10001"`` or ``"auto"``).
    """
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError as exc:
        raise ImportError('the Ray backend needs Ray: pip install "mtl-sched[ray]"') from exc
    started_here = not ray.is_initialized()
    reaper = None
    if started_here:
        ray.init(
            address=address,
            num_cpus=None if address else workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        if address is None:
            reaper = _start_ray_reaper(_local_ray_pids(ray))
    try:
        progress_queue = Queue()
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
        refs = {
            remote.remote(spec, store_path, index, progress_queue): index
            for index, spec in enumerate(specs)
        }
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=_POLL_SECONDS)
            _drain(progress_queue, on_progress, Empty)
            for ref in done:
                try:
                    yield Finished(refs[ref], ray.get(ref))
                except Exception as exc:  # a failed trial is reported, not fatal
                    yield Finished(refs[ref], None, _error_text(exc))
    finally:
        if started_here:
            ray.shutdown()
        if reaper is not None:
            assert reaper.stdin is not None
            reaper.stdin.close()  # what ray.shutdown left running ends too
            reaper.wait()

"""Time per training example of every registered scheduler, relative to ``uniform``.

Every scheduler trains a fresh model of one benchmark at the same example budget, and every
optimizer step is timed: the scheduler's plan, the training step with its combine, backward pass
and update, the scheduler's observe, and a probe pass where the scheduler reads one; evaluations
(the same for every scheduler) and the preparation before the run (cached references, a weight
search) are left out. The time per example is the median step time times the steps over the
examples, pooled over repeated runs interleaved across the schedulers: on a shared machine,
bursts of other load slow some steps down, and the median ignores them where a total would not.
Garbage collection is paused during the runs (as in ``timeit``).

Two ratios are shown: against ``uniform``, and against the simplest scheduler of the same kind
(``uniform`` for weighting, ``round-robin`` for selection). A selection step draws one minibatch
where a weighting step draws one per task, so selection methods take K times more optimizer
steps for the same examples: a cost of the kind, not of the method. The gradient-aggregation
methods (``upgrad``, ``mgda``, ``pcgrad``, ...; the ``jd`` extra) take one backward pass per task
and an aggregation of the task gradients at every step; by default they are left out, with a
note, where that extra is not installed.

    python benchmarks/scheduler_overhead.py
    python benchmarks/scheduler_overhead.py --repeats 5 --schedulers uniform,gradnorm,exp3s
    python benchmarks/scheduler_overhead.py --schedulers uniform,gradnorm,upgrad,mgda,pcgrad
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.registry import make_scheduler, scheduler_class, scheduler_names
from mtl_sched.scheduling import Scheduler, StepOutcome
from mtl_sched.script_args import parse_args_into
from mtl_sched.training import Trainer

CLOCK_HELP = (
    "process (CPU time of this process: steady on a shared machine), wall, "
    "or auto (process on the CPU, wall on CUDA, where CPU time misses the GPU's)"
)


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to train on"})
    budget: int | None = field(
        default=None, metadata={"help": "training examples per run; None: the benchmark's"}
    )
    repeats: int = field(default=3, metadata={"help": "runs per scheduler, interleaved"})
    seed: int = field(default=0, metadata={"help": "seed of every run"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    device: str = field(default="cpu", metadata={"help": "training device: cpu, cuda or auto"})
    schedulers: str = field(
        default="", metadata={"help": "comma-separated names (default: every registered one)"}
    )
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def build_scheduler(name: str, benchmark: Benchmark) -> Scheduler:
    """A prepared scheduler; ``qls`` gets an untrained agent (its cost does not depend on the
    policy's quality)."""
    if name == "qls":
        from mtl_sched.agents import BoltzmannGumbelDQN, QLSScheduler
        from mtl_sched.envs import MTLSchedulingEnv

        env = MTLSchedulingEnv(benchmark, reference_accuracies=None)
        agent = BoltzmannGumbelDQN("MlpPolicy", env, seed=0, learning_starts=0)
        return QLSScheduler.from_env(agent, env)
    scheduler = make_scheduler(name)
    scheduler.prepare(benchmark)
    return scheduler


def choose_clock(choice: str, on_cuda: bool) -> tuple[Callable[[], float], bool]:
    """The clock named by ``--clock`` (see `CLOCK_HELP`) and whether it reads wall time.

    :param choice: ``"auto"``, ``"process"`` or ``"wall"``.
    :param on_cuda: whether the timed work runs on a CUDA device.
    """
    if choice not in ("auto", "process", "wall"):
        raise SystemExit(f"--clock must be auto, process or wall; got {choice!r}")
    use_wall = choice == "wall" or (choice == "auto" and on_cuda)
    return make_clock(use_wall, synchronize_cuda=on_cuda), use_wall


def make_clock(wall: bool, synchronize_cuda: bool) -> Callable[[], float]:
    """Wall-clock or process CPU time; on CUDA, each reading first waits for queued kernels
    (they run asynchronously and would otherwise be charged to a later reading)."""
    read = time.perf_counter if wall else time.process_time
    if not synchronize_cuda:
        return read

    def synchronized() -> float:
        torch.cuda.synchronize()
        return read()

    return synchronized


def fastest_in_turns(
    clock: Callable[[], float], functions: Sequence[Callable[[], object]], repeats: int
) -> list[float]:
    """Each function's fastest of ``repeats`` timings, timed in turns, garbage collection paused.

    Timing in turns (one call of each per round) spreads a burst of other load over all of
    them rather than over every repeat of one.
    """
    times: list[list[float]] = [[] for _ in functions]
    gc.disable()
    try:
        for _ in range(repeats):
            for function, record in zip(functions, times, strict=True):
                start = clock()
                function()
                record.append(clock() - start)
    finally:
        gc.enable()
    return [min(record) for record in times]


def step_seconds(
    trainer: Trainer, scheduler: Scheduler, clock: Callable[[], float]
) -> tuple[list[float], int]:
    """Seconds of each optimizer step of one run, and the run's examples.

    A step's time is everything the run does for it: the probe pass (schedulers that read one),
    the scheduler's ``plan``, the trainer's ``train_step`` (with the scheduler's ``combine``, the
    backward pass and the optimizer update) and the scheduler's ``observe``. Evaluations, the
    same for every scheduler, are left out.
    """
    times: list[float] = []
    pending = 0.0

    def timed(function: Callable[..., Any], closes_step: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal pending
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                pending += clock() - start
                if closes_step and args and isinstance(args[0], StepOutcome):
                    times.append(pending)
                    pending = 0.0

        return wrapper

    # instance attributes shadow the methods for this run only
    trainer.probe = timed(trainer.probe)  # type: ignore[method-assign]
    trainer.train_step = timed(trainer.train_step)  # type: ignore[method-assign]
    scheduler.plan = timed(scheduler.plan)  # type: ignore[method-assign]
    scheduler.observe = timed(scheduler.observe, closes_step=True)  # type: ignore[method-assign]
    # as timeit does: a garbage collection landing in one step would be charged to its scheduler
    gc.collect()
    gc.disable()
    try:
        result = trainer.run(scheduler)
    finally:
        gc.enable()
        del scheduler.plan, scheduler.observe
    return times, result.examples_seen


def prepare_schedulers(
    names: Sequence[str], benchmark: Benchmark, explicit: bool
) -> tuple[dict[str, Scheduler], list[str]]:
    """The schedulers ``names`` built and prepared, and a note for each one left out.

    :param names: registered scheduler names.
    :param benchmark: the benchmark they will run on.
    :param explicit: whether the user named them; then a missing optional extra is an error
        rather than a note.
    """
    prepared: dict[str, Scheduler] = {}
    left_out: list[str] = []
    for name in names:
        try:
            prepared[name] = build_scheduler(name, benchmark)
        except ImportError as err:
            if explicit:
                raise
            left_out.append(f"{name} ({err})")
    return prepared, left_out


def main(args: Args) -> str:
    torch.set_num_threads(args.threads)
    benchmark = get_benchmark(args.benchmark)
    chosen = [n for n in args.schedulers.split(",") if n]
    names = chosen or scheduler_names()
    for required in ("uniform", "round-robin"):
        if required not in names:
            names.insert(0, required)
    overrides: dict[str, object] = {"device": args.device}
    if args.budget is not None:
        overrides["budget"] = args.budget

    def trainer() -> Trainer:
        return benchmark.make_trainer(args.seed, **overrides)

    on_cuda = trainer().device.type == "cuda"
    clock, use_wall = choose_clock(args.clock, on_cuda)

    trainer().run(make_scheduler("uniform"))  # warm-up: lazy imports, allocator, caches
    prepared, left_out = prepare_schedulers(names, benchmark, explicit=bool(chosen))
    names = [n for n in names if n in prepared]
    times: dict[str, list[float]] = {n: [] for n in names}
    steps: dict[str, int] = {}
    examples: dict[str, int] = {}
    for _ in range(args.repeats):
        for name in names:
            run_times, examples[name] = step_seconds(trainer(), prepared[name], clock)
            times[name] += run_times
            steps[name] = len(run_times)
    # the median step, scaled to the run: robust to bursts of other load on the machine
    per_example = {n: statistics.median(times[n]) * steps[n] / examples[n] for n in names}
    header = f"{'scheduler':22} {'kind':9} {'steps':>5} {'us/example':>10} {'vs uniform':>10}"
    lines = [header + f" {'vs same kind':>12}", "-" * (len(header) + 13)]
    for name in names:
        kind = scheduler_class(name).kind
        reference = "uniform" if kind == "weighting" else "round-robin"
        lines.append(
            f"{name:22} {kind:9} {steps[name]:>5} {per_example[name] * 1e6:>10.1f} "
            f"{per_example[name] / per_example['uniform']:>10.2f} "
            f"{per_example[name] / per_example[reference]:>12.2f}"
        )
    budget = args.budget or benchmark.trainer_config.budget
    lines.append(
        f"{args.benchmark}, {budget} examples per run, median step of {args.repeats} runs, "
        f"device {args.device}, {args.threads} thread(s), "
        f"{'wall-clock' if use_wall else 'process CPU'} time; evaluations excluded"
    )
    lines += [f"left out: {note}" for note in left_out]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(parse_args()))

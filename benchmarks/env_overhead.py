"""What an environment step costs per trained minibatch next to one bare training step.

An `MTLSchedulingEnv` step trains the model on ``steps_per_action`` minibatches of the chosen
task (the benchmark's ``decision_steps`` unless ``--option decision_steps=k`` says otherwise) and
then runs the probe pass (in inference mode, over the probe pools of every task or of the tasks
the probe settings' ``refresh`` picks) that yields the next observation and the reward. Its cost
per trained minibatch is the step's time divided by ``steps_per_action``. The bare step is
`Trainer.train_step` on a minibatch of the same task and size, on a second trainer of the same
benchmark and seed. The two are timed in turns, cycling over the tasks, in one process; the
probe pass over every task is timed in the same turns, and, when the benchmark's probe settings
have a ``refresh`` (``--option probe_refresh=1``; by default every task is probed), so is the
partial pass an environment step then runs (the trained task and ``refresh`` others).
Each part's time is the mean over tasks of its fastest repeat on that task (``timeit``'s
estimate: on a shared machine the slower repeats measure the other load, and repeats of the same
call can differ several-fold), and the mean of the per-task medians is printed beside it.
Garbage collection is paused while timing (as in ``timeit``). The environment runs without
single-task references (their penalty test is one comparison; computing them would train one
model per task first).

The last line is ``ratio <env step per trained minibatch / bare training step>`` from the
fastest repeats.

    python benchmarks/env_overhead.py --benchmark fdu-mtl
    python benchmarks/env_overhead.py --benchmark fdu-mtl --option decision_steps=1
    python benchmarks/env_overhead.py --benchmark fdu-mtl --small --repeats 5
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from benchmark_args import BenchmarkArgs
from scheduler_overhead import CLOCK_HELP, choose_clock

from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.scheduling import Step
from mtl_sched.script_args import parse_args_into


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    repeats: int = field(default=5, metadata={"help": "timed rounds over all tasks"})
    warmup: int = field(default=1, metadata={"help": "untimed rounds over all tasks first"})
    seed: int = field(default=0, metadata={"help": "seed of both trainers"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    device: str = field(default="cpu", metadata={"help": "training device: cpu, cuda or auto"})
    clock: str = field(default="auto", metadata={"help": CLOCK_HELP})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def timed(clock: Callable[[], float], function: Callable[[], Any]) -> float:
    """Seconds ``function()`` takes on ``clock``."""
    start = clock()
    function()
    return clock() - start


def main(args: Args) -> float:
    torch.set_num_threads(args.threads)
    benchmark = args.make_benchmark()
    benchmark.trainer_config = dataclasses.replace(benchmark.trainer_config, device=args.device)
    env = MTLSchedulingEnv(benchmark, reference_accuracies=None)
    env.reset(seed=args.seed)
    trainer = benchmark.make_trainer(args.seed)
    assert env.trainer is not None
    num_tasks = benchmark.num_tasks
    on_cuda = trainer.device.type == "cuda"
    clock, use_wall = choose_clock(args.clock, on_cuda)

    probe = env.probe_config
    # a refresh that reaches every other task probes them all anyway
    refresh = probe.refresh
    if refresh is not None and refresh >= num_tasks - 1:
        refresh = None
    parts = ("env", "train", "probe") if refresh is None else ("env", "train", "probe", "partial")
    # times[part][k]: the timed samples of task k
    times: dict[str, list[list[float]]] = {
        p: [[] for _ in range(benchmark.num_tasks)] for p in parts
    }
    rounds = args.warmup + args.repeats
    for round_index in range(rounds):
        for k in range(benchmark.num_tasks):
            # as timeit does: a garbage collection landing in one call would be charged to it
            gc.collect()
            gc.disable()
            try:
                samples = {
                    "env": timed(clock, lambda k=k: env.step(k)),
                    "train": timed(clock, lambda k=k: trainer.train_step(Step.select(k))),
                    "probe": timed(clock, lambda: env.trainer.probe(probe, range(num_tasks))),
                }
                if refresh is not None:
                    tasks = sorted({k, *((k + 1 + i) % num_tasks for i in range(refresh))})
                    samples["partial"] = timed(clock, lambda t=tasks: env.trainer.probe(probe, t))
            finally:
                gc.enable()
            if round_index >= args.warmup:
                for name, seconds in samples.items():
                    times[name][k].append(seconds)

    # One round over the tasks, from each task's fastest repeat (timeit's estimate: slower
    # repeats measure other load on the machine, not the code) and from its median repeat.
    best = {p: sum(min(task) for task in times[p]) / benchmark.num_tasks for p in parts}
    typical = {
        p: sum(statistics.median(task) for task in times[p]) / benchmark.num_tasks for p in parts
    }
    print(
        f"{args.benchmark}{' (small)' if args.small else ''}: {benchmark.num_tasks} tasks, "
        f"batch {benchmark.trainer_config.batch_size}, probe pool {probe.pool_size} per task "
        f"({probe.selection}, hard {probe.hard_size}, refresh {probe.refresh}), "
        f"{env.steps_per_action} minibatch(es) per env step, {args.repeats} timed rounds, "
        f"device {trainer.device}, "
        f"{args.threads} thread(s), {'wall-clock' if use_wall else 'process CPU'} time"
    )
    per_action = env.steps_per_action
    best["minibatch"] = best["env"] / per_action
    typical["minibatch"] = typical["env"] / per_action
    rows = [
        ("bare Trainer.train_step", "train"),
        (f"env.step ({per_action} train steps + probe)", "env"),
        ("env.step per trained minibatch", "minibatch"),
        (f"probe pass, all {num_tasks} tasks", "probe"),
    ]
    if refresh is not None:
        rows.append((f"probe pass, {1 + refresh} tasks (refresh)", "partial"))
    print(
        f"{'part (mean over tasks)':<40} {'best ms':>9} {'ratio':>7} {'median ms':>10} {'ratio':>7}"
    )
    for label, part in rows:
        print(
            f"{label:<40} {1e3 * best[part]:>9.2f} {best[part] / best['train']:>7.3f} "
            f"{1e3 * typical[part]:>10.2f} {typical[part] / typical['train']:>7.3f}"
        )
    ratio = best["minibatch"] / best["train"]
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(parse_args())

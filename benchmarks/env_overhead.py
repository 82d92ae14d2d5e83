"""What one environment step costs next to one bare training step on the same task.

An `MTLSchedulingEnv` step trains the model on one minibatch of the chosen task and then runs
the probe pass (every task's probe pool, in inference mode) that yields the next observation and
the reward. The bare step is `Trainer.train_step` on a minibatch of the same task and size, on a
second trainer of the same benchmark and seed. The two are timed in turns, cycling over the
tasks, in one process; the probe pass alone is timed in the same turns. Medians are reported, so
that bursts of other load on a shared machine do not count, and garbage collection is paused
while timing (as in ``timeit``). The environment runs without single-task references (their
penalty test is one comparison; computing them would train one model per task first).

The last line is ``ratio <median env step / median bare training step>``.

    python benchmarks/env_overhead.py --benchmark fdu-mtl
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
from scheduler_overhead import CLOCK_HELP, choose_clock

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.scheduling import Step
from mtl_sched.script_args import parse_args_into


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to time"})
    small: bool = field(default=False, metadata={"help": "the benchmark's small variant"})
    data_dir: str | None = field(
        default=None, metadata={"help": "data directory (default: $MTL_SCHED_DATA)"}
    )
    repeats: int = field(default=3, metadata={"help": "timed rounds over all tasks"})
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
    options: dict[str, Any] = {}
    if args.small:
        options["small"] = True
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    benchmark = get_benchmark(args.benchmark, **options)
    benchmark.trainer_config = dataclasses.replace(benchmark.trainer_config, device=args.device)
    env = MTLSchedulingEnv(benchmark, reference_accuracies=None)
    env.reset(seed=args.seed)
    trainer = benchmark.make_trainer(args.seed)
    assert env.trainer is not None
    on_cuda = trainer.device.type == "cuda"
    clock, use_wall = choose_clock(args.clock, on_cuda)

    times: dict[str, list[float]] = {"env": [], "train": [], "probe": []}
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
                    "probe": timed(clock, lambda: env.trainer.probe(env.probe_config)),
                }
            finally:
                gc.enable()
            if round_index >= args.warmup:
                for name, seconds in samples.items():
                    times[name].append(seconds)

    median = {name: statistics.median(values) for name, values in times.items()}
    probe = env.probe_config
    print(
        f"{args.benchmark}{' (small)' if args.small else ''}: {benchmark.num_tasks} tasks, "
        f"batch {benchmark.trainer_config.batch_size}, probe pool {probe.pool_size} per task "
        f"(hard {probe.hard_size}), {len(times['env'])} timed steps, device {trainer.device}, "
        f"{args.threads} thread(s), {'wall-clock' if use_wall else 'process CPU'} time"
    )
    rows = [
        ("bare Trainer.train_step", median["train"]),
        ("env.step (train step + probe pass)", median["env"]),
        ("probe pass alone", median["probe"]),
    ]
    print(f"{'part':<40} {'median ms':>10} {'x train_step':>13}")
    for label, seconds in rows:
        print(f"{label:<40} {1e3 * seconds:>10.2f} {seconds / median['train']:>13.3f}")
    ratio = median["env"] / median["train"]
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(parse_args())

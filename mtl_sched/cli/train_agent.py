"""``mtl-sched train-agent``: train a scheduler agent with checkpoints, greedy evaluation and
resume; ``--benchmark a,b`` and ``--task-subsets LO-HI`` train it on several task sets.

Its logs (``OUT/logs/run-<timesteps>/``) hold TensorBoard events when tensorboard is installed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtl_sched.cli.common import (
    add_benchmark_source,
    add_command,
    add_key_value_flag,
)
from mtl_sched.script_args import positive_int, seed_list

DEFAULT_BENCHMARK = "synthetic"
EXAMPLES = (
    "mtl-sched train-agent --benchmark synthetic --steps 20000 --out runs/qls --seed 0",
    "mtl-sched train-agent --out runs/qls --steps 40000 --resume",
    "mtl-sched train-agent --benchmark synthetic-harmful,synthetic-many --task-subsets 2-4 "
    "--out runs/family",
    "mtl-sched train-agent --benchmark synthetic --small --setting net_arch=64,64 "
    "--setting gamma=0.5 --option budget=1280 --out runs/small",
    "mtl-sched train-agent --benchmark fdu-mtl,synthetic-harmful --small "
    "--option fdu-mtl.budget=12800 --out runs/mixed",
)


def add_train_parser(commands: Any) -> None:
    """Add the ``train-agent`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    train = add_command(
        commands,
        "train-agent",
        "train a scheduler agent with checkpoints and greedy evaluation",
        EXAMPLES,
    )
    train.add_argument(
        "--benchmark",
        default=None,
        help=f"benchmark name, or several separated by commas (default: {DEFAULT_BENCHMARK})",
    )
    train.add_argument(
        "--task-subsets",
        default=None,
        metavar="LO-HI",
        help="train on every subset of LO to HI tasks of each benchmark, e.g. 3-8",
    )
    train.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="total agent steps (default: TrainAgentConfig's)",
    )
    train.add_argument("--out", type=Path, required=True, help="output directory of the run")
    train.add_argument("--seed", type=int, default=None, help="seed of the agent (default: 0)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--eval-every", type=int, default=2_000, help="steps between greedy evaluations (0: none)"
    )
    train.add_argument(
        "--eval-seeds",
        type=seed_list,
        default=None,
        help="evaluation run seeds (default: 1000,1001; when resuming, the run's own)",
    )
    train.add_argument(
        "--checkpoint-every", type=positive_int, default=1_000, help="steps between checkpoints"
    )
    add_key_value_flag(
        train,
        "--option",
        "benchmark option (repeatable; keys: 'list options BENCHMARK'), e.g. --option "
        "budget=4800; BENCHMARK.KEY=VALUE sets it for one of several benchmarks",
    )
    add_key_value_flag(
        train,
        "--setting",
        "agent setting (repeatable; keys: 'list settings'); a list value as a,b,c, "
        "e.g. --setting net_arch=64,64",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_benchmark_source(train)


def task_subset_bounds(text: str) -> tuple[int, int]:
    """``"LO-HI"`` (or ``"N"``, for ``N-N``) as task counts.

    :param text: the value of ``--task-subsets``.
    :raises ValueError: for anything else.
    """
    low, separator, high = text.partition("-")
    try:
        bounds = (int(low), int(high if separator else low))
    except ValueError:
        bounds = (0, 0)
    if min(bounds) < 1 or bounds[0] > bounds[1]:
        raise ValueError(
            f"--task-subsets must be LO-HI with task counts 1 <= LO <= HI (e.g. 3-8); got {text!r}"
        )
    return bounds


def benchmark_list(text: str) -> str:
    """The comma-separated benchmark names of ``--benchmark``, each registered.

    :param text: the flag's value.
    :raises ValueError: naming an unknown benchmark and the registered ones.
    """
    from mtl_sched.benchmarks import benchmark_names

    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in benchmark_names():
            raise ValueError(
                f"--benchmark: unknown benchmark {name!r}; registered: "
                f"{', '.join(benchmark_names())}"
            )
    return ",".join(names)


def check_train_inputs(
    benchmarks: Sequence[str], options: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``--option`` values checked against every benchmark's keys and converted; the
    ``--setting`` keys and value types checked (their combination is `AgentSettings`'s).

    :param benchmarks: the registered benchmark names trained on.
    :param options: benchmark option -> value.
    :param settings: agent setting -> value.
    :raises ValueError: an unknown key, naming the known ones.
    :raises TypeError: a value that does not fit its key's type.
    """
    import typing

    from mtl_sched.agents.settings import AgentSettings, options_by_benchmark
    from mtl_sched.cli.keys import check_setting_keys, coerce_benchmark_options
    from mtl_sched.script_args import coerce_keyword_values

    check_setting_keys(settings)
    coerce_keyword_values(typing.get_type_hints(AgentSettings), settings, "agent setting")
    checked: dict[str, Any] = {}
    for name, own in options_by_benchmark(options, benchmarks).items():
        try:
            coerced = coerce_benchmark_options(name, own)
        except TypeError as err:
            if isinstance(err, ValueError):  # an unknown key, whose message names the benchmark
                raise
            raise TypeError(f"benchmark {name!r}: {err}") from None
        for key, value in coerced.items():
            scoped = f"{name}.{key}"
            checked[scoped if scoped in options else key] = value
    return checked


def run_train_agent(args: argparse.Namespace, source_options: dict[str, Any]) -> int:
    """Run ``mtl-sched train-agent`` and print where the agent went; the exit status.

    :param args: the parsed arguments of the command.
    :param source_options: the benchmark options of ``--data-dir`` and ``--small``.
    """
    from mtl_sched.agents.training import (
        AgentSettings,
        Terminated,
        TrainAgentConfig,
        stored_identity,
        train_agent,
    )
    from mtl_sched.agents.training_clock import COST_FILE

    steps = args.steps if args.steps is not None else TrainAgentConfig.steps
    try:
        # A resumed run takes its identity from disk; flags given explicitly must agree with it.
        stored = stored_identity(args.out) if args.resume else {}
        agent_values = dict(stored.get("agent", {})) | dict(args.setting)
        options = dict(stored.get("benchmark_options", {})) | source_options | dict(args.option)
        eval_seeds = args.eval_seeds or tuple(stored.get("eval_seeds", (1_000, 1_001)))
        benchmark = stored.get("benchmark", DEFAULT_BENCHMARK)
        if args.benchmark is not None:
            benchmark = benchmark_list(args.benchmark)
        options = check_train_inputs(benchmark.split(","), options, agent_values)
        subsets = stored.get("task_subsets")
        if args.task_subsets is not None:
            subsets = task_subset_bounds(args.task_subsets)
        # a run's stored settings take the defaults of the time they were written
        settings = AgentSettings.from_dict if args.resume else AgentSettings.from_options
        config = TrainAgentConfig(
            out=args.out,
            benchmark=benchmark,
            benchmark_options=options,
            task_subsets=None if subsets is None else tuple(subsets),
            steps=steps,
            seed=args.seed if args.seed is not None else stored.get("seed", 0),
            agent=settings(agent_values),
            eval_every=args.eval_every,
            eval_seeds=eval_seeds,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
        )
        result = train_agent(config, resume=args.resume)
    except KeyboardInterrupt as interrupt:
        what = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        print(
            f"{what}; a checkpoint was written to {args.out}. Continue with: "
            f"mtl-sched train-agent --out {args.out} --steps {steps} --resume",
            file=sys.stderr,
        )
        return 128 + int(signal.SIGTERM) if isinstance(interrupt, Terminated) else 130
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise SystemExit(f"mtl-sched train-agent: {err}") from None
    best = (
        f"best greedy validation average {result.best_score:.4f} at step {result.best_timesteps}"
        if result.best_timesteps >= 0
        else "no greedy evaluation ran"
    )
    cost = result.cost
    partial = "" if cost["complete"] else " since a checkpoint written before times were kept"
    print(
        f"trained {result.timesteps} steps into {result.out}; {best}\n"
        f"time: {cost['cpu_seconds'] / 3600:.2f} CPU hours, {cost['wall_seconds'] / 3600:.2f} "
        f"hours of wall time{partial} ({COST_FILE})\n"
        f"run it: mtl-sched run --benchmark {config.benchmark_names[0]} --scheduler qls "
        f"--agent {result.out}"
    )
    return 0

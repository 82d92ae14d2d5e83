"""``mtl-sched run``: one training run under a scheduler, test metrics printed; with
``--single-task``, the cached single-task reference scores instead.

The run's validation curves and task shares go to TensorBoard when it is installed
(``--tensorboard DIR``, default ``runs/tensorboard``; ``--no-tensorboard`` writes none).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mtl_sched.cli.common import (
    add_benchmark_option_flag,
    add_benchmark_source,
    add_command,
    add_key_value_flag,
    add_tensorboard_arguments,
    benchmark_source_options,
    tensorboard_root,
)
from mtl_sched.script_args import positive_int

DEFAULT_TENSORBOARD = Path("runs", "tensorboard")
EXAMPLES = (
    "mtl-sched run --benchmark synthetic --scheduler greedy --seed 3",
    "mtl-sched run --benchmark synthetic --small --scheduler round-robin --param tasks=easy,hard",
    "mtl-sched run --benchmark synthetic --scheduler temperature --param temperature=5",
    "mtl-sched run --benchmark synthetic --small --single-task --seed 3",
    "mtl-sched run --benchmark tagging --small --scheduler uniform --option probe_measure=entropy",
    "mtl-sched run --benchmark synthetic --scheduler qls --agent runs/qls --no-tensorboard",
)


def add_run_parser(commands: Any) -> None:
    """Add the ``run`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    run = add_command(
        commands, "run", "train once under a scheduler and print test metrics", EXAMPLES
    )
    run.add_argument("--benchmark", required=True, help="benchmark name (see 'list benchmarks')")
    run.add_argument("--scheduler", default=None, help="scheduler name (see 'list schedulers')")
    run.add_argument(
        "--single-task",
        action="store_true",
        help="compute (or read from the cache) and print the single-task reference scores",
    )
    run.add_argument("--seed", type=int, default=0, help="run seed")
    run.add_argument("--budget", type=positive_int, default=None, help="training examples")
    run.add_argument(
        "--agent", type=Path, default=None, help="saved agent .zip or train-agent directory (qls)"
    )
    add_key_value_flag(
        run,
        "--param",
        "scheduler hyperparameter (repeatable; keys: 'list params SCHEDULER'); a list "
        "value as a,b,c or a JSON list",
    )
    add_benchmark_option_flag(run, "probe_measure=entropy")
    add_benchmark_source(run)
    add_tensorboard_arguments(run, str(DEFAULT_TENSORBOARD))


def run_inputs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The benchmark options and scheduler hyperparameters of ``run``'s flags, checked (names,
    keys, value types) and converted, before anything is built.

    :param args: parsed ``run`` arguments.
    :raises KeyError: an unknown benchmark or scheduler, naming the known ones.
    :raises ValueError: an unknown key (naming the known ones) or a missing ``--scheduler``.
    :raises TypeError: a value that does not fit its key's type.
    """
    from mtl_sched.benchmarks import benchmark_factory
    from mtl_sched.cli.keys import coerce_benchmark_options
    from mtl_sched.registry import coerce_hyperparameters

    benchmark_factory(args.benchmark)
    options = benchmark_source_options(args) | dict(args.option)
    options = coerce_benchmark_options(args.benchmark, options)
    if args.scheduler is None:
        if not args.single_task:
            raise ValueError("give --scheduler NAME or --single-task")
        if args.param:
            raise ValueError("--param sets a scheduler's hyperparameter: give --scheduler NAME")
        return options, {}
    if args.agent is not None and (args.single_task or args.scheduler != "qls"):
        raise ValueError(
            "--agent is read by the qls scheduler only; drop it or use --scheduler qls"
        )
    return options, coerce_hyperparameters(args.scheduler, dict(args.param))


def _single_task(benchmark: Any, seed: int) -> str:
    from mtl_sched.references import reference_budget, single_task_references

    scores = single_task_references(benchmark, seed=seed)
    budget = reference_budget(benchmark)
    rows = "\n".join(
        f"  {task.name}: {score:.4f} ({task.metric})"
        for task, score in zip(benchmark.tasks, scores, strict=True)
    )
    return (
        f"single-task validation scores on {benchmark.name} (seed {seed}, {budget} training "
        f"examples per task, cached by benchmark configuration and seed):\n{rows}"
    )


def run_run(args: argparse.Namespace) -> str:
    """Run ``mtl-sched run``; return what it prints.

    :param args: parsed ``run`` arguments.
    """
    from mtl_sched.benchmarks import get_benchmark
    from mtl_sched.comparison import summary_table
    from mtl_sched.registry import prepared_scheduler
    from mtl_sched.training.tensorboard import close_observers, optional_observers, run_log_dir

    options, params = run_inputs(args)
    benchmark = get_benchmark(args.benchmark, **options).with_budget(args.budget)
    if args.single_task:
        return _single_task(benchmark, args.seed)
    root = tensorboard_root(args, DEFAULT_TENSORBOARD)
    # single-task references and weight searches come from the benchmark (cached on disk)
    scheduler = prepared_scheduler(args.scheduler, params, benchmark, args.agent)
    log_dir = None if root is None else run_log_dir(root, args.benchmark, args.scheduler, args.seed)
    observers = optional_observers(log_dir)
    try:
        result = benchmark.make_trainer(args.seed).run(
            scheduler, progress=True, observers=observers
        )
    finally:
        close_observers(observers)
    per_task = "\n".join(
        f"  {name}: {score:.4f} ({metric})"
        for name, score, metric in zip(
            result.task_names, result.test.scores, result.test.metric_names, strict=True
        )
    )
    lines = [
        summary_table({args.scheduler: [result]}),
        f"test score per task (model selected on validation at "
        f"{result.best_examples_seen} examples):\n{per_task}",
    ]
    if result.preparation_examples:
        lines.append(
            f"before the run, the scheduler spent {result.preparation_examples} training "
            "examples outside the budget (e.g. a weight search on validation data)"
        )
    if result.scheduler_notes:
        notes = result.scheduler_notes
        lines.append("scheduler notes:\n" + "\n".join(f"  {k}: {notes[k]}" for k in sorted(notes)))
    if log_dir is not None:
        lines.append(f"TensorBoard events: {log_dir} (view: tensorboard --logdir {root})")
    return "\n".join(lines)

"""``mtl-sched study relations`` and ``mtl-sched study gain-prediction`` (seeds 003 and 004).

Both read one study's models from the results store: the task set, architecture, seeds and the
``relations`` benchmark options given here select them, so ``gain-prediction`` takes the same
options as the ``relations`` run whose results it uses.

``--tasks`` picks registered tagging tasks in table order (default: the five of
`RELATION_TASKS`; ``all``: every registered task, the eight built-in ones and any
``--conll-task``). ``--conll-task NAME=TRAIN[,VALIDATION,TEST]:WORD_COLUMN:TAG_COLUMN[:METRIC]``
(repeatable) adds a task read from your own CoNLL-style files
(`mtl_sched.data.conll_files`); without ``--tasks`` the study is the default five plus those
tasks.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtl_sched.benchmarks.relations import RELATION_TASKS
from mtl_sched.cli.compare import add_sweep_arguments, sweep_options
from mtl_sched.data.conll_files import CONLL_TASK_FORM, ConllTaskSpec, parse_conll_task
from mtl_sched.models.shared_decoder_tagger import ARCHITECTURES
from mtl_sched.script_args import comma_separated, positive_int, seed_list
from mtl_sched.studies.relations.plan import SETTINGS

_name_list = comma_separated(str, "names")
# flags passed on to the relations benchmark when given
_BENCHMARK_OPTIONS = (
    "train_sentences",
    "eval_sentences",
    "budget_per_task",
    "hidden_size",
    "embedding_dim",
    "learning_rate",
)


def _conll_task(text: str) -> ConllTaskSpec:
    """A ``--conll-task`` value as a spec with absolute paths (workers may run elsewhere)."""
    try:
        return parse_conll_task(text).resolved()
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        type=_name_list,
        default=None,
        help=f"tagging tasks, in table order, or 'all' (default: {','.join(RELATION_TASKS)}, "
        "plus any --conll-task)",
    )
    parser.add_argument(
        "--conll-task",
        type=_conll_task,
        action="append",
        default=[],
        metavar=CONLL_TASK_FORM,
        help="a tagging task from your own CoNLL-style files (repeatable): fields 0-based, "
        "METRIC accuracy (default), span-f1 (IOB tags) or tag-f1 (F1 over tokens not tagged O); "
        "one file carves validation and test "
        "from its end, e.g. ner-de=train.txt,dev.txt,test.txt:0:3:span-f1",
    )
    parser.add_argument("--arch", choices=ARCHITECTURES, default="multi-dec", help="architecture")
    parser.add_argument("--seeds", type=seed_list, default=(0, 1, 2), help="e.g. 0,1,2")
    parser.add_argument("--k", type=float, default=1.5, help="width of the higher/lower rule")
    parser.add_argument("--db", type=Path, default=Path("relations.sqlite"), help="results store")
    parser.add_argument("--out", type=Path, default=Path("relations"), help="tables and figures")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $MTL_SCHED_DATA)"
    )
    parser.add_argument("--small", action="store_true", help="tiny data and model (tests)")
    parser.add_argument("--train-sentences", type=positive_int, help="first N training sentences")
    parser.add_argument(
        "--eval-sentences", type=positive_int, help="first N validation and test sentences"
    )
    parser.add_argument("--budget-per-task", type=positive_int, help="training sentences per task")
    parser.add_argument("--hidden-size", type=positive_int, help="word LSTM units per direction")
    parser.add_argument("--embedding-dim", type=positive_int, help="word embedding width")
    parser.add_argument("--learning-rate", type=float, help="Adam learning rate (default 1e-3)")


def add_relations_parsers(studies: Any) -> None:
    """Add ``relations`` and ``gain-prediction`` to the ``study`` subparsers.

    :param studies: the object returned by the ``study`` parser's ``add_subparsers``.
    """
    relations = studies.add_parser(
        "relations", help="which tagging tasks help which (STL, pairwise, All, Oracle)"
    )
    _add_study_options(relations)
    relations.add_argument(
        "--settings",
        type=_name_list,
        default=SETTINGS,
        help=f"a subset of {','.join(SETTINGS)}",
    )
    add_sweep_arguments(relations)
    relations.add_argument(
        "--report-only", action="store_true", help="write the report from stored models only"
    )
    gain = studies.add_parser(
        "gain-prediction", help="predict pairwise MTL gains from task features (seed 004)"
    )
    _add_study_options(gain)
    gain.add_argument(
        "--outcomes", type=Path, default=None, help="CSV of main,aux,gain (or mtl,stl) outcomes"
    )
    gain.add_argument(
        "--vocabulary", type=Path, default=None, help="embedding vocabulary (one word per line)"
    )
    gain.add_argument("--runs", type=positive_int, default=100, help="cross-validation runs")
    gain.add_argument("--folds", type=positive_int, default=5, help="folds per run")


def relations_config(args: argparse.Namespace, settings: tuple[str, ...] = SETTINGS) -> Any:
    """The `RelationsConfig` the arguments ask for."""
    from mtl_sched.data.conll_files import CONLL_TASKS
    from mtl_sched.data.tagging_tasks import register_conll_tasks, tagging_task_names
    from mtl_sched.studies.relations.study import RelationsConfig

    try:
        specs = register_conll_tasks(args.conll_task)
    except ValueError as err:
        raise ValueError(f"--conll-task: {err}") from None
    tasks = study_tasks(args.tasks, [spec.name for spec in specs], tagging_task_names())
    options: dict[str, Any] = {}
    if specs:
        options[CONLL_TASKS] = [spec.as_option() for spec in specs]
    if args.data_dir is not None:
        options["data_dir"] = str(args.data_dir)
    if args.small:
        options["small"] = True
    for name in _BENCHMARK_OPTIONS:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return RelationsConfig(tasks, args.arch, tuple(args.seeds), settings, args.k, options)


def study_tasks(
    requested: Sequence[str] | None, file_tasks: Sequence[str], known: Sequence[str]
) -> tuple[str, ...]:
    """The study's tasks, in table order.

    :param requested: the ``--tasks`` names, ``["all"]`` for every known task, or ``None`` for
        `RELATION_TASKS` followed by ``file_tasks``.
    :param file_tasks: the names of the ``--conll-task`` tasks.
    :param known: every registered tagging task.
    :raises ValueError: naming ``--tasks`` and the unknown names.
    """
    if requested is None:
        return (*RELATION_TASKS, *(t for t in file_tasks if t not in RELATION_TASKS))
    if list(requested) == ["all"]:
        return tuple(known)
    unknown = [t for t in requested if t not in known]
    if unknown:
        raise ValueError(f"--tasks: unknown tasks {unknown}; known: {', '.join(known)}, or all")
    return tuple(requested)


def _settings_note(config: Any) -> str:
    options = {k: v for k, v in config.options.items() if k != "data_dir"}
    return f"Models: relations benchmark, {config.arch}, options {options or 'default (full)'}."


def run_relations(args: argparse.Namespace) -> str:
    """Run ``mtl-sched study relations``; return the report's Markdown."""
    from mtl_sched.studies.relations.plan import oracle_sets
    from mtl_sched.studies.relations.report import write_relations_report
    from mtl_sched.studies.relations.study import collect_study, run_relations_study

    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"--settings: unknown {unknown}; choose from {', '.join(SETTINGS)}")
    config = relations_config(args, tuple(args.settings))
    summary = ""
    if args.report_only:
        results = collect_study(args.db, config)
    else:
        run = run_relations_study(config, args.db, **sweep_options(args))
        results = run.results
        summary = "\n".join(s.describe(args.db) for s in run.sweeps) + "\n"
        failures = [f for s in run.sweeps for f in s.failures]
        if failures:
            raise RuntimeError(summary + f"{len(failures)} models failed; rerun to retry them")
    stats = results.statistics()
    paths = write_relations_report(
        stats,
        config.tasks,
        config.arch,
        oracle_sets(stats, config.tasks, config.k),
        args.out,
        embeddings=results.embeddings,
        k=config.k,
        settings_note=_settings_note(config),
        metrics=config.task_metrics(),
    )
    return summary + paths[0].read_text() + "\n" + "\n".join(f"wrote {p}" for p in paths)


def run_gain_prediction(args: argparse.Namespace) -> str:
    """Run ``mtl-sched study gain-prediction``; return the report's Markdown."""
    from mtl_sched.studies.gain.study import (
        predict_gains,
        read_outcomes,
        study_outcomes,
        task_features,
        write_gain_report,
    )
    from mtl_sched.studies.relations.study import collect_study

    config = relations_config(args)
    results = collect_study(args.db, config)
    vocabulary = None
    if args.vocabulary is not None:
        vocabulary = [w.strip() for w in args.vocabulary.read_text().splitlines() if w.strip()]
    features = task_features(config, results, vocabulary)
    if args.outcomes is not None:
        outcomes = read_outcomes(args.outcomes, config.tasks)
    else:
        outcomes = study_outcomes(results, config.tasks)
    prediction = predict_gains(features, outcomes, runs=args.runs, folds=args.folds)
    paths = write_gain_report(prediction, args.out)
    return paths[0].read_text() + "\n" + "\n".join(f"wrote {p}" for p in paths)

"""``mtl-sched study ...``: the seed experiments that are more than one scheduler run.

- ``mtl-sched study qmtl``: STL vs Q-MTL vs ensembles on UD POS tagging and CoNLL-2003 NER
  (seeds 000 and 001); results go to the results store, tables and figures to ``--out``.
- ``mtl-sched study relations`` and ``mtl-sched study gain-prediction``: which tagging tasks
  help which (seed 003) and predicting it from task features (seed 004); see
  `mtl_sched.cli.relations`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mtl_sched.cli.compare import add_sweep_arguments, sweep_options
from mtl_sched.cli.relations import add_relations_parsers, run_gain_prediction, run_relations
from mtl_sched.script_args import comma_separated, seed_list
from mtl_sched.studies.qmtl.setup import PARTS, SETTINGS, QMTLStudyConfig

_int_list = comma_separated(int, "integers")
_float_list = comma_separated(float, "numbers")
_name_list = comma_separated(str, "names")


def add_study_parser(commands: Any) -> None:
    """Add the ``study`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    study = commands.add_parser(
        "study", help="run a seed paper's study (qmtl, relations, gain-prediction)"
    )
    studies = study.add_subparsers(dest="study", required=True)
    qmtl = studies.add_parser(
        "qmtl", help="STL vs Q-MTL vs ensembles on UD POS tagging and CoNLL-2003 NER"
    )
    defaults = QMTLStudyConfig()
    qmtl.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $MTL_SCHED_DATA)"
    )
    qmtl.add_argument(
        "--out", type=Path, default=Path("qmtl-study"), help="tables, figures and caches"
    )
    qmtl.add_argument(
        "--db", type=Path, default=None, help="results store (default: OUT/results.sqlite)"
    )
    qmtl.add_argument(
        "--settings",
        choices=sorted(SETTINGS),
        default="seed",
        help="tagger settings: 'seed' (the papers': SGD, batch 1, 20 epochs) or 'fast'",
    )
    qmtl.add_argument("--epochs", type=int, default=None, help="override the settings' epochs")
    qmtl.add_argument(
        "--treebanks",
        type=_name_list,
        default=None,
        help=f"built-in UD treebanks, a subset of {','.join(defaults.treebanks)} (default: all, "
        "unless --treebank is given)",
    )
    qmtl.add_argument(
        "--treebank",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a UD treebank directory (its .conllu files with train, dev and test in their names; "
        "named after the train file, e.g. fr_gsd, or NAME); repeatable; studied instead of the "
        "built-in treebanks unless --treebanks is given too",
    )
    qmtl.add_argument("--seeds", type=seed_list, default=defaults.seeds, help="e.g. 0,1,2")
    qmtl.add_argument("--ks", type=_int_list, default=defaults.ks, help="head counts, e.g. 1,10,30")
    qmtl.add_argument(
        "--noise-k", type=int, default=defaults.noise_k, help="k of noise, PTA and NER runs"
    )
    qmtl.add_argument(
        "--noise", type=_float_list, default=defaults.noise_levels, help="label-noise rates"
    )
    qmtl.add_argument(
        "--ner-fractions",
        type=_float_list,
        default=defaults.ner_fractions,
        help="shares of the CoNLL-2003 training sentences",
    )
    qmtl.add_argument(
        "--parts",
        type=_name_list,
        default=defaults.parts,
        help=f"experiments to run, a subset of {','.join(PARTS)}",
    )
    qmtl.add_argument(
        "--train-sentences", type=int, default=None, help="first N training sentences only"
    )
    qmtl.add_argument(
        "--eval-sentences", type=int, default=None, help="first N dev and test sentences only"
    )
    qmtl.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    qmtl.add_argument(
        "--report-only", action="store_true", help="write the report from stored rows only"
    )
    add_sweep_arguments(qmtl)
    add_relations_parsers(studies)


def study_config(args: argparse.Namespace) -> QMTLStudyConfig:
    """The `QMTLStudyConfig` the ``study qmtl`` arguments ask for.

    :param args: the parsed ``study qmtl`` arguments.
    """
    settings = SETTINGS[args.settings]
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be positive; got {args.epochs}")
        settings = dataclasses.replace(settings, epochs=args.epochs)
    built_in = args.treebanks
    if built_in is None:
        built_in = () if args.treebank else QMTLStudyConfig().treebanks
    return QMTLStudyConfig(
        treebanks=(*built_in, *args.treebank),
        seeds=args.seeds,
        ks=args.ks,
        noise_k=args.noise_k,
        noise_levels=args.noise,
        ner_fractions=args.ner_fractions,
        parts=args.parts,
        settings=settings,
        train_sentences=args.train_sentences,
        eval_sentences=args.eval_sentences,
    )


def run_study(args: argparse.Namespace) -> str:
    """Run ``mtl-sched study ...``; return the report's Markdown."""
    if args.study == "relations":
        return run_relations(args)
    if args.study == "gain-prediction":
        return run_gain_prediction(args)
    from mtl_sched.results import ResultsStore
    from mtl_sched.studies.qmtl.report import write_report
    from mtl_sched.studies.qmtl.study import QMTLStudy, study_rows

    config = study_config(args)
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.db or args.out / "results.sqlite"
    summary = ""
    with ResultsStore(db) as store:
        if not args.report_only:
            options = sweep_options(args)
            study = QMTLStudy(
                config,
                store,
                cache_dir=args.out / "cache",
                data_dir=args.data_dir,
                device=args.device,
                progress=options.pop("progress"),
            )
            run = study.run(**options)
            summary = (
                f"models: {run.sweep.describe(db)}\nensembles: {run.ensembles_written} "
                f"combined now, {run.ensembles_waiting} waiting for a failed member\n"
            )
            if run.sweep.failures:
                raise RuntimeError(
                    summary + f"{len(run.sweep.failures)} models failed; rerun to retry them"
                )
        rows = study_rows(store, config)
    paths = write_report(rows, args.out)
    markdown = next((p for p in paths if p.suffix == ".md"), None)
    text = markdown.read_text() if markdown is not None else "no rows to report"
    return summary + text + "\n" + "\n".join(f"wrote {p}" for p in paths)

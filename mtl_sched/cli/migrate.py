"""``mtl-sched migrate``: bring a results store written by an earlier version up to this one.

Stored ``qls`` trials that name their agent by its path get the key they would have today, the
agent named by the digest of its files (see `mtl_sched.sweeps.agent_keys`). Without it, a
``compare`` command runs those trials again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mtl_sched.cli.common import add_command

MIGRATE_EXAMPLES = (
    "mtl-sched migrate --db results.sqlite",
    "mtl-sched migrate --db results.sqlite --moved /old/checkout=/home/me/mtl-sched",
)


def _moved(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW (two paths); got {text!r}")
    return old, new


def add_migrate_parser(commands: Any) -> None:
    """Add the ``migrate`` command to the ``mtl-sched`` subparsers.

    :param commands: the object returned by ``ArgumentParser.add_subparsers``.
    """
    migrate = add_command(
        commands,
        "migrate",
        "rekey a results store's trials written by an earlier version (qls agents by content)",
        MIGRATE_EXAMPLES,
    )
    migrate.add_argument("--db", type=Path, required=True, help="the results store (SQLite file)")
    migrate.add_argument(
        "--moved",
        type=_moved,
        action="append",
        default=[],
        metavar="OLD=NEW",
        help=(
            "a stored agent path, or a folder above it, that is now at NEW (repeatable; the "
            "longest OLD that covers a path applies)"
        ),
    )


def run_migrate(args: argparse.Namespace) -> str:
    """Run ``mtl-sched migrate``; return what it changed, one line per trial.

    :param args: the parsed ``migrate`` arguments.
    :raises ValueError: when ``--db`` is a directory or no file.
    """
    from mtl_sched.results import ResultsStore
    from mtl_sched.sweeps.agent_keys import rekey_agent_paths

    if args.db.is_dir():
        raise ValueError(f"--db {args.db} is a directory, not a results store file")
    if not args.db.is_file():
        raise ValueError(f"--db {args.db} does not exist")
    with ResultsStore(args.db) as store:
        rekeys = rekey_agent_paths(store, dict(args.moved))
    lines = []
    for rekey in rekeys:
        trial = f"{rekey.old.benchmark} {rekey.old.scheduler} seed {rekey.old.seed}"
        if rekey.changed:
            lines.append(f"{trial}: {rekey.old.config_hash} -> {rekey.new.config_hash}")
        else:
            lines.append(
                f"{trial}: left as {rekey.old.config_hash} (the store holds it again as "
                f"{rekey.new.config_hash})"
            )
    changed = sum(rekey.changed for rekey in rekeys)
    lines.append(f"{args.db}: {changed} of {len(rekeys)} trials naming an agent by path rekeyed")
    return "\n".join(lines)

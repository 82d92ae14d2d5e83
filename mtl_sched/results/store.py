"""The results store: one SQLite file of finished trials and their metric rows.

What a trial is (`TrialKey`, `MetricRow`, `ResultRow`, `TrialRecord`, `config_hash` and the
provenance written with it) lives in `mtl_sched.results.records`; `mtl_sched.results` offers both.

Schema (``PRAGMA user_version`` holds `SCHEMA_VERSION`):

``trials``, one row per finished trial: ``trial_id INTEGER PRIMARY KEY``, ``benchmark TEXT``,
    ``config_hash TEXT``, ``scheduler TEXT``, ``seed INTEGER``, ``config_json TEXT`` (sorted
    JSON), ``wall_time REAL`` (seconds), ``examples_seen INTEGER``, ``optimizer_steps INTEGER``,
    ``package_version TEXT``, ``git_revision TEXT`` (NULL outside a git checkout) and
    ``finished_at TEXT`` (ISO 8601, UTC); ``UNIQUE(benchmark, config_hash, scheduler, seed)``.
``metrics``, one row per measured number: ``trial_id INTEGER REFERENCES trials``,
    ``split TEXT``, ``task TEXT``, ``metric TEXT``, ``value REAL``;
    ``PRIMARY KEY(trial_id, split, task, metric)``.
``series`` (since version 2), one row per recorded sequence of a trial (a validation curve, the
    schedule, probe histograms): ``trial_id INTEGER REFERENCES trials``, ``name TEXT``,
    ``data BLOB`` (zlib-compressed JSON); ``PRIMARY KEY(trial_id, name)``. Opening a version-1
    file adds the table.

``value`` and ``wall_time`` hold NaN as NULL. A trial with all its metric rows and series is
written in one ``BEGIN IMMEDIATE`` transaction, so the file holds either the whole trial or none
of it; the first writer of a key wins. The file is in WAL mode with a busy timeout, so several
processes may write to it at once, each through its own `ResultsStore`.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from mtl_sched.results.records import (
    MetricRow,
    ResultRow,
    TrialKey,
    TrialRecord,
    config_hash,
    git_revision,
    package_version,
)

__all__ = ["SCHEMA_VERSION", "ResultsStore", "ResultsStoreError"]

SCHEMA_VERSION = 2

_SERIES_SCHEMA = (
    "CREATE TABLE series (trial_id INTEGER NOT NULL REFERENCES trials (trial_id),"
    " name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (trial_id, name));"
)
_SCHEMA = (
    "CREATE TABLE trials (trial_id INTEGER PRIMARY KEY, benchmark TEXT NOT NULL,"
    " config_hash TEXT NOT NULL, scheduler TEXT NOT NULL, seed INTEGER NOT NULL,"
    " config_json TEXT NOT NULL, wall_time REAL, examples_seen INTEGER NOT NULL,"
    " optimizer_steps INTEGER NOT NULL, package_version TEXT NOT NULL, git_revision TEXT,"
    " finished_at TEXT NOT NULL, UNIQUE (benchmark, config_hash, scheduler, seed));"
    "CREATE TABLE metrics (trial_id INTEGER NOT NULL REFERENCES trials (trial_id),"
    " split TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL, value REAL,"
    " PRIMARY KEY (trial_id, split, task, metric));" + _SERIES_SCHEMA
)

_TRIAL_COLUMNS = (
    "benchmark, config_hash, scheduler, seed, config_json, wall_time, examples_seen,"
    " optimizer_steps, package_version, git_revision, finished_at"
)
_KEY_ORDER = "benchmark, config_hash, scheduler, seed"
_T = TypeVar("_T")


class ResultsStoreError(RuntimeError):
    """A file that cannot serve as a results store (not SQLite, or an unknown schema)."""


def _sql_value(value: float) -> float | None:
    """``value`` as SQLite stores it: NaN becomes NULL."""
    value = float(value)
    return None if math.isnan(value) else value


def _pack(data: Any) -> bytes:
    text = json.dumps(data, allow_nan=True, separators=(",", ":"), default=_plain)
    return zlib.compress(text.encode("utf-8"), 6)


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays as the JSON types they stand for."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"series data of type {type(value).__name__} is not JSON-encodable")


def _config_json(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _float(stored: float | None) -> float:
    return math.nan if stored is None else float(stored)


class ResultsStore:
    """Finished trials and their metric rows in one SQLite file.

    Each process opens its own store from the path (a pickled store reopens the file).

    :param path: the SQLite file; it and its parent directories are created when missing.
    :param timeout: seconds to wait for another writer before giving up.
    :raises ResultsStoreError: naming the file, when it cannot be created or opened, is not an
        SQLite file, or holds another schema (such a file is left unchanged).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path, self.timeout = Path(path), timeout
        self._provenance: tuple[str, str | None] | None = None
        if self.path.is_dir():
            raise ResultsStoreError(f"{self.path} is a directory, not a results store file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ResultsStoreError(f"{self.path}: cannot create or open ({exc})") from exc
        try:
            # The schema is checked first: a file that is not a results store is left as it was
            # (switching to WAL mode would change it).
            self._retrying(lambda: self._transaction(self._create))
            self._retrying(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ResultsStoreError(
                f"{self.path}: cannot open as an SQLite results store ({exc})"
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def _create(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not self._conn.execute("SELECT * FROM sqlite_master").fetchone():
            for statement in _SCHEMA.split(";")[:-1]:
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version == 1:
            self._conn.execute(_SERIES_SCHEMA.rstrip(";"))
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise ResultsStoreError(
                f"{self.path}: unknown results schema version {version} "
                f"(this code reads version {SCHEMA_VERSION})"
            )

    def _transaction(self, body: Callable[[], _T]) -> _T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            if self._conn.in_transaction:  # some errors end the transaction themselves
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return result

    def _retrying(self, action: Callable[[], _T]) -> _T:
        """``action()``, again after a pause while the database is locked, up to the timeout."""
        deadline, delay = time.monotonic() + self.timeout, 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 0.5)

    def __reduce__(self) -> tuple[type[ResultsStore], tuple[Path]]:
        return type(self), (self.path,)

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (closing twice is harmless)."""
        self._conn.close()

    def has_trial(self, key: TrialKey) -> bool:
        """Whether ``key`` is stored.

        :param key: the trial.
        """
        sql = "SELECT 1 FROM trials WHERE benchmark=? AND config_hash=? AND scheduler=? AND seed=?"
        args = (key.benchmark, key.config_hash, key.scheduler, key.seed)
        return self._retrying(lambda: self._conn.execute(sql, args).fetchone()) is not None

    def finished_keys(self, benchmark: str | None = None) -> set[TrialKey]:
        """The keys of every stored trial.

        :param benchmark: only this benchmark's trials; ``None`` for all.
        """
        return {record.key for record in self.trials(benchmark)}

    def write_trial(
        self,
        key: TrialKey,
        rows: Iterable[MetricRow],
        *,
        config: Mapping[str, Any],
        wall_time: float,
        examples_seen: int = 0,
        optimizer_steps: int = 0,
        series: Mapping[str, Any] | None = None,
    ) -> bool:
        """Store a trial with all its rows at once; ``False`` (and nothing written) if stored.

        :param key: the trial; ``key.config_hash`` must equal ``config_hash(config)``.
        :param rows: the trial's metric rows, at most one per (split, task, metric); NaN values
            are allowed.
        :param config: the trial's configuration.
        :param wall_time: seconds the trial took.
        :param examples_seen: training examples consumed.
        :param optimizer_steps: optimizer updates made.
        :param series: name -> JSON-encodable sequence data of the trial (see `series`).
        """
        expected = config_hash(config)
        if key.config_hash != expected:
            raise ValueError(f"key.config_hash {key.config_hash!r} != config_hash {expected!r}")
        rows = list(rows)
        counts = Counter((row.split, row.task, row.metric) for row in rows)
        if duplicates := sorted(ident for ident, count in counts.items() if count > 1):
            raise ValueError(f"duplicate metric rows (split, task, metric): {duplicates}")
        if self._provenance is None:
            self._provenance = (package_version(), git_revision())
        trial = (key.benchmark, key.config_hash, key.scheduler, int(key.seed),
                 _config_json(config), _sql_value(wall_time),
                 int(examples_seen), int(optimizer_steps), *self._provenance)  # fmt: skip
        blobs = [(name, _pack(data)) for name, data in (series or {}).items()]

        def insert() -> bool:
            finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            cursor = self._conn.execute(
                f"INSERT INTO trials ({_TRIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (benchmark, config_hash, scheduler, seed) DO NOTHING",
                (*trial, finished_at),
            )
            if cursor.rowcount == 0:
                return False
            self._conn.executemany(
                "INSERT INTO metrics (trial_id, split, task, metric, value) VALUES (?, ?, ?, ?, ?)",
                ((cursor.lastrowid, r.split, r.task, r.metric, _sql_value(r.value)) for r in rows),
            )
            self._conn.executemany(
                "INSERT INTO series (trial_id, name, data) VALUES (?, ?, ?)",
                ((cursor.lastrowid, name, blob) for name, blob in blobs),
            )
            return True

        return self._retrying(lambda: self._transaction(insert))

    def rekey(self, changes: Sequence[tuple[TrialKey, Mapping[str, Any]]]) -> list[bool]:
        """Give stored trials new configurations, and the keys those hash to, in one transaction.

        A trial whose new key is already stored (it ran again under the new key) keeps its old
        key; the report then takes the most recently finished of the two.

        :param changes: (stored key, its new configuration) pairs; the scheduler, seed and
            benchmark stay.
        :returns: per change, whether the trial took its new key.
        :raises KeyError: naming a key that is not stored (nothing is changed).
        """
        changes = list(changes)

        def update() -> list[bool]:
            changed = []
            for old, config in changes:
                new = TrialKey(old.benchmark, config_hash(config), old.scheduler, old.seed)
                cursor = self._conn.execute(
                    "UPDATE OR IGNORE trials SET config_hash=?, config_json=? WHERE benchmark=?"
                    " AND config_hash=? AND scheduler=? AND seed=?",
                    (new.config_hash, _config_json(config),
                     old.benchmark, old.config_hash, old.scheduler, old.seed),
                )  # fmt: skip
                changed.append(cursor.rowcount > 0)
                if not cursor.rowcount and not self.has_trial(old):
                    raise KeyError(f"{self.path}: no stored trial {old}")
            return changed

        return self._retrying(lambda: self._transaction(update))

    def _select(self, sql: str, filters: dict[str, Any], order: str) -> list[tuple[Any, ...]]:
        given = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given) or "1"
        query = f"{sql} WHERE {where} ORDER BY {order}"
        return self._retrying(lambda: self._conn.execute(query, tuple(given.values())).fetchall())

    def trials(
        self, benchmark: str | None = None, scheduler: str | None = None
    ) -> list[TrialRecord]:
        """Stored trials, ordered by key.

        :param benchmark: only this benchmark's trials; ``None`` for all.
        :param scheduler: only this scheduler's trials; ``None`` for all.
        """
        filters = {"benchmark": benchmark, "scheduler": scheduler}
        found = self._select(f"SELECT {_TRIAL_COLUMNS} FROM trials", filters, _KEY_ORDER)
        return [
            TrialRecord(TrialKey(*r[:4]), json.loads(r[4]), _float(r[5]), *r[6:]) for r in found
        ]

    def rows(
        self,
        benchmark: str | None = None,
        config_hash: str | None = None,
        scheduler: str | None = None,
        split: str | None = None,
        task: str | None = None,
        metric: str | None = None,
    ) -> list[ResultRow]:
        """Stored metric rows matching every filter given, ordered by key, split, task, metric.

        :param benchmark: only this benchmark; ``None`` for all.
        :param config_hash: only this configuration hash; ``None`` for all.
        :param scheduler: only this scheduler; ``None`` for all.
        :param split: only this split; ``None`` for all.
        :param task: only this task; ``None`` for all.
        :param metric: only this metric; ``None`` for all.
        """
        found = self._select(
            "SELECT t.trial_id, benchmark, config_hash, scheduler, seed, config_json, split, task,"
            " metric, value FROM trials AS t JOIN metrics AS m ON m.trial_id = t.trial_id",
            {"benchmark": benchmark, "config_hash": config_hash, "scheduler": scheduler,
             "split": split, "task": task, "metric": metric},
            f"{_KEY_ORDER}, split, task, metric",
        )  # fmt: skip
        texts = {r[0]: r[5] for r in found}  # each trial's configuration is parsed once
        configs = {trial_id: json.loads(text) for trial_id, text in texts.items()}
        return [ResultRow(TrialKey(*r[1:5]), configs[r[0]], *r[6:9], _float(r[9])) for r in found]

    def series(self, key: TrialKey, name: str) -> Any:
        """The sequence data ``name`` stored with trial ``key``; ``None`` when there is none.

        :param key: the trial.
        :param name: the series name given to `write_trial`.
        """
        sql = (
            "SELECT data FROM series AS s JOIN trials AS t ON s.trial_id = t.trial_id WHERE"
            " benchmark=? AND config_hash=? AND scheduler=? AND seed=? AND name=?"
        )
        args = (key.benchmark, key.config_hash, key.scheduler, key.seed, name)
        found = self._retrying(lambda: self._conn.execute(sql, args).fetchone())
        return None if found is None else json.loads(zlib.decompress(found[0]).decode("utf-8"))

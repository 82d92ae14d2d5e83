"""Finished trials and their numbers: the SQLite results store (`mtl_sched.results.store`) and
what a trial is, its key, rows and provenance (`mtl_sched.results.records`)."""

from mtl_sched.results.records import (
    MetricRow,
    ResultRow,
    TrialKey,
    TrialRecord,
    config_hash,
    git_revision,
    package_version,
)
from mtl_sched.results.store import SCHEMA_VERSION, ResultsStore, ResultsStoreError

__all__ = [
    "SCHEMA_VERSION",
    "MetricRow",
    "ResultRow",
    "ResultsStore",
    "ResultsStoreError",
    "TrialKey",
    "TrialRecord",
    "config_hash",
    "git_revision",
    "package_version",
]

"""Scheduler comparisons: sweeps of (scheduler, seed) trials into the results store."""

from mtl_sched.sweeps.job import ProgressReport, SweepJob, TrialOutcome
from mtl_sched.sweeps.runner import SweepSummary, pending_trials, plan_trials, run_sweep
from mtl_sched.sweeps.spec import COMPARE, LEAVE_ONE_OUT, TrialSpec, trial_config, trial_key
from mtl_sched.sweeps.trial import run_trial

__all__ = [
    "COMPARE",
    "LEAVE_ONE_OUT",
    "ProgressReport",
    "SweepJob",
    "SweepSummary",
    "TrialOutcome",
    "TrialSpec",
    "pending_trials",
    "plan_trials",
    "run_sweep",
    "run_trial",
    "trial_config",
    "trial_key",
]

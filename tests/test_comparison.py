"""`run_comparison`: an in-process comparison through the sweep harness, reported as the report
command reports it."""

import warnings

import pytest

from mtl_sched.comparison import compare_schedulers, run_comparison
from mtl_sched.registry import make_scheduler
from mtl_sched.reporting.report import make_report
from mtl_sched.results import ResultsStore

SMALL = {"small": True}


def _trial_count(store_path):
    with ResultsStore(store_path) as store:
        return len(store.trials("synthetic"))


def test_run_comparison_stores_trials_once_and_reports_its_own_comparison(tmp_path):
    store = tmp_path / "results.sqlite"
    args = ("synthetic", ["uniform", "round-robin"], [0, 1], store)
    first = run_comparison(*args, benchmark_options=SMALL, budget=256)
    assert _trial_count(store) == 4
    assert "budget 256" in first.markdown and "| task | uniform (baseline) | round-robin |" in (
        first.markdown
    )
    # a later comparison at another budget is the store's most recent one ...
    run_comparison(*args, benchmark_options=SMALL, budget=128)
    assert _trial_count(store) == 8
    assert "budget 128" in make_report(store, "synthetic").markdown
    # ... yet asking again for the first one runs nothing and reports the first one
    again = run_comparison(*args, benchmark_options=SMALL, budget=256)
    assert _trial_count(store) == 8
    assert again.markdown == first.markdown


def test_run_comparison_reports_a_failed_trial(tmp_path):
    # qls without a saved agent fails inside its trial; the sweep goes on, then the call raises
    with pytest.raises(RuntimeError, match="needs --agent PATH"):
        run_comparison(
            "synthetic",
            ["uniform", "qls"],
            [0],
            tmp_path / "results.sqlite",
            benchmark_options=SMALL,
            budget=64,
        )
    assert _trial_count(tmp_path / "results.sqlite") == 1


@pytest.mark.parametrize(
    ("schedulers", "seeds", "message"),
    [([], [0], "schedulers must name"), (["uniform"], [], "seeds must hold")],
)
def test_run_comparison_refuses_empty_inputs(tmp_path, schedulers, seeds, message):
    with pytest.raises(ValueError, match=message):
        run_comparison("synthetic", schedulers, seeds, tmp_path / "results.sqlite")


def test_compare_schedulers_is_deprecated_and_points_at_run_comparison(tiny_benchmark):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = compare_schedulers(
            tiny_benchmark.with_budget(64), {"uniform": lambda: make_scheduler("uniform")}, [0]
        )
    # Objects left by earlier tests may be collected inside the block and warn about
    # their own resources; only this call's deprecation is under test.
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1
    assert "run_comparison" in str(deprecations[0].message)
    assert results["uniform"][0].examples_seen == 64

"""Modules split into one concept each still offer every name they offered before, as the same
objects, and each names them in ``__all__``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import warnings

import pytest

# module -> (the module its moved names now live in, the names that moved)
MOVED = {
    "mtl_sched.models.stacked": ("mtl_sched.models.stacked_optimizer", ["StackedOptimizer"]),
    "mtl_sched.agents.settings": (
        "mtl_sched.agents.agent_settings",
        ["AgentSettings", "PolicyKind", "TrainingEnv", "VecEnvKind"],
    ),
    "mtl_sched.envs.batched": ("mtl_sched.envs.batched_vec_env", ["BatchedSchedulingVecEnv"]),
    "mtl_sched.envs.scheduling_env": (
        "mtl_sched.envs.reward",
        ["REWARD_KINDS", "PenaltyMode", "RewardKind"],
    ),
    "mtl_sched.scheduling": ("mtl_sched.errors", ["NonFiniteLossError"]),
    "mtl_sched.plotting": (
        "mtl_sched.reporting.figures",
        ["SchedulePanel", "plot_schedule_counts", "plot_schedules", "save_figure",
         "schedule_shares"],
    ),
}  # fmt: skip
# modules split into several: module -> {a module its moved names now live in: those names}
SPLIT = {
    "mtl_sched.results": {
        "mtl_sched.results.records": ["MetricRow", "ResultRow", "TrialKey", "TrialRecord",
                                      "config_hash", "git_revision", "package_version"],
        "mtl_sched.results.store": ["SCHEMA_VERSION", "ResultsStore", "ResultsStoreError"],
    },
    "mtl_sched.training": {
        "mtl_sched.training.config": ["NONFINITE_POLICIES", "NonFinitePolicy", "TrainerConfig",
                                     "resolve_device"],
        "mtl_sched.training.run_result": ["RunResult"],
        "mtl_sched.training.sampler": ["Columns", "TaskSampler", "materialize", "take_rows"],
        "mtl_sched.training.trainer": ["Trainer"],
    },
}  # fmt: skip
MOVES = sorted(
    [(module, home, names) for module, (home, names) in MOVED.items()]
    + [(module, home, names) for module, homes in SPLIT.items() for home, names in homes.items()]
)


@pytest.mark.parametrize(("module_name", "home_name", "names"), MOVES)
def test_moved_names_are_the_same_objects_where_they_were(module_name, home_name, names):
    module, home = importlib.import_module(module_name), importlib.import_module(home_name)
    for name in names:
        assert getattr(module, name) is getattr(home, name), name
        assert name in module.__all__ and name in home.__all__, name
    assert all(hasattr(module, name) for name in module.__all__)
    assert all(hasattr(home, name) for name in home.__all__)


def test_the_split_trainer_module_keeps_its_names_and_stays_small():
    import mtl_sched.training

    assert mtl_sched.training.Trainer.__module__ == "mtl_sched.training.trainer"
    homes = SPLIT["mtl_sched.training"]
    assert set(mtl_sched.training.__all__) == {name for names in homes.values() for name in names}
    for home in [*homes, "mtl_sched.training.evaluation"]:
        source = importlib.import_module(home).__file__
        with open(source, encoding="utf-8") as lines:
            assert sum(1 for _ in lines) < 400, home


def test_plotting_is_a_plain_re_export_that_does_not_warn():
    import mtl_sched.plotting

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(mtl_sched.plotting)
    assert "mtl_sched.reporting.figures" in mtl_sched.plotting.__doc__


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name (none when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_study_has_its_own_home():
    from mtl_sched.cli import build_parser

    commands = _subcommands(build_parser())
    # `demo` is the command of the package itself: its parser is `mtl_sched.cli`'s own
    assert {"demo", "list", "run", "compare", "report", "study", "train-agent"} <= set(commands)
    for command in set(commands) - {"demo"}:
        module = f"mtl_sched.cli.{command.replace('-', '_')}"
        assert importlib.util.find_spec(module) is not None, command
    studies = _subcommands(commands["study"])
    assert {"qmtl", "relations"} <= set(studies)
    for study in studies:
        # `gain-prediction` is the `gain` study's command
        package = importlib.import_module(f"mtl_sched.studies.{study.split('-')[0]}")
        assert hasattr(package, "__path__"), study


def test_no_concept_is_left_as_prefixed_modules_beside_its_package():
    import mtl_sched
    import mtl_sched.studies

    for package, prefixes in [
        (mtl_sched, ("cli_", "training_", "trainer_", "task_", "probe", "results_", "trial_")),
        (mtl_sched.studies, ("qmtl_", "relations_", "gain_")),
    ]:
        loose = [
            module.name
            for module in pkgutil.iter_modules(package.__path__)
            if not module.ispkg and module.name.startswith(prefixes)
        ]
        assert not loose, f"{package.__name__}: {loose}"


def _protocol_members(protocol: type) -> set[str]:
    """The attributes, properties and methods a protocol declares."""
    declared = set(getattr(protocol, "__annotations__", {}))
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            declared.add(name)
    return declared


def test_protocols_that_replaced_imports_describe_the_classes_they_stand_for(tiny_benchmark):
    from mtl_sched.envs.batched_vec_env import BatchedSchedulingVecEnv
    from mtl_sched.envs.replica import ReplicaOwner
    from mtl_sched.scheduling import PreparationSource
    from mtl_sched.training.sampler import TaskSampler

    preparation = _protocol_members(PreparationSource)
    assert preparation == {"name", "num_tasks", "trainer_config", "decision_steps", "fingerprint"}
    assert all(hasattr(tiny_benchmark, name) for name in preparation)
    owner = BatchedSchedulingVecEnv(tiny_benchmark, 2, reference_accuracies=None)
    members = _protocol_members(ReplicaOwner)
    assert {"replica_samplers", "probe_replicas", "task_names", "plans"} <= members
    assert all(hasattr(owner, name) for name in members)
    owner.reset()
    samplers = owner.replica_samplers(1)
    assert len(samplers) == tiny_benchmark.num_tasks
    assert all(isinstance(sampler, TaskSampler) for sampler in samplers)
    assert owner.replicas[1] is not None
    assert owner.replicas[1].training_state()["samplers"][0]["position"] == 0

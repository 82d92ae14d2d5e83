"""Modules split into one concept each still offer every name they offered before, as the same
objects, and each names them in ``__all__``."""

from __future__ import annotations

import importlib
import warnings

import pytest

# module -> (the module its moved names now live in, the names that moved)
MOVED = {
    "mtl_sched.results": (
        "mtl_sched.trial_records",
        ["MetricRow", "ResultRow", "TrialKey", "TrialRecord", "config_hash", "git_revision",
         "package_version"],
    ),
    "mtl_sched.models.stacked": ("mtl_sched.models.stacked_optimizer", ["StackedOptimizer"]),
    "mtl_sched.agents.settings": (
        "mtl_sched.agents.agent_settings",
        ["AgentSettings", "PolicyKind", "TrainingEnv", "VecEnvKind"],
    ),
    "mtl_sched.agents.boltzmann_gumbel": (
        "mtl_sched.agents.exploration",
        ["EXPLORATION_KINDS", "EXPLORATION_SCALES", "MIN_Q_SPREAD", "annealed_temperature",
         "boltzmann_choice", "boltzmann_gumbel_choice", "q_spread"],
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
    "mtl_sched.training": {
        "mtl_sched.trainer_config": ["NONFINITE_POLICIES", "NonFinitePolicy", "TrainerConfig",
                                     "resolve_device"],
        "mtl_sched.run_result": ["RunResult"],
        "mtl_sched.task_sampler": ["Columns", "TaskSampler", "materialize", "take_rows"],
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

    assert mtl_sched.training.Trainer.__module__ == "mtl_sched.training"
    moved = {name for homes in SPLIT.values() for names in homes.values() for name in names}
    assert set(mtl_sched.training.__all__) == moved | {"Trainer"}
    for home in ["mtl_sched.training", *SPLIT["mtl_sched.training"], "mtl_sched.task_evaluation"]:
        source = importlib.import_module(home).__file__
        with open(source, encoding="utf-8") as lines:
            assert sum(1 for _ in lines) < 400, home


def test_plotting_is_a_plain_re_export_that_does_not_warn():
    import mtl_sched.plotting

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(mtl_sched.plotting)
    assert "mtl_sched.reporting.figures" in mtl_sched.plotting.__doc__


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
    from mtl_sched.task_sampler import TaskSampler

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

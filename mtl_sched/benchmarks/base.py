"""A benchmark: named tasks, a model builder and training settings, versioned for caching."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtl_sched.data.task import Task
from mtl_sched.models.base import MTLModel
from mtl_sched.observation.probing import POOL_SELECTIONS, ProbeConfig
from mtl_sched.observation.uncertainty import MEASURES
from mtl_sched.training import Trainer
from mtl_sched.training.config import TrainerConfig

# Benchmark options every registered benchmark accepts (`Benchmark.with_probe_options`).
PROBE_OPTIONS: tuple[str, ...] = (
    "probe_pool",
    "probe_hard",
    "probe_measure",
    "probe_selection",
    "probe_refresh",
    "decision_steps",
)

# The `ProbeConfig` field each probe option sets.
PROBE_OPTION_FIELDS: dict[str, str] = {
    "probe_pool": "pool_size",
    "probe_hard": "hard_size",
    "probe_measure": "measure",
    "probe_selection": "selection",
    "probe_refresh": "refresh",
}


def _count_option(name: str, value: Any, minimum: int, all_word: bool) -> int | None:
    """An option that is a count of at least ``minimum``, or (``all_word``) ``"all"``/``None``."""
    if all_word and (value is None or (isinstance(value, str) and value.lower() == "all")):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    expected = f"an integer >= {minimum}" + (" or 'all'" if all_word else "")
    raise ValueError(f"benchmark option {name} must be {expected}; got {value!r}")


def probe_config_with(probe: ProbeConfig, **options: Any) -> ProbeConfig:
    """``probe`` with the probe options given (``probe_pool``, ``probe_hard``,
    ``probe_measure``, ``probe_selection``, ``probe_refresh``), each checked.

    :raises ValueError: naming the option, for an unknown option or a bad value.
    """
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if name not in PROBE_OPTION_FIELDS:
            raise ValueError(f"unknown probe option {name!r}; known: {list(PROBE_OPTIONS)}")
        if name in ("probe_pool", "probe_hard", "probe_refresh"):
            minimum = 0 if name == "probe_refresh" else 1
            value = _count_option(name, value, minimum, all_word=True)
        elif name == "probe_measure" and value not in MEASURES:
            raise ValueError(
                f"benchmark option probe_measure must be one of {sorted(MEASURES)}; got {value!r}"
            )
        elif name == "probe_selection" and value not in POOL_SELECTIONS:
            raise ValueError(
                f"benchmark option probe_selection must be one of {list(POOL_SELECTIONS)}; "
                f"got {value!r}"
            )
        changes[PROBE_OPTION_FIELDS[name]] = value
    return dataclasses.replace(probe, **changes)


def probe_option_differences(wanted: ProbeConfig, given: ProbeConfig) -> list[str]:
    """The benchmark options (``KEY=VALUE``) that turn ``given`` into ``wanted``, one per field
    that differs and has an option (``bins`` has none, so a ``bins`` difference is left out).

    :param wanted: the probe settings to reach.
    :param given: the probe settings there are.
    """
    differences = []
    for option, field_name in PROBE_OPTION_FIELDS.items():
        value = getattr(wanted, field_name)
        if value != getattr(given, field_name):
            differences.append(f"{option}={'all' if value is None else value}")
    return differences


@dataclass(frozen=True)
class ScheduleRecipe:
    """A named scheduler with hyperparameters, e.g. a benchmark's known-good schedule.

    :param scheduler: registered scheduler name.
    :param kwargs: its keyword hyperparameters.
    :param rationale: why this schedule is expected to do well.
    """

    scheduler: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""


@dataclass
class Benchmark:
    """Tasks + model + training settings under one name.

    :param name: registry name.
    :param description: one line for ``mtl-sched list benchmarks``.
    :param build_tasks: returns the benchmark's tasks (called once, then cached).
    :param build_model: builds a fresh model for the tasks (called under a fixed torch seed).
    :param trainer_config: budget, optimizer, evaluation and probe settings.
    :param config: every setting that defines the benchmark's data and model; hashed into cache
        keys, so two benchmarks with equal ``name``, ``version`` and ``config`` are the same.
    :param version: bumped whenever the definition changes results.
    :param episode_steps: environment episode length (steps of one minibatch); defaults to the
        budget divided by the batch size.
    :param better_schedule: a schedule documented to beat ``uniform`` on this benchmark.
    :param decision_steps: minibatches each decision of a scheduling agent trains: the
        `MTLSchedulingEnv` ``steps_per_action`` when none is given (benchmarks whose faithful
        probe pass is expensive decide less often rather than observe less).
    """

    name: str
    description: str
    build_tasks: Callable[[], list[Task]]
    build_model: Callable[[Sequence[Task]], MTLModel]
    trainer_config: TrainerConfig
    config: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    episode_steps: int | None = None
    better_schedule: ScheduleRecipe | None = None
    decision_steps: int = 1
    _tasks: list[Task] | None = field(default=None, init=False, repr=False)

    @property
    def tasks(self) -> list[Task]:
        """The benchmark's tasks (built on first access)."""
        if self._tasks is None:
            self._tasks = self.build_tasks()
        return self._tasks

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def env_episode_steps(self) -> int:
        """Steps per environment episode."""
        if self.episode_steps is not None:
            return self.episode_steps
        return max(1, self.trainer_config.budget // self.trainer_config.batch_size)

    def fingerprint(self) -> str:
        """Stable hash of name, version, config and trainer settings (for result caches)."""
        payload = {
            "name": self.name,
            "version": self.version,
            "config": self.config,
            "trainer": dataclasses.asdict(self.trainer_config),
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_budget(self, budget: int | None) -> Benchmark:
        """This benchmark with runs of ``budget`` training examples (``None``: unchanged).

        The tasks are shared (no data is reloaded). What a scheduler prepares from the benchmark
        (single-task references of budget / K examples each, a weight search at the run budget)
        then matches the runs, and the fingerprint, which includes the budget, keeps their
        caches apart. The evaluation cadence stays the benchmark's.

        :param budget: training examples per run.
        """
        if budget is None or budget == self.trainer_config.budget:
            return self
        if budget < 1:
            raise ValueError(f"budget must be positive; got {budget}")
        changed = dataclasses.replace(
            self, trainer_config=dataclasses.replace(self.trainer_config, budget=budget)
        )
        changed._tasks = self._tasks
        return changed

    def with_probe_options(self, **options: Any) -> Benchmark:
        """This benchmark with other probe settings or decision frequency (the tasks are shared).

        :param options: any of `PROBE_OPTIONS`: ``probe_pool`` (examples per task, or ``"all"``),
            ``probe_hard`` (batch-hard units in the histogram, or ``"all"``), ``probe_measure``
            (``margin``, ``least_confidence``, ``entropy``), ``probe_selection`` (``first`` or
            ``stratified``), ``probe_refresh`` (tasks re-probed besides the trained one, or
            ``"all"``) and ``decision_steps`` (minibatches per agent decision).
        :raises ValueError: naming the option, for an unknown option or a bad value.
        """
        options = dict(options)
        decision_steps = self.decision_steps
        if "decision_steps" in options:
            decision_steps = _count_option(
                "decision_steps", options.pop("decision_steps"), 1, all_word=False
            )
        probe = probe_config_with(self.trainer_config.probe, **options)
        changed = dataclasses.replace(
            self,
            trainer_config=dataclasses.replace(self.trainer_config, probe=probe),
            decision_steps=decision_steps,
        )
        changed._tasks = self._tasks
        return changed

    def without_task(self, name: str) -> Benchmark:
        """This benchmark with task ``name`` left out (a leave-one-out transfer experiment).

        The other tasks are this benchmark's own `Task` objects (no data is reloaded), the
        model is built on them alone, and ``config`` gains ``"left_out"`` so that the
        fingerprint differs from the full benchmark's (leaving out a second task records both
        names, in order). ``better_schedule`` is dropped: it was chosen for the full task set.

        :param name: the task to leave out.
        :raises KeyError: naming the task and the known tasks when there is no such task.
        :raises ValueError: when ``name`` is the only task.
        """
        self._check_task_names([name])
        remaining = [task for task in self.tasks if task.name != name]
        if not remaining:
            raise ValueError(f"benchmark {self.name!r}: cannot leave out {name!r}, its only task")
        previous = self.config.get("left_out")
        if previous is None:
            left_out: str | list[str] = name
        else:
            left_out = [*([previous] if isinstance(previous, str) else previous), name]
        return self._restricted(remaining, {"left_out": left_out})

    def with_tasks(self, names: Sequence[str]) -> Benchmark:
        """This benchmark restricted to the tasks ``names``, in that order (a task subset, e.g.
        to train one scheduling agent on many task sets).

        As with `without_task`, the tasks are shared, the model is built on them alone,
        ``config`` gains ``"tasks"`` (so the fingerprint differs) and ``better_schedule`` is
        dropped.

        :param names: the tasks to keep, at least one, each once.
        :raises KeyError: naming an unknown task and the known tasks.
        :raises ValueError: for no task or a repeated one.
        """
        names = list(names)
        if not names:
            raise ValueError(f"benchmark {self.name!r}: a task subset needs at least one task")
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark {self.name!r}: task subset {names} repeats a task")
        self._check_task_names(names)
        by_name = {task.name: task for task in self.tasks}
        return self._restricted([by_name[name] for name in names], {"tasks": names})

    def _check_task_names(self, names: Sequence[str]) -> None:
        known = self.task_names
        for name in names:
            if name not in known:
                raise KeyError(
                    f"benchmark {self.name!r} has no task {name!r}; known tasks: {', '.join(known)}"
                )

    def _restricted(self, tasks: list[Task], config: dict[str, Any]) -> Benchmark:
        reduced = Benchmark(
            name=self.name,
            description=self.description,
            build_tasks=lambda: list(tasks),
            build_model=self.build_model,
            trainer_config=self.trainer_config,
            config={**self.config, **config},
            version=self.version,
            episode_steps=self.episode_steps,
            decision_steps=self.decision_steps,
        )
        reduced._tasks = list(tasks)
        return reduced

    def make_model(self, seed: int) -> MTLModel:
        """A freshly initialized model; the same seed gives the same weights."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build_model(self.tasks)

    def make_trainer(self, seed: int, **config_overrides: Any) -> Trainer:
        """A trainer over a fresh model, seeded for both initialization and data order.

        :param seed: run seed.
        :param config_overrides: `TrainerConfig` fields to replace (e.g. ``budget=...``).
        """
        config = dataclasses.replace(self.trainer_config, **config_overrides)
        return Trainer(self.make_model(seed), self.tasks, config, seed=seed)

"""The observations of `mtl_sched.envs.scheduling_env.MTLSchedulingEnv`, of either kind: the flat
histograms (with optional recency features) or the padded per-task feature rows of
`mtl_sched.observation.task_features`. The env's module docstring documents both layouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
from gymnasium import spaces

from mtl_sched.observation.probing import ProbeResult
from mtl_sched.observation.recency import ChoiceTrace
from mtl_sched.observation.task_features import TaskFeatureTracker, pad_task_features

ObservationKind = Literal["histogram", "task-features"]
OBSERVATION_KINDS: tuple[str, ...] = ("histogram", "task-features")
DEFAULT_TASK_FEATURE_DECAY = 0.9

# ``task_vocabulary`` value that names the environment's own tasks
OWN_TASKS = "own"
TaskVocabulary = Sequence[str] | Literal["own"] | None

# bounds of every per-task feature and of the mask column (see mtl_sched.observation.task_features)
_FEATURE_LOW, _FEATURE_HIGH = -1.0, 4.0


def vocabulary_ids(task_names: Sequence[str], vocabulary: Sequence[str]) -> list[int]:
    """Each task's identity in ``vocabulary``: its index there plus one, 0 for a name outside it.

    :param task_names: a run's tasks.
    :param vocabulary: the task names an agent knows.
    """
    index = {name: i + 1 for i, name in enumerate(vocabulary)}
    return [index.get(name, 0) for name in task_names]


def union_vocabulary(task_name_lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The task names of several task sets, each once, in order of first appearance: the
    vocabulary of an agent trained on all of them.

    :param task_name_lists: each task set's task names.
    """
    return tuple(dict.fromkeys(name for names in task_name_lists for name in names))


def resolve_task_vocabulary(
    task_vocabulary: TaskVocabulary, task_names: Sequence[str], kind: str
) -> tuple[str, ...] | None:
    """The vocabulary an observation of ``kind`` writes identities from.

    :param task_vocabulary: names, ``"own"`` (``task_names`` for ``"task-features"``, no
        identities for ``"histogram"``, whose flat vector has no rows to carry them) or ``None``
        (no identities).
    :param task_names: the run's tasks.
    :param kind: the observation kind.
    """
    if isinstance(task_vocabulary, str):
        if task_vocabulary != OWN_TASKS:
            raise ValueError(
                f"task_vocabulary must be a list of task names, {OWN_TASKS!r} or None; "
                f"got {task_vocabulary!r}"
            )
        return tuple(task_names) if kind == "task-features" else None
    return None if task_vocabulary is None else tuple(task_vocabulary)


def _identity_column(
    task_names: Sequence[str], task_vocabulary: Sequence[str], num_tasks: int
) -> np.ndarray:
    """The identities of ``task_names`` in ``task_vocabulary``, checked."""
    if not task_vocabulary or len(set(task_vocabulary)) != len(task_vocabulary):
        raise ValueError(f"task_vocabulary must name distinct tasks; got {list(task_vocabulary)}")
    if len(task_names) != num_tasks:
        raise ValueError(f"task_vocabulary needs the {num_tasks} task names; got {task_names}")
    return np.asarray(vocabulary_ids(task_names, task_vocabulary), dtype=np.float32)


class TrainingCounters(Protocol):
    """The trainer counters the per-task features read (`mtl_sched.training.Trainer` has them)."""

    examples_seen: int
    examples_per_task: np.ndarray


def trainer_budget(trainer: Any) -> int:
    """The example budget of a trainer (``config.budget``) or of a
    `mtl_sched.scheduling.TrainState` (``budget``); 0 for one without a budget.

    :param trainer: a `mtl_sched.training.Trainer`, any trainer a factory returns, or the
        `TrainState` a scheduler plans from.
    """
    budget = getattr(trainer, "budget", None)
    if budget is None:
        budget = getattr(getattr(trainer, "config", None), "budget", 0)
    return int(budget or 0)


class SchedulingObservation:
    """Builds one environment's observations from its probe passes and decisions.

    :param kind: ``"histogram"`` or ``"task-features"``.
    :param num_tasks: the number of tasks ``K``.
    :param bins: histogram bins per task.
    :param recency_decay: decay of the recency trace; with ``"histogram"``, ``None`` leaves the
        trace out; with ``"task-features"``, ``None`` uses 0.9.
    :param max_tasks: rows of a ``"task-features"`` observation (default ``K``); must be left
        ``None`` with ``"histogram"``.
    :param task_names: the run's tasks, in row order (needed with ``task_vocabulary``).
    :param task_vocabulary: with ``"task-features"`` only, the task names an agent tells apart:
        each row then carries its task's identity (`vocabulary_ids`) in a column before the mask
        (padded rows: 0), bounded by the vocabulary's size.
    """

    def __init__(
        self,
        kind: ObservationKind,
        num_tasks: int,
        bins: int,
        recency_decay: float | None = None,
        max_tasks: int | None = None,
        task_names: Sequence[str] = (),
        task_vocabulary: Sequence[str] | None = None,
    ) -> None:
        if kind not in OBSERVATION_KINDS:
            raise ValueError(f"observation must be one of {OBSERVATION_KINDS}; got {kind!r}")
        self.kind: ObservationKind = kind
        self.num_tasks = num_tasks
        self.tracker: TaskFeatureTracker | None = None
        self.task_ids: np.ndarray | None = None
        # tasks whose identity this episode writes as 0, a task outside the vocabulary
        self.hidden_identities = np.zeros(num_tasks, dtype=bool)
        if task_vocabulary is not None:
            self.task_ids = _identity_column(task_names, task_vocabulary, num_tasks)
        if kind == "histogram":
            if max_tasks is not None:
                raise ValueError("max_tasks applies to observation='task-features' only")
            if task_vocabulary is not None:
                raise ValueError("task_vocabulary applies to observation='task-features' only")
            self.max_tasks = num_tasks
            self.recency = ChoiceTrace(num_tasks, recency_decay)
            self.space = spaces.Box(
                low=0.0, high=1.0, shape=(num_tasks * bins + self.recency.size,), dtype=np.float32
            )
            return
        self.max_tasks = num_tasks if max_tasks is None else int(max_tasks)
        if self.max_tasks < num_tasks:
            raise ValueError(f"max_tasks must be at least the {num_tasks} tasks; got {max_tasks}")
        # the trace lives in the feature rows, not appended to a flat vector
        self.recency = ChoiceTrace(num_tasks, None)
        decay = DEFAULT_TASK_FEATURE_DECAY if recency_decay is None else recency_decay
        self.tracker = TaskFeatureTracker(num_tasks, bins, decay)
        width = self.tracker.size + 1
        low = np.full((self.max_tasks, width), _FEATURE_LOW, dtype=np.float32)
        high = np.full((self.max_tasks, width), _FEATURE_HIGH, dtype=np.float32)
        if task_vocabulary is not None:
            low = np.insert(low, -1, 0.0, axis=1)
            high = np.insert(high, -1, float(len(task_vocabulary)), axis=1)
        self.space = spaces.Box(low=low, high=high, dtype=np.float32)

    @property
    def recency_decay(self) -> float | None:
        """The decay of the recency trace (``None``: a histogram observation without one)."""
        if self.tracker is not None:
            return self.tracker.recency.decay
        return self.recency.decay

    def action_masks(self) -> np.ndarray:
        """Bool of shape ``(max_tasks,)``: True for the real tasks, False for padded slots."""
        return np.arange(self.max_tasks) < self.num_tasks

    def reset(self, probe: ProbeResult, trainer: TrainingCounters) -> np.ndarray:
        """The first observation of a run.

        :param probe: the probe pass of the fresh model.
        :param trainer: the run's trainer.
        """
        self.recency.reset()
        if self.tracker is not None:
            self.tracker.reset(probe)
        return self.observe(probe, trainer)

    def record(self, task: int) -> None:
        """Count one decision that chose ``task``.

        :param task: the chosen task index.
        """
        self.recency.record(task)
        if self.tracker is not None:
            self.tracker.record(task)

    def observe(self, probe: ProbeResult, trainer: TrainingCounters) -> np.ndarray:
        """The observation after ``probe``.

        :param probe: the latest probe pass.
        :param trainer: the run's trainer (its counters and budget).
        """
        if self.tracker is None:
            return self.recency.extend(probe.observation)
        features = self.tracker.features(
            probe, trainer.examples_per_task, int(trainer.examples_seen), trainer_budget(trainer)
        )
        rows = pad_task_features(features, self.max_tasks)
        if self.task_ids is None:
            return rows
        identity = np.zeros(self.max_tasks, dtype=np.float32)
        identity[: self.num_tasks] = np.where(self.hidden_identities, 0.0, self.task_ids)
        return np.insert(rows, -1, identity, axis=1)

    def get_state(self) -> dict[str, Any]:
        """The flat recency trace, the per-task tracker's state (``None`` for histograms) and the
        tasks whose identity is hidden."""
        return {
            "recency": self.recency.values.copy(),
            "task_features": None if self.tracker is None else self.tracker.get_state(),
            "hidden_identities": self.hidden_identities.copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` (states stored before per-task features lack their key).

        :param state: the stored state.
        """
        self.recency.values[:] = state["recency"]
        self.hidden_identities[:] = state.get("hidden_identities", False)
        stored = state.get("task_features")
        if self.tracker is not None and stored is not None:
            self.tracker.set_state(stored)

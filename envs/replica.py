"""`ReplicaTrainer`: one replica of a batched model, seen through the `Trainer` interface.

`mtl_sched.envs.batched_vec_env.BatchedSchedulingVecEnv` trains and probes all of its replicas
at once; each of its environments is an `MTLSchedulingEnv` whose trainer is a `ReplicaTrainer`,
so the rewards, penalty, episodes and ``info`` keys stay `MTLSchedulingEnv`'s own code. A
replica reads its env through `ReplicaOwner`, so that neither module imports the other.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.scheduling import Step, StepOutcome
from mtl_sched.training.config import TrainerConfig
from mtl_sched.training.sampler import TaskSampler


class ReplicaOwner(Protocol):
    """What a `ReplicaTrainer` reads of the batched env that trains it
    (`mtl_sched.envs.batched_vec_env.BatchedSchedulingVecEnv` is one)."""

    task_names: tuple[str, ...]
    trainer_config: TrainerConfig
    probe_config: ProbeConfig
    plans: list[Step]

    def replica_samplers(self, index: int) -> list[TaskSampler]:
        """The data samplers of replica ``index``, one per task.

        :param index: the replica's index in the batch.
        """
        ...

    def probe_replicas(self, replicas: Sequence[int], tasks: Sequence[int]) -> list[ProbeResult]:
        """One probe pass of the given replicas over the given tasks.

        :param replicas: replica indices.
        :param tasks: task indices, in the order of each result's rows.
        """
        ...


class ReplicaTrainer:
    """One replica of a `BatchedSchedulingVecEnv`'s model, as its `MTLSchedulingEnv` sees it.

    It offers the part of the `mtl_sched.training.Trainer` interface that `MTLSchedulingEnv`
    uses. The batched env trains every replica and probes them together before letting each
    environment take its step; ``train_step`` then returns this replica's outcome of that batched
    step, and ``probe`` its rows of the batched probe pass (it probes the replica alone when no
    pass is pending, as after a reset).

    :param owner: the batched env.
    :param index: the replica's index in the batch.
    :param seed: its trainer seed (model initialization and data order).
    """

    def __init__(self, owner: ReplicaOwner, index: int, seed: int) -> None:
        self.owner = owner
        self.index = index
        self.seed = seed
        self.task_names = owner.task_names
        self.config: TrainerConfig = owner.trainer_config
        self.step_count = 0
        self.examples_seen = 0
        self.examples_per_task = np.zeros(len(self.task_names), dtype=np.int64)
        self.train_losses = np.full(len(self.task_names), np.nan)
        self._outcomes: deque[StepOutcome] = deque()
        self._pending_probe: tuple[list[int], ProbeResult] | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def training_state(self) -> dict[str, Any]:
        """This replica's data samplers (orders and generators), counters and pending outcomes;
        its weights and optimizer state belong to the batched env's state
        (`BatchedSchedulingVecEnv.get_state`)."""
        return {
            "samplers": [sampler.state() for sampler in self.owner.replica_samplers(self.index)],
            "step_count": self.step_count,
            "examples_seen": self.examples_seen,
            "examples_per_task": self.examples_per_task.copy(),
            "train_losses": self.train_losses.copy(),
            "outcomes": copy.deepcopy(list(self._outcomes)),
            "pending_probe": copy.deepcopy(self._pending_probe),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore a `training_state` (of a replica of the same index and seed)."""
        samplers = self.owner.replica_samplers(self.index)
        for sampler, stored in zip(samplers, state["samplers"], strict=True):
            sampler.load_state(stored)
        self.step_count = int(state["step_count"])
        self.examples_seen = int(state["examples_seen"])
        self.examples_per_task = np.asarray(state["examples_per_task"]).copy()
        self.train_losses = np.asarray(state["train_losses"]).copy()
        self._outcomes = deque(copy.deepcopy(state["outcomes"]))
        self._pending_probe = copy.deepcopy(state["pending_probe"])

    def record(self, task: int, loss: float, batch_size: int) -> None:
        """Book one batched training step of this replica on ``task``.

        :param task: the task trained.
        :param loss: its mean training loss on the minibatch.
        :param batch_size: examples drawn.
        """
        self.examples_per_task[task] += batch_size
        self.train_losses[task] = loss
        self.examples_seen += batch_size
        self._outcomes.append(
            StepOutcome(
                step=self.step_count,
                plan=self.owner.plans[task],
                task_losses=(loss,),
                loss=loss,
                batch_sizes=(batch_size,),
                examples_seen=self.examples_seen,
            )
        )
        self.step_count += 1

    def set_probe(self, tasks: list[int], result: ProbeResult) -> None:
        """The pending probe pass: ``result`` has one row per task of ``tasks``.

        :param tasks: the probed task indices.
        :param result: this replica's rows.
        """
        self._pending_probe = (tasks, result)

    def train_step(self, plan: Step, *args: Any, **kwargs: Any) -> StepOutcome:
        """The outcome of this replica's part of the batched step (trained already).

        :param plan: the step `MTLSchedulingEnv` asks for; it must be the one taken.
        """
        if not self._outcomes:
            raise RuntimeError(
                "replicas of a BatchedSchedulingVecEnv train only inside its step(); "
                "this replica has no pending step"
            )
        outcome = self._outcomes.popleft()
        if outcome.plan.tasks != plan.tasks:
            raise RuntimeError(f"replica {self.index} trained {outcome.plan}, not {plan}")
        return outcome

    def probe(
        self, config: ProbeConfig | None = None, tasks: Sequence[int] | None = None
    ) -> ProbeResult:
        """This replica's probe result for ``tasks`` (rows in that order).

        :param config: probe settings (must be the env's).
        :param tasks: task indices (``None``: every task).
        """
        wanted = list(range(self.num_tasks)) if tasks is None else [int(k) for k in tasks]
        if config is not None and config != self.owner.probe_config:
            raise ValueError("a replica probes with its batched env's probe settings only")
        pending, self._pending_probe = self._pending_probe, None
        if pending is None:
            return self.owner.probe_replicas([self.index], wanted)[0]
        probed, result = pending
        if probed == wanted:
            return result
        rows = [probed.index(k) for k in wanted]
        return ProbeResult(
            histograms=result.histograms[rows],
            losses=result.losses[rows],
            accuracies=result.accuracies[rows],
            uncertainties=[result.uncertainties[r] for r in rows] if result.uncertainties else [],
        )

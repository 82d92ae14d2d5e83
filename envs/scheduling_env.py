"""`MTLSchedulingEnv`: the multi-task training loop as a Gymnasium environment (seed 002).

Defaults
    The defaults are the settings the measurements in the README support, shared with
    `mtl_sched.agents.AgentSettings` and ``train-agent``: per-task feature rows
    (``observation="task-features"``, read by the task-shared Q-network) with each task's
    identity (``task_vocabulary="own"``), ``reward="loss-and-accuracy"`` and no accuracy penalty
    (``reference_accuracies=None``). Seed 002's environment is ``observation="histogram",
    reward="loss", reference_accuracies="auto"`` with one minibatch per decision
    (``steps_per_action=1``).

Spaces
    - Action: ``Discrete(K)``, the task whose minibatch trains the model next; ``Discrete(M)``
      with ``observation="task-features"``, where ``M = max_tasks`` (default ``K``) and an
      action ``>= K`` (a padded slot) is a ``ValueError``. ``action_masks()`` returns a bool
      array of shape ``(M,)``, True for the real tasks (sb3-contrib's MaskablePPO convention);
      all True with ``"histogram"``.
    - Observation, ``observation="histogram"`` (seed 002's):
      ``Box(0, 1, (K * bins,), float32)``, each task's normalized histogram of prediction
      uncertainty (margin by default) on its validation probe set, task after task. With
      ``recency_decay=d`` it is followed by ``K`` recency features (``Box(0, 1, (K * bins +
      K,))``): an exponential moving average of the one-hot actions with decay ``d`` per step
      (`mtl_sched.observation.recency.ChoiceTrace`), all 0 after ``reset``.
    - Observation, ``observation="task-features"`` (the default): ``Box(-1, 4, (M, F + 1),
      float32)`` without task identities (``task_vocabulary=None``), with ``F = bins + 7``
      (`mtl_sched.observation.task_features`), one row per task slot. Row ``k < K`` is task ``k``'s
      histogram (``bins`` columns), then ``relative_loss`` (probe loss over the loss after
      ``reset``, clipped to ``[0, 4]``), ``accuracy`` (probe accuracy), ``loss_change`` (loss fall
      since the previous step over the loss after ``reset``, clipped to ``[-1, 1]``), ``recency``
      (the trace above with decay ``recency_decay``, default 0.9), ``example_share`` (the task's
      share of the examples trained on), ``progress`` (examples trained on over the trainer's
      budget, in ``[0, 1]``), ``inverse_task_count`` (``1 / K``), and last the mask column, 1. Rows
      ``K .. M-1`` are all 0 (mask 0; `mtl_sched.observation.task_features.task_mask`). With a
      ``task_vocabulary`` (``V`` names; by default the environment's own ``K`` tasks), each row has
      one more column before the mask, ``Box(.., (M, F + 2))``: the task's identity, its name's
      index in the vocabulary plus one, 0 for a name outside it and for padded rows (bounds ``[0,
      V]``, the only column not bounded below by -1), so that a task-shared network can tell tasks
      apart that look alike in every feature; ``task_vocabulary=None`` leaves it out.

Reward
    ``reward="loss"`` (seed 002): ``-sum_k L_k``, the summed mean validation loss of all tasks
    after the step. ``reward="loss-decrease"``: how much that sum fell during the
    step (``L_before - L_after``); the undiscounted return of an episode is then the initial
    minus the final loss, and each action's effect is not buried under the level of the loss,
    which makes short agent trainings learn far faster. ``reward="relative-loss-decrease"``:
    each task's loss fall during the step divided by its loss after ``reset``, averaged over the
    tasks (`mtl_sched.envs.reward.relative_loss_decrease`), so that every task counts alike
    whatever its number of classes and the reward does not grow with ``K``.
    ``reward="scaled-loss-decrease"``: the summed
    fall divided by the running mean magnitude of the episode's earlier falls (decay 0.9; the
    first step's is +-1; clipped to ``[-10, 10]``; `mtl_sched.envs.reward.RunningRewardScale`),
    so that late steps, when every loss moves little, weigh as much as early ones; the penalty
    steps do not enter the mean. ``reward="accuracy-increase"``: how much
    the average validation accuracy rose during the step; the return of an episode is then the
    final minus the initial average accuracy, the quantity schedules are judged by.
    ``reward="loss-and-accuracy"`` (the default): the summed loss fall plus ``accuracy_weight``
    (default 3) times the average accuracy's rise; the return of an episode is then the loss
    fall plus 3 times the accuracy rise over it. Chosen on validation over the synthetic
    family, where its worst member does better than that of either part alone (the
    documentation's results, "Learned against best schedules"). With
    ``reference_accuracies`` (seed 002; off by default) any of them is replaced by ``penalty``
    (default -10) while the average validation accuracy is below ``penalty_threshold`` (default
    0.95) times the average single-task reference accuracy (unit accuracy: of examples, tokens
    or target tokens, as the probe pass measures it): at every step with
    ``penalty_mode="always"`` (the default), or only after the episode has once reached the
    threshold with ``penalty_mode="drop"`` (seed 002 punishes accuracy that "drops under" the
    threshold; a fresh model starts under it whatever the agent does). Histograms, losses and
    accuracies all come from the same probe pass (with ``ProbeConfig.refresh``, each task's from
    its latest pass; see `mtl_sched.observation.probing.RollingProbe`). A NaN or infinite
    training loss, probe loss or probe probability raises
    `mtl_sched.scheduling.NonFiniteLossError` naming the task and step: it never becomes an
    observation or a reward.

Episodes
    ``reset`` builds a fresh model and trainer. An episode is never ``terminated``; it is
    ``truncated`` after ``episode_steps`` steps, by default the steps that spend the run's example
    budget once (the benchmark's, or that of the trainer a factory builds; seed 002 resets the
    model every 10K steps).

Seeding
    ``reset(seed=s)`` seeds the environment's generator; each reset draws the trainer seed (model
    initialization and data order) from it, then, with ``identity_dropout``, which tasks' identities
    the episode hides, so the same seed and actions reproduce the same observations and rewards
    exactly on CPU.

``info`` keys (``reset`` returns those marked *)
    - ``task`` (int): the task index that was trained.
    - ``task_name`` (str): its name.
    - ``train_loss`` (float): mean loss of the last training minibatch of that task.
    - ``validation_losses`` * (ndarray, shape (K,)): per-task mean loss on the probe pools.
    - ``validation_accuracies`` * (ndarray, shape (K,)): per-task accuracy on the probe pools.
    - ``average_accuracy`` * (float): mean of ``validation_accuracies``.
    - ``penalized`` * (bool): whether the reward is the penalty (below the accuracy threshold).
    - ``examples_seen`` * (int): training examples consumed in this episode.
    - ``episode_step`` * (int): steps taken in this episode.
    - ``probe_age`` * (ndarray of int, shape (K,)): steps since each task was last probed; all 0
      unless the probe settings' ``refresh`` limits the tasks probed per step, in which case
      the observation, losses and accuracies of the other tasks are from their last probe.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtl_sched.benchmarks import Benchmark
from mtl_sched.envs.observation import (
    OWN_TASKS,
    ObservationKind,
    SchedulingObservation,
    TaskVocabulary,
    resolve_task_vocabulary,
)
from mtl_sched.envs.reward import (
    ACCURACY_WEIGHT,
    REWARD_KINDS,
    EpisodeReward,
    PenaltyMode,
    RewardKind,
    check_reference_accuracies,
    check_reward_settings,
)
from mtl_sched.envs.trainer_source import TrainerFactory, TrainerSource
from mtl_sched.observation.probing import ProbeConfig, ProbeResult, RollingProbe
from mtl_sched.references import compute_single_task_references, single_task_references
from mtl_sched.scheduling import NonFiniteLossError, Step
from mtl_sched.training import Trainer

__all__ = ["REWARD_KINDS", "MTLSchedulingEnv", "PenaltyMode", "RewardKind", "TrainerFactory"]

_SEED_LIMIT = 2**31 - 1


class MTLSchedulingEnv(gym.Env[np.ndarray, np.int64]):
    """Choose which task trains next; observe uncertainty histograms; earn minus validation loss.

    Give either a ``benchmark`` or a ``trainer_factory`` (your own model and tasks).

    :param benchmark: a registered benchmark name or a `Benchmark`.
    :param benchmark_options: keyword options of the named benchmark's factory.
    :param trainer_factory: ``seed -> Trainer`` over a fresh model; used instead of a benchmark.
    :param task_names: the factory's task names (found by building one trainer when omitted).
    :param episode_steps: steps per episode (default: enough steps to spend the run's example
        budget once, the benchmark's or that of the factory's trainer).
    :param steps_per_action: minibatches of the chosen task per environment step (default: the
        benchmark's ``decision_steps``, or 1 for a factory).
    :param probe: probe settings (default: the trainer configuration's).
    :param reward: ``"loss"`` (minus the summed validation loss), ``"loss-decrease"``,
        ``"relative-loss-decrease"``, ``"scaled-loss-decrease"``, ``"accuracy-increase"`` or
        ``"loss-and-accuracy"`` (see Reward above).
    :param penalty: reward while below the accuracy threshold.
    :param penalty_mode: ``"always"`` or ``"drop"`` (only after the threshold was once reached).
    :param penalty_threshold: fraction of the average single-task accuracy under which the
        penalty applies.
    :param reference_accuracies: single-task validation accuracies per task, which turn the
        penalty on; ``"auto"`` computes them (cached on disk for a benchmark; seed 002), ``None``
        (the default) leaves the penalty off.
    :param reference_seed: seed of the single-task reference runs.
    :param reward_scale: multiplies every reward but the penalty (e.g. 100 puts
        ``"accuracy-increase"`` in percentage points, a scale Q-networks fit more readily).
    :param accuracy_weight: weight of the average accuracy's rise in ``"loss-and-accuracy"``.
    :param recency_decay: add ``K`` recency features to the observation, with this decay in
        ``(0, 1)`` (see `mtl_sched.observation.recency`); ``None`` (the default, seed 002's
        observation) leaves them out. With ``"task-features"``, the decay of the ``recency``
        column (``None``: 0.9).
    :param observation: ``"task-features"`` (the default: one padded row of features per task;
        see Spaces above) or ``"histogram"`` (seed 002's flat histograms).
    :param max_tasks: task slots ``M`` of a ``"task-features"`` observation and of the action
        space, at least ``K`` (default ``K``), so that agents for up to ``M`` tasks share one
        space; only with ``"task-features"``.
    :param task_vocabulary: the task names an agent tells apart (only with
        ``"task-features"``): each row then carries its task's identity, the name's index in
        this list plus one (0 for a name outside it), in a column before the mask (see
        Spaces above). ``"own"`` (the default) is this environment's task names with
        ``"task-features"`` and no column with ``"histogram"``; ``None`` leaves the column out.
        An agent trained on several task sets needs one vocabulary for all of them
        (`mtl_sched.envs.TaskSetSamplingEnv` builds it).
    :param identity_dropout: probability that a task's identity is hidden for a whole episode
        (written as 0, as for a task outside the vocabulary), drawn for each task at ``reset``
        from the environment's generator, so that an agent also learns to score tasks it was
        never trained on. Default 0 (no draw); needs a ``task_vocabulary``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        benchmark: str | Benchmark | None = "synthetic",
        *,
        benchmark_options: dict[str, Any] | None = None,
        trainer_factory: TrainerFactory | None = None,
        task_names: Sequence[str] | None = None,
        episode_steps: int | None = None,
        steps_per_action: int | None = None,
        probe: ProbeConfig | None = None,
        reward: RewardKind = "loss-and-accuracy",
        penalty: float = -10.0,
        penalty_mode: PenaltyMode = "always",
        penalty_threshold: float = 0.95,
        reference_accuracies: Sequence[float] | str | None = None,
        reference_seed: int = 0,
        recency_decay: float | None = None,
        reward_scale: float = 1.0,
        accuracy_weight: float = ACCURACY_WEIGHT,
        observation: ObservationKind = "task-features",
        max_tasks: int | None = None,
        task_vocabulary: TaskVocabulary = OWN_TASKS,
        identity_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        source = TrainerSource.resolve(
            benchmark,
            benchmark_options=benchmark_options,
            trainer_factory=trainer_factory,
            task_names=task_names,
            episode_steps=episode_steps,
            steps_per_action=steps_per_action,
            probe=probe,
        )
        self.benchmark: Benchmark | None = source.benchmark
        self._factory = source.factory
        self.task_names = source.task_names
        self.probe_config = source.probe_config
        self.steps_per_action = source.steps_per_action
        self.episode_steps = source.episode_steps
        check_reward_settings(reward, penalty_mode, reward_scale, accuracy_weight)
        self.reward_scale = float(reward_scale)
        self.accuracy_weight = float(accuracy_weight)
        self.reward_kind: RewardKind = reward
        self.penalty_mode: PenaltyMode = penalty_mode
        self.penalty = float(penalty)
        self.penalty_threshold = float(penalty_threshold)
        self.reference_seed = reference_seed
        self._references = check_reference_accuracies(reference_accuracies, len(self.task_names))

        num_tasks = len(self.task_names)
        self.task_vocabulary = resolve_task_vocabulary(
            task_vocabulary, self.task_names, observation
        )
        self._observation = SchedulingObservation(
            observation,
            num_tasks,
            self.probe_config.bins,
            recency_decay,
            max_tasks,
            task_names=self.task_names,
            task_vocabulary=self.task_vocabulary,
        )
        self.observation_kind: ObservationKind = observation
        if not 0.0 <= identity_dropout < 1.0:
            raise ValueError(f"identity_dropout must lie in [0, 1); got {identity_dropout}")
        if identity_dropout > 0 and self.task_vocabulary is None:
            raise ValueError("identity_dropout hides task identities: it needs a task_vocabulary")
        self.identity_dropout = float(identity_dropout)
        self.max_tasks = self._observation.max_tasks
        self.recency = self._observation.recency
        self.action_space = spaces.Discrete(self.max_tasks)
        self.observation_space = self._observation.space
        self.trainer: Trainer | None = None
        self._rolling = RollingProbe(num_tasks, self.probe_config)
        self._episode_step = 0
        self._reward = EpisodeReward(reward, self.reward_scale, num_tasks, self.accuracy_weight)
        self._reached_threshold = False
        self._trainer_seed: int | None = None

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def recency_decay(self) -> float | None:
        """The decay of the observation's recency trace (``None`` when it has none)."""
        return self._observation.recency_decay

    def action_masks(self) -> np.ndarray:
        """Bool of shape ``(max_tasks,)``: True for the real tasks, False for padded slots."""
        return self._observation.action_masks()

    @property
    def reference_accuracies(self) -> np.ndarray | None:
        """Single-task reference accuracies (computed and cached on first use), or ``None``."""
        if isinstance(self._references, str):
            if self.benchmark is not None:
                self._references = single_task_references(
                    self.benchmark, self.reference_seed, measure="unit-accuracy"
                )
            else:
                self._references = compute_single_task_references(
                    self._factory, self.task_names, self.reference_seed
                ).unit_accuracies
        return self._references

    def _info(self, result: ProbeResult, penalized: bool) -> dict[str, Any]:
        assert self.trainer is not None
        return {
            "validation_losses": result.losses.copy(),
            "validation_accuracies": result.accuracies.copy(),
            "average_accuracy": float(result.accuracies.mean()),
            "penalized": penalized,
            "examples_seen": int(self.trainer.examples_seen),
            "episode_step": self._episode_step,
            "probe_age": self._rolling.age.copy(),
        }

    def _probe(self, trained: Sequence[int]) -> ProbeResult:
        trainer = self.trainer
        assert trainer is not None
        result = self._rolling.update(
            lambda tasks: trainer.probe(self.probe_config, tasks), trained
        )
        # the trainer's probe pass refuses non-finite outputs; this also covers any other
        # trainer a factory returns: no NaN becomes an observation or a reward
        finite = (
            np.isfinite(result.losses)
            & np.isfinite(result.accuracies)
            & np.isfinite(result.histograms).all(axis=1)
        )
        if not finite.all():
            k = int(np.flatnonzero(~finite)[0])
            loss = float(result.losses[k])
            raise NonFiniteLossError(
                self.task_names[k],
                getattr(trainer, "step_count", None),
                "probe",
                loss if not math.isfinite(loss) else math.nan,
            )
        return result

    def _is_penalized(self, result: ProbeResult) -> bool:
        refs = self.reference_accuracies
        if refs is None:
            return False
        below = bool(result.accuracies.mean() < self.penalty_threshold * refs.mean())
        if not below:
            self._reached_threshold = True
        return below and (self.penalty_mode == "always" or self._reached_threshold)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        trainer_seed = int(self.np_random.integers(_SEED_LIMIT))
        self._trainer_seed = trainer_seed
        if self.identity_dropout > 0:
            hidden = self.np_random.random(len(self.task_names)) < self.identity_dropout
            self._observation.hidden_identities[:] = hidden
        self.trainer = self._factory(trainer_seed)
        if self.trainer.task_names != self.task_names:
            raise ValueError(
                f"trainer tasks {self.trainer.task_names} differ from the environment's "
                f"{self.task_names}"
            )
        self._episode_step = 0
        self._reached_threshold = False
        self._rolling.reset()
        result = self._probe(())
        self._reward.reset(result)
        observation = self._observation.reset(result, self.trainer)
        return observation, self._info(result, self._is_penalized(result))

    def get_state(self) -> dict[str, Any]:
        """The environment's state: its generator, the episode in progress (the trainer's
        `mtl_sched.training.Trainer.training_state` and the seed it was built with), the recency
        trace, the per-task feature tracker and the rolling probe. `set_state` on an environment
        of the same settings continues exactly where this one is."""
        trainer = self.trainer
        return {
            "np_random": self.np_random.bit_generator.state,
            "trainer_seed": self._trainer_seed,
            "trainer": None if trainer is None else trainer.training_state(),
            "episode_step": self._episode_step,
            **self._reward.get_state(),
            "reached_threshold": self._reached_threshold,
            **self._observation.get_state(),
            "probe_latest": copy.deepcopy(self._rolling.latest),
            "probe_age": self._rolling.age.copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` (rebuilding the trainer of the episode in progress)."""
        self.np_random.bit_generator.state = state["np_random"]
        self._trainer_seed = state["trainer_seed"]
        if state["trainer"] is None or self._trainer_seed is None:
            self.trainer = None
        else:
            self.trainer = self._factory(int(self._trainer_seed))
            self.trainer.load_training_state(state["trainer"])
        self._episode_step = int(state["episode_step"])
        self._reward.set_state(state)
        self._reached_threshold = bool(state["reached_threshold"])
        self._observation.set_state(state)
        self._rolling.latest = copy.deepcopy(state["probe_latest"])
        self._rolling.age[:] = state["probe_age"]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.trainer is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not a task index in [0, {self.max_tasks})")
        task = int(action)
        if task >= self.num_tasks:
            raise ValueError(
                f"action {task} is a padded slot: the environment has {self.num_tasks} tasks"
            )
        outcome = None
        for _ in range(self.steps_per_action):
            outcome = self.trainer.train_step(Step.select(task))
        assert outcome is not None
        self._episode_step += 1
        self._observation.record(task)
        result = self._probe([task])
        penalized = self._is_penalized(result)
        reward = self._reward.step(result, self.penalty if penalized else None)
        truncated = self._episode_step >= self.episode_steps
        info = self._info(result, penalized)
        info.update(task=task, task_name=self.task_names[task], train_loss=outcome.task_losses[0])
        observation = self._observation.observe(result, self.trainer)
        return observation, float(reward), False, truncated, info

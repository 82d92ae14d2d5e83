"""`AgentSettings`: the environment and DQN settings of a scheduler agent, with the
environments and the agent they build.

An agent reads one of two observations (`mtl_sched.envs.scheduling_env`): ``"task-features"``,
one row of features per task, for the task-shared Q-network (``policy="task-shared"``,
`mtl_sched.agents.task_shared`), which schedules any task set; or ``"histogram"``, seed 002's flat
vector, for SB3's ``MlpPolicy`` (``policy="flat"``), which is tied to the tasks and order it was
trained on (the flat network may also read ``"task-features"`` rows, flattened). With several
task sets, each episode draws one (`mtl_sched.envs.task_sets.TaskSetSamplingEnv`).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from mtl_sched.agents.boltzmann_gumbel import DEFAULT_NET_ARCH, DQN_DEFAULTS, BoltzmannGumbelDQN
from mtl_sched.agents.exploration import ExplorationKind, ExplorationScale, TemperatureSchedule
from mtl_sched.benchmarks import Benchmark
from mtl_sched.envs.batched import make_scheduling_vec_env
from mtl_sched.envs.observation import ObservationKind, union_vocabulary
from mtl_sched.envs.reward import ACCURACY_WEIGHT, RewardKind
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv
from mtl_sched.envs.task_sets import TaskSetSamplingEnv
from mtl_sched.script_args import check_keys, coerce_keyword_values

__all__ = ["AgentSettings", "PolicyKind", "TrainingEnv", "VecEnvKind"]

VecEnvKind = Literal["auto", "batched", "subproc", "dummy"]
PolicyKind = Literal["task-shared", "flat"]
TrainingEnv = MTLSchedulingEnv | TaskSetSamplingEnv

_POLICY_ALIASES = {"task-shared": "TaskSharedPolicy", "flat": "MlpPolicy"}


@dataclass
class AgentSettings:
    """The environment and DQN settings of a scheduler agent.

    :param reward: environment reward (``"loss"``, ``"loss-decrease"``,
        ``"relative-loss-decrease"``, ``"scaled-loss-decrease"``, ``"accuracy-increase"``,
        ``"loss-and-accuracy"``).
    :param use_penalty: apply the single-task accuracy penalty (references computed and cached).
    :param steps_per_action: minibatches each choice of the agent trains (``None``: the
        benchmark's ``decision_steps``).
    :param reward_scale: factor on the environment's reward (not on the penalty).
    :param accuracy_weight: weight of the average accuracy's rise in ``"loss-and-accuracy"``.
    :param recency_decay: decay of the recency features (see `mtl_sched.observation.recency`); with
        ``"histogram"``, ``None`` keeps seed 002's histogram-only observation; with
        ``"task-features"``, ``None`` is the ``recency`` column's default decay.
    :param observation: ``"task-features"`` (one padded row of features per task) or
        ``"histogram"`` (seed 002's flat histograms).
    :param policy: ``"task-shared"`` (one scorer shared by every task slot; needs
        ``"task-features"``) or ``"flat"`` (SB3's ``MlpPolicy``, seed 002's network, tied to the
        trained tasks and their order; either observation).
    :param max_tasks: task slots of a ``"task-features"`` observation and of the action space
        (``None``: the most tasks of any trained task set); at least that many.
    :param task_identity: give the task-shared network each task's identity (a learned embedding
        of its name, over the names of every trained task set; see
        `mtl_sched.agents.task_shared`), so that it can tell apart tasks that look alike in every
        feature; tasks it was not trained on are scored from their features alone. Only with
        ``policy="task-shared"``. ``None`` (the default) is on for an agent of the task-shared
        network trained on one task set and off for one trained on several, which is meant for
        task sets it never saw (`identity_for`): chosen on validation (the documentation's
        results, "Learned against best schedules"), where identity helped the worst member of
        the synthetic family most and made transfer to an unseen task set worse.
    :param identity_dropout: probability that a task's identity is hidden for a training episode
        (`MTLSchedulingEnv`'s ``identity_dropout``), so that the network also learns to score
        tasks outside its vocabulary, as when it is run on task sets it never saw. Applies when
        identities are on (`identity_for`).
    :param gamma: discount factor.
    :param learning_rate: Q-network learning rate.
    :param exploration: ``"boltzmann-gumbel"`` (count-scaled Gumbel noise, seed 002) or
        ``"boltzmann"`` (plain softmax exploration at the same temperature; see
        `BoltzmannGumbelDQN`).
    :param exploration_c: Boltzmann-Gumbel constant ``C``: a multiplier of the spread of the
        Q-values (``exploration_scale="q-spread"``) or a noise scale in reward units
        (``"absolute"``, seed 002's form).
    :param exploration_scale: what ``C`` multiplies (see `BoltzmannGumbelDQN`).
    :param temperature_initial: exploration temperature at the start.
    :param temperature_final: exploration temperature after annealing.
    :param temperature_fraction: fraction of training over which the temperature is annealed.
    :param temperature_schedule: ``"linear"`` or ``"exponential"`` annealing.
    :param learning_starts: environment steps collected before the first gradient update.
    :param buffer_size: replay buffer capacity (capped at the training steps).
    :param batch_size: replay minibatch size.
    :param train_freq: environment steps between gradient updates.
    :param target_update_interval: environment steps between target-network updates.
    :param net_arch: hidden layer widths of the Q-network (of the per-task encoder for
        ``"task-shared"``).
    :param n_envs: environments the agent steps at once (SB3's vectorized environments). With
        more than one, the environments of a benchmark whose model batches (`SharedMLP`
        benchmarks such as ``synthetic``) train as one batched model
        (`mtl_sched.envs.BatchedSchedulingVecEnv`); other benchmarks, and runs of several task
        sets, run one process per environment. SB3 counts ``train_freq`` in steps of all
        ``n_envs`` environments at once, so the agent makes one gradient update per
        ``train_freq * n_envs`` environment steps; ``learning_starts`` and
        ``target_update_interval`` stay in environment steps.
    :param vec_env: how ``n_envs > 1`` environments run: ``"auto"`` batches them when the
        benchmark's model batches and otherwise runs one process each; ``"batched"`` requires
        batching (an error otherwise, and always with several task sets); ``"subproc"`` (one
        process each) and ``"dummy"`` (one after the other, in this process) never batch.
        Batched and separate environments agree up to floating-point rounding only, so this is
        part of a run's settings.
    """

    reward: RewardKind = "loss-and-accuracy"
    use_penalty: bool = False
    steps_per_action: int | None = None
    reward_scale: float = 1.0
    accuracy_weight: float = ACCURACY_WEIGHT
    recency_decay: float | None = None
    observation: ObservationKind = "task-features"
    policy: PolicyKind = "task-shared"
    max_tasks: int | None = None
    task_identity: bool | None = None
    identity_dropout: float = 0.0
    gamma: float = DQN_DEFAULTS["gamma"]
    learning_rate: float = DQN_DEFAULTS["learning_rate"]
    exploration: ExplorationKind = "boltzmann-gumbel"
    exploration_c: float = 1.0
    exploration_scale: ExplorationScale = "q-spread"
    temperature_initial: float = 1.0
    temperature_final: float = 0.05
    temperature_fraction: float = 0.8
    temperature_schedule: TemperatureSchedule = "exponential"
    learning_starts: int = DQN_DEFAULTS["learning_starts"]
    buffer_size: int = DQN_DEFAULTS["buffer_size"]
    batch_size: int = DQN_DEFAULTS["batch_size"]
    train_freq: int = DQN_DEFAULTS["train_freq"]
    target_update_interval: int = DQN_DEFAULTS["target_update_interval"]
    net_arch: tuple[int, ...] = DEFAULT_NET_ARCH
    n_envs: int = 1
    vec_env: VecEnvKind = "auto"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        values = coerce_keyword_values(hints, asdict(self), "agent setting")
        for name, value in values.items():
            setattr(self, name, value)
        at_least = {"n_envs": 1, "batch_size": 1, "buffer_size": 1, "train_freq": 1,
                    "target_update_interval": 1, "learning_starts": 0,
                    "steps_per_action": 1, "max_tasks": 1}  # fmt: skip
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"agent setting {name!r} must be at least {low}; got {value}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"agent setting 'gamma' must lie in [0, 1]; got {self.gamma}")
        if not 0.0 <= self.identity_dropout < 1.0:
            raise ValueError(
                f"agent setting 'identity_dropout' must lie in [0, 1); got {self.identity_dropout}"
            )
        if not self.learning_rate > 0:
            raise ValueError(
                f"agent setting 'learning_rate' must be positive; got {self.learning_rate}"
            )
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(
                f"agent setting 'net_arch' needs positive layer widths; got {self.net_arch}"
            )
        if self.policy == "task-shared" and self.observation != "task-features":
            raise ValueError(
                "agent setting 'policy' 'task-shared' scores per-task rows: it needs observation "
                f"'task-features'; got observation={self.observation!r} (use policy 'flat')"
            )
        if self.task_identity and self.policy != "task-shared":
            raise ValueError(
                "agent setting 'task_identity' feeds the task-shared network; the flat network "
                "is tied to its tasks' order already (use policy 'task-shared')"
            )
        if self.identity_dropout and (self.task_identity is False or self.policy == "flat"):
            raise ValueError(
                "agent setting 'identity_dropout' hides task identities: it needs 'task_identity'"
            )
        if self.max_tasks is not None and self.observation != "task-features":
            raise ValueError(
                "agent setting 'max_tasks' pads per-task rows: it needs observation "
                f"'task-features'; got observation={self.observation!r}"
            )

    def identity_for(self, task_sets: Sequence[Benchmark]) -> bool:
        """Whether an agent of these settings trained on ``task_sets`` reads task identities:
        ``task_identity`` when given, otherwise on with the task-shared network and one task set.

        :param task_sets: the task sets trained on.
        """
        if self.task_identity is not None:
            return self.task_identity
        return self.policy == "task-shared" and len(task_sets) == 1

    def env_kwargs(self, task_sets: Sequence[Benchmark] = ()) -> dict[str, Any]:
        """Keyword arguments of the `MTLSchedulingEnv` of every task set (``max_tasks`` aside).

        :param task_sets: the task sets trained on; with ``task_identity``, their task names in
            order of first appearance are the environments' ``task_vocabulary``.
        """
        identity = self.identity_for(task_sets)
        return {
            "task_vocabulary": union_vocabulary([b.task_names for b in task_sets])
            if identity
            else None,
            "identity_dropout": self.identity_dropout if identity else 0.0,
            "reward": self.reward,
            "reference_accuracies": "auto" if self.use_penalty else None,
            "steps_per_action": self.steps_per_action,
            "recency_decay": self.recency_decay,
            "reward_scale": self.reward_scale,
            "accuracy_weight": self.accuracy_weight,
            "observation": self.observation,
        }

    def make_env(self, benchmark: Benchmark) -> MTLSchedulingEnv:
        """The scheduling environment these settings train on.

        :param benchmark: the benchmark (one task set) it trains on.
        """
        return MTLSchedulingEnv(benchmark, max_tasks=self.max_tasks, **self.env_kwargs([benchmark]))

    def make_vec_env(self, benchmark: Benchmark, seed: int) -> VecEnv:
        """``n_envs`` scheduling environments these settings train on, as one SB3 ``VecEnv``
        (batched when the benchmark's model batches; see `mtl_sched.envs.make_scheduling_vec_env`)
        with episode statistics (``VecMonitor``); environment ``i`` is seeded ``seed + i``.

        :param benchmark: the benchmark the environments train on.
        :param seed: seed of the first environment.
        """
        vec_env = make_scheduling_vec_env(
            benchmark,
            self.n_envs,
            seed,
            max_tasks=self.max_tasks,
            batched={"auto": None, "batched": True}.get(self.vec_env, False),
            fallback="dummy" if self.vec_env == "dummy" else "subproc",
            **self.env_kwargs([benchmark]),
        )
        return VecMonitor(vec_env)

    def check_task_sets(self, task_sets: list[Benchmark]) -> None:
        """Refuse several task sets these settings cannot train on together.

        :param task_sets: the task sets of a run.
        :raises ValueError: naming the setting, for the flat network on task sets of different
            tasks or orders, for the ``"histogram"`` observation or batched environments.
        """
        if len(task_sets) < 2:
            return
        orders = {b.task_names for b in task_sets}
        if self.policy == "flat" and len(orders) > 1:
            described = " | ".join(",".join(names) for names in sorted(orders))
            raise ValueError(
                "agent setting 'policy' 'flat' is tied to one task list and order, but the task "
                f"sets differ ({described}); use policy 'task-shared'"
            )
        if self.observation != "task-features":
            raise ValueError(
                "several task sets need agent setting 'observation' 'task-features'; got "
                f"{self.observation!r}"
            )
        if self.n_envs > 1 and self.vec_env == "batched":
            raise ValueError(
                "agent setting 'vec_env' 'batched' runs one benchmark's model; several task "
                "sets run one environment each ('auto', 'subproc' or 'dummy')"
            )

    def make_task_set_env(self, task_sets: list[Benchmark]) -> TaskSetSamplingEnv:
        """One environment drawing a task set per episode (`TaskSetSamplingEnv`), with
        ``max_tasks`` task slots (default: the largest task set).

        :param task_sets: the task sets, at least one.
        """
        self.check_task_sets(task_sets)
        env = TaskSetSamplingEnv(task_sets, max_tasks=self.max_tasks, **self.env_kwargs(task_sets))
        if self.use_penalty:
            # computed (and cached on disk) once here, not in every environment's process
            for member in env.envs:
                member.reference_accuracies  # noqa: B018
        return env

    def make_task_set_vec_env(self, task_sets: list[Benchmark], seed: int) -> VecEnv:
        """``n_envs`` environments of `make_task_set_env`, one process each (or one after the
        other with ``vec_env="dummy"``), with episode statistics (``VecMonitor``); environment
        ``i`` is seeded ``seed + i``.

        :param task_sets: the task sets, at least one.
        :param seed: seed of the first environment.
        """
        self.make_task_set_env(task_sets)  # checks the settings, caches the references
        env_fns = [functools.partial(self.make_task_set_env, task_sets)] * self.n_envs
        vec_env: VecEnv = (
            DummyVecEnv(env_fns) if self.vec_env == "dummy" else SubprocVecEnv(env_fns)
        )
        vec_env.seed(seed)
        return VecMonitor(vec_env)

    def dqn_kwargs(self, seed: int, total_steps: int | None = None) -> dict[str, Any]:
        """Keyword arguments of SB3's ``DQN`` shared by every exploration method (none of the
        exploration ones); ``total_steps`` caps the replay buffer at what is needed.

        :param seed: the agent's seed.
        :param total_steps: environment steps of the whole training, if known.
        """
        buffer_size = self.buffer_size
        if total_steps is not None:
            buffer_size = min(buffer_size, total_steps)
        # with task_identity unset the policy reads identities when the environment writes them
        identity = {}
        if self.policy == "task-shared" and self.task_identity is not None:
            identity = {"task_identity": self.task_identity}
        return {
            "gamma": self.gamma,
            "learning_rate": self.learning_rate,
            "learning_starts": self.learning_starts,
            "buffer_size": max(1, buffer_size),
            "batch_size": self.batch_size,
            "train_freq": self.train_freq,
            "target_update_interval": self.target_update_interval,
            "policy_kwargs": {
                "net_arch": list(self.net_arch),
                **identity,
            },
            "seed": seed,
            "device": "auto",
        }

    def make_agent(
        self, env: TrainingEnv | VecEnv, seed: int, total_steps: int | None = None
    ) -> BoltzmannGumbelDQN:
        """A fresh agent of these settings' network on ``env``.

        :param env: one environment, or a ``VecEnv`` such as `make_vec_env`'s.
        :param seed: the agent's seed.
        :param total_steps: environment steps of the whole training (caps the replay buffer).
        """
        return BoltzmannGumbelDQN(
            _POLICY_ALIASES[self.policy],
            env,
            exploration=self.exploration,
            exploration_c=self.exploration_c,
            exploration_scale=self.exploration_scale,
            temperature_initial=self.temperature_initial,
            temperature_final=self.temperature_final,
            temperature_fraction=self.temperature_fraction,
            temperature_schedule=self.temperature_schedule,
            **self.dqn_kwargs(seed, total_steps),
        )

    @classmethod
    def from_options(cls, values: dict[str, Any]) -> AgentSettings:
        """Settings of the given values, the defaults elsewhere.

        :param values: setting name -> value.
        :raises mtl_sched.script_args.UnknownKeyError: (a ``ValueError``) for an unknown key,
            naming it and the known ones as ``train-agent --setting`` does.
        """
        check_keys(values, [f.name for f in fields(cls)], "the agent", "setting")
        return cls(**values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AgentSettings:
        """Settings from a ``settings.json`` entry; unknown keys are an error naming them.

        Settings added since the file was written take their defaults, except that a file
        without ``observation`` is of a run of seed 002's flat network on histograms, and one
        without ``task_identity`` of a network without identities.

        :param values: the stored settings.
        """
        if "observation" not in values:
            values = {"observation": "histogram", "policy": "flat", **values}
        if "task_identity" not in values:
            values = {"task_identity": False, **values}
        return cls.from_options(values)

"""`BatchedSchedulingVecEnv`: ``N`` scheduling environments whose models train as one batched
model, as one stable-baselines3 ``VecEnv``.

It runs ``N`` copies of `MTLSchedulingEnv` on one benchmark whose model
stacks (`mtl_sched.models.stacked`: a `SharedMLP` of ``Linear`` and ``ReLU`` layers, such as
``synthetic``'s). The ``N`` models are replicas of one `StackedSharedMLP`: one environment step of
all ``N`` environments is one batched training step, in which replica ``i`` trains a minibatch of
the task chosen by action ``i``, and one batched probe pass over every replica and the tasks any of
them probes (`mtl_sched.envs.stacked_probe.StackedProbePass`). Each replica is initialized as
``benchmark.make_model(seed)`` and draws its minibatches as ``Trainer`` does
(``np.random.default_rng([seed, k])`` per task ``k``), with the trainer seed drawn at each reset
from that environment's generator, so environment ``i`` of a batched env seeded ``s`` follows the
trajectory of ``MTLSchedulingEnv.reset(seed=s + i)`` under the same actions, up to floating-point
rounding. Runs are reproducible: the same seed and actions give identical observations and rewards
on CPU.

Everything else is `MTLSchedulingEnv`'s own code: each environment of the batch is an
`MTLSchedulingEnv` whose trainer is a `ReplicaTrainer`, a view of its replica that reports the
outcome of the batched step, so spaces, observation kinds (``observation="task-features"``
included: a replica counts its examples per task and reports the benchmark's budget as a trainer
does), ``action_masks``, rewards, penalty, episode length, ``steps_per_action``, recency features
and ``info`` keys are those of `MTLSchedulingEnv` (each listed in the module docstring of
`mtl_sched.envs.scheduling_env`). As in every SB3 ``VecEnv``, a finished episode
resets at once, the returned observation is the first of the next episode (whose reset ``info``
is in ``reset_infos``), and the step's ``info`` gains:

``info`` keys added by the ``VecEnv``
    - ``TimeLimit.truncated`` (bool): whether the episode ended by its time limit (always, as
      episodes are never ``terminated``); present at every step.
    - ``terminal_observation`` (ndarray): the last observation of the episode; present only at
      the step that ended it.

`mtl_sched.envs.batched.make_scheduling_vec_env` returns this env when the benchmark's model
stacks, and otherwise ``N`` separate `MTLSchedulingEnv` in SB3's ``SubprocVecEnv`` (or
``DummyVecEnv``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.envs.in_process_vec_env import InProcessVecEnv
from mtl_sched.envs.replica import ReplicaTrainer
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv
from mtl_sched.envs.stacked_probe import StackedProbePass
from mtl_sched.models.stacked import StackedOptimizer, StackedSharedMLP, stacking_problem
from mtl_sched.observation.probing import ProbeResult
from mtl_sched.scheduling import NonFiniteLossError, Step
from mtl_sched.training.config import resolve_device
from mtl_sched.training.sampler import TaskSampler, materialize, take_rows

__all__ = ["BatchedSchedulingVecEnv"]


class BatchedSchedulingVecEnv(InProcessVecEnv):
    """``N`` `MTLSchedulingEnv` of one benchmark whose ``N`` models train as one batched model.

    The benchmark's model must stack (`mtl_sched.models.stacked.stacking_problem`); its
    trainer's optimizer (Adam or SGD, learning rate, weight decay), batch size, device and probe
    settings are reproduced. `mtl_sched.envs.batched.make_scheduling_vec_env` chooses this class
    or a subprocess ``VecEnv`` accordingly. Seeding follows SB3: ``seed(s)`` seeds environment
    ``i`` with ``s + i`` at the next ``reset``.

    :param benchmark: a registered benchmark name or a `Benchmark`.
    :param n_envs: number of environments ``N``.
    :param benchmark_options: keyword options of the named benchmark's factory.
    :param env_kwargs: any other keyword argument of `MTLSchedulingEnv` (``reward``,
        ``penalty``, ``penalty_mode``, ``penalty_threshold``, ``reference_accuracies``,
        ``reference_seed``, ``reward_scale``, ``recency_decay``, ``observation``, ``max_tasks``,
        ``steps_per_action``, ``episode_steps``, ``probe``), with the same meaning and
        defaults. Single-task references (``"auto"``) are computed once, here.
    """

    def __init__(
        self,
        benchmark: str | Benchmark,
        n_envs: int,
        *,
        benchmark_options: dict[str, Any] | None = None,
        **env_kwargs: Any,
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1; got {n_envs}")
        for key in ("trainer_factory", "task_names"):
            if key in env_kwargs:
                raise TypeError(f"BatchedSchedulingVecEnv takes a benchmark, not {key}")
        if isinstance(benchmark, str):
            benchmark = get_benchmark(benchmark, **(benchmark_options or {}))
        template = MTLSchedulingEnv(benchmark, **env_kwargs)
        self.benchmark = benchmark
        self.trainer_config = benchmark.trainer_config
        model = benchmark.make_model(0)
        problem = stacking_problem(model)
        if problem is not None:
            raise TypeError(f"benchmark {benchmark.name!r} does not batch: {problem}")
        self.task_names = template.task_names
        self.plans = [Step.select(k) for k in range(len(self.task_names))]
        self.probe_config = template.probe_config
        self.steps_per_action = template.steps_per_action
        self.episode_steps = template.episode_steps
        self.recency = template.recency
        self.device = resolve_device(self.trainer_config.device)
        self.model = StackedSharedMLP(model, n_envs, self.device)  # type: ignore[arg-type]
        config = self.trainer_config
        self.optimizer = StackedOptimizer(
            [self.model.encoder_parameters(), [self.model.head_weight, self.model.head_bias]],
            unit_dims=[1, 2],
            kind=config.optimizer,
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self._load_data(benchmark)
        replica_kwargs = {
            **env_kwargs,
            "probe": template.probe_config,
            "episode_steps": template.episode_steps,
            "steps_per_action": template.steps_per_action,
            "reference_accuracies": template.reference_accuracies,
            "task_vocabulary": template.task_vocabulary,
        }
        self.envs = [
            MTLSchedulingEnv(
                None,
                trainer_factory=functools.partial(self._start_replica, i),  # type: ignore[arg-type]
                task_names=template.task_names,
                **replica_kwargs,
            )
            for i in range(n_envs)
        ]
        self.replicas: list[ReplicaTrainer | None] = [None] * n_envs
        self._samplers: list[list[TaskSampler]] = [[] for _ in range(n_envs)]
        self._actions: np.ndarray | None = None
        super().__init__(n_envs, template.observation_space, template.action_space)

    # ------------------------------------------------------------------------------ data
    def _load_data(self, benchmark: Benchmark) -> None:
        # a trainer of the benchmark chooses the probe pools, as every replica's would
        trainer = benchmark.make_trainer(0)
        model = trainer.model
        xs, ys, self._train_sizes = [], [], []
        val_x, val_y, bounds = [], [], [0]
        for k, (name, task) in enumerate(zip(self.task_names, benchmark.tasks, strict=True)):
            train = model.collate(name, materialize(task.split("train")))
            xs.append(train["x"])
            ys.append(train["label"])
            self._train_sizes.append(len(train["label"]))
            pool = trainer.probe_pool(k, self.probe_config)
            rows = take_rows(materialize(task.split("validation")), pool)
            validation = model.collate(name, rows)
            val_x.append(validation["x"])
            val_y.append(validation["label"])
            bounds.append(bounds[-1] + len(pool))
        self._train_offsets = np.cumsum([0, *self._train_sizes[:-1]])
        self._train_x = torch.cat(xs).to(self.device)
        self._train_y = torch.cat(ys).to(self.device)
        self._probe = StackedProbePass(
            self.model,
            self.probe_config,
            torch.cat(val_x),
            torch.cat(val_y),
            bounds,
            self.device,
            task_names=self.task_names,
        )

    def _start_replica(self, index: int, seed: int) -> ReplicaTrainer:
        """Re-initialize replica ``index`` as a fresh trainer of seed ``seed`` would be."""
        self.model.load_replica(index, self.benchmark.make_model(seed))  # type: ignore[arg-type]
        self.optimizer.reset_replica(index)
        self._samplers[index] = [
            TaskSampler(size, np.random.default_rng([seed, k]))
            for k, size in enumerate(self._train_sizes)
        ]
        replica = ReplicaTrainer(self, index, seed)
        self.replicas[index] = replica
        return replica

    def replica_samplers(self, index: int) -> list[TaskSampler]:
        """The data samplers of replica ``index``'s episode, one per task (empty before its
        first reset).

        :param index: the replica's index in the batch.
        """
        return self._samplers[index]

    # -------------------------------------------------------------------------- training
    def _train_all(self, tasks: np.ndarray) -> None:
        """One batched training step: replica ``i`` trains one minibatch of ``tasks[i]``.

        :raises NonFiniteLossError: before the update, naming the environment, step and task of
            the first training loss that is NaN or infinite.
        """
        batch_size = self.trainer_config.batch_size
        rows = np.empty((self.num_envs, batch_size), dtype=np.int64)
        for i, k in enumerate(tasks):
            rows[i] = self._samplers[i][k].take(batch_size) + self._train_offsets[k]
        index = torch.from_numpy(rows).to(self.device)
        chosen = torch.from_numpy(tasks).to(self.device)
        losses, encoder_grads, head_grads = self.model.losses_and_gradients(
            self._train_x[index], self._train_y[index], chosen
        )
        values = losses.tolist()
        for i, (replica, k, loss) in enumerate(zip(self.replicas, tasks, values, strict=True)):
            if not np.isfinite(loss):
                raise NonFiniteLossError(
                    self.task_names[int(k)],
                    None if replica is None else replica.step_count,
                    "training",
                    loss,
                    where=f"environment {i}",
                )
        self.optimizer.step([encoder_grads, head_grads], [None, (np.arange(self.num_envs), tasks)])
        for replica, k, loss in zip(self.replicas, tasks, values, strict=True):
            assert replica is not None
            replica.record(int(k), loss, batch_size)

    # --------------------------------------------------------------------------- probing
    def probe_replicas(self, replicas: Sequence[int], tasks: Sequence[int]) -> list[ProbeResult]:
        """One probe pass of the given replicas over the given tasks, batched over both
        (`StackedProbePass.probe`).

        Per replica, the histograms, losses and accuracies of
        `mtl_sched.observation.probing.probe` on the replica's model (up to rounding of the
        batched products). The per-unit uncertainties
        (`ProbeResult.uncertainties`, which the environment does not read) are left empty.

        :param replicas: replica indices.
        :param tasks: task indices, in the order of each result's rows.
        :returns: one `ProbeResult` per replica.
        :raises NonFiniteLossError: naming the environment and task of the first NaN or
            infinite probe loss.
        """
        replicas = list(replicas)
        steps = [getattr(self.replicas[i], "step_count", 0) for i in replicas]
        return self._probe.probe(replicas, tasks, steps)

    # ----------------------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """The state of every environment of the batch: the stacked parameters and optimizer
        state (with each replica's step counts), each environment's `MTLSchedulingEnv.get_state`
        (generator, episode in progress with its replica's samplers and counters, recency trace,
        rolling probe), and the ``VecEnv``'s seeds and options for the next reset and its reset
        ``info``. `set_state` on a batched env of the same settings continues exactly where this
        one is."""
        return {
            "envs": [env.get_state() for env in self.envs],
            "model": self.model.state(),
            "optimizer": self.optimizer.state_dict(),
            "seeds": list(self._seeds),
            "options": copy.deepcopy(self._options),
            "reset_infos": copy.deepcopy(self.reset_infos),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` (rebuilding each environment's replica of its episode)."""
        if len(state["envs"]) != self.num_envs:
            raise ValueError(
                f"the stored state is of {len(state['envs'])} environments, not {self.num_envs}"
            )
        for i, (env, stored) in enumerate(zip(self.envs, state["envs"], strict=True)):
            env.set_state(stored)
            if env.trainer is None:
                self.replicas[i] = None
        # after the environments: rebuilding a replica re-initializes its weights
        self.model.load_state(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._seeds = list(state["seeds"])
        self._options = copy.deepcopy(state["options"])
        self.reset_infos = copy.deepcopy(state["reset_infos"])
        self._actions = None

    # ------------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        observations = []
        for i, env in enumerate(self.envs):
            options = {"options": self._options[i]} if self._options[i] else {}
            obs, self.reset_infos[i] = env.reset(seed=self._seeds[i], **options)
            observations.append(obs)
        self._reset_seeds()
        self._reset_options()
        return np.stack(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        actions, self._actions = self._actions.reshape(-1), None
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions; got {len(actions)}")
        if any(replica is None for replica in self.replicas):
            raise RuntimeError("call reset() before step()")
        num_tasks = len(self.task_names)
        # padded slots of task-feature observations are refused here too: the batched step
        # trains before any environment checks its action
        if (
            not np.issubdtype(actions.dtype, np.integer)
            or not ((actions >= 0) & (actions < num_tasks)).all()
        ):
            raise ValueError(
                f"actions {actions!r} are not all task indices in [0, {num_tasks}) "
                "(actions on padded slots are refused)"
            )
        tasks = actions.astype(np.int64)
        for _ in range(self.steps_per_action):
            self._train_all(tasks)
        wanted = [
            env._rolling.tasks_to_probe([int(k)]) for env, k in zip(self.envs, tasks, strict=True)
        ]
        union = sorted(set().union(*wanted))
        for replica, result in zip(
            self.replicas, self.probe_replicas(range(self.num_envs), union), strict=True
        ):
            assert replica is not None
            replica.set_probe(union, result)

        observations, rewards, dones, infos = [], [], [], []
        for i, (env, k) in enumerate(zip(self.envs, tasks, strict=True)):
            obs, reward, terminated, truncated, info = env.step(int(k))
            done = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if done:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            observations.append(obs)
            rewards.append(reward)
            dones.append(done)
            infos.append(info)
        return (
            np.stack(observations),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(dones, dtype=bool),
            infos,
        )

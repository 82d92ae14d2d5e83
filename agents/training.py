"""Train a scheduler agent with checkpoints, greedy evaluation and resume (``train-agent``).

An output directory holds one training run:

``settings.json``
    the benchmark, the seed, the `AgentSettings` and, once greedy evaluations run, the eval
    seeds; a resumed run must use the same ones. It is written after every setting was checked.
``checkpoints/step-<timesteps>/``
    ``agent.zip`` (network, optimizer, exploration counts and temperature schedule),
    ``replay_buffer.pkl``, ``resume.pkl`` (the environments' state: their generators and the
    episodes in progress with their models, optimizers and data order; the global random generators;
    the transition of the step being checkpointed) and ``progress.json`` (the best score so far
    and the timesteps of the newest evaluation). ``progress.json`` is written last, so a
    checkpoint without it was cut short and is ignored; the two newest complete ones are kept.
    At a step due for both, the greedy evaluation runs before the checkpoint is written.
``evaluations.csv``
    one row per greedy evaluation: timesteps, mean validation score, one score per seed. A row
    is appended (and flushed to disk) when its evaluation is complete.
``best/agent.zip``, ``best/evaluation.json``
    the agent of the best greedy evaluation so far, replaced as a whole (written to
    ``best.tmp/``, then renamed).
``agent.zip``
    the agent when training finished.
``logs/run-<timesteps at start>/``
    the SB3 logger's ``progress.csv`` (and TensorBoard events when ``tensorboard`` is installed),
    one folder per start or resume so a resume never overwrites earlier logs (a start at the
    timesteps of an earlier one writes to ``run-<timesteps>-2``, ``-3`` and so on).

Ctrl-C and SIGTERM write a checkpoint at the end of the step in progress, then the process ends
(a second signal ends it at once, without one). An interrupted run (those, or a killed process)
resumes from its newest complete checkpoint and loses at most the steps taken since then. With
one environment the resumed run is the uninterrupted one exactly (on CPU): the checkpoint is
taken in a step's callbacks, and a resume stores that step's transition, makes the gradient
updates of a round it ended and continues the environment's episode and random streams; greedy
evaluations leave those streams untouched. So it is with several environments (``n_envs > 1``)
of a benchmark whose model batches (`mtl_sched.envs.BatchedSchedulingVecEnv`: its stacked
model and optimizer, each environment's state and the ``VecMonitor``'s statistics are stored);
other benchmarks' environments (one process each) are not stored, and a resume starts new
episodes. An evaluation due at that checkpoint's step (the final one included) that has no row
in ``evaluations.csv`` was cut short and runs again first; the best agent to beat is the one in
``best/``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import numbers
import os
import pickle
import random
import shutil
import signal
import threading
import typing
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from mtl_sched.agents.boltzmann_gumbel import (
    BoltzmannGumbelDQN,
    ExplorationKind,
    ExplorationScale,
    TemperatureSchedule,
)
from mtl_sched.agents.progress import TqdmCallback
from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.envs.batched import BatchedSchedulingVecEnv, make_scheduling_vec_env
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv, RewardKind
from mtl_sched.probing import ProbeConfig
from mtl_sched.script_args import coerce_keyword_values

SETTINGS_FILE = "settings.json"
EVALUATIONS_FILE = "evaluations.csv"
CHECKPOINTS_DIR = "checkpoints"
PROGRESS_FILE = "progress.json"
RESUME_FILE = "resume.pkl"
KEPT_CHECKPOINTS = 2


@dataclass
class AgentSettings:
    """The environment and DQN settings of a scheduler agent.

    :param reward: environment reward (``"loss"``, ``"loss-decrease"``, ``"accuracy-increase"``).
    :param use_penalty: apply the single-task accuracy penalty (references computed and cached).
    :param steps_per_action: minibatches each choice of the agent trains (``None``: the
        benchmark's ``decision_steps``).
    :param reward_scale: factor on the environment's reward (not on the penalty).
    :param recency_decay: add recency features with this decay to the observation (see
        `mtl_sched.recency`); ``None`` keeps seed 002's histogram-only observation.
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
    :param net_arch: hidden layer widths of the Q-network.
    :param n_envs: environments the agent steps at once (SB3's vectorized environments). With
        more than one, the environments of a benchmark whose model batches (`SharedMLP`
        benchmarks such as ``synthetic``) train as one batched model
        (`mtl_sched.envs.BatchedSchedulingVecEnv`); other benchmarks run one process per
        environment. SB3 counts ``train_freq`` in steps of all ``n_envs`` environments at once,
        so the agent makes one gradient update per ``train_freq * n_envs`` environment steps;
        ``learning_starts`` and ``target_update_interval`` stay in environment steps.
    """

    reward: RewardKind = "loss-decrease"
    use_penalty: bool = False
    steps_per_action: int | None = None
    reward_scale: float = 1.0
    recency_decay: float | None = None
    gamma: float = 0.9
    learning_rate: float = 1e-3
    exploration: ExplorationKind = "boltzmann-gumbel"
    exploration_c: float = 1.0
    exploration_scale: ExplorationScale = "q-spread"
    temperature_initial: float = 1.0
    temperature_final: float = 0.05
    temperature_fraction: float = 0.8
    temperature_schedule: TemperatureSchedule = "exponential"
    learning_starts: int = 500
    buffer_size: int = 100_000
    batch_size: int = 32
    train_freq: int = 4
    target_update_interval: int = 500
    net_arch: tuple[int, ...] = (64, 64)
    n_envs: int = 1

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        values = coerce_keyword_values(hints, asdict(self), "agent setting")
        for name, value in values.items():
            setattr(self, name, value)
        at_least = {"n_envs": 1, "batch_size": 1, "buffer_size": 1, "train_freq": 1,
                    "target_update_interval": 1, "learning_starts": 0,
                    "steps_per_action": 1}  # fmt: skip
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"agent setting {name!r} must be at least {low}; got {value}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"agent setting 'gamma' must lie in [0, 1]; got {self.gamma}")
        if not self.learning_rate > 0:
            raise ValueError(
                f"agent setting 'learning_rate' must be positive; got {self.learning_rate}"
            )
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(
                f"agent setting 'net_arch' needs positive layer widths; got {self.net_arch}"
            )

    def make_env(self, benchmark: Benchmark) -> MTLSchedulingEnv:
        """The scheduling environment these settings train on."""
        return MTLSchedulingEnv(
            benchmark,
            reward=self.reward,
            reference_accuracies="auto" if self.use_penalty else None,
            steps_per_action=self.steps_per_action,
            recency_decay=self.recency_decay,
            reward_scale=self.reward_scale,
        )

    def make_vec_env(self, benchmark: Benchmark, seed: int) -> VecEnv:
        """``n_envs`` scheduling environments these settings train on, as one SB3 ``VecEnv``
        (batched when the benchmark's model batches; see `mtl_sched.envs.make_scheduling_vec_env`)
        with episode statistics (``VecMonitor``); environment ``i`` is seeded ``seed + i``."""
        vec_env = make_scheduling_vec_env(
            benchmark,
            self.n_envs,
            seed,
            reward=self.reward,
            reference_accuracies="auto" if self.use_penalty else None,
            steps_per_action=self.steps_per_action,
            recency_decay=self.recency_decay,
            reward_scale=self.reward_scale,
        )
        return VecMonitor(vec_env)

    def dqn_kwargs(self, seed: int, total_steps: int | None = None) -> dict[str, Any]:
        """Keyword arguments of SB3's ``DQN`` shared by every exploration method (none of the
        exploration ones); ``total_steps`` caps the replay buffer at what is needed."""
        buffer_size = self.buffer_size
        if total_steps is not None:
            buffer_size = min(buffer_size, total_steps)
        return {
            "gamma": self.gamma,
            "learning_rate": self.learning_rate,
            "learning_starts": self.learning_starts,
            "buffer_size": max(1, buffer_size),
            "batch_size": self.batch_size,
            "train_freq": self.train_freq,
            "target_update_interval": self.target_update_interval,
            "policy_kwargs": {"net_arch": list(self.net_arch)},
            "seed": seed,
            "device": "auto",
        }

    def make_agent(
        self, env: MTLSchedulingEnv | VecEnv, seed: int, total_steps: int | None = None
    ) -> BoltzmannGumbelDQN:
        """A fresh agent on ``env`` (one environment, or a ``VecEnv`` such as `make_vec_env`'s);
        ``total_steps`` caps the replay buffer at what is needed."""
        return BoltzmannGumbelDQN(
            "MlpPolicy",
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
    def from_dict(cls, values: dict[str, Any]) -> AgentSettings:
        """Settings from a ``settings.json`` entry; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown agent settings {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class TrainAgentConfig:
    """What ``train_agent`` does.

    :param out: output directory (see the module docstring for its layout).
    :param benchmark: registered benchmark name.
    :param benchmark_options: keyword arguments of the benchmark's factory (e.g. ``budget``).
    :param steps: total environment steps of agent training.
    :param seed: seed of the agent and its environment.
    :param agent: environment and DQN settings.
    :param eval_every: environment steps between greedy evaluations (0 disables them).
    :param eval_seeds: training seeds of the greedy evaluation runs (held out from training,
        whose episodes draw their seeds from ``seed``); scored on validation data.
    :param checkpoint_every: environment steps between checkpoints.
    :param progress: show a progress bar.
    """

    out: Path
    benchmark: str = "synthetic"
    benchmark_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 20_000
    seed: int = 0
    agent: AgentSettings = field(default_factory=AgentSettings)
    eval_every: int = 2_000
    eval_seeds: tuple[int, ...] = (1_000, 1_001)
    checkpoint_every: int = 1_000
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be non-negative; got {self.eval_every}")
        if self.eval_every and not self.eval_seeds:
            raise ValueError("greedy evaluation needs at least one eval seed")
        self.eval_seeds = tuple(self.eval_seeds)
        for seed in self.eval_seeds:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise ValueError(f"eval seeds must be non-negative integers; got {seed!r}")
        if len(set(self.eval_seeds)) != len(self.eval_seeds):
            raise ValueError(f"eval seeds must differ from each other; got {self.eval_seeds}")
        self.eval_seeds = tuple(int(seed) for seed in self.eval_seeds)

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the run it continues."""
        identity = {
            "benchmark": self.benchmark,
            "benchmark_options": self.benchmark_options,
            "seed": self.seed,
            "agent": asdict(self.agent),
        }
        return json.loads(json.dumps(identity))  # tuples become lists, as read back from disk


@dataclass
class TrainAgentResult:
    """Outcome of ``train_agent``.

    :param agent: the agent at the end of training.
    :param timesteps: environment steps trained in total (over all resumes).
    :param best_score: best mean validation score of the greedy evaluations (NaN if none ran).
    :param best_timesteps: timesteps of that evaluation (-1 if none ran).
    :param out: the output directory.
    """

    agent: BoltzmannGumbelDQN
    timesteps: int
    best_score: float
    best_timesteps: int
    out: Path


@dataclass
class TrainedAgent:
    """A trained agent with what is needed to schedule with it.

    :param agent: the agent.
    :param settings: its environment and DQN settings.
    :param probe: probe settings of its observation.
    :param benchmark: the benchmark it was trained on.
    :param path: the file it was loaded from.
    """

    agent: BoltzmannGumbelDQN
    settings: AgentSettings
    probe: ProbeConfig
    benchmark: str
    path: Path


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2))
    os.replace(temporary, path)


def complete_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of the run in ``out``, oldest first."""
    root = out / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / PROGRESS_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


def stored_identity(out: str | Path) -> dict[str, Any]:
    """The benchmark, options, seed and agent settings stored in a run directory, and its eval
    seeds (``"eval_seeds"``) once they are known.

    :param out: the run's output directory.
    """
    stored = _read_settings(Path(out))
    seeds = _evaluation_seeds(Path(out), stored)
    return stored if seeds is None else {**stored, "eval_seeds": seeds}


def _read_settings(out: Path) -> dict[str, Any]:
    path = out / SETTINGS_FILE
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        if not out.is_dir():
            raise FileNotFoundError(
                f"{out} does not exist (no {SETTINGS_FILE}): no agent training run there"
            ) from None
        raise FileNotFoundError(f"{path} is missing: {out} holds no agent training run") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}): {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read ({err})") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("agent", {}), dict):
        raise ValueError(f"{path}: not the settings of an agent training run")
    return stored


def _crossed_multiple(timesteps: int, step: int, every: int) -> bool:
    """Whether the last ``step`` timesteps (one step of every environment) reached a multiple of
    ``every``: exactly ``timesteps % every == 0`` with one environment."""
    return timesteps // every > (timesteps - step) // every


class CheckpointCallback(BaseCallback):
    """Save agent, replay buffer and progress every ``every`` steps (and on demand).

    :param out: the run's output directory.
    :param every: environment steps between checkpoints (with several environments, a checkpoint
        is written at the first step of them all that reaches each multiple of ``every``).
    :param progress_state: extra state stored in ``progress.json`` (kept up to date by its owner).
    """

    def __init__(self, out: Path, every: int, progress_state: dict[str, Any]) -> None:
        super().__init__()
        self.out = out
        self.every = every
        self.progress_state = progress_state
        self.last_saved = -1
        # the timesteps of the step whose callbacks are running (-1 between steps)
        self.open_step = -1
        # set by a first Ctrl-C or SIGTERM: raised after the checkpoint of the next step
        self.stop: KeyboardInterrupt | None = None

    def update_locals(self, locals_: dict[str, Any]) -> None:
        super().update_locals(locals_)
        self.open_step = self.model.num_timesteps

    def _on_step(self) -> bool:
        if _crossed_multiple(self.num_timesteps, self.training_env.num_envs, self.every):
            self.save()
        if self.stop is not None:
            self.save()
            raise self.stop
        return True

    def save(self) -> Path:
        """Write a checkpoint of the current timestep; returns its folder."""
        model = self.model
        folder = self.out / CHECKPOINTS_DIR / f"step-{model.num_timesteps:09d}"
        progress = folder / PROGRESS_FILE
        if not (self.last_saved == model.num_timesteps and progress.is_file()):
            folder.mkdir(parents=True, exist_ok=True)
            model.save(folder / "agent.zip")
            model.save_replay_buffer(folder / "replay_buffer.pkl")
            self._save_resume_state(folder / RESUME_FILE)
        # Rewritten even when the agent was already saved at this step: an evaluation since
        # then may have changed the best score.
        _write_json_atomically(progress, {"timesteps": model.num_timesteps, **self.progress_state})
        self.last_saved = model.num_timesteps
        for stale in complete_checkpoints(self.out)[:-KEPT_CHECKPOINTS]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder

    def _save_resume_state(self, path: Path) -> None:
        """Write what ``agent.zip`` and the replay buffer leave out: the environments' state, the
        global random generators and, when written from a step's callbacks, that step's
        transition (stored on resume by `BoltzmannGumbelDQN.complete_step`)."""
        model = self.model
        pending = None
        if self.open_step == model.num_timesteps and model.num_timesteps > 0:
            names = ("new_obs", "rewards", "dones", "infos", "buffer_actions")
            pending = {name: self.locals[name] for name in names}
        payload = {
            "timesteps": model.num_timesteps,
            "env": vec_env_state(model.get_env()),
            "random": global_random_state(),
            "pending": pending,
        }
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)


class _StepClosed(BaseCallback):
    """The last callback of a step: marks the step's callbacks as done for the checkpointer."""

    def __init__(self, checkpointer: CheckpointCallback) -> None:
        super().__init__()
        self.checkpointer = checkpointer

    def _on_step(self) -> bool:
        self.checkpointer.open_step = -1
        return True


def global_random_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (SB3's replay sampling
    draws from NumPy's)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_global_random_state(state: dict[str, Any]) -> None:
    """Restore a `global_random_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


@contextlib.contextmanager
def _isolated_random_state() -> Iterator[None]:
    """Leave the global generators as they were before the block, whatever it draws."""
    state = global_random_state()
    try:
        yield
    finally:
        set_global_random_state(state)


def _single_env(vec_env: VecEnv | None) -> tuple[Monitor, MTLSchedulingEnv] | None:
    """The monitor and the environment of an agent's one environment (as SB3 wraps it)."""
    if not isinstance(vec_env, DummyVecEnv) or vec_env.num_envs != 1:
        return None
    monitor = vec_env.envs[0]
    if not isinstance(monitor, Monitor) or not isinstance(monitor.env, MTLSchedulingEnv):
        return None
    return monitor, monitor.env


def _batched_env(vec_env: VecEnv | None) -> tuple[VecMonitor, BatchedSchedulingVecEnv] | None:
    """The monitor and the batched environment of an agent's ``n_envs > 1`` environments."""
    if not isinstance(vec_env, VecMonitor):
        return None
    if not isinstance(vec_env.venv, BatchedSchedulingVecEnv):
        return None
    return vec_env, vec_env.venv


_VEC_MONITOR_STATE = ("episode_returns", "episode_lengths", "episode_count")


def vec_env_state(vec_env: VecEnv | None) -> dict[str, Any] | None:
    """The state of an agent's environments: one environment's generator, episode in progress
    and monitor's episode statistics, or a batched env's state
    (`mtl_sched.envs.BatchedSchedulingVecEnv.get_state`) and its ``VecMonitor``'s episode
    returns and lengths; ``None`` for other ``VecEnv`` (not restored)."""
    batched = _batched_env(vec_env)
    if batched is not None:
        vec_monitor, venv = batched
        return {
            "batched": venv.get_state(),
            "vec_monitor": {
                name: pickle.loads(pickle.dumps(getattr(vec_monitor, name)))
                for name in _VEC_MONITOR_STATE
            },
        }
    found = _single_env(vec_env)
    if found is None:
        return None
    monitor, env = found
    names = ("rewards", "needs_reset", "episode_returns", "episode_lengths", "episode_times",
             "total_steps")  # fmt: skip
    return {
        "env": env.get_state(),
        "monitor": {name: pickle.loads(pickle.dumps(getattr(monitor, name))) for name in names},
    }


def set_vec_env_state(vec_env: VecEnv | None, state: dict[str, Any]) -> None:
    """Restore a `vec_env_state` into an agent's environments, which then continue without a
    reset (any seed SB3 set for their next reset is dropped)."""
    if "batched" in state:
        batched = _batched_env(vec_env)
        if batched is None:
            raise ValueError("the stored environment state is of a batched env")
        vec_monitor, venv = batched
        venv.set_state(state["batched"])
        for name, value in state["vec_monitor"].items():
            setattr(vec_monitor, name, value)
        return
    found = _single_env(vec_env)
    if found is None:
        raise ValueError("the stored environment state is of one environment")
    monitor, env = found
    env.set_state(state["env"])
    for name, value in state["monitor"].items():
        setattr(monitor, name, value)
    assert vec_env is not None
    vec_env._reset_seeds()
    vec_env._reset_options()


class GreedyEvaluationCallback(BaseCallback):
    """Every ``every`` steps, run the agent greedily as a scheduler and keep the best agent.

    Each evaluation trains the benchmark's model from scratch once per seed under
    `QLSScheduler` and scores the selected model's average validation accuracy.

    :param out: the run's output directory.
    :param benchmark: the benchmark to run on.
    :param env: an environment of the training settings (for its probe settings, steps per
        action and recency features; it is not stepped).
    :param seeds: training seeds of the evaluation runs.
    :param every: environment steps between evaluations (with several environments, at the
        first step of them all that reaches each multiple of ``every``).
    :param progress_state: shared state holding ``best_score`` and ``best_timesteps``.
    """

    def __init__(
        self,
        out: Path,
        benchmark: Benchmark,
        env: MTLSchedulingEnv,
        seeds: Sequence[int],
        every: int,
        progress_state: dict[str, Any],
    ) -> None:
        super().__init__()
        self.out = out
        self.benchmark = benchmark
        self.env = env
        self.seeds = tuple(seeds)
        self.every = every
        self.progress_state = progress_state
        self.last_evaluated = -1

    def _on_step(self) -> bool:
        if _crossed_multiple(self.num_timesteps, self.training_env.num_envs, self.every):
            self.evaluate()
        return True

    def evaluate(self) -> float:
        """Run the evaluation now; returns the mean validation score.

        The best agent is replaced first (written to a temporary folder, then renamed into
        ``best/``), and the row of ``evaluations.csv`` is appended last and flushed to disk: an
        evaluation with a row is complete, one without is run again on resume.
        """
        from mtl_sched.agents.qls import QLSScheduler

        model = self.model
        if self.last_evaluated == model.num_timesteps:
            return float("nan")
        scores = []
        # the evaluation leaves the training's random streams as they were
        with _isolated_random_state():
            for seed in self.seeds:
                scheduler = QLSScheduler.from_env(model, self.env)
                result = self.benchmark.make_trainer(seed).run(scheduler)
                scores.append(result.best_validation.average_score)
        mean = float(np.mean(scores))
        if not mean <= self.progress_state.get("best_score", -np.inf):
            evaluation = {
                "timesteps": model.num_timesteps,
                "validation_average": mean,
                "scores": scores,
            }
            _replace_best(self.out, model, evaluation)
            self.progress_state.update(best_score=mean, best_timesteps=model.num_timesteps)
        self._append_row(model.num_timesteps, mean, scores)
        self.progress_state["last_evaluated"] = model.num_timesteps
        self.last_evaluated = model.num_timesteps
        self.logger.record("eval/validation_average", mean)
        return mean

    def _append_row(self, timesteps: int, mean: float, scores: list[float]) -> None:
        path = self.out / EVALUATIONS_FILE
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                seed_columns = [f"seed_{seed}" for seed in self.seeds]
                writer.writerow(["timesteps", "validation_average", *seed_columns])
            writer.writerow([timesteps, f"{mean:.6f}"] + [f"{s:.6f}" for s in scores])
            handle.flush()
            os.fsync(handle.fileno())


def _replace_best(out: Path, model: BoltzmannGumbelDQN, evaluation: dict[str, Any]) -> None:
    """Make ``model`` and its ``evaluation`` the contents of ``out/best``: both are written to
    ``best.tmp`` first, so that ``best/`` always holds an agent with its own evaluation."""
    best, temporary, previous = out / "best", out / "best.tmp", out / "best.previous"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    model.save(temporary / "agent.zip")
    _write_json_atomically(temporary / "evaluation.json", evaluation)
    shutil.rmtree(previous, ignore_errors=True)
    if best.exists():
        os.replace(best, previous)
    os.replace(temporary, best)
    shutil.rmtree(previous, ignore_errors=True)


def _recover_best(out: Path) -> None:
    """Finish a replacement of ``out/best`` that a killed process left half done."""
    best, previous = out / "best", out / "best.previous"
    if not best.exists() and previous.is_dir():
        os.replace(previous, best)
    shutil.rmtree(out / "best.tmp", ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)


def _stored_best(out: Path) -> tuple[float, int] | None:
    """Score and timesteps of the agent in ``out/best`` (``None`` when there is none)."""
    try:
        evaluation = json.loads((out / "best" / "evaluation.json").read_text())
        return float(evaluation["validation_average"]), int(evaluation["timesteps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _evaluated_timesteps(out: Path) -> set[int]:
    """Timesteps of the rows of ``out/evaluations.csv``."""
    path = out / EVALUATIONS_FILE
    if not path.is_file():
        return set()
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    found = set()
    for row in rows:
        try:
            found.add(int(row[0]))
        except (IndexError, ValueError):  # a row cut short by a killed process
            continue
    return found


def _drop_evaluations_after(out: Path, timesteps: int) -> None:
    """Remove the rows of ``out/evaluations.csv`` of evaluations after ``timesteps``.

    An exact resume from the checkpoint of ``timesteps`` runs those evaluations again, with the
    same results, so the file ends as the uninterrupted run's (one row per evaluation). The file
    is replaced whole (written aside, then renamed).

    :param out: the run's output directory.
    :param timesteps: the resumed checkpoint's timesteps.
    """
    path = out / EVALUATIONS_FILE
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return

    def kept(row: list[str]) -> bool:
        try:
            return int(row[0]) <= timesteps
        except (IndexError, ValueError):  # a row cut short by a killed process
            return False

    body = [row for row in rows[1:] if kept(row)]
    if len(body) == len(rows) - 1:
        return
    aside = path.with_suffix(".csv.tmp")
    with aside.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *body])
        handle.flush()
        os.fsync(handle.fileno())
    aside.replace(path)


def _logger_formats() -> list[str]:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return ["csv"]
    return ["csv", "tensorboard"]


def _evaluation_seeds(out: Path, stored: dict[str, Any]) -> list[int] | None:
    """The eval seeds of the run in ``out``: from its settings, else from the header of its
    ``evaluations.csv``; ``None`` when neither says."""
    if isinstance(stored.get("eval_seeds"), list):
        return [int(seed) for seed in stored["eval_seeds"]]
    path = out / EVALUATIONS_FILE
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    return [int(name.removeprefix("seed_")) for name in header if name.startswith("seed_")]


def _check_out(config: TrainAgentConfig, resume: bool) -> None:
    """Refuse what ``config`` cannot do in ``config.out`` (reads only): starting over a run, or
    resuming one with other settings or other eval seeds."""
    out = config.out
    settings_path = out / SETTINGS_FILE
    if not resume:
        if settings_path.exists() or complete_checkpoints(out):
            raise FileExistsError(
                f"{out} already holds an agent training run; pass --resume to continue it or "
                "choose another output directory"
            )
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"output directory {out} is a file")
        return
    stored = _read_settings(out)
    if isinstance(stored.get("agent"), dict):
        # settings added since the file was written take their defaults, as on loading
        defaults = asdict(AgentSettings.from_dict(stored["agent"]))
        stored = {**stored, "agent": json.loads(json.dumps(defaults))}
    wanted = config.identity()
    differing = sorted(k for k in wanted if stored.get(k) != wanted[k])
    if differing:
        raise ValueError(
            f"{settings_path} was written for different {differing} "
            f"(stored {[stored.get(k) for k in differing]}, "
            f"given {[wanted[k] for k in differing]}); resume with the same settings"
        )
    seeds = _evaluation_seeds(out, stored)
    if config.eval_every and seeds is not None and seeds != list(config.eval_seeds):
        raise ValueError(
            f"{out} was evaluated on eval seeds {seeds}, not {list(config.eval_seeds)}; "
            f"resume with --eval-seeds {','.join(map(str, seeds))} so that {EVALUATIONS_FILE} "
            "and the best agent compare scores of the same seeds"
        )


def _start_out(config: TrainAgentConfig, resume: bool) -> None:
    """Create ``config.out`` and write its ``settings.json``: a new run's, or a resumed run's
    when it fixes the eval seeds for the first time."""
    out = config.out
    seeds = list(config.eval_seeds) if config.eval_every else None
    if not resume:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"cannot create the output directory {out}: {err}") from None
        payload = config.identity() | ({} if seeds is None else {"eval_seeds": seeds})
        _write_json_atomically(out / SETTINGS_FILE, payload)
        return
    stored = _read_settings(out)
    if "eval_seeds" not in stored:
        seeds = _evaluation_seeds(out, stored) or seeds
        if seeds is not None:
            _write_json_atomically(out / SETTINGS_FILE, {**stored, "eval_seeds": seeds})


def _log_folder(out: Path, start: int) -> Path:
    """A new folder of ``out/logs`` for the logs of a start at ``start`` timesteps (an earlier
    start at the same timesteps keeps its own)."""
    base = out / "logs" / f"run-{start:09d}"
    folder, attempt = base, 1
    while folder.exists():
        attempt += 1
        folder = base.with_name(f"{base.name}-{attempt}")
    return folder


class Terminated(KeyboardInterrupt):
    """SIGTERM during `train_agent`: raised in the training loop, which then writes a checkpoint
    as on Ctrl-C."""


def _read_resume_state(checkpoint: Path) -> dict[str, Any] | None:
    """The environment, random and pending-step state of a checkpoint (``None`` for a checkpoint
    without it, or with several environments not batched: the environments are then reset)."""
    path = checkpoint / RESUME_FILE
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        payload = pickle.load(handle)
    return payload if payload.get("env") is not None else None


def train_agent(
    config: TrainAgentConfig,
    resume: bool = False,
    callbacks: Sequence[BaseCallback] = (),
) -> TrainAgentResult:
    """Train (or, with ``resume``, continue training) a scheduler agent into ``config.out``.

    Everything is checked (the output directory, the benchmark and its options, the agent
    settings) before anything is written.

    :param config: what to train and where.
    :param resume: continue the run in ``config.out`` from its newest complete checkpoint.
    :param callbacks: extra SB3 callbacks, called after the checkpoint and evaluation ones.
    :raises KeyboardInterrupt: after writing a checkpoint, when interrupted (`Terminated`, a
        subclass, on SIGTERM).
    """
    from mtl_sched.sweeps.spec import check_benchmark_options

    _check_out(config, resume)
    out = config.out
    check_benchmark_options(config.benchmark, config.benchmark_options)
    benchmark = get_benchmark(config.benchmark, **config.benchmark_options)
    env = config.agent.make_env(benchmark)
    train_env: MTLSchedulingEnv | VecEnv = env
    if config.agent.n_envs > 1:
        train_env = config.agent.make_vec_env(benchmark, config.seed)
    checkpoints = complete_checkpoints(out) if resume else []
    state: dict[str, Any] = {"best_score": -np.inf, "best_timesteps": -1}
    resume_state: dict[str, Any] | None = None
    if checkpoints:
        latest = checkpoints[-1]
        resume_state = _read_resume_state(latest)
        agent = BoltzmannGumbelDQN.load(
            latest / "agent.zip", env=train_env, device="auto", force_reset=resume_state is None
        )
        agent.load_replay_buffer(latest / "replay_buffer.pkl")
        if resume_state is not None:
            # the environment continues its episode; the generators continue their streams
            set_vec_env_state(agent.get_env(), resume_state["env"])
            set_global_random_state(resume_state["random"])
        stored = json.loads((latest / PROGRESS_FILE).read_text())
        state.update({k: v for k, v in stored.items() if k != "timesteps"})
    else:
        agent = config.agent.make_agent(train_env, config.seed, total_steps=config.steps)
    _start_out(config, resume)
    start = agent.num_timesteps
    if resume_state is not None:
        _drop_evaluations_after(out, start)
    if resume:
        _recover_best(out)
        # `best/` is what a later evaluation must beat, even when it was written after the
        # checkpoint this run resumes from
        best = _stored_best(out)
        if best is not None and best[0] > state["best_score"]:
            state.update(best_score=best[0], best_timesteps=best[1])

    checkpointer = CheckpointCallback(out, config.checkpoint_every, state)
    # At a step due for both, the evaluation runs first so that the checkpoint records it.
    active: list[BaseCallback] = []
    evaluator = None
    if config.eval_every:
        evaluator = GreedyEvaluationCallback(
            out, benchmark, env, config.eval_seeds, config.eval_every, state
        )
        active.append(evaluator)
        if start in _evaluated_timesteps(out):
            evaluator.last_evaluated = start
    active.append(checkpointer)
    if config.progress:
        active.append(TqdmCallback(config.steps, initial=start))
    active.extend(callbacks)
    active.append(_StepClosed(checkpointer))
    remaining = config.steps - start

    def request_stop(signum: int, frame: object) -> None:
        # the first signal stops training after the checkpoint of the next step, where the
        # state is whole; a second one stops at once
        if checkpointer.stop is not None:
            raise checkpointer.stop
        interrupt = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        checkpointer.stop = interrupt(f"received signal {signum}")

    # SIGTERM (a scheduler stopping the job, `kill`) checkpoints as Ctrl-C does; a handler can
    # only be set from the main thread.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        agent.set_logger(configure(str(_log_folder(out, start)), _logger_formats()))
        if resume_state is not None and resume_state["pending"] is not None:
            agent.complete_step(resume_state["pending"])
        # An evaluation due at the resumed checkpoint's step whose row is missing was cut
        # short (the final one included): it runs again.
        due = start >= config.steps or _crossed_multiple(
            start, config.agent.n_envs, config.eval_every or 1
        )
        if evaluator is not None and start > 0 and due and evaluator.last_evaluated != start:
            evaluator.init_callback(agent)
            evaluator.evaluate()
            checkpointer.init_callback(agent)
            checkpointer.last_saved = start  # its agent is on disk: only progress.json changes
            checkpointer.save()
        if remaining > 0:
            try:
                agent.learn(remaining, callback=CallbackList(active), reset_num_timesteps=not start)
            except KeyboardInterrupt:
                # from a step's callbacks the state is whole; elsewhere (a second signal) the
                # newest checkpoint stays the one to resume from
                if checkpointer.open_step == agent.num_timesteps:
                    checkpointer.save()
                raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # Evaluate before the last checkpoint so that its progress.json holds the final best score
    # and the final evaluation.
    if evaluator is not None and evaluator.last_evaluated != agent.num_timesteps:
        evaluator.init_callback(agent)
        evaluator.evaluate()
    checkpointer.init_callback(agent)
    checkpointer.save()
    agent.save(out / "agent.zip")
    best_score = float(state["best_score"]) if np.isfinite(state["best_score"]) else float("nan")
    return TrainAgentResult(
        agent=agent,
        timesteps=agent.num_timesteps,
        best_score=best_score,
        best_timesteps=int(state["best_timesteps"]),
        out=out,
    )


def load_agent_file(path: str | Path) -> BoltzmannGumbelDQN:
    """The agent saved in ``path`` (a ``.zip`` written by SB3's ``save``), on the CPU.

    :param path: the file.
    :raises FileNotFoundError: naming it when it is missing.
    :raises ValueError: naming it when it is not a zip file or holds no readable agent.
    """
    path = Path(path)
    if not path.is_file() and path.with_name(f"{path.name}.zip").is_file():
        path = path.with_name(f"{path.name}.zip")  # SB3's save adds the suffix
    if not path.is_file():
        raise FileNotFoundError(f"agent file {path} does not exist")
    try:
        return BoltzmannGumbelDQN.load(path, device="cpu")
    except (AssertionError, EOFError, KeyError, OSError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: not a saved agent ({type(err).__name__}: {err})") from None
    except (ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a saved agent ({err})") from None


def load_trained_agent(path: str | Path, which: str = "best") -> TrainedAgent:
    """Load an agent from a ``train-agent`` output directory.

    :param path: the output directory.
    :param which: ``"best"`` (the best greedy evaluation; the final agent when no evaluation
        ran), ``"final"`` (``agent.zip``) or ``"latest"`` (the newest checkpoint).
    """
    out = Path(path)
    stored = _read_settings(out)
    candidates = {
        "best": [
            out / "best" / "agent.zip",
            out / "best.previous" / "agent.zip",  # left by a process killed while replacing it
            out / "agent.zip",
        ],
        "final": [out / "agent.zip"],
        "latest": [c / "agent.zip" for c in reversed(complete_checkpoints(out))],
    }
    if which not in candidates:
        raise ValueError(f"which must be one of {sorted(candidates)}; got {which!r}")
    found = next((p for p in candidates[which] if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"{out} has no {which!r} agent (looked for {candidates[which]})")
    settings = AgentSettings.from_dict(stored["agent"])
    benchmark = get_benchmark(stored["benchmark"], **stored.get("benchmark_options", {}))
    if settings.steps_per_action is None:
        # the environment it trained on decided every `decision_steps` minibatches
        settings.steps_per_action = benchmark.decision_steps
    return TrainedAgent(
        agent=load_agent_file(found),
        settings=settings,
        probe=benchmark.trainer_config.probe,
        benchmark=stored["benchmark"],
        path=found,
    )

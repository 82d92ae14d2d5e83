"""Train a scheduler agent with checkpoints, greedy evaluation and resume (``train-agent``).

What is trained (`mtl_sched.agents.settings`): by default the task-shared Q-network on per-task
feature rows (``AgentSettings(observation="task-features", policy="task-shared")``), which
schedules any task set; ``observation="histogram", policy="flat"`` is seed 002's network, tied to
the tasks it was trained on. A run trains on one benchmark, or on several task sets
(``TrainAgentConfig.benchmark="a,b"`` and/or ``task_subsets=(lo, hi)``): each episode then runs a
randomly drawn task set (`mtl_sched.envs.task_sets.TaskSetSamplingEnv`, one per environment),
and the greedy evaluations run on every benchmark's full task set (`mtl_sched.agents.evaluation`).
Every saved agent (checkpoints, ``best/``, ``agent.zip``) carries its context
(`mtl_sched.agents.context`): its task sets, probe settings, steps per action, recency decay,
observation and reward, its training steps and the training examples its preparation consumed
(`mtl_sched.agents.preparation`: its episodes' and its greedy evaluations').

An output directory holds one training run:

``settings.json``
    the benchmark(s), their options, the task subsets, the seed, the `AgentSettings` and, once
    greedy evaluations run, the eval seeds; a resumed run must use the same ones. It is written
    after every setting was checked. One written before ``observation`` existed loads as a run
    of the flat network on histograms (`AgentSettings.from_dict`).
``checkpoints/step-<timesteps>/``
    ``agent.zip`` (network, optimizer, exploration counts and temperature schedule),
    ``replay_buffer.pkl``, ``resume.pkl`` (the environments' state: their generators and the
    episodes in progress with their models, optimizers and data order; the global random
    generators; the transition of the step being checkpointed) and ``progress.json`` (the best
    score so far, the timesteps of the newest evaluation and the preparation examples so far),
    and ``cost.json`` (the run's CPU and wall time up to it, `mtl_sched.agents.training_clock`).
    ``progress.json`` is written last, so a checkpoint without it was cut short and is ignored;
    the two newest complete ones are kept.
    At a step due for both, the greedy evaluation runs before the checkpoint is written.
``evaluations.csv``
    one row per greedy evaluation: timesteps, mean validation score, one score per seed (and,
    with several benchmarks, one mean per benchmark). A row is appended (and flushed to disk)
    when its evaluation is complete.
``best/agent.zip``, ``best/evaluation.json``
    the agent of the best greedy evaluation so far, replaced as a whole (written to
    ``best.tmp/``, then renamed).
``agent.zip``
    the agent when training finished (written last, replaced whole).
``cost.json``
    the CPU and wall seconds the run has taken so far, over all its resumes (rewritten with
    every checkpoint and at the end).
``logs/run-<timesteps at start>/``
    the SB3 logger's ``progress.csv`` (and TensorBoard events when ``tensorboard`` is installed),
    one folder per start or resume so a resume never overwrites earlier logs (a start at the
    timesteps of an earlier one writes to ``run-<timesteps>-2``, ``-3`` and so on).

Ctrl-C and SIGTERM write a checkpoint at the end of the step in progress, then the process ends
(a second signal ends it at once, without one). After the last step the final checkpoint is
written before the final evaluation: a first signal then lets the evaluation and the saves
finish (the run is complete), and a resume after a second one runs the evaluation again. An
interrupted run (those, or a killed process) resumes from its newest complete checkpoint and
loses at most the steps taken since then. With one environment the resumed run is the
uninterrupted one exactly (on CPU): the checkpoint is taken in a step's callbacks, and a resume
stores that step's transition, makes the gradient updates of a round it ended and continues the
environment's episode and random streams; greedy evaluations leave those streams untouched. So
it is with several environments (``n_envs > 1``): of a benchmark whose model batches
(`mtl_sched.envs.BatchedSchedulingVecEnv`: its stacked model and optimizer, each environment's
state and the ``VecMonitor``'s statistics are stored), and of any other benchmark (one process
each, or one after the other with ``vec_env="dummy"``, and of several task sets: each
environment's state, fetched from its process, and the ``VecMonitor``'s statistics are stored;
see `mtl_sched.agents.env_state`).
An evaluation due at that checkpoint's step (the final one included) that has no row in
``evaluations.csv`` was cut short and runs again first; the best agent to beat is the one in
``best/``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.checkpoints import (
    PROGRESS_FILE,
    CheckpointCallback,
    StepClosed,
    complete_checkpoints,
    read_resume_state,
)
from mtl_sched.agents.env_state import (
    set_global_random_state,
    set_vec_env_state,
)
from mtl_sched.agents.evaluation import (
    EVALUATIONS_FILE,
    GreedyEvaluationCallback,
    crossed_multiple,
    drop_evaluations_after,
    evaluated_timesteps,
    recover_best,
    stored_best,
)
from mtl_sched.agents.loading import (
    TrainedAgent,
    load_agent_file,
    load_trained_agent,
    stored_identity,
)
from mtl_sched.agents.preparation import ExamplesSeenCallback, PreparationLedger
from mtl_sched.agents.progress import TqdmCallback
from mtl_sched.agents.qls import greedy_scheduler
from mtl_sched.agents.settings import AgentSettings, TrainAgentConfig, TrainingEnv, VecEnvKind
from mtl_sched.agents.training_clock import TrainingClock
from mtl_sched.agents.training_dir import check_out, check_stored_settings, log_folder, start_out

__all__ = [
    "EVALUATIONS_FILE",
    "AgentSettings",
    "CheckpointCallback",
    "GreedyEvaluationCallback",
    "Terminated",
    "TrainAgentConfig",
    "TrainAgentResult",
    "TrainedAgent",
    "VecEnvKind",
    "check_stored_settings",
    "complete_checkpoints",
    "load_agent_file",
    "load_trained_agent",
    "stored_identity",
    "train_agent",
]


@dataclass
class TrainAgentResult:
    """Outcome of ``train_agent``.

    :param agent: the agent at the end of training.
    :param timesteps: environment steps trained in total (over all resumes).
    :param best_score: best mean validation score of the greedy evaluations (NaN if none ran).
    :param best_timesteps: timesteps of that evaluation (-1 if none ran).
    :param out: the output directory.
    :param cost: the run's CPU and wall time over all resumes, as ``cost.json`` holds them
        (`mtl_sched.agents.training_clock`).
    """

    agent: BoltzmannGumbelDQN
    timesteps: int
    best_score: float
    best_timesteps: int
    out: Path
    cost: dict[str, Any] = field(default_factory=dict)


def _logger_formats() -> list[str]:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return ["csv"]
    return ["csv", "tensorboard"]


class Terminated(KeyboardInterrupt):
    """SIGTERM during `train_agent`: raised in the training loop, which then writes a checkpoint
    as on Ctrl-C."""


def _finish(
    agent: BoltzmannGumbelDQN,
    out: Path,
    checkpointer: CheckpointCallback,
    evaluator: GreedyEvaluationCallback | None,
    ledger: PreparationLedger,
    clock: TrainingClock,
) -> dict[str, Any]:
    """The end of training: the final checkpoint, the final evaluation, ``agent.zip`` and the
    run's times (returned).

    The checkpoint comes first, so that an evaluation cut short (by a second signal, or a
    killed process) runs again on resume; a first signal lets the evaluation and the saves
    finish, as the run is then complete. ``progress.json`` is rewritten after the evaluation
    to hold its best score, and ``agent.zip`` is replaced whole (written aside, then renamed).
    """
    checkpointer.init_callback(agent)
    checkpointer.save()
    if evaluator is not None and evaluator.last_evaluated != agent.num_timesteps:
        evaluator.init_callback(agent)
        evaluator.evaluate()
        checkpointer.save()
    aside = out / "agent.tmp.zip"
    ledger.attach(agent)
    agent.save(aside)
    os.replace(aside, out / "agent.zip")
    return clock.write([out], agent.num_timesteps)


def _training_envs(
    config: TrainAgentConfig, task_sets: list[Any]
) -> tuple[TrainingEnv, TrainingEnv | VecEnv]:
    """The environment of the agent's context (never stepped) and the environments it trains
    on: one benchmark's `MTLSchedulingEnv` (``n_envs`` of them in a ``VecEnv``), or for several
    task sets a `TaskSetSamplingEnv` (one per environment)."""
    settings = config.agent
    if len(task_sets) == 1:
        env: TrainingEnv = settings.make_env(task_sets[0])
        if settings.n_envs == 1:
            return env, env
        return env, settings.make_vec_env(task_sets[0], config.seed)
    env = settings.make_task_set_env(task_sets)
    if settings.n_envs == 1:
        return env, env
    return env, settings.make_task_set_vec_env(task_sets, config.seed)


def train_agent(
    config: TrainAgentConfig,
    resume: bool = False,
    callbacks: Sequence[BaseCallback] = (),
) -> TrainAgentResult:
    """Train (or, with ``resume``, continue training) a scheduler agent into ``config.out``.

    Everything is checked (the output directory, the benchmarks and their options, the task
    sets, the agent settings) before anything is written.

    :param config: what to train and where.
    :param resume: continue the run in ``config.out`` from its newest complete checkpoint.
    :param callbacks: extra SB3 callbacks, called after the checkpoint and evaluation ones.
    :raises KeyboardInterrupt: after writing a checkpoint, when interrupted (`Terminated`, a
        subclass, on SIGTERM).
    """
    check_out(config, resume)
    out = config.out
    benchmarks = config.benchmarks()
    context_env, train_env = _training_envs(config, config.task_sets(benchmarks))
    checkpoints = complete_checkpoints(out) if resume else []
    state: dict[str, Any] = {"best_score": -np.inf, "best_timesteps": -1}
    resume_state: dict[str, Any] | None = None
    if checkpoints:
        latest = checkpoints[-1]
        resume_state = read_resume_state(latest)
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
    ledger = PreparationLedger(state, context_env, config.agent.n_envs)
    if checkpoints and resume_state is None:
        ledger.new_episodes(config.agent.n_envs)  # the environments were reset
    start_out(config, resume)
    start = agent.num_timesteps
    if resume_state is not None:
        drop_evaluations_after(out, start)
    if resume:
        recover_best(out)
        # `best/` is what a later evaluation must beat, even when it was written after the
        # checkpoint this run resumes from
        best = stored_best(out)
        if best is not None and best[0] > state["best_score"]:
            state.update(best_score=best[0], best_timesteps=best[1])

    clock = TrainingClock.resumed_from(checkpoints[-1] if checkpoints else None)
    checkpointer = CheckpointCallback(out, config.checkpoint_every, state, ledger, clock)
    # A step's examples are counted first and, at a step due for both, the evaluation runs
    # before the checkpoint, so that the checkpoint records them.
    active: list[BaseCallback] = [ExamplesSeenCallback(ledger)]
    evaluator = None
    if config.eval_every:
        evaluator = GreedyEvaluationCallback(
            out, benchmarks, config.eval_seeds, config.eval_every, state, ledger, greedy_scheduler
        )
        active.append(evaluator)
        if start in evaluated_timesteps(out):
            evaluator.last_evaluated = start
    active.append(checkpointer)
    if config.progress:
        active.append(TqdmCallback(config.steps, initial=start))
    active.extend(callbacks)
    active.append(StepClosed(checkpointer))
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
        agent.set_logger(configure(str(log_folder(out, start)), _logger_formats()))
        if checkpoints:
            checkpointer.last_saved = start  # its checkpoint is on disk; never rewritten
        if resume_state is not None and resume_state["pending"] is not None:
            agent.complete_step(resume_state["pending"])
        # An evaluation due at the resumed checkpoint's step whose row is missing was cut
        # short (the final one included): it runs again.
        due = start >= config.steps or crossed_multiple(
            start, config.agent.n_envs, config.eval_every or 1
        )
        if evaluator is not None and start > 0 and due and evaluator.last_evaluated != start:
            evaluator.init_callback(agent)
            evaluator.evaluate()
            checkpointer.init_callback(agent)
            checkpointer.save()  # only progress.json changes
        if remaining > 0:
            try:
                agent.learn(remaining, callback=CallbackList(active), reset_num_timesteps=not start)
            except KeyboardInterrupt:
                # from a step's callbacks the state is whole; elsewhere (a second signal) the
                # newest checkpoint stays the one to resume from
                if checkpointer.open_step == agent.num_timesteps:
                    checkpointer.save()
                raise
        cost = _finish(agent, out, checkpointer, evaluator, ledger, clock)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    best_score = float(state["best_score"]) if np.isfinite(state["best_score"]) else float("nan")
    return TrainAgentResult(
        agent=agent,
        timesteps=agent.num_timesteps,
        best_score=best_score,
        best_timesteps=int(state["best_timesteps"]),
        out=out,
        cost=cost,
    )

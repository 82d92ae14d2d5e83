"""Checkpoints of ``train-agent``: ``checkpoints/step-<timesteps>/`` of a run's output directory
(see `mtl_sched.agents.training` for what each holds and how a resume uses it)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents.env_state import global_random_state, vec_env_state
from mtl_sched.agents.evaluation import crossed_multiple, write_json_atomically
from mtl_sched.agents.preparation import PreparationLedger
from mtl_sched.agents.training_clock import TrainingClock

CHECKPOINTS_DIR = "checkpoints"
PROGRESS_FILE = "progress.json"
RESUME_FILE = "resume.pkl"
KEPT_CHECKPOINTS = 2
# where the classes a checkpoint may name lived before they moved into packages, so that runs
# checkpointed by an earlier version of the package still resume
MOVED_MODULES = {
    "mtl_sched.probing": "mtl_sched.observation.probing",
    "mtl_sched.probe_inputs": "mtl_sched.observation.probe_inputs",
    "mtl_sched.recency": "mtl_sched.observation.recency",
    "mtl_sched.task_features": "mtl_sched.observation.task_features",
    "mtl_sched.uncertainty": "mtl_sched.observation.uncertainty",
    "mtl_sched.trainer_config": "mtl_sched.training.config",
    "mtl_sched.run_result": "mtl_sched.training.run_result",
    "mtl_sched.task_sampler": "mtl_sched.training.sampler",
    "mtl_sched.task_evaluation": "mtl_sched.training.evaluation",
    "mtl_sched.run_observer": "mtl_sched.training.observers",
    "mtl_sched.trial_records": "mtl_sched.results.records",
}


class _CheckpointUnpickler(pickle.Unpickler):
    """Reads a resume file, finding the classes of modules that have moved since it was
    written (`MOVED_MODULES`)."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def complete_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of the run in ``out``, oldest first.

    :param out: the run's output directory.
    """
    root = out / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / PROGRESS_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


class CheckpointCallback(BaseCallback):
    """Save agent, replay buffer and progress every ``every`` steps (and on demand).

    :param out: the run's output directory.
    :param every: environment steps between checkpoints (with several environments, a checkpoint
        is written at the first step of them all that reaches each multiple of ``every``).
    :param progress_state: extra state stored in ``progress.json`` (kept up to date by its owner).
    :param ledger: records the agent's context (with its preparation examples) before each save;
        ``None`` saves the agent as it is.
    :param clock: the run's CPU and wall time, written as ``cost.json`` into each checkpoint and
        the run's directory (`mtl_sched.agents.training_clock`); ``None``: not written.
    """

    def __init__(
        self,
        out: Path,
        every: int,
        progress_state: dict[str, Any],
        ledger: PreparationLedger | None = None,
        clock: TrainingClock | None = None,
    ) -> None:
        super().__init__()
        self.out = out
        self.every = every
        self.progress_state = progress_state
        self.ledger = ledger
        self.clock = clock
        self.last_saved = -1
        # the timesteps of the step whose callbacks are running (-1 between steps)
        self.open_step = -1
        # set by a first Ctrl-C or SIGTERM: raised after the checkpoint of the next step
        self.stop: KeyboardInterrupt | None = None

    def update_locals(self, locals_: dict[str, Any]) -> None:
        super().update_locals(locals_)
        self.open_step = self.model.num_timesteps

    def _on_step(self) -> bool:
        if crossed_multiple(self.num_timesteps, self.training_env.num_envs, self.every):
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
            if self.ledger is not None:
                self.ledger.attach(model)
            model.save(folder / "agent.zip")
            model.save_replay_buffer(folder / "replay_buffer.pkl")
            self._save_resume_state(folder / RESUME_FILE)
        # Rewritten even when the agent was already saved at this step: an evaluation since
        # then may have changed the best score.
        if self.clock is not None:
            self.clock.write([folder, self.out], model.num_timesteps)
        write_json_atomically(progress, {"timesteps": model.num_timesteps, **self.progress_state})
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


class StepClosed(BaseCallback):
    """The last callback of a step: marks the step's callbacks as done for the checkpointer.

    :param checkpointer: the run's checkpoint callback.
    """

    def __init__(self, checkpointer: CheckpointCallback) -> None:
        super().__init__()
        self.checkpointer = checkpointer

    def _on_step(self) -> bool:
        self.checkpointer.open_step = -1
        return True


def read_resume_state(checkpoint: Path) -> dict[str, Any] | None:
    """The environment, random and pending-step state of a checkpoint (``None`` for a checkpoint
    without it, or whose environments' state was not stored: the environments are then reset).

    :param checkpoint: the checkpoint's folder.
    """
    path = checkpoint / RESUME_FILE
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        payload = _CheckpointUnpickler(handle).load()
    return payload if payload.get("env") is not None else None

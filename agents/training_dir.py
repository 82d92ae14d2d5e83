"""The output directory of a ``train-agent`` run (its layout: `mtl_sched.agents.training`):
refusing what a configuration cannot do there, starting it, and the log folder of each start."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mtl_sched.agents.checkpoints import complete_checkpoints
from mtl_sched.agents.evaluation import (
    EVALUATIONS_FILE,
    evaluation_seeds,
    write_json_atomically,
)
from mtl_sched.agents.loading import SETTINGS_FILE, read_settings
from mtl_sched.agents.settings import AgentSettings, TrainAgentConfig


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, stored, wanted)`` for each setting that differs; the agent's settings by name
    (``agent.reward``), not as two whole dictionaries."""
    differing = []
    for key in sorted(wanted):
        old, new = stored.get(key), wanted[key]
        if isinstance(old, dict) and isinstance(new, dict):
            differing += [
                (f"{key}.{name}", old.get(name), new.get(name))
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
        elif old != new:
            differing.append((key, old, new))
    return differing


def check_stored_settings(config: TrainAgentConfig) -> None:
    """Refuse ``config`` for the run in ``config.out`` (finished or not) when that run was
    written for other settings or other eval seeds, so that a finished agent of other settings
    is never taken for this configuration's.

    :param config: the training configuration the run in ``config.out`` should have.
    :raises ValueError: naming the settings that differ.
    """
    check_out(config, resume=True)


def check_out(config: TrainAgentConfig, resume: bool) -> None:
    """Refuse what ``config`` cannot do in ``config.out`` (reads only): starting over a run, or
    resuming one with other settings or other eval seeds.

    :param config: the training configuration.
    :param resume: whether the run in ``config.out`` is to be continued.
    :raises FileExistsError: starting where a run already is.
    :raises NotADirectoryError: when ``config.out`` is a file.
    :raises ValueError: resuming with other settings or eval seeds (naming them).
    """
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
    stored = read_settings(out)
    if isinstance(stored.get("agent"), dict):
        # settings added since the file was written take their defaults, as on loading
        defaults = asdict(AgentSettings.from_dict(stored["agent"]))
        stored = {**stored, "agent": json.loads(json.dumps(defaults))}
    wanted = config.identity()
    differing = _differences(stored, wanted)
    if differing:
        raise ValueError(
            f"{settings_path} was written for different {[name for name, _, _ in differing]} "
            f"(stored {[old for _, old, _ in differing]}, "
            f"given {[new for _, _, new in differing]}); resume with the same settings"
        )
    seeds = evaluation_seeds(out, stored)
    if config.eval_every and seeds is not None and seeds != list(config.eval_seeds):
        raise ValueError(
            f"{out} was evaluated on eval seeds {seeds}, not {list(config.eval_seeds)}; "
            f"resume with --eval-seeds {','.join(map(str, seeds))} so that {EVALUATIONS_FILE} "
            "and the best agent compare scores of the same seeds"
        )


def start_out(config: TrainAgentConfig, resume: bool) -> None:
    """Create ``config.out`` and write its ``settings.json``: a new run's, or a resumed run's
    when it fixes the eval seeds for the first time.

    :param config: the training configuration (checked by `check_out`).
    :param resume: whether the run in ``config.out`` is continued.
    """
    out = config.out
    seeds = list(config.eval_seeds) if config.eval_every else None
    if not resume:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"cannot create the output directory {out}: {err}") from None
        payload = config.identity() | ({} if seeds is None else {"eval_seeds": seeds})
        write_json_atomically(out / SETTINGS_FILE, payload)
        return
    stored = read_settings(out)
    if "eval_seeds" not in stored:
        seeds = evaluation_seeds(out, stored) or seeds
        if seeds is not None:
            write_json_atomically(out / SETTINGS_FILE, {**stored, "eval_seeds": seeds})


def log_folder(out: Path, start: int) -> Path:
    """A new folder of ``out/logs`` for the logs of a start at ``start`` timesteps (an earlier
    start at the same timesteps keeps its own).

    :param out: the run's output directory.
    :param start: the timesteps the start continues from.
    """
    base = out / "logs" / f"run-{start:09d}"
    folder, attempt = base, 1
    while folder.exists():
        attempt += 1
        folder = base.with_name(f"{base.name}-{attempt}")
    return folder

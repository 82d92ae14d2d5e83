"""Load what ``train-agent`` wrote: a saved agent file, or a run directory's agent with its
settings (see `mtl_sched.agents.training` for the directory's layout). A file saved by any
stable-baselines3 algorithm loads too (`saved_algorithm` tells which one saved it)."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import json_to_data

from mtl_sched.agents.agent_files import (
    SETTINGS_FILE,
    saved_agent_file,
    trained_agent_file,
)
from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.checkpoints import PROGRESS_FILE, complete_checkpoints
from mtl_sched.agents.context import CONTEXT_ATTRIBUTE
from mtl_sched.agents.evaluation import evaluation_seeds
from mtl_sched.agents.preparation import PREPARATION_KEY
from mtl_sched.agents.settings import AgentSettings, options_for
from mtl_sched.agents.training_clock import read_cost
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.observation.probing import ProbeConfig

# The algorithms a saved agent file is read with. An algorithm that extends another comes before
# it: on an equal match (`saved_algorithm`) the first one loads the file.
ALGORITHMS: tuple[type[BaseAlgorithm], ...] = (BoltzmannGumbelDQN, DQN, PPO, A2C, SAC, TD3, DDPG)

AlgorithmT = TypeVar("AlgorithmT", bound=BaseAlgorithm)


@dataclass
class TrainedAgent:
    """A trained agent with what is needed to schedule with it.

    :param agent: the agent.
    :param settings: its environment and DQN settings.
    :param probe: probe settings of its observation.
    :param benchmark: the benchmark it was trained on (several separated by commas).
    :param path: the file it was loaded from.
    """

    agent: BoltzmannGumbelDQN
    settings: AgentSettings
    probe: ProbeConfig
    benchmark: str
    path: Path


def stored_identity(out: str | Path) -> dict[str, Any]:
    """The benchmark, options, seed and agent settings stored in a run directory, and its eval
    seeds (``"eval_seeds"``) once they are known.

    :param out: the run's output directory.
    """
    stored = read_settings(Path(out))
    seeds = evaluation_seeds(Path(out), stored)
    return stored if seeds is None else {**stored, "eval_seeds": seeds}


def read_settings(out: Path) -> dict[str, Any]:
    """The ``settings.json`` of the run in ``out``.

    :param out: the run's output directory.
    :raises FileNotFoundError: naming the directory or the file when either is missing.
    :raises ValueError: naming the file when it is not the settings of a run.
    """
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


def training_summary(out: str | Path) -> dict[str, str]:
    """What a ``train-agent`` directory says about its training, as scheduler notes: the
    benchmark and options it trained on (``training_benchmark``) and, once ``cost.json`` exists,
    its CPU and wall time (``training_time``; see `mtl_sched.agents.training_clock`).

    :param out: the run's output directory.
    """
    out = Path(out)
    stored = read_settings(out)
    options = stored.get("benchmark_options") or {}
    described = ", ".join(f"{key}={options[key]}" for key in sorted(options))
    benchmark = str(stored["benchmark"]) + (f" ({described})" if described else "")
    summary = {"training_benchmark": benchmark}
    if stored.get("task_subsets"):
        low, high = stored["task_subsets"]
        summary["training_benchmark"] += f", task subsets of {low} to {high} tasks"
    cost = read_cost(out)
    if cost is None:
        return summary
    hours = cost["cpu_seconds"] / 3600, cost["wall_seconds"] / 3600
    partial = "" if cost["complete"] else " (since a resume; earlier time not kept)"
    summary["training_time"] = f"{hours[0]:.2f} CPU hours, {hours[1]:.2f} wall hours{partial}"
    return summary


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The algorithm of `ALGORITHMS` called ``name`` (any case: ``"PPO"``, ``"ppo"``).

    :param name: the class name.
    :raises ValueError: naming the known algorithms when none is called so.
    """
    known = {algorithm.__name__.lower(): algorithm for algorithm in ALGORITHMS}
    if name.lower() not in known:
        names = ", ".join(algorithm.__name__ for algorithm in ALGORITHMS)
        raise ValueError(f"algorithm must be one of {names}; got {name!r}")
    return known[name.lower()]


def _stored_match(algorithm: type[BaseAlgorithm], data: dict[str, Any]) -> int:
    """How well ``data`` fits what ``algorithm``'s ``save`` writes: its saved attributes
    present in ``data``, less those missing."""
    blank = algorithm(policy=data["policy_class"], env=None, device="cpu", _init_setup_model=False)
    saved = set(vars(blank)) - set(blank._excluded_save_params())
    return len(saved & data.keys()) - len(saved - data.keys())


def saved_algorithm(
    path: str | Path, candidates: Sequence[type[BaseAlgorithm]] = ALGORITHMS
) -> type[BaseAlgorithm]:
    """The algorithm that saved the agent in ``path``.

    SB3's file stores the policy class and the algorithm's attributes, not the algorithm class.
    Of the ``candidates`` whose policies include the stored policy class, the one whose saved
    attributes the file holds best is taken: PPO and A2C share their policies, and so do DQN and
    `BoltzmannGumbelDQN`, but each stores attributes of its own.

    :param path: the agent's ``.zip`` file.
    :param candidates: the algorithms to choose from, an extending class before its base.
    :raises ValueError: naming the file and the policy class when no candidate fits.
    """
    with zipfile.ZipFile(path) as archive:
        data = json_to_data(archive.read("data").decode())
    policy_class = data.get("policy_class")
    fitting = [
        algorithm
        for algorithm in candidates
        if isinstance(policy_class, type)
        and any(issubclass(policy_class, known) for known in algorithm.policy_aliases.values())
    ]
    if not fitting:
        names = ", ".join(algorithm.__name__ for algorithm in candidates)
        raise ValueError(
            f"{path}: its policy {policy_class!r} belongs to none of {names}; "
            "pass the algorithm class that saved it (algorithm=...)"
        )
    # max keeps the first of equal matches: the extending class
    return max(fitting, key=lambda algorithm: _stored_match(algorithm, data))


@overload
def load_agent_file(path: str | Path, algorithm: type[AlgorithmT]) -> AlgorithmT: ...


@overload
def load_agent_file(path: str | Path, algorithm: str | None = None) -> BaseAlgorithm: ...


def load_agent_file(
    path: str | Path, algorithm: type[BaseAlgorithm] | str | None = None
) -> BaseAlgorithm:
    """The agent saved in ``path`` (a ``.zip`` written by SB3's ``save``), on the CPU.

    :param path: the file.
    :param algorithm: the algorithm class that saved it, or its name (see `algorithm_class`);
        by default the one `saved_algorithm` reads from the file.
    :raises FileNotFoundError: naming it when it is missing.
    :raises ValueError: naming it when it is not a zip file or holds no readable agent.
    """
    path = saved_agent_file(path)
    if isinstance(algorithm, str):
        algorithm = algorithm_class(algorithm)
    try:
        return (algorithm or saved_algorithm(path)).load(path, device="cpu")
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
    stored = read_settings(out)
    found = trained_agent_file(out, which)
    settings = AgentSettings.from_dict(stored["agent"])
    # an agent saved without its context schedules with its first benchmark's settings
    first = str(stored["benchmark"]).split(",")[0].strip()
    benchmark = get_benchmark(first, **options_for(first, stored.get("benchmark_options", {})))
    if settings.steps_per_action is None:
        # the environment it trained on decided every `decision_steps` minibatches
        settings.steps_per_action = benchmark.decision_steps
    agent = load_agent_file(found, BoltzmannGumbelDQN)
    _count_whole_training(agent, out)
    return TrainedAgent(
        agent=agent,
        settings=settings,
        probe=benchmark.trainer_config.probe,
        benchmark=stored["benchmark"],
        path=found,
    )


def _count_whole_training(agent: BaseAlgorithm, out: Path) -> None:
    """Make the agent's preparation cost that of the whole training in ``out`` so far.

    A best or earlier agent was saved with the examples consumed up to its own step, but choosing
    it took the training that followed as well (the later evaluations had to run to show it was
    the best): its cost is the newest checkpoint's count when that is larger.
    """
    context = getattr(agent, CONTEXT_ATTRIBUTE, None)
    checkpoints = complete_checkpoints(out)
    if context is None or not checkpoints:
        return
    progress = json.loads((checkpoints[-1] / PROGRESS_FILE).read_text())
    total = int(progress.get(PREPARATION_KEY, 0))
    if total > int(context.get(PREPARATION_KEY, 0)):
        setattr(agent, CONTEXT_ATTRIBUTE, {**context, PREPARATION_KEY: total})

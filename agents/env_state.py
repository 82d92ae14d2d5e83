"""What a checkpoint of agent training stores beside the agent: its environments' and the global
random generators' state.

`vec_env_state` covers the three ways an agent's environments run:

- one environment (SB3 wraps it in a ``Monitor`` inside a ``DummyVecEnv``): its
  `MTLSchedulingEnv.get_state` (or, training on several task sets,
  `mtl_sched.envs.task_sets.TaskSetSamplingEnv.get_state`: the task set drawn and its episode) and
  the monitor's episode statistics;
- several environments of a benchmark whose model batches
  (`mtl_sched.envs.BatchedSchedulingVecEnv` in a ``VecMonitor``): the batched env's state and the
  ``VecMonitor``'s statistics;
- several environments of any other benchmark, or of several task sets (``MTLSchedulingEnv`` or
  ``TaskSetSamplingEnv`` in a ``SubprocVecEnv`` or ``DummyVecEnv``, in a ``VecMonitor``): each
  environment's state (fetched from its process with ``env_method``), each ``Monitor``'s
  statistics where one wraps it, the ``VecEnv``'s seeds, options and reset ``info`` for its next
  reset, and the ``VecMonitor``'s statistics.

`set_vec_env_state` restores any of them into environments of the same settings, which then
continue exactly where the stored ones were.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from mtl_sched.envs.batched import BatchedSchedulingVecEnv
from mtl_sched.envs.scheduling_env import MTLSchedulingEnv
from mtl_sched.envs.task_sets import TaskSetSamplingEnv

# the environments whose get_state / set_state continue an episode exactly
StatefulEnv = MTLSchedulingEnv | TaskSetSamplingEnv

# the episode statistics of SB3's monitors (their start times only time the logs)
_MONITOR_STATE = ("rewards", "needs_reset", "episode_returns", "episode_lengths",
                  "episode_times", "total_steps")  # fmt: skip
_VEC_MONITOR_STATE = ("episode_returns", "episode_lengths", "episode_count")


def global_random_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (SB3's replay sampling
    draws from NumPy's)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_global_random_state(state: dict[str, Any]) -> None:
    """Restore a `global_random_state`.

    :param state: what `global_random_state` returned.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


@contextlib.contextmanager
def isolated_random_state() -> Iterator[None]:
    """Leave the global generators as they were before the block, whatever it draws."""
    state = global_random_state()
    try:
        yield
    finally:
        set_global_random_state(state)


def _copied(source: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: pickle.loads(pickle.dumps(getattr(source, name))) for name in names}


def _single_env(vec_env: VecEnv | None) -> tuple[Monitor, StatefulEnv] | None:
    """The monitor and the environment of an agent's one environment (as SB3 wraps it)."""
    if not isinstance(vec_env, DummyVecEnv) or vec_env.num_envs != 1:
        return None
    monitor = vec_env.envs[0]
    if not isinstance(monitor, Monitor) or not isinstance(monitor.env, StatefulEnv):
        return None
    return monitor, monitor.env


def _batched_env(vec_env: VecEnv | None) -> tuple[VecMonitor, BatchedSchedulingVecEnv] | None:
    """The monitor and the batched environment of an agent's ``n_envs > 1`` environments."""
    if not isinstance(vec_env, VecMonitor):
        return None
    if not isinstance(vec_env.venv, BatchedSchedulingVecEnv):
        return None
    return vec_env, vec_env.venv


def _fallback_env(vec_env: VecEnv | None) -> tuple[VecMonitor, VecEnv] | None:
    """The monitor and the ``SubprocVecEnv`` or ``DummyVecEnv`` of an agent's ``n_envs > 1``
    environments of a benchmark that does not batch."""
    if not isinstance(vec_env, VecMonitor):
        return None
    if not isinstance(vec_env.venv, (SubprocVecEnv, DummyVecEnv)):
        return None
    return vec_env, vec_env.venv


def _fallback_state(vec_monitor: VecMonitor, venv: VecEnv) -> dict[str, Any]:
    monitored = venv.env_is_wrapped(Monitor)
    monitors = [
        {name: venv.get_attr(name, indices=[i])[0] for name in _MONITOR_STATE} if wrapped else None
        for i, wrapped in enumerate(monitored)
    ]
    return {
        "envs": venv.env_method("get_state"),
        "monitors": pickle.loads(pickle.dumps(monitors)),
        "seeds": list(venv._seeds),
        "options": copy.deepcopy(venv._options),
        "reset_infos": copy.deepcopy(list(venv.reset_infos)),
    }


def _set_fallback_state(venv: VecEnv, state: dict[str, Any]) -> None:
    if len(state["envs"]) != venv.num_envs:
        raise ValueError(
            f"the stored state is of {len(state['envs'])} environments, not {venv.num_envs}"
        )
    for i, (env_state, monitor) in enumerate(zip(state["envs"], state["monitors"], strict=True)):
        venv.env_method("set_state", env_state, indices=[i])
        for name, value in (monitor or {}).items():
            venv.set_attr(name, value, indices=[i])
    venv._seeds = list(state["seeds"])
    venv._options = copy.deepcopy(state["options"])
    venv.reset_infos = copy.deepcopy(state["reset_infos"])


def vec_env_state(vec_env: VecEnv | None) -> dict[str, Any] | None:
    """The state of an agent's environments (see the module docstring for what each kind
    stores); ``None`` for a ``VecEnv`` of another kind (not restored).

    :param vec_env: the agent's environments (``agent.get_env()``).
    """
    batched = _batched_env(vec_env)
    if batched is not None:
        vec_monitor, venv = batched
        return {
            "batched": venv.get_state(),
            "vec_monitor": _copied(vec_monitor, _VEC_MONITOR_STATE),
        }
    fallback = _fallback_env(vec_env)
    if fallback is not None:
        vec_monitor, venv = fallback
        return {
            "fallback": _fallback_state(vec_monitor, venv),
            "vec_monitor": _copied(vec_monitor, _VEC_MONITOR_STATE),
        }
    found = _single_env(vec_env)
    if found is None:
        return None
    monitor, env = found
    return {"env": env.get_state(), "monitor": _copied(monitor, _MONITOR_STATE)}


def set_vec_env_state(vec_env: VecEnv | None, state: dict[str, Any]) -> None:
    """Restore a `vec_env_state` into an agent's environments of the same settings, which then
    continue without a reset.

    :param vec_env: the agent's environments (``agent.get_env()``).
    :param state: what `vec_env_state` returned.
    :raises ValueError: when ``state`` is of another kind or number of environments.
    """
    for kind, found in (("batched", _batched_env(vec_env)), ("fallback", _fallback_env(vec_env))):
        if kind not in state:
            continue
        if found is None:
            raise ValueError(f"the stored environment state is of a {kind} vec env")
        vec_monitor, venv = found
        if kind == "batched":
            venv.set_state(state["batched"])
        else:
            _set_fallback_state(venv, state["fallback"])
        for name, value in state["vec_monitor"].items():
            setattr(vec_monitor, name, value)
        return
    single = _single_env(vec_env)
    if single is None:
        raise ValueError("the stored environment state is of one environment")
    monitor, env = single
    env.set_state(state["env"])
    for name, value in state["monitor"].items():
        setattr(monitor, name, value)
    assert vec_env is not None
    # SB3 sets seeds for the next reset when it loads an agent; the episode goes on instead
    vec_env._reset_seeds()
    vec_env._reset_options()

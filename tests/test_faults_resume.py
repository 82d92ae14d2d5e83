"""A killed agent training resumed from its checkpoints ends as the uninterrupted run does.

Each run below is killed with SIGKILL (no handler runs) at a step, resumed from its newest
checkpoint, killed again further on, and so on to the end; the final agent (every tensor of its
networks and optimizer, its exploration state, replay buffer) and ``evaluations.csv`` must equal
those of one uninterrupted run, bit for bit on CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN

STEPS = 90
# checkpoints fall inside rounds of gradient updates (train_freq 4) and inside episodes
# (10 steps); greedy evaluations run in between
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from stable_baselines3.common.callbacks import BaseCallback
    from mtl_sched.agents.training import AgentSettings, TrainAgentConfig, train_agent

    out, kill_at, resume = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    steps, n_envs = int(sys.argv[4]), int(sys.argv[5])

    class KillAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return True

    config = TrainAgentConfig(
        out=out,
        benchmark_options={"budget": 640, "train_size": 200, "validation_size": 60,
                           "hidden_sizes": [16]},
        steps=steps,
        eval_every=30,
        eval_seeds=(4242,),
        checkpoint_every=15,
        agent=AgentSettings(learning_starts=10, steps_per_action=2, target_update_interval=8,
                            batch_size=8, n_envs=n_envs),
        progress=False,
    )
    train_agent(config, resume=resume, callbacks=[KillAt()])
    """
)


def _run(out: Path, kill_at: int, resume: bool, steps: int = STEPS, n_envs: int = 1) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-c", SCRIPT, str(out), str(kill_at), "1" if resume else "0"]
    command += [str(steps), str(n_envs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, -9), done.stderr
    return done.returncode


def _assert_same_agent(a: BoltzmannGumbelDQN, b: BoltzmannGumbelDQN) -> None:
    params_a, params_b = a.get_parameters(), b.get_parameters()
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        state_a, state_b = params_a[name], params_b[name]
        if name.endswith("optimizer"):
            state_a, state_b = state_a["state"], state_b["state"]
            assert state_a.keys() == state_b.keys()
            for key in state_a:
                for entry in state_a[key]:
                    assert torch.equal(
                        torch.as_tensor(state_a[key][entry]), torch.as_tensor(state_b[key][entry])
                    ), f"{name} {key} {entry}"
            continue
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), f"{name}.{key}"
    assert a.num_timesteps == b.num_timesteps
    assert a._n_updates == b._n_updates and a._episode_num == b._episode_num
    assert np.array_equal(a.action_counts, b.action_counts)


def _assert_same_final_run(whole: Path, killed: Path, steps: int) -> tuple[Any, Any]:
    """Assert the two run directories end with the same evaluations, agent and replay buffer.

    :param whole: the uninterrupted run's directory.
    :param killed: the killed and resumed run's directory.
    :param steps: the runs' total timesteps (names the last checkpoint).
    :returns: the two replay buffers of the last checkpoint, for further checks.
    """
    assert (killed / "evaluations.csv").read_text() == (whole / "evaluations.csv").read_text()
    final_whole = BoltzmannGumbelDQN.load(whole / "agent.zip", device="cpu")
    final_killed = BoltzmannGumbelDQN.load(killed / "agent.zip", device="cpu")
    _assert_same_agent(final_whole, final_killed)
    checkpoint = Path("checkpoints") / f"step-{steps:09d}" / "replay_buffer.pkl"
    final_whole.load_replay_buffer(whole / checkpoint)
    final_killed.load_replay_buffer(killed / checkpoint)
    buffers = final_whole.replay_buffer, final_killed.replay_buffer
    assert buffers[0].size() == buffers[1].size()
    for field in ("observations", "next_observations", "actions", "rewards", "dones"):
        assert np.array_equal(getattr(buffers[0], field), getattr(buffers[1], field)), field
    return buffers


@pytest.mark.serial
def test_a_run_killed_again_and_again_ends_as_the_uninterrupted_one(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert _run(whole, kill_at=-1, resume=False) == 0

    killed = tmp_path / "killed"
    # killed mid-round and mid-episode (17), just after an evaluation and its checkpoint (31),
    # at a checkpoint's own step (60: killed after its checkpoint was written) and near the end
    kills = [17, 31, 60, 88]
    assert _run(killed, kill_at=kills[0], resume=False) == -9
    for at in kills[1:]:
        assert _run(killed, kill_at=at, resume=True) == -9
    assert _run(killed, kill_at=-1, resume=True) == 0

    buffers = _assert_same_final_run(whole, killed, STEPS)
    # written from the callbacks of the last step, before its transition is stored
    assert buffers[0].size() == STEPS - 1


BATCHED_STEPS = 96


@pytest.mark.serial
def test_a_killed_run_of_batched_environments_ends_as_the_uninterrupted_one(
    tmp_path: Path,
) -> None:
    # four environments of one batched env (the synthetic benchmark's model stacks): steps of
    # four timesteps; killed mid-round and mid-episode (36), then at a checkpoint's own step
    # (60: killed after its checkpoint was written)
    whole = tmp_path / "whole"
    assert _run(whole, kill_at=-1, resume=False, steps=BATCHED_STEPS, n_envs=4) == 0
    killed = tmp_path / "killed"
    assert _run(killed, kill_at=36, resume=False, steps=BATCHED_STEPS, n_envs=4) == -9
    assert _run(killed, kill_at=60, resume=True, steps=BATCHED_STEPS, n_envs=4) == -9
    assert _run(killed, kill_at=-1, resume=True, steps=BATCHED_STEPS, n_envs=4) == 0

    _assert_same_final_run(whole, killed, BATCHED_STEPS)

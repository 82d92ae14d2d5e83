"""The library leaves its host process alone: importing it or building and running a model
changes no process-wide setting, it calls public torch APIs only, and its environment ids
resolve in a process that never imported it."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.envs import BANDIT_ENV_ID, BANDIT_ENV_ID_WITH_MODULE, ENV_ID, ENV_ID_WITH_MODULE
from mtl_sched.models.text_classifier import BiLSTMTextClassifier

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("mtl_sched", "envs", "agents", "baselines")


def _denormals_kept() -> bool:
    return bool(torch.tensor(1e-39) * 1.0 != 0)


def test_building_and_training_the_text_classifier_keeps_denormals():
    was_flushing = not _denormals_kept()
    torch.set_flush_denormal(False)
    try:
        torch.manual_seed(0)
        model = BiLSTMTextClassifier(
            Vocabulary(["good", "bad", "movie"]), {"a": 2, "b": 2}, embedding_dim=4, hidden_size=3
        )
        tokens = [["good", "movie"], ["bad"], ["movie", "bad", "good"]]
        batch = model.collate("a", {"tokens": tokens, "label": [1, 0, 1]})
        # more reviews than a chunk: the chunked path as well as the single pass
        outputs = model.task_outputs([("a", batch)] * 8 + [("b", batch)] * 8)
        sum(output.logits.sum() for output in outputs).backward()
        model.eval()
        with torch.no_grad():
            model.task_output("b", batch)
        assert _denormals_kept()
    finally:
        torch.set_flush_denormal(was_flushing)


def _private_torch_names(path: Path) -> list[tuple[int, str]]:
    """Private names reached through ``torch`` (``torch._x``, ``from torch._x import``,
    ``from torch import _x``) and the internal ``torch.lstm`` op, with their lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "torch" and (node.attr.startswith("_") or node.attr == "lstm"):
                found.append((node.lineno, f"torch.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
            modules = node.module.split(".")
            names = [alias.name for alias in node.names]
            if any(part.startswith("_") for part in modules) or any(
                name.startswith("_") for name in names
            ):
                found.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch") and any(
                    part.startswith("_") for part in alias.name.split(".")
                ):
                    found.append((node.lineno, f"import {alias.name}"))
    return found


def test_the_scan_finds_private_torch_names(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            import torch
            import torch._dynamo
            from torch import _VF, nn
            from torch._C import Generator
            states = torch.lstm(x, hx, weights, True, 1, 0.0, False, False, True)
            torch._foreach_add_(a, b)
            nn.LSTM(2, 3)
            """
        )
    )
    assert _private_torch_names(sample) == [
        (3, "import torch._dynamo"),
        (4, "from torch import _VF, nn"),
        (5, "from torch._C import Generator"),
        (6, "torch.lstm"),
        (7, "torch._foreach_add_"),
    ]


def test_the_library_uses_public_torch_names_only():
    offenders = {}
    for root in SOURCE_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            names = _private_torch_names(path)
            if names:
                offenders[path.relative_to(ROOT).as_posix()] = names
    assert not offenders, f"private torch names: {offenders}"


@pytest.mark.serial
def test_importing_the_library_changes_no_process_setting():
    # a fresh interpreter: this one has imported everything already
    script = textwrap.dedent(
        """
        import numpy as np
        import torch

        def settings():
            return {
                "denormals": bool(torch.tensor(1e-39) * 1.0 != 0),
                "threads": torch.get_num_threads(),
                "dtype": torch.get_default_dtype(),
                "grad": torch.is_grad_enabled(),
                "deterministic": torch.are_deterministic_algorithms_enabled(),
                "torch_rng": torch.random.get_rng_state().tolist(),
                "numpy_rng": repr(np.random.get_state()),
                "print": repr(np.get_printoptions()),
            }

        before = settings()
        import mtl_sched, mtl_sched.envs, mtl_sched.agents, mtl_sched.baselines
        import mtl_sched.models.text_classifier
        after = settings()
        changed = sorted(key for key in before if before[key] != after[key])
        assert not changed, changed
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)


@pytest.mark.serial
def test_env_ids_resolve_in_a_process_that_never_imported_the_envs():
    env_id = BANDIT_ENV_ID_WITH_MODULE
    assert env_id.endswith(f":{BANDIT_ENV_ID}")
    assert ENV_ID_WITH_MODULE.endswith(f":{ENV_ID}")

    # defined here so that it travels by value, importing nothing of the library with it
    def make_env():
        fresh = "mtl_sched.envs" not in sys.modules
        env = gym.make(env_id, num_tasks=3, bins=5)
        env.unwrapped.imported_the_envs_itself = fresh
        return env

    vec_env = SubprocVecEnv([make_env], start_method="spawn")
    try:
        assert vec_env.get_attr("imported_the_envs_itself") == [True]
        vec_env.seed(7)
        observations = vec_env.reset()
        _, rewards, _, _ = vec_env.step(np.array([2]))
    finally:
        vec_env.close()
    local = gym.make(BANDIT_ENV_ID, num_tasks=3, bins=5)
    expected, _ = local.reset(seed=7)
    np.testing.assert_array_equal(observations[0], expected)
    assert rewards[0] == pytest.approx(local.step(2)[1])


def test_sb3_make_vec_env_takes_the_id_with_its_module():
    vec_env = make_vec_env(BANDIT_ENV_ID_WITH_MODULE, n_envs=2, env_kwargs={"num_tasks": 3})
    try:
        assert vec_env.observation_space == gym.make(BANDIT_ENV_ID, num_tasks=3).observation_space
    finally:
        vec_env.close()

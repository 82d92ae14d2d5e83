"""Resume files written before classes moved into packages still load."""

from __future__ import annotations

import importlib
import importlib.util
import pickle
from pathlib import Path

from mtl_sched.agents.checkpoints import MOVED_MODULES, RESUME_FILE, read_resume_state
from mtl_sched.observation.probing import ProbeConfig


def test_a_resume_file_naming_an_old_module_loads(tmp_path: Path) -> None:
    probe = ProbeConfig(bins=7, pool_size=5)
    # protocol 0 names each class as "module\nname\n", so the old module path can be written in
    payload = pickle.dumps({"env": {"probe": probe}, "step": 3}, protocol=0)
    old = payload.replace(b"mtl_sched.observation.probing", b"mtl_sched.probing")
    assert old != payload
    (tmp_path / RESUME_FILE).write_bytes(old)
    state = read_resume_state(tmp_path)
    assert state == {"env": {"probe": probe}, "step": 3}


def test_every_moved_module_points_to_an_existing_one() -> None:
    for old, new in MOVED_MODULES.items():
        assert importlib.util.find_spec(old) is None, f"{old} exists again: drop its mapping"
        importlib.import_module(new)

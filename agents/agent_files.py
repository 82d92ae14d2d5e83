"""Where a saved agent's files are, and a fingerprint of them.

An agent is given as a saved file (SB3's ``.zip``) or as a ``train-agent`` output directory (see
`mtl_sched.agents.training` for its layout); `mtl_sched.agents.loading` loads the files named
here, and `agent_fingerprint` identifies an agent by their content wherever they lie.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mtl_sched.agents.checkpoints import complete_checkpoints

SETTINGS_FILE = "settings.json"
FINGERPRINT_PREFIX = "sha256:"


def saved_agent_file(path: str | Path) -> Path:
    """The file of a saved agent given as ``path``, with or without the ``.zip`` suffix SB3's
    ``save`` adds.

    :param path: the file.
    :raises FileNotFoundError: naming it when neither exists.
    """
    path = Path(path)
    if not path.is_file() and path.with_name(f"{path.name}.zip").is_file():
        path = path.with_name(f"{path.name}.zip")
    if not path.is_file():
        raise FileNotFoundError(f"agent file {path} does not exist")
    return path


def trained_agent_file(out: str | Path, which: str = "best") -> Path:
    """The agent file of a ``train-agent`` output directory that `load_trained_agent` loads.

    :param out: the output directory.
    :param which: ``"best"`` (the best greedy evaluation; the final agent when no evaluation
        ran), ``"final"`` (``agent.zip``) or ``"latest"`` (the newest checkpoint).
    :raises ValueError: when ``which`` is none of these.
    :raises FileNotFoundError: naming the files looked for when none exists.
    """
    out = Path(out)
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
    return found


def agent_fingerprint(path: str | Path) -> str:
    """`FINGERPRINT_PREFIX` and the SHA-256 of what an agent given as ``path`` is loaded from.

    For a ``train-agent`` directory that is its ``settings.json`` and its best agent file (what
    `load_trained_agent` reads), for a saved agent its file (with SB3's ``.zip`` suffix added
    as `load_agent_file` does). Equal files give equal fingerprints wherever they lie; an agent
    retrained into the same directory gives another.

    :param path: a ``train-agent`` output directory or a saved agent file.
    :raises FileNotFoundError: naming the path when it holds no agent.
    """
    path = Path(path)
    if path.is_dir():
        files = [path / SETTINGS_FILE, trained_agent_file(path)]
        if not files[0].is_file():
            raise FileNotFoundError(f"{files[0]} is missing: {path} holds no agent training run")
    else:
        files = [saved_agent_file(path)]
    digest = hashlib.sha256()
    for file in files:
        # each file's own digest, so that no split of the bytes between files collides
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return f"{FINGERPRINT_PREFIX}{digest.hexdigest()}"

"""Rekey stored ``qls`` trials that name their agent by its path.

A trial's key hashes its configuration (`mtl_sched.sweeps.spec.trial_config`), which names
``qls``'s agent by `mtl_sched.agents.loading.agent_fingerprint`, the digest of its files. Trials
stored before named it by its absolute path: a store copied to another checkout would run them
again, and an agent retrained into the same directory would be taken for the stored one.
`rekey_agent_paths` gives such trials the configuration and key they would have today, reading
the agent where it lies now (``moved`` maps the paths of agents, or of folders holding them,
that have moved since).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_sched.agents.agent_files import FINGERPRINT_PREFIX
from mtl_sched.results import ResultsStore, TrialKey, config_hash


@dataclass(frozen=True)
class AgentRekey:
    """One stored trial's change of key.

    :param old: its key, the agent named by path.
    :param new: its key with the agent named by fingerprint.
    :param agent: the path it named.
    :param read_from: where the agent was read (``agent``, or where ``moved`` put it).
    :param changed: ``False`` when the store already held ``new`` (the trial ran again under it)
        and this one kept ``old``.
    """

    old: TrialKey
    new: TrialKey
    agent: str
    read_from: Path
    changed: bool = True


def _relocated(path: str, moved: Mapping[str, str | Path]) -> Path:
    """``path`` with the longest ``moved`` prefix that covers it replaced."""
    stored = Path(path)
    covering = [old for old in moved if stored == Path(old) or Path(old) in stored.parents]
    if not covering:
        return stored
    old = max(covering, key=lambda prefix: len(Path(prefix).parts))
    return Path(moved[old]) / stored.relative_to(old)


def rekey_agent_paths(
    store: ResultsStore, moved: Mapping[str, str | Path] | None = None
) -> list[AgentRekey]:
    """Name the agent of every path-keyed trial in ``store`` by its fingerprint, all at once.

    Only ``qls`` trials name an agent (``compare --agent`` takes one for ``qls`` alone). Those
    keyed by fingerprint already are left alone, so running it again changes nothing.

    :param store: the results store.
    :param moved: stored path (of an agent or a folder above it) -> where it is now; a path not
        covered is read where it was.
    :returns: one entry per path-keyed trial found.
    :raises FileNotFoundError: naming every stored agent path that holds no agent now (and the
        trials naming it); nothing is changed.
    """
    from mtl_sched.agents.agent_files import agent_fingerprint

    moved = moved or {}
    fingerprints: dict[Path, str] = {}
    found: list[tuple[TrialKey, dict[str, Any], str, Path]] = []
    missing: dict[str, list[str]] = {}
    for record in store.trials(scheduler="qls"):
        params = record.config.get("scheduler_params")
        agent = params.get("agent") if isinstance(params, dict) else None
        if not isinstance(agent, str) or agent.startswith(FINGERPRINT_PREFIX):
            continue
        where = _relocated(agent, moved)
        if where not in fingerprints:
            try:
                fingerprints[where] = agent_fingerprint(where)
            except FileNotFoundError:
                trial = f"{record.key.scheduler} seed {record.key.seed}"
                missing.setdefault(agent, []).append(trial)
                continue
        config = {**record.config, "scheduler_params": {**params, "agent": fingerprints[where]}}
        found.append((record.key, config, agent, where))
    if missing:
        lines = [f"{agent} ({', '.join(trials)})" for agent, trials in missing.items()]
        raise FileNotFoundError(
            f"{store.path}: no agent where these trials' agents were: {'; '.join(lines)}. "
            "Say where each is now (moved: OLD -> NEW, an agent or a folder above it; "
            "--moved OLD=NEW on the command line)"
        )
    changed = store.rekey([(key, config) for key, config, _, _ in found])
    return [
        AgentRekey(key, TrialKey(key.benchmark, config_hash(config), key.scheduler, key.seed),
                   agent, where, changed=took)
        for (key, config, agent, where), took in zip(found, changed, strict=True)
    ]  # fmt: skip

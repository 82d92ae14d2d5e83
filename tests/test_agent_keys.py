"""A ``qls`` trial is keyed by its agent's files, not their path; stores keyed by path migrate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mtl_sched.agents.agent_files import agent_fingerprint
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli import main
from mtl_sched.results import MetricRow, ResultsStore, TrialKey, config_hash
from mtl_sched.sweeps import plan_trials, trial_config, trial_key
from mtl_sched.sweeps.agent_keys import rekey_agent_paths

SMALL = {"small": True}
ROWS = [MetricRow("test", "average", "score", 0.5)]


def make_run_dir(path: Path, agent: bytes = b"agent", settings: bytes = b"{}") -> Path:
    """A ``train-agent`` directory as far as the fingerprint reads it (it loads nothing)."""
    (path / "best").mkdir(parents=True)
    (path / "best" / "agent.zip").write_bytes(agent)
    (path / "settings.json").write_bytes(settings)
    return path


def qls_key(agent: Path | None, params: dict | None = None) -> TrialKey:
    (spec,) = plan_trials(
        "synthetic", ["qls"], [0], benchmark_options=SMALL, agent=agent,
        scheduler_params={"qls": params or {}},
    )  # fmt: skip
    return trial_key(spec, trial_config(spec, get_benchmark("synthetic", small=True)))


def test_the_fingerprint_reads_the_files_an_agent_loads_from(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run")
    copy = Path(shutil.copytree(run, tmp_path / "elsewhere" / "copy"))
    assert agent_fingerprint(run) == agent_fingerprint(copy)
    assert agent_fingerprint(run).startswith("sha256:")
    (copy / "best" / "agent.zip").write_bytes(b"retrained")
    assert agent_fingerprint(copy) != agent_fingerprint(run)
    (copy / "best" / "agent.zip").write_bytes(b"agent")
    (copy / "settings.json").write_bytes(b'{"seed": 1}')
    assert agent_fingerprint(copy) != agent_fingerprint(run)
    # no best agent: the final one, as loading takes it
    final = tmp_path / "final"
    final.mkdir()
    (final / "agent.zip").write_bytes(b"agent")
    (final / "settings.json").write_bytes(b"{}")
    assert agent_fingerprint(final) == agent_fingerprint(run)
    # a saved file, named with or without SB3's suffix
    file = tmp_path / "saved.zip"
    file.write_bytes(b"agent")
    assert agent_fingerprint(file) == agent_fingerprint(tmp_path / "saved")
    assert agent_fingerprint(file) != agent_fingerprint(run)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        agent_fingerprint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        agent_fingerprint(tmp_path / "empty")


def test_a_qls_trial_is_keyed_by_what_its_agent_is(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run")
    copy = Path(shutil.copytree(run, tmp_path / "moved"))
    key = qls_key(run)
    assert qls_key(copy) == key
    assert qls_key(None, {"agent": str(copy)}) == key  # --param qls.agent=PATH
    (run / "best" / "agent.zip").write_bytes(b"retrained in place")
    assert qls_key(run) != key


def make_store(path: Path, configs: list[tuple[dict, int]]) -> ResultsStore:
    store = ResultsStore(path)
    for config, seed in configs:
        key = TrialKey("synthetic", config_hash(config), "qls", seed)
        assert store.write_trial(key, ROWS, config=config, wall_time=1.0)
    return store


def test_rekey_moves_a_trial_with_its_rows_and_keeps_a_clash(tmp_path: Path) -> None:
    old, new = {"benchmark": "synthetic", "a": 1}, {"benchmark": "synthetic", "a": 2}
    with make_store(tmp_path / "s.sqlite", [(old, 0), (old, 1), (new, 1)]) as store:
        keys = {(r.key.seed, r.key.config_hash) for r in store.trials()}
        moves = [(TrialKey("synthetic", config_hash(old), "qls", seed), new) for seed in (0, 1)]
        # seed 1 is stored under the new configuration already: it keeps its old key
        assert store.rekey(moves) == [True, False]
        assert {(r.key.seed, r.key.config_hash) for r in store.trials()} == {
            (0, config_hash(new)), (1, config_hash(old)), (1, config_hash(new))
        }  # fmt: skip
        moved = TrialKey("synthetic", config_hash(new), "qls", 0)
        assert [r.value for r in store.rows(config_hash=moved.config_hash) if r.key == moved]
        assert store.trials(scheduler="qls")[0].config == new
        absent = TrialKey("synthetic", "0" * 16, "qls", 5)
        with pytest.raises(KeyError, match="no stored trial"):
            store.rekey([(TrialKey("synthetic", config_hash(old), "qls", 1), new), (absent, old)])
        # nothing of a failed rekey is written
        assert len(store.trials()) == len(keys)
        assert store.has_trial(TrialKey("synthetic", config_hash(old), "qls", 1))


def path_keyed(key_agent: Path, stored_path: str) -> dict:
    """The configuration an earlier version stored: the agent by its absolute path."""
    (spec,) = plan_trials("synthetic", ["qls"], [0], benchmark_options=SMALL, agent=key_agent)
    config = trial_config(spec, get_benchmark("synthetic", small=True))
    return {**config, "scheduler_params": {**config["scheduler_params"], "agent": stored_path}}


def test_path_keyed_trials_take_the_key_a_sweep_looks_for(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "checkout" / "agents" / "run")
    gone = "/old/checkout/agents/run"
    legacy = [(path_keyed(run, str(run)), 0), (path_keyed(run, gone), 1)]
    with make_store(tmp_path / "s.sqlite", legacy) as store:
        # another scheduler's "agent" hyperparameter is not a qls agent: it is left as it is
        plugin = {"benchmark": "synthetic", "scheduler_params": {"agent": "a name"}}
        store.write_trial(
            TrialKey("synthetic", config_hash(plugin), "plugin", 0), ROWS, config=plugin,
            wall_time=1.0,
        )  # fmt: skip
        before = store.trials()
        with pytest.raises(FileNotFoundError, match=f"{gone} \\(qls seed 1\\)"):
            rekey_agent_paths(store)
        assert store.trials() == before
        rekeys = rekey_agent_paths(store, {"/old/checkout": tmp_path / "checkout"})
        # (the store lists trials by key, and the keys of the temporary paths vary)
        assert sorted((r.agent, r.read_from, r.changed) for r in rekeys) == sorted(
            [(str(run), run, True), (gone, run, True)]
        )
        finished = store.finished_keys()
        assert {key.config_hash for key in finished if key.scheduler == "qls"} == {
            qls_key(run).config_hash
        }
        assert TrialKey("synthetic", config_hash(plugin), "plugin", 0) in finished
        assert rekey_agent_paths(store) == []


def test_migrate_command_reports_each_trial_and_names_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run_dir(tmp_path / "run")
    db = tmp_path / "s.sqlite"
    make_store(db, [(path_keyed(run, "/gone/run"), 0)]).close()
    with pytest.raises(SystemExit, match="/gone/run"):
        main(["migrate", "--db", str(db)])
    assert main(["migrate", "--db", str(db), "--moved", f"/gone={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert f"synthetic qls seed 0: {config_hash(path_keyed(run, '/gone/run'))} -> " in out
    assert out.strip().endswith("1 of 1 trials naming an agent by path rekeyed")
    with pytest.raises(SystemExit, match="does not exist"):
        main(["migrate", "--db", str(tmp_path / "none.sqlite")])
    assert not (tmp_path / "none.sqlite").exists()
    with pytest.raises(SystemExit):
        main(["migrate", "--db", str(db), "--moved", "no-equals-sign"])
    assert "expected OLD=NEW" in capsys.readouterr().err

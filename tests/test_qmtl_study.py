"""The Q-MTL study: matched initializations, label noise across approaches, resumable trials."""

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conll_fixtures import conllu_text

from mtl_sched.cli import main
from mtl_sched.data.ud_pos import UD_POS_TREEBANKS
from mtl_sched.results import ResultsStore
from mtl_sched.studies.qmtl.jobs import QMTLModelJob
from mtl_sched.studies.qmtl.models import (
    MatchedTaggers,
    head_of,
    score_predictions,
    tagger_outputs,
)
from mtl_sched.studies.qmtl.setup import (
    QMTLStudyConfig,
    TaggerSettings,
    load_ner_task,
    load_upos_task,
    with_label_noise,
)
from mtl_sched.studies.qmtl.study import QMTLStudy, TrialGroup, plan_groups, study_rows

TINY = TaggerSettings(
    name="tiny",
    embedding_dim=8,
    hidden_size=8,
    char_embedding_dim=4,
    char_hidden_size=4,
    optimizer="adam",
    learning_rate=0.01,
    batch_size=8,
    epochs=1,
)
WORDS = {
    "DET": ["the", "a", "this"],
    "NOUN": ["dog", "cat", "house", "tree", "idea"],
    "VERB": ["sees", "likes", "finds"],
    "ADJ": ["big", "red", "old"],
    "PUNCT": [".", "!"],
}
NER_WORDS = {"B-PER": ["John", "Mary"], "B-LOC": ["Paris", "Rome"], "O": ["sees", "in", "the"]}


def _sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        shape = ["DET", "ADJ", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]
        if rng.random() < 0.5:
            shape.remove("ADJ")
        out.append([(rng.choice(WORDS[tag]), tag) for tag in shape])
    return out


def _conll2003(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n):
        for tag in ["B-PER", "O", "O", "B-LOC"]:
            lines.append(f"{rng.choice(NER_WORDS[tag])} NN B-NP {tag}")
        lines.append("")
    return "\n".join(lines) + "\n"


@pytest.fixture
def toy_data(tmp_path: Path) -> Path:
    folder = tmp_path / "ud" / UD_POS_TREEBANKS["en_lines"][0]
    folder.mkdir(parents=True)
    for i, (name, n) in enumerate(zip(UD_POS_TREEBANKS["en_lines"][1], (40, 12, 12), strict=True)):
        (folder / name).write_text(conllu_text(_sentences(n, seed=i)), encoding="utf-8")
    ner = tmp_path / "conll2003"
    ner.mkdir()
    for i, name in enumerate(("train.txt", "valid.txt", "test.txt")):
        (ner / name).write_text(_conll2003(30 if i == 0 else 10, seed=i), encoding="utf-8")
    return tmp_path


def _config(**overrides) -> QMTLStudyConfig:
    base = QMTLStudyConfig(
        treebanks=("en_lines",),
        seeds=(0,),
        ks=(1, 3),
        noise_k=3,
        noise_levels=(0.0, 0.3),
        ner_fractions=(1.0, 0.5),
        settings=TINY,
    )
    return dataclasses.replace(base, **overrides)


def test_jth_stl_model_starts_from_the_jth_qmtl_head_and_qmtl_models_share_heads(toy_data):
    task = load_upos_task("en_lines", _config(), toy_data)
    models = MatchedTaggers(task, TINY, seed=5)
    qmtl3, qmtl2 = head_of(models.qmtl(3)), head_of(models.qmtl(2))
    for j in range(3):
        stl = head_of(models.stl(j))
        assert stl.k == 1
        pairs = zip(stl.export_head(0).parameters(), qmtl3.export_head(j).parameters(), strict=True)
        for a, b in pairs:
            torch.testing.assert_close(a, b)
    for a, b in zip(qmtl2.parameters(), (p[:2] for p in qmtl3.parameters()), strict=True):
        torch.testing.assert_close(a, b)
    shared = models.qmtl(3).encoder.state_dict()
    for name, value in models.stl(0).encoder.state_dict().items():
        torch.testing.assert_close(value, shared[name])
    own = models.stl(1).encoder.state_dict()
    assert not torch.equal(own["lstm.weight_ih_l0"], shared["lstm.weight_ih_l0"])
    # the PTA heads have no ReLU layer
    assert head_of(models.qmtl(3, hidden=0)).V is None


def test_label_noise_is_the_same_for_every_approach_of_a_seed_and_spares_dev(toy_data):
    task = load_upos_task("en_lines", _config(), toy_data)
    a, b = with_label_noise(task, 0.3, seed=1), with_label_noise(task, 0.3, seed=1)
    assert a.split("train")["tags"] == b.split("train")["tags"]
    clean = np.concatenate(task.split("train")["tags"])
    noisy = np.concatenate(a.split("train")["tags"])
    assert 0.15 < float(np.mean(clean != noisy)) < 0.45
    assert a.split("validation")["tags"] == task.split("validation")["tags"]
    assert with_label_noise(task, 0.0, seed=1) is task


def test_ner_fraction_keeps_the_first_sentences(toy_data):
    full = load_ner_task(1.0, _config(), toy_data)
    half = load_ner_task(0.5, _config(), toy_data)
    assert half.size("train") == 15 and full.size("train") == 30
    assert half.split("train")["tokens"] == full.split("train")["tokens"][:15]


def test_plan_covers_each_part_once():
    groups = plan_groups(_config())
    upos = [g for g in groups if g.benchmark == "qmtl-upos"]
    assert [(g.label_noise, g.ks, g.pta) for g in upos] == [(0.0, (3,), True), (0.3, (3,), True)]
    ner = [g for g in groups if g.benchmark == "qmtl-ner"]
    assert [(g.train_fraction, g.ks) for g in ner] == [(1.0, (3,)), (0.5, (3,))]
    only_table = plan_groups(_config(parts=("table1",), ks=(1, 2, 4)))
    assert [(g.label_noise, g.ks, g.pta, g.members) for g in only_table] == [
        (0.0, (2, 4), False, 4)
    ]


def test_study_writes_every_trial_once_and_resumes(toy_data, tmp_path):
    config = _config(ner_fractions=(1.0,))
    store_path = tmp_path / "results.sqlite"
    with ResultsStore(store_path) as store:
        study = QMTLStudy(config, store, tmp_path / "cache", data_dir=toy_data)
        run = study.run()
        # per UPOS group (noise 0 and 0.3): qmtl-k3, pta-k3, stl-0..2, ensemble-k3; NER: 5
        assert (run.sweep.written, run.ensembles_written) == (2 * 5 + 4, 3)
        assert run.written == 2 * 6 + 5 and run.ensembles_waiting == 0
        assert study.run().written == 0
        rows = study_rows(store, config)
        trials = {(r.key.benchmark, r.key.scheduler, r.config["label_noise"]) for r in rows}
        assert len(trials) == 17
        group = TrialGroup("qmtl-upos", "en_lines", 0.0, 1.0, 0, (3,), True)
        key = study.key(group, "ensemble-k3")
        stored = {
            (r.split, r.metric): r.value for r in rows if r.key == key and r.metric == "score"
        }
        # the ensemble's score is the argmax of its members' averaged distributions
        task = study.task(group)
        members = [np.load(study.member_file(group, j)) for j in range(3)]
        averaged = np.mean([m["test"] for m in members], axis=0)
        expected = score_predictions(task, "test", averaged.argmax(1), members[0]["test_lengths"])
        assert stored[("test", "score")] == pytest.approx(expected)
        qmtl = {
            r.metric: r.value
            for r in rows
            if r.key == study.key(group, "qmtl-k3") and r.split == "validation"
        }
        heads = [qmtl[f"head{j}_score"] for j in range(3)]
        assert qmtl["score_select"] == max(heads)
        assert {"head0_frobenius_V", "head2_frobenius_W"} <= {r.metric for r in rows}


def test_each_treebank_has_its_own_trials(toy_data, tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        study = QMTLStudy(_config(), store, tmp_path / "cache", data_dir=toy_data)
        groups = [TrialGroup("qmtl-upos", tb, 0.0, 1.0, 0, (3,), False) for tb in UD_POS_TREEBANKS]
        keys = {study.key(group, "stl-0") for group in groups}
        assert len(keys) == len(UD_POS_TREEBANKS)
        files = {study.member_file(group, 0) for group in groups}
        assert len(files) == len(UD_POS_TREEBANKS)


def test_tagger_outputs_average_the_heads(toy_data):
    task = load_upos_task("en_lines", _config(), toy_data)
    model = MatchedTaggers(task, TINY, seed=0).qmtl(2)
    out = tagger_outputs(model, task, "validation")
    assert out.probabilities.shape == (sum(out.lengths), task.num_classes)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert out.head_predictions.shape == (2, sum(out.lengths))


def test_cli_study_runs_and_writes_the_report(toy_data, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["study", "qmtl", "--data-dir", str(toy_data), "--out", str(out), "--settings", "fast"]
    args += ["--epochs", "1", "--treebanks", "en_lines", "--seeds", "0", "--ks", "1,2"]
    args += ["--parts", "table1", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "en_lines" in printed and (out / "qmtl_report.md").exists()
    assert (out / "results.sqlite").exists()
    with pytest.raises(SystemExit, match="unknown treebank"):
        main(["study", "qmtl", "--treebanks", "xx_none", "--out", str(out)])


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as every pool worker runs
    yield
    torch.set_num_threads(threads)


def _scores(store: ResultsStore, config: QMTLStudyConfig) -> dict:
    return {
        (r.key.scheduler, r.split, r.metric): r.value
        for r in study_rows(store, config)
        if r.split in ("validation", "test")
    }


def test_a_pool_of_workers_stores_the_same_models_as_one_process(toy_data, tmp_path, one_thread):
    config = _config(parts=("table1",), ks=(1, 2))
    stores = {}
    for workers in (1, 2):
        path = tmp_path / f"workers{workers}.sqlite"
        with ResultsStore(path) as store:
            study = QMTLStudy(config, store, tmp_path / f"cache{workers}", data_dir=toy_data)
            run = study.run(workers=workers)
            assert run.sweep.failures == [] and run.written == 4  # qmtl-k2, stl-0, stl-1, ens
            stores[workers] = _scores(store, config)
    assert stores[1] == stores[2]
    assert {method for method, _, _ in stores[1]} == {"qmtl-k2", "stl-0", "stl-1", "ensemble-k2"}


def test_an_ensemble_waits_for_a_failed_member_and_a_rerun_completes_it(
    toy_data, tmp_path, monkeypatch
):
    config = _config(parts=("table1",), ks=(1, 2))
    real_run = QMTLModelJob.run

    def fail_second_member(self, *args, **kwargs):
        if self.method == "stl-1":
            raise RuntimeError("out of memory")
        return real_run(self, *args, **kwargs)

    with ResultsStore(tmp_path / "results.sqlite") as store:
        study = QMTLStudy(config, store, tmp_path / "cache", data_dir=toy_data)
        monkeypatch.setattr(QMTLModelJob, "run", fail_second_member)
        first = study.run()
        assert [label for label, _ in first.sweep.failures] == ["en_lines seed 0 stl-1"]
        assert "out of memory" in first.sweep.failures[0][1]
        assert (first.sweep.written, first.ensembles_written, first.ensembles_waiting) == (2, 0, 1)
        monkeypatch.setattr(QMTLModelJob, "run", real_run)
        second = study.run()
        assert (second.sweep.already_stored, second.sweep.written) == (2, 1)
        assert (second.ensembles_written, second.ensembles_waiting) == (1, 0)


def test_a_job_rejects_a_model_its_group_does_not_train(tmp_path):
    group = TrialGroup("qmtl-upos", "en_lines", 0.0, 1.0, 0, (3,), False)
    assert group.methods == ["qmtl-k3", "stl-0", "stl-1", "stl-2"]
    with pytest.raises(ValueError, match="'pta-k3' is not a model of this group"):
        QMTLModelJob(_config(), group, "pta-k3", str(tmp_path))

"""Any UD treebank directory as a tagging task, in Python and in ``study qmtl --treebank``."""

import dataclasses
from pathlib import Path

import pytest
from conll_fixtures import conllu_text

from mtl_sched.cli import main
from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.ud_pos import (
    UD_POS_TREEBANKS,
    find_treebank_files,
    load_ud_treebank,
    load_ud_upos,
    treebank_name,
)
from mtl_sched.studies.qmtl.jobs import TrialGroup, group_config, trial_key
from mtl_sched.studies.qmtl.setup import QMTLStudyConfig, load_upos_task

TRAIN = [
    [("the", "DET"), ("dog", "NOUN"), ("barks", "VERB")],
    [("a", "DET"), ("cat", "NOUN"), ("sleeps", "VERB"), (".", "PUNCT")],
]
DEV = [[("the", "DET"), ("cat", "NOUN"), ("!", "PUNCT")]]
TEST = [[("wow", "INTJ")]]


def write_treebank(folder: Path, prefix: str, train=TRAIN, dev=DEV, test=TEST) -> Path:
    folder.mkdir(parents=True)
    for split, sentences in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"{prefix}-ud-{split}.conllu").write_text(
            conllu_text(sentences), encoding="utf-8"
        )
    (folder / "README.md").write_text("not a CoNLL-U file, ignored", encoding="utf-8")
    return folder


def test_a_treebank_directory_becomes_the_same_task_as_a_built_in_one(tmp_path):
    folder = write_treebank(tmp_path / "UD_Toy", "xx_toy")
    train, dev, test = find_treebank_files(folder)
    assert (train.name, dev.name, test.name) == (
        "xx_toy-ud-train.conllu",
        "xx_toy-ud-dev.conllu",
        "xx_toy-ud-test.conllu",
    )
    assert treebank_name(folder) == "xx_toy"
    task = load_ud_treebank(folder)
    assert task.name == "xx_toy" and task.kind == "tagging" and task.metric == "accuracy"
    # training tags first, sorted; PUNCT is seen in train, INTJ only in test and comes last
    assert task.label_names == ("DET", "NOUN", "PUNCT", "VERB", "INTJ")
    assert task.split("train")["tags"] == [[0, 1, 3], [0, 1, 3, 2]]
    assert task.split("test")["tags"] == [[4]]
    assert task.metadata["unseen_in_train"] == ["INTJ"]
    # the same files laid out as a built-in treebank give the same task
    data = tmp_path / "data"
    lines = data / "ud" / UD_POS_TREEBANKS["en_lines"][0]
    lines.mkdir(parents=True)
    for path, name in zip((train, dev, test), UD_POS_TREEBANKS["en_lines"][1], strict=True):
        (lines / name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    built_in = load_ud_upos("en_lines", data)
    assert built_in.label_names == task.label_names
    for split in ("train", "validation", "test"):
        assert built_in.split(split)[:] == task.split(split)[:]
    limited = load_ud_treebank(folder, name="mine", limits={"train": 1})
    assert limited.name == "mine" and limited.size("train") == 1
    assert limited.label_names == task.label_names


def test_missing_or_ambiguous_split_files_and_bad_lines_are_named(tmp_path):
    folder = write_treebank(tmp_path / "UD_Toy", "xx_toy")
    (folder / "xx_toy-ud-dev.conllu").unlink()
    with pytest.raises(ValueError, match=r"no CoNLL-U file with 'dev' in its name") as error:
        load_ud_treebank(folder)
    assert str(folder) in str(error.value) and "xx_toy-ud-train.conllu" in str(error.value)
    (folder / "xx_toy-ud-dev.conllu").write_text(conllu_text(DEV), encoding="utf-8")
    (folder / "old-dev.conllu.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"has 2 CoNLL-U files with 'dev'"):
        find_treebank_files(folder)
    (folder / "old-dev.conllu.gz").unlink()
    (folder / "xx_toy-ud-test.conllu").write_text("1\twow\twow\tINTJ\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"xx_toy-ud-test\.conllu:1: expected 10"):
        load_ud_treebank(folder)
    with pytest.raises(FileNotFoundError, match=r"treebank directory .* does not exist"):
        load_ud_treebank(tmp_path / "nowhere")


def test_study_config_takes_directories_beside_built_in_keys(tmp_path):
    first = write_treebank(tmp_path / "UD_First", "xx_first")
    second = write_treebank(tmp_path / "UD_Second", "xx_first")
    config = QMTLStudyConfig(treebanks=("en_lines", first, f"other={second}"))
    assert config.treebanks == ("en_lines", "xx_first", "other")
    assert dict(config.treebank_dirs) == {
        "xx_first": str(first.resolve()),
        "other": str(second.resolve()),
    }
    # the resolved config survives dataclasses.replace (as the study's workers rebuild it)
    again = dataclasses.replace(config, eval_sentences=1)
    assert again.treebanks == config.treebanks and again.treebank_dirs == config.treebank_dirs
    task = load_upos_task("other", again, data_dir=None)
    assert task.name == "other" and task.size("train") == 2 and task.size("validation") == 1
    with pytest.raises(ValueError, match="'xx_first' is given twice"):
        QMTLStudyConfig(treebanks=(first, second))
    clash = write_treebank(tmp_path / "UD_English-LinES", "en_lines")
    with pytest.raises(ValueError, match="a built-in treebank: name it with NAME="):
        QMTLStudyConfig(treebanks=(str(clash),))
    assert QMTLStudyConfig(treebanks=(f"lines2={clash}",)).treebanks == ("lines2",)
    with pytest.raises(ValueError, match="unknown treebank 'xx_none'"):
        QMTLStudyConfig(treebanks=("xx_none",))


def test_cli_study_runs_on_treebank_directories(tmp_path, capsys):
    words = {"DET": ["the", "a"], "NOUN": ["dog", "cat", "tree"], "VERB": ["sees", "likes"]}
    sentences = [
        [(words[t][(i + j) % len(words[t])], t) for j, t in enumerate(["DET", "NOUN", "VERB"])]
        for i in range(12)
    ]
    folder = write_treebank(tmp_path / "UD_Toy", "xx_toy", sentences, sentences[:4], sentences[:4])
    out = tmp_path / "study"
    args = ["study", "qmtl", "--treebank", str(folder), "--treebank", f"again={folder}"]
    args += ["--out", str(out), "--settings", "fast", "--epochs", "1", "--seeds", "0"]
    args += ["--ks", "1", "--parts", "table1", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| xx_toy |" in printed and "| again |" in printed
    assert "en_lines" not in printed  # --treebank alone replaces the built-in list
    with pytest.raises(SystemExit, match="no CoNLL-U file with 'train'"):
        main(["study", "qmtl", "--treebank", str(tmp_path), "--out", str(out)])


def test_two_directories_of_one_name_never_share_stored_results(tmp_path):
    first = write_treebank(tmp_path / "UD_A", "xx_same")
    second = write_treebank(tmp_path / "UD_B", "xx_same")
    group = TrialGroup("qmtl-upos", "xx_same", 0.0, 1.0, 0, (1,), False)
    keys = [
        trial_key(QMTLStudyConfig(treebanks=(path,)), group, "stl-0") for path in (first, second)
    ]
    assert keys[0].config_hash != keys[1].config_hash
    # a built-in treebank's key does not depend on the new field
    builtin = TrialGroup("qmtl-upos", "en_lines", 0.0, 1.0, 0, (1,), False)
    config = QMTLStudyConfig(treebanks=("en_lines",))
    assert "treebank_dir" not in group_config(config, builtin)

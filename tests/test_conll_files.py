"""Tagging tasks from a user's own CoNLL-style files: the spec, its command-line form, the
reader's errors, held-out splits, and short runs of the tagging benchmark and the relation
study on such tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli import main
from mtl_sched.cli.relations import study_tasks
from mtl_sched.data.conll_files import (
    ConllTaskSpec,
    conll_task_spec,
    conll_task_specs,
    load_conll_task,
    parse_conll_task,
    read_tagged_file,
)
from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.tagging_tasks import (
    BUILT_IN_TASKS,
    load_tagging_task,
    register_conll_task,
    tagging_task_names,
)
from mtl_sched.registry import make_scheduler
from mtl_sched.results import ResultsStore, TrialKey
from mtl_sched.studies.relations.study import RelationsConfig, collect_study
from mtl_sched.sweeps import plan_trials, trial_config, trial_key


def write(path: Path, sentences: list[list[str]]) -> Path:
    """Sentences of token lines, a blank line after each."""
    path.write_text("".join("\n".join(lines) + "\n\n" for lines in sentences))
    return path


def toy_sentences(count: int, start: int = 0) -> list[list[str]]:
    """Sentence ``i`` is ``w<i> x y``; the words are tagged ``B-E I-E O`` (an entity then O)."""
    return [[f"w{i} NN B-E", "x NN I-E", "y DT O"] for i in range(start, start + count)]


# ------------------------------------------------------------------------------ the spec
def test_command_line_form_reads_paths_columns_and_metric() -> None:
    spec = parse_conll_task("ner-de=a/train.txt,a/dev.txt,a/test.txt:0:3:span-f1")
    assert spec == ConllTaskSpec(
        "ner-de", "a/train.txt", "a/dev.txt", "a/test.txt", 0, 3, "span-f1"
    )
    one = parse_conll_task("pos=all.txt:1:-1")
    assert (one.train, one.validation, one.test) == ("all.txt", None, None)
    assert (one.word_column, one.tag_column, one.metric) == (1, -1, "accuracy")
    # the fields are read from the right, so a path may hold ':'
    assert parse_conll_task("t=C:/data/x.txt:0:1").train == "C:/data/x.txt"
    assert conll_task_spec(spec.as_option()) == spec
    assert conll_task_spec("ner-de=a/train.txt,a/dev.txt,a/test.txt:0:3:span-f1") == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.txt:0:1", "must read NAME=TRAIN"),
        ("t=train.txt:0", "must read NAME=TRAIN"),
        ("t=train.txt:a:1", "must read NAME=TRAIN"),
        ("t=train.txt,dev.txt:0:1", "one file"),
        ("t=train.txt:2:2", "word_column and tag_column are both 2"),
        ("a,b=train.txt:0:1", "name must be"),
    ],
)
def test_malformed_command_line_forms_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_conll_task(text)


def test_bad_spec_fields_name_the_argument() -> None:
    with pytest.raises(ValueError, match="metric must be one of accuracy, span-f1"):
        ConllTaskSpec("t", "train.txt", metric="f1")
    with pytest.raises(ValueError, match="separator"):
        ConllTaskSpec("t", "train.txt", separator="")
    with pytest.raises(ValueError, match="word_column must be an integer"):
        ConllTaskSpec("t", "train.txt", word_column="0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"keys \['tag'\] are unknown"):
        conll_task_spec({"name": "t", "train": "x", "tag": 1})
    with pytest.raises(ValueError, match="distinct"):
        conll_task_specs(["t=a.txt:0:1", "t=b.txt:0:1"])


def test_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_conll_task("t=data/train.txt:0:1").resolved()
    assert spec.train == str(tmp_path / "data" / "train.txt")


# ------------------------------------------------------------------------------ reading
def test_columns_separator_and_comments_select_words_and_tags(tmp_path) -> None:
    path = tmp_path / "t.conllu"
    path.write_text(
        "# sent_id = 1\n# text = a b\n1\ta b\tx\tNOUN\n2\t#\t#\tSYM\n\n"
        "-DOCSTART-\tx\tx\tO\n\n# sent_id = 2\n1\tc\tc\tVERB\n"
    )
    spec = ConllTaskSpec("t", str(path), word_column=1, tag_column=3, separator="\t")
    # a word with a space survives the tab separator; the '#' inside a sentence is a word
    assert read_tagged_file(spec, path) == [
        {"word": ["a b", "#"], "tag": ["NOUN", "SYM"]},
        {"word": ["c"], "tag": ["VERB"]},
    ]


@pytest.mark.parametrize(
    ("text", "spec", "line", "message"),
    [
        ("a NN O\nb NN\n", {}, 2, "2 fields where line 1 has 3"),
        ("a NN O\n\nb NN O\n", {"tag_column": 3}, 1, "tag_column 3 is beyond the line's 3 fields"),
        ("a NN B-E\nb NN E\n", {"metric": "span-f1"}, 2, "'E' is not O, B-<type> or I-<type>"),
        ("a\tNN\n\nb\t\n", {"separator": "\t"}, 3, "empty word or tag"),
    ],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, text, spec, line, message) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    task = ConllTaskSpec("t", str(path), **{"tag_column": -1, **spec})
    with pytest.raises(DataFormatError, match=message) as info:
        read_tagged_file(task, path)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_empty_or_missing_files_are_errors(tmp_path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n\n")
    with pytest.raises(DataFormatError, match="no sentences"):
        read_tagged_file(ConllTaskSpec("t", str(empty)), empty)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        load_conll_task(ConllTaskSpec("t", str(tmp_path / "missing.txt")))


def test_three_files_give_the_splits_tag_set_and_span_f1(tmp_path) -> None:
    files = [
        write(tmp_path / "train.txt", toy_sentences(4)),
        write(tmp_path / "dev.txt", toy_sentences(2, 4)),
        write(tmp_path / "test.txt", [["a NN I-F", "b NN O"]]),
    ]
    task = load_conll_task(f"ent={','.join(map(str, files))}:0:2:span-f1")
    assert (task.name, task.kind, task.metric) == ("ent", "tagging", "span-f1")
    assert {s: task.size(s) for s in ("train", "validation", "test")} == {
        "train": 4,
        "validation": 2,
        "test": 1,
    }
    # O first, then the training tags sorted, then the test-only tag (IOB1 I-F became B-F)
    assert task.label_names == ("O", "B-E", "I-E", "B-F")
    assert task.metadata["unseen_in_train"] == ["B-F"]
    assert task.split("train")[1] == {"tokens": ["w1", "x", "y"], "tags": [1, 2, 0]}
    assert task.split("test")[0]["tags"] == [3, 0]


def test_one_file_carves_test_then_validation_from_its_end(tmp_path) -> None:
    train = write(tmp_path / "all.txt", toy_sentences(25))
    task = load_conll_task(ConllTaskSpec("t", str(train), tag_column=1))
    # 10 % of 25 sentences, rounded: 2 each; test is the last two, validation the two before
    words = {s: [row[0] for row in task.split(s)["tokens"]] for s in task.splits}
    assert words == {
        "train": [f"w{i}" for i in range(21)],
        "validation": ["w21", "w22"],
        "test": ["w23", "w24"],
    }
    assert task.label_names == ("DT", "NN")
    short = write(tmp_path / "short.txt", toy_sentences(2))
    with pytest.raises(ValueError, match="2 sentences, too few to carve test and validation"):
        load_conll_task(ConllTaskSpec("t", str(short)))


def test_registered_file_tasks_load_once_and_cannot_shadow_built_in_tasks(tmp_path) -> None:
    train = write(tmp_path / "all.txt", toy_sentences(30))
    spec = ConllTaskSpec("user-ent", str(train), metric="span-f1")
    assert register_conll_task(spec) == "user-ent"
    assert "user-ent" in tagging_task_names()
    first = load_tagging_task("user-ent")
    register_conll_task(spec.as_option())  # the same spec again keeps the loaded task
    assert load_tagging_task("user-ent") is first
    with pytest.raises(ValueError, match="'ner' is taken by a built-in task"):
        register_conll_task(ConllTaskSpec("ner", str(train)))
    assert set(BUILT_IN_TASKS) == {
        "upos", "xpos", "chunk", "pos", "ner", "mwe", "semtr", "supsense"
    }  # fmt: skip


def test_study_tasks_default_to_the_five_plus_file_tasks() -> None:
    known = [*BUILT_IN_TASKS, "mine"]
    assert study_tasks(None, ["mine"], known) == ("upos", "xpos", "chunk", "pos", "ner", "mine")
    assert study_tasks(["all"], ["mine"], known) == tuple(known)
    assert study_tasks(["mine", "mwe"], ["mine"], known) == ("mine", "mwe")
    with pytest.raises(ValueError, match=r"--tasks: unknown tasks \['nope'\]"):
        study_tasks(["nope"], [], known)


def test_study_models_carry_only_their_own_file_tasks(tmp_path) -> None:
    spec = ConllTaskSpec("mine", str(tmp_path / "t.txt"))
    config = RelationsConfig(("upos", "mine"), options={"conll_tasks": [spec.as_option()]})
    assert "conll_tasks" not in config.benchmark_options(("upos",))
    assert config.benchmark_options(("upos", "mine"))["conll_tasks"] == [spec.as_option()]


# ------------------------------------------------------------------------------ short runs
def test_tagging_benchmark_trains_on_a_file_task(tmp_path) -> None:
    train = write(tmp_path / "train.txt", toy_sentences(40))
    dev = write(tmp_path / "dev.txt", toy_sentences(10, 40))
    benchmark = get_benchmark(
        "tagging",
        small=True,
        budget=64,
        tasks="ent",
        conll_tasks=[f"ent={train},{dev},{dev}:0:2:span-f1"],
    )
    assert benchmark.task_names == ("ent",)
    # the fingerprint reads the file's content, not its path
    assert benchmark.config["conll_tasks"][0]["train"].startswith("sha256:")
    result = benchmark.make_trainer(seed=0).run(make_scheduler("uniform"))
    assert result.examples_seen == 64
    assert result.test.metric_names == ("span-f1",)
    assert 0.0 <= result.test.scores[0] <= 1.0


def test_relations_command_runs_on_a_file_task(tmp_path: Path, capsys) -> None:
    files = [
        write(tmp_path / "train.txt", toy_sentences(40)),
        write(tmp_path / "dev.txt", toy_sentences(10, 40)),
    ]
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    spec = f"ent={files[0]},{files[1]},{files[1]}:0:2:span-f1"
    pos_spec = f"tag={files[0]}:0:1"
    args = [
        "study", "relations", "--conll-task", spec, "--conll-task", pos_spec,
        "--tasks", "ent,tag", "--small", "--seeds", "0", "--settings", "stl,pairwise",
        "--db", str(db), "--out", str(out), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 trials: 0 already" in text and "| +ENT |" in text
    with ResultsStore(db) as store:
        stored = [r.config["benchmark_options"] for r in store.trials()]
    # each model carries the file tasks of its own set, each file named by its content
    assert sorted(len(o.get("conll_tasks", [])) for o in stored) == [1, 1, 2]
    options = {"small": True, "conll_tasks": [parse_conll_task(spec).as_option()]}
    ent_only = RelationsConfig(("ent", "tag"), seeds=(0,), options=options)
    # the models of 'tag' read a file this study does not name for it: only 'ent' alone is read
    assert set(collect_study(db, ent_only).scores) == {(("ent",), "ent")}
    other = parse_conll_task(spec.replace("train.txt", "dev.txt")).as_option()
    other_file = RelationsConfig(("ent",), seeds=(0,), options={**options, "conll_tasks": [other]})
    assert collect_study(db, other_file).scores == {}
    # the same files in another folder are the same task
    copies = tmp_path / "copies"
    copies.mkdir()
    for file in files:
        (copies / file.name).write_bytes(file.read_bytes())
    copied = parse_conll_task(spec.replace(str(tmp_path) + "/", str(copies) + "/")).as_option()
    assert copied["train"] != options["conll_tasks"][0]["train"]
    moved = RelationsConfig(("ent",), seeds=(0,), options={**options, "conll_tasks": [copied]})
    assert set(collect_study(db, moved).scores) == {(("ent",), "ent")}


def test_trials_key_file_tasks_by_content_not_path(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    here = write(tmp_path / "a" / "train.txt", toy_sentences(30))
    there = write(tmp_path / "b" / "copy.txt", toy_sentences(30))

    def key(path: Path) -> TrialKey:
        (spec,) = plan_trials(
            "tagging", ["uniform"], [0],
            benchmark_options={"small": True, "tasks": "ent", "conll_tasks": f"ent={path}:0:2"},
        )  # fmt: skip
        options = dict(spec.benchmark_options)
        return trial_key(spec, trial_config(spec, get_benchmark("tagging", **options)))

    assert key(here) == key(there)
    write(there, toy_sentences(31))
    assert key(there) != key(here)

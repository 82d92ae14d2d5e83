"""STREUSLE 3.0 (``mwe``, ``supsense``) and SemCor semantic traits (``semtr``): how tags are
derived, the carved validation split, errors naming file and line, and the real files against
the counts of the data directory's SOURCES.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.semcor import load_semcor_semtr
from mtl_sched.data.streusle import (
    last_reviews,
    load_streusle,
    read_sentence_ids,
    read_streusle,
    split_mwe_class,
)
from mtl_sched.data.tagging_tasks import tagging_task_names


def streusle_line(offset: int, word: str, tag: str, sentence_id: str) -> str:
    supersense = tag.partition("-")[2]
    return f"{offset}\t{word}\t{word.lower()}\tNN\t{tag}\t0\t\t{supersense}\t{sentence_id}"


def write_streusle(root: Path, sentences: dict[str, list[tuple[str, str]]]) -> None:
    """``streusle/v3.0/streusle.tags`` of ``sentence ID -> (word, MWE+class)`` pairs."""
    folder = root / "streusle" / "v3.0"
    (folder / "splits").mkdir(parents=True, exist_ok=True)
    blocks = [
        "\n".join(streusle_line(i, w, t, sid) for i, (w, t) in enumerate(tokens, start=1))
        for sid, tokens in sentences.items()
    ]
    (folder / "streusle.tags").write_text("\n\n".join(blocks) + "\n")


def write_ids(root: Path, name: str, ids: list[str]) -> None:
    (root / "streusle" / "v3.0" / "splits" / f"mwe-{name}.sentids").write_text(
        "\n".join(ids) + "\n"
    )


# ------------------------------------------------------------------------------ tags
@pytest.mark.parametrize(
    ("field", "tags"),
    [
        ("O", ("O", "O")),
        ("O-stative", ("O", "stative")),
        ("B-LOCATION", ("B", "LOCATION")),
        ("Ī-LOCATION", ("I", "LOCATION")),
        ("Ĩ", ("I", "O")),
        ("o", ("O", "O")),
        ("b-v.x", ("B", "v.x")),
        ("ī", ("I", "O")),
        ("O-`a", ("O", "`a")),
        ("B-NATURAL OBJECT", ("B", "NATURAL OBJECT")),
    ],
)
def test_mwe_part_becomes_bio_and_the_class_part_the_supersense(field, tags) -> None:
    assert split_mwe_class(field) == tags


def test_toy_corpus_tags_and_review_level_validation_split(tmp_path) -> None:
    # reviews r1 (2 sentences), r2 (1), r3 (2); "had a problem" is a gappy expression B o Ī
    write_streusle(
        tmp_path,
        {
            "r1.1": [("I", "O"), ("had", "B-cognition"), ("a", "o"), ("problem", "Ī")],
            "r1.2": [("New", "B-LOCATION"), ("York", "Ī-LOCATION")],
            "r2.1": [("Go", "O-motion")],
            "r3.1": [("Hi", "O")],
            "r3.2": [("Bye", "O")],
            "t.1": [("Great", "O"), ("food", "O-FOOD")],
        },
    )
    write_ids(tmp_path, "train", ["r1.2", "r1.1", "r2.1", "r3.1", "r3.2"])
    write_ids(tmp_path, "test", ["t.1"])
    mwe, supsense = load_streusle(tmp_path, dev_sentences=2)
    # the last whole reviews of the train IDs holding >= 2 sentences: r3 alone
    words = {s: [r[0] for r in mwe.split(s)["tokens"]] for s in mwe.splits}
    assert words == {"train": ["New", "I", "Go"], "validation": ["Hi", "Bye"], "test": ["Great"]}
    assert mwe.label_names == ("O", "B", "I")
    assert mwe.metric == "span-f1" and supsense.metric == "tag-f1"
    had = mwe.split("train")[1]
    assert [mwe.label_names[t] for t in had["tags"]] == ["O", "B", "O", "I"]
    assert supsense.label_names == ("O", "LOCATION", "cognition", "motion", "FOOD")
    assert [supsense.label_names[t] for t in supsense.split("train")[0]["tags"]] == [
        "LOCATION",
        "LOCATION",
    ]
    # three sentences at the end: r3 (2) is short of 3, so r2 joins it
    _, three = load_streusle(tmp_path, dev_sentences=3)
    assert three.size("validation") == 3 and three.size("train") == 2
    with pytest.raises(ValueError, match="dev_sentences must leave whole reviews"):
        load_streusle(tmp_path, dev_sentences=4)


def test_last_reviews_takes_whole_reviews() -> None:
    ids = ["a.1", "a.2", "b.1", "c.1", "c.2", "c.3"]
    assert last_reviews(ids, 1) == 3
    assert last_reviews(ids, 4) == 4
    # five would take every review and leave none for training
    with pytest.raises(ValueError, match="dev_sentences"):
        last_reviews(ids, 5)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1\ta\ta\tNN\tO\t0\t\t\ts.1\n2\tb\tb\tNN\tO\t0\t\ts.1\n", 2, "expected 9 tab-separated"),
        ("1\ta\ta\tNN\tX-FOOD\t0\t\tFOOD\ts.1\n", 1, "MWE tag 'X' of 'X-FOOD' is not one of"),
        ("1\ta\ta\tNN\tB-\t0\t\t\ts.1\n", 1, "empty class"),
        ("1\ta\ta\tNN\tO\t0\t\t\ts.1\n2\tb\tb\tNN\tO\t0\t\t\ts.2\n", 2, "differs from 's.1'"),
        ("1\ta\ta\tNN\tO\t0\t\t\ts.1\n\n1\tb\tb\tNN\tO\t0\t\t\ts.1\n", 3, "'s.1' is repeated"),
    ],
)
def test_malformed_streusle_lines_name_the_file_and_line(tmp_path, text, line, message) -> None:
    path = tmp_path / "streusle.tags"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message) as info:
        read_streusle(path)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_sentence_id_files_name_the_file_and_line_of_a_bad_id(tmp_path) -> None:
    corpus = {"s.1": {}, "s.2": {}}
    path = tmp_path / "mwe-train.sentids"
    path.write_text("s.1\ns.9\n")
    with pytest.raises(DataFormatError, match=r"'s\.9' is not in the corpus") as info:
        read_sentence_ids(path, corpus)
    assert str(info.value).startswith(f"{path}:2: ")
    path.write_text("s.2\n\ns.2\n")
    with pytest.raises(DataFormatError, match="already on line 1") as info:
        read_sentence_ids(path, corpus)
    assert str(info.value).startswith(f"{path}:3: ")


def test_semtr_file_errors_name_the_file_and_line(tmp_path) -> None:
    folder = tmp_path / "semcor_semantictraits"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        (folder / f"semcor_semantictraits_{split}.conll").write_text("The\tO\nJury\tObject\n")
    bad = folder / "semcor_semantictraits_dev.conll"
    bad.write_text("The\tO\nsaid Mental\n")
    with pytest.raises(DataFormatError, match="1 fields where line 1 has 2") as info:
        load_semcor_semtr(tmp_path)
    assert str(info.value).startswith(f"{bad}:2: ")


# ------------------------------------------------------------------------------ real data
def test_the_registry_offers_the_eight_tasks() -> None:
    assert {"upos", "xpos", "chunk", "pos", "ner", "mwe", "semtr", "supsense"} <= set(
        tagging_task_names()
    )


def _tags(task, split: str, row: int) -> list[str]:
    return [task.label_names[t] for t in task.split(split)[row]["tags"]]


def test_real_streusle_matches_the_documented_counts_and_first_sentence(data_dir) -> None:
    mwe, supsense = load_streusle(data_dir)
    sizes = {s: mwe.size(s) for s in ("train", "validation", "test")}
    tokens = {s: sum(map(len, mwe.split(s)["tokens"])) for s in sizes}
    # SOURCES.md: mwe-train 3312 sentences (48408 tokens), mwe-test 500 (7171)
    assert sizes["train"] + sizes["validation"] == 3312 and sizes["test"] == 500
    assert tokens["train"] + tokens["validation"] == 48408 and tokens["test"] == 7171
    assert sizes == {"train": 2807, "validation": 505, "test": 500}
    assert mwe.label_names == ("O", "B", "I")
    assert len(supsense.label_names) == 112  # 111 classes and O
    # ewtb.r.302465.3, the first ID of mwe-train.sentids, by hand from streusle.tags
    first = supsense.split("train")[0]
    assert first["tokens"][:6] == ["The", "haircut", "was", "inexpensive", "and", "so"]
    assert _tags(supsense, "train", 0) == [
        "O", "ACT", "stative", "O", "O", "O", "stative", "O", "GROUP", "ACT", "O", "BODY",
        "stative", "O", "O", "`", "O",
    ]  # fmt: skip
    assert _tags(mwe, "train", 0) == ["O"] * 17
    # the test split's first sentence, ewtb.r.317846.1: "Great Sanwiches , Great Prices"
    assert _tags(supsense, "test", 0) == ["O", "FOOD", "O", "O", "POSSESSION"]
    # a gappy expression (ewtb.r.059005.5, "had a problem": B o Ī) becomes B O I
    row = next(
        i
        for i, words in enumerate(mwe.split("train")["tokens"])
        if words[:6] == ["I", "have", "never", "had", "a", "problem"]
    )
    assert _tags(mwe, "train", row)[3:6] == ["B", "O", "I"]
    counts = Counter(mwe.label_names[t] for s in sizes for row in mwe.split(s)["tags"] for t in row)
    # the raw MWE tags of streusle.tags folded: B+b, Ī+Ĩ+ī+ĩ, O+o
    assert counts == {"B": 3607 + 29, "I": 4089 + 813 + 34 + 3, "O": 46234 + 770}


def test_real_semtr_matches_the_documented_counts_and_first_sentence(data_dir) -> None:
    task = load_semcor_semtr(data_dir)
    sizes = {s: task.size(s) for s in ("train", "validation", "test")}
    tokens = {s: sum(map(len, task.split(s)["tokens"])) for s in sizes}
    assert sizes == {"train": 13874, "validation": 1567, "test": 4697}
    assert tokens == {"train": 304543, "validation": 43926, "test": 86305}
    assert set(task.label_names) == {
        "O", "Mental", "Object", "UnboundedEvent", "Animate", "Agentive", "BoundedEvent",
        "Property", "Physical", "Dynamic+Possession", "Plant",
    }  # fmt: skip
    assert task.split("train")[0]["tokens"][:6] == [
        "The",
        "Fulton",
        "County",
        "Grand",
        "Jury",
        "said",
    ]
    assert _tags(task, "train", 0)[:10] == [
        "O", "Object", "Object", "Object", "Object", "Mental", "Mental", "O", "Mental", "O",
    ]  # fmt: skip

from pathlib import Path

import pytest

from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.ud_pos import UD_POS_TREEBANKS, load_ud_upos

TRAIN = """\
# sent_id = t1
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
3.1\twent\tgo\tVERB\tVBD\t_\t_\t_\t3:conj\t_

1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_
2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_
"""
DEV = "1\tcats\tcat\tNOUN\tNNS\t_\t0\troot\t_\t_\n"
TEST = "1\tWow\twow\tINTJ\tUH\t_\t0\troot\t_\t_\n2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_\n"


def lines_treebank(root: Path) -> Path:
    folder = root / "ud" / "UD_English-LinES"
    folder.mkdir(parents=True)
    for name, text in zip(UD_POS_TREEBANKS["en_lines"][1], (TRAIN, DEV, TEST), strict=True):
        (folder / name).write_text(text, encoding="utf-8")
    return root


def test_upos_task_reads_syntactic_words_and_their_tags(tmp_path):
    task = load_ud_upos("en_lines", lines_treebank(tmp_path))
    assert task.name == "en_lines" and task.metric == "accuracy" and task.kind == "tagging"
    train = task.split("train")[:]
    assert train["tokens"] == [["do", "n't", "go"], ["Dogs", "bark"]]
    names = task.label_names
    assert [[names[t] for t in tags] for tags in train["tags"]] == [
        ["AUX", "PART", "VERB"],
        ["NOUN", "VERB"],
    ]
    # tags seen only outside train get ids after the training tags
    assert set(names[:4]) == {"AUX", "PART", "VERB", "NOUN"}
    assert set(names[4:]) == {"INTJ", "PUNCT"} and task.num_classes == 6
    assert task.size("validation") == 1 and task.size("test") == 1
    assert load_ud_upos("en_lines", tmp_path, limits={"train": 1}).size("train") == 1


def test_unknown_treebank_and_missing_file_are_reported(tmp_path):
    with pytest.raises(ValueError, match="unknown UD treebank 'hr_set'"):
        load_ud_upos("hr_set", tmp_path)
    root = lines_treebank(tmp_path)
    (root / "ud" / "UD_English-LinES" / "en_lines-ud-test.conllu").unlink()
    with pytest.raises(FileNotFoundError, match=r"en_lines-ud-test\.conllu"):
        load_ud_upos("en_lines", root)
    (root / "ud" / "UD_English-LinES" / "en_lines-ud-test.conllu").write_text(
        "1\tWow\twow\tINTJ\tUH\t_\t0\n", encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match=r"en_lines-ud-test\.conllu:1: expected 10"):
        load_ud_upos("en_lines", root)


# sentences and words of each split, from the data directory's SOURCES.md
REAL_COUNTS = {
    "en_ewt": ((12544, 204577), (2001, 25147), (2077, 25094)),
    "en_lines": ((3457, 64684), (1118, 21637), (1121, 19984)),
    "hu_szeged": ((910, 20166), (441, 11418), (449, 10448)),
    "eu_bdt_v1.4": ((5396, 72974), (1798, 24095), (1799, 24374)),
}


@pytest.mark.parametrize("treebank", sorted(REAL_COUNTS))
def test_real_treebanks_match_the_documented_counts(data_dir, treebank):
    task = load_ud_upos(treebank, data_dir)
    for split, (sentences, words) in zip(
        ("train", "validation", "test"), REAL_COUNTS[treebank], strict=True
    ):
        tokens = task.split(split)[:]["tokens"]
        assert (len(tokens), sum(map(len, tokens))) == (sentences, words)
    assert task.num_classes <= 18  # 17 UPOS tags (UD v1: CONJ for CCONJ)

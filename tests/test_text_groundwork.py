"""Data paths, vocabularies, the BiLSTM encoder and the task metrics."""

import gzip

import datasets
import pytest
import torch

from mtl_sched.data.paths import DataFormatError, read_lines, require_file, resolve_data_dir
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary, pad_sequences
from mtl_sched.metrics import accuracy, corpus_bleu, span_f1, task_score
from mtl_sched.models.encoders import BiLSTMEncoder, masked_max_pool, masked_mean_pool


# ------------------------------------------------------------------------------ paths
def test_data_dir_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_SCHED_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_data_dir(other) == other
    monkeypatch.delenv("MTL_SCHED_DATA")
    with pytest.raises(FileNotFoundError, match="MTL_SCHED_DATA"):
        resolve_data_dir()
    with pytest.raises(FileNotFoundError, match=r"missing.*--data-dir"):
        resolve_data_dir(tmp_path / "missing")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        require_file(tmp_path / "nope.txt")


def test_read_lines_numbers_lines_reads_gzip_and_falls_back_per_line(tmp_path):
    raw = b"first\r\n" + "caf\xe9 ok\n".encode("cp1252") + b"last"
    plain = tmp_path / "a.txt"
    plain.write_bytes(raw)
    packed = tmp_path / "a.txt.gz"
    packed.write_bytes(gzip.compress(raw))
    expected = [(1, "first"), (2, "café ok"), (3, "last")]
    assert list(read_lines(plain, fallback_encoding="cp1252")) == expected
    assert list(read_lines(packed, fallback_encoding="cp1252")) == expected
    with pytest.raises(DataFormatError, match=r"a\.txt:2: not valid UTF-8"):
        list(read_lines(plain))


# ------------------------------------------------------------------------- vocabulary
def test_vocabulary_orders_by_count_then_token_and_maps_unknowns():
    vocab = Vocabulary.build([["b", "a", "c"], ["a", "c", "d"]], specials=("<s>",))
    assert vocab.tokens == ["<pad>", "<unk>", "<s>", "a", "c", "b", "d"]
    assert vocab.encode(["a", "zzz", "<s>"]) == [3, 1, 2]
    assert vocab.decode([3, 4]) == ["a", "c"]
    assert Vocabulary.build([["b", "a", "a"]], min_count=2).tokens == ["<pad>", "<unk>", "a"]
    assert len(Vocabulary.build([["a", "b", "c"]], max_size=2)) == 4
    assert Vocabulary.from_dict(vocab.to_dict()).tokens == vocab.tokens


def test_pad_sequences_pads_right_truncates_and_masks():
    ids, mask = pad_sequences([[5, 6, 7], [8], []], pad_id=0, max_length=2)
    assert ids.tolist() == [[5, 6], [8, 0], [0, 0]]
    assert mask.tolist() == [[True, True], [True, False], [False, False]]


# ---------------------------------------------------------------------------- encoder
@pytest.mark.parametrize("chars", [False, True])
def test_encoder_output_of_a_sentence_does_not_depend_on_padding(chars):
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(20, 8, 6, char_vocab_size=12 if chars else None).eval()
    words = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    mask = words != 0
    char_ids = torch.randint(1, 12, (2, 5, 4)) * mask.unsqueeze(-1) if chars else None
    both = encoder(words, mask, char_ids)
    alone = encoder(words[:1, :3], mask[:1, :3], char_ids[:1, :3] if chars else None)
    assert both.shape == (2, 5, encoder.output_size)
    torch.testing.assert_close(both[0, :3], alone[0])
    assert torch.all(both[0, 3:] == 0)


def test_pools_ignore_padding():
    states = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_max_pool(states, mask).tolist() == [[3.0], [-2.0]]
    assert masked_mean_pool(states, mask).tolist() == [[2.0], [-2.0]]


# ---------------------------------------------------------------------------- metrics
def test_span_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    # one of two gold spans found, one spurious span: precision 1/2, recall 1/2
    pred = [["B-PER", "I-PER", "B-ORG", "O"]]
    assert span_f1(pred, gold) == pytest.approx(0.5)
    assert span_f1(gold, gold) == 1.0


def test_bleu_is_case_sensitive_and_perfect_on_identity():
    refs = ["Ein Hund läuft im Park .", "Zwei Männer spielen Fußball ."]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_bleu([r.lower() for r in refs], refs) < 50.0


def test_task_score_maps_tag_ids_and_scales_bleu():
    tags = datasets.Dataset.from_dict({"tags": [[1, 2, 0]]})
    tagging = Task(
        "ner",
        {"train": tags, "validation": tags, "test": tags},
        num_classes=3,
        kind="tagging",
        label_names=("O", "B-PER", "I-PER"),
        metric="span-f1",
        reference_column="tags",
    )
    assert task_score(tagging, [[1, 2, 0]], [[1, 2, 0]]) == 1.0
    assert task_score(tagging, [[1, 0, 0]], [[1, 2, 0]]) == 0.0
    assert accuracy([1, 2, 3], [1, 2, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="reference_column"):
        Task("x", {"train": tags, "validation": tags, "test": tags}, 2, metric="bleu")
    with pytest.raises(ValueError, match="metric must be one of"):
        Task("x", {"train": tags, "validation": tags, "test": tags}, 2, metric="f1")

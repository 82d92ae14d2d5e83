"""The ``tagging`` benchmark: CoNLL readers, the BiLSTM-CRF tagger, runs and the environment."""

from pathlib import Path

import numpy as np
import pytest
import torch
from observation_checks import observation_shape, task_histograms

from conftest import default_reward
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.data.conll import (
    CONLL2000_COLUMNS,
    CONLL2003_COLUMNS,
    load_conll2000,
    load_conll2003,
    read_conll,
    tagging_task,
    to_iob2,
)
from mtl_sched.data.paths import DataFormatError
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.models.qmtl import QMTLHead
from mtl_sched.models.sequence_tagger import SequenceTagger, normalize_word
from mtl_sched.references import single_task_references
from mtl_sched.registry import make_scheduler
from mtl_sched.training import materialize, take_rows

# A toy grammar: each phrase is (word, POS, chunk, NER) tokens in IOB2.
PHRASES = [
    [("the", "DT", "B-NP", "O"), ("cat", "NN", "I-NP", "O")],
    [("a", "DT", "B-NP", "O"), ("dog", "NN", "I-NP", "O")],
    [("sees", "VBZ", "B-VP", "O")],
    [("runs", "VBZ", "B-VP", "O")],
    [("in", "IN", "B-PP", "O")],
    [("Paris", "NNP", "B-NP", "B-LOC")],
    [("New", "NNP", "B-NP", "B-LOC"), ("York", "NNP", "I-NP", "I-LOC")],
    [("John", "NNP", "B-NP", "B-PER"), ("Smith", "NNP", "I-NP", "I-PER")],
    [("1996", "CD", "B-NP", "O")],
]


def toy_sentences(n: int, seed: int) -> list[list[tuple[str, ...]]]:
    rng = np.random.default_rng(seed)
    return [
        [token for p in rng.integers(len(PHRASES), size=rng.integers(2, 6)) for token in PHRASES[p]]
        for _ in range(n)
    ]


def write_conll(path: Path, sentences, columns: int, docstart_every: int | None = None) -> None:
    lines = []
    for i, sentence in enumerate(sentences):
        if docstart_every and i % docstart_every == 0:
            lines += [" ".join(["-DOCSTART-", "-X-", "-X-", "O"][:columns]), ""]
        lines += [" ".join(token[:columns]) for token in sentence] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def toy_data_dir(tmp_path_factory) -> Path:
    """A data directory laid out like the real one, holding the toy grammar's sentences."""
    root = tmp_path_factory.mktemp("toy-data")
    write_conll(root / "conll2000" / "train.txt", toy_sentences(1150, 0), 3)
    write_conll(root / "conll2000" / "test.txt", toy_sentences(60, 1), 3)
    for seed, name in enumerate(("train", "valid", "test"), start=2):
        write_conll(root / "conll2003" / f"{name}.txt", toy_sentences(150, seed), 4, 20)
    return root


@pytest.fixture(scope="module")
def toy_benchmark(toy_data_dir):
    return get_benchmark("tagging", data_dir=toy_data_dir, small=True, budget=192)


# ------------------------------------------------------------------------------ readers
def test_read_conll_splits_on_blank_lines_and_skips_docstart(tmp_path):
    path = tmp_path / "eng.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
        "-DOCSTART- -X- -X- O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"
    )
    sentences = read_conll(path, CONLL2003_COLUMNS, iob_columns=("ner",))
    assert sentences == [
        {"word": ["EU", "rejects"], "pos": ["NNP", "VBZ"], "chunk": ["B-NP", "B-VP"],
         "ner": ["B-ORG", "O"]},
        {"word": ["Peter", "Blackburn"], "pos": ["NNP", "NNP"], "chunk": ["B-NP", "I-NP"],
         "ner": ["B-PER", "I-PER"]},
    ]  # fmt: skip


def test_to_iob2_opens_chunks_with_b_and_keeps_iob2_unchanged():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-LOC"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "B-LOC"]
    assert to_iob2(iob1) == iob2
    assert to_iob2(iob2) == iob2
    with pytest.raises(ValueError, match="tag 1"):
        to_iob2(["O", "X-PER"])


def test_reader_converts_iob1_files_only_in_tag_columns(tmp_path):
    path = tmp_path / "iob1.txt"
    path.write_text("U.N. NNP I-NP I-ORG\nofficial NN I-NP O\nEkeus NNP I-NP I-PER\n")
    (sentence,) = read_conll(path, CONLL2003_COLUMNS, iob_columns=("ner",))
    assert sentence["ner"] == ["B-ORG", "O", "B-PER"]
    assert sentence["chunk"] == ["I-NP", "I-NP", "I-NP"]  # not declared an IOB column


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a DT B-NP\nb NN\n", 2, "expected 3 space-separated fields"),
        ("a DT B-NP\n\nb NN I-NP\nc NN NP\n", 4, "'NP' is not O, B-<type> or I-<type>"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message) as info:
        read_conll(path, CONLL2000_COLUMNS, iob_columns=("chunk",))
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_empty_file_and_missing_file_are_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n-DOCSTART- -X- O\n\n")
    with pytest.raises(DataFormatError, match="no sentences"):
        read_conll(tmp_path / "empty.txt", ("word", "pos", "chunk"))
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        read_conll(tmp_path / "missing.txt", CONLL2000_COLUMNS)
    with pytest.raises(ValueError, match="'ner'"):
        read_conll(tmp_path / "empty.txt", CONLL2000_COLUMNS, iob_columns=("ner",))


def test_tag_ids_follow_training_data_and_unseen_tags_come_last():
    def sentence(tags):
        return {"word": ["w"] * len(tags), "ner": list(tags)}

    splits = {
        "train": [sentence(["B-PER", "O", "B-LOC"]), sentence(["I-LOC", "O"])],
        "validation": [sentence(["B-MISC"])],
        "test": [sentence(["B-ORG", "B-PER"])],
    }
    task = tagging_task("ner", splits, "ner", "span-f1", limits={"train": 1})
    assert task.label_names == ("O", "B-LOC", "B-PER", "I-LOC", "B-MISC", "B-ORG")
    assert task.metadata["unseen_in_train"] == ["B-MISC", "B-ORG"]
    assert task.split("test")[0]["tags"] == [5, 2]
    assert task.size("train") == 1  # limited, yet I-LOC (second sentence) kept its id
    assert task.reference_column == "tags" and task.kind == "tagging"


def test_conll2000_validation_is_the_end_of_train(toy_data_dir):
    pos, chunk = load_conll2000(toy_data_dir, dev_sentences=150)
    train_file = read_conll(toy_data_dir / "conll2000" / "train.txt", CONLL2000_COLUMNS)
    assert pos.size("train") == chunk.size("train") == 1000
    assert pos.split("validation")[:]["tokens"] == [s["word"] for s in train_file[-150:]]
    assert pos.split("train")[999]["tokens"] == train_file[999]["word"]
    assert (pos.metric, chunk.metric) == ("accuracy", "span-f1")
    assert pos.reference_column is None and chunk.reference_column == "tags"
    with pytest.raises(ValueError, match="dev_sentences"):
        load_conll2000(toy_data_dir, dev_sentences=1150)


def test_conll2003_task_keeps_its_own_splits_and_skips_docstart(toy_data_dir):
    ner = load_conll2003(toy_data_dir, limits={"test": 7})
    assert {s: ner.size(s) for s in ner.splits} == {"train": 150, "validation": 150, "test": 7}
    assert ner.label_names == ("O", "B-LOC", "B-PER", "I-LOC", "I-PER")
    assert all("-DOCSTART-" not in row for row in ner.split("train")[:]["tokens"])


# ---------------------------------------------------------------------------- real data
@pytest.mark.parametrize(
    ("name", "columns", "sentences", "tokens"),
    [
        ("conll2000/train.txt", CONLL2000_COLUMNS, 8936, 211727),
        ("conll2000/test.txt", CONLL2000_COLUMNS, 2012, 47377),
        ("conll2003/train.txt", CONLL2003_COLUMNS, 14041, 203621),
        ("conll2003/valid.txt", CONLL2003_COLUMNS, 3250, 51362),
        ("conll2003/test.txt", CONLL2003_COLUMNS, 3453, 46435),
    ],
)
def test_real_files_match_the_documented_counts(data_dir, name, columns, sentences, tokens):
    read = read_conll(data_dir / name, columns, iob_columns=columns[2:])
    assert len(read) == sentences
    assert sum(len(s["word"]) for s in read) == tokens


def test_real_small_benchmark_tasks(data_dir):
    tasks = get_benchmark("tagging", data_dir=data_dir, small=True).tasks
    assert [t.name for t in tasks] == ["pos", "chunk", "ner"]
    assert [t.num_classes for t in tasks] == [44, 23, 9]
    assert tasks[1].metadata["unseen_in_train"] == ["I-LST"]
    assert tasks[2].label_names[0] == "O"
    for task in tasks:
        assert {s: task.size(s) for s in task.splits} == {
            "train": 300, "validation": 100, "test": 100
        }  # fmt: skip
    # the first CoNLL-2003 sentence follows the leading -DOCSTART- line
    assert tasks[2].split("train")[0]["tokens"][:2] == ["EU", "rejects"]


# -------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def tagger(toy_benchmark):
    model = toy_benchmark.make_model(0)
    model.eval()
    return model


def collate(model, task, split="validation", rows=slice(0, 8)):
    columns = materialize(task.split(split))
    return model.collate(task.name, take_rows(columns, rows))


def test_word_normalization_and_vocabulary_from_training_data(toy_benchmark, tagger):
    assert normalize_word("Paris-1996") == "paris-0000"
    vocab = tagger.word_vocabulary
    assert "paris" in vocab and "Paris" not in vocab and "0000" in vocab
    assert set("ParisNwYokJhnSmt") <= set(tagger.char_vocabulary.tokens)
    batch = collate(tagger, toy_benchmark.tasks[0])
    batch_size, length = batch["words"].shape
    assert batch["chars"].shape[:2] == (batch_size, length)
    # a word's characters, left-aligned and zero-padded; padding words have none
    first = toy_benchmark.tasks[0].split("validation")[0]["tokens"][0]
    assert tagger.char_vocabulary.decode(batch["chars"][0, 0, : len(first)].tolist()) == list(first)
    assert int(batch["chars"][0, 0, len(first) :].abs().sum()) == 0
    assert int(batch["chars"][~batch["mask"]].abs().sum()) == 0


def test_task_output_shapes_losses_and_marginals(toy_benchmark, tagger):
    for task in toy_benchmark.tasks:
        batch = collate(tagger, task)
        tokens = int(batch["mask"].sum())
        out = tagger.task_output(task.name, batch)
        assert out.logits.shape == (tokens, task.num_classes)
        assert out.targets.shape == out.losses().shape == (tokens,)
        torch.testing.assert_close(out.probabilities().sum(1), torch.ones(tokens))
        nll = tagger.crfs[task.name](
            tagger.emission_scores(task.name, batch), batch["tags"], batch["mask"]
        )
        torch.testing.assert_close(out.loss(), nll.sum() / tokens)


def test_decode_gives_valid_ids_of_each_sentence_length(toy_benchmark, tagger):
    for task in toy_benchmark.tasks:
        batch = collate(tagger, task)
        paths = tagger.decode(task.name, batch)
        assert [len(p) for p in paths] == batch["mask"].sum(1).tolist()
        assert all(0 <= t < task.num_classes for p in paths for t in p)


def test_padding_does_not_change_a_sentences_outputs(toy_benchmark, tagger):
    task = toy_benchmark.tasks[2]
    lengths = [len(t) for t in task.split("validation")[:20]["tokens"]]
    short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
    assert lengths[short] < lengths[long]
    alone = collate(tagger, task, rows=[short])
    padded = collate(tagger, task, rows=[short, long])
    out_alone = tagger.task_output(task.name, alone)
    out_padded = tagger.task_output(task.name, padded)
    n = lengths[short]
    torch.testing.assert_close(out_padded.logits[:n], out_alone.logits)
    torch.testing.assert_close(out_padded.losses()[:n], out_alone.losses())
    assert tagger.decode(task.name, padded)[0] == tagger.decode(task.name, alone)[0]


def test_one_encoder_pass_over_several_tasks_equals_a_pass_per_task(toy_benchmark, tagger):
    # different sentence lengths and word widths per batch, and a task asked twice
    pos, chunk, ner = toy_benchmark.tasks
    long_words = {"tokens": [["Blackburnshire", "rejects"]], "tags": [[1, 0]]}
    requests = [
        ("pos", collate(tagger, pos, rows=slice(0, 3))),
        ("ner", collate(tagger, ner, rows=slice(5, 12))),
        ("chunk", collate(tagger, chunk, rows=[9])),
        ("ner", tagger.collate("ner", long_words)),
        ("pos", collate(tagger, pos, rows=slice(3, 8))),
    ]
    assert len({batch["words"].shape[1] for _, batch in requests}) > 1
    assert len({batch["chars"].shape[2] for _, batch in requests}) > 1
    together = tagger.task_outputs(requests)
    apart = [tagger.task_output(task, batch) for task, batch in requests]
    for joint, alone in zip(together, apart, strict=True):
        torch.testing.assert_close(joint.logits, alone.logits)
        torch.testing.assert_close(joint.losses(), alone.losses())
        assert torch.equal(joint.targets, alone.targets)


def test_decode_after_task_output_equals_a_fresh_decode(toy_benchmark, tagger):
    # evaluation runs task_output then decode on each batch; decode may reuse that forward pass
    chunk = toy_benchmark.tasks[1]
    first, second = collate(tagger, chunk), collate(tagger, chunk, rows=slice(8, 16))
    fresh = {"first": tagger.decode("chunk", first), "second": tagger.decode("chunk", second)}
    with torch.no_grad():
        tagger.task_output("chunk", first)
        assert tagger.decode("chunk", second) == fresh["second"]
        tagger.task_output("chunk", first)
        assert tagger.decode("chunk", first) == fresh["first"]
        tagger.task_output("ner", first)
        assert tagger.decode("chunk", first) == fresh["first"]


def test_shared_and_task_parameters_partition_the_model(tagger):
    shared = {id(p) for p in tagger.shared_parameters()}
    per_task = [{id(p) for p in tagger.task_parameters(name)} for name in tagger.task_names]
    assert all(not (shared & t) for t in per_task)
    assert set.union(shared, *per_task) == {id(p) for p in tagger.parameters()}


def test_for_tasks_without_characters(toy_benchmark):
    model = SequenceTagger.for_tasks(toy_benchmark.tasks, use_chars=False, hidden_size=4)
    batch = collate(model, toy_benchmark.tasks[0])
    assert "chars" not in batch
    assert model.task_output("pos", batch).logits.shape[1] == toy_benchmark.tasks[0].num_classes


# ------------------------------------------------------------------ runs and environment
def test_small_benchmark_runs_under_uniform_with_span_f1_scores(toy_benchmark, toy_data_dir):
    trainer = toy_benchmark.make_trainer(seed=0)
    result = trainer.run(make_scheduler("uniform"))
    assert result.examples_seen == 192
    assert result.test.metric_names == ("accuracy", "span-f1", "span-f1")
    assert np.all((result.test.scores >= 0) & (result.test.scores <= 1))
    assert np.all(np.isfinite(result.test.losses))
    assert str(toy_data_dir) not in str(toy_benchmark.config)  # it is hashed into cache keys
    again = toy_benchmark.make_trainer(seed=0).run(make_scheduler("uniform"))
    np.testing.assert_array_equal(again.test.scores, result.test.scores)


@pytest.mark.parametrize("name", ["gradnorm", "focal", "dtp", "self-paced"])
def test_schedulers_that_read_model_internals_run(toy_benchmark, name):
    # shared weights (GradNorm), unit losses (focal, self-paced), unit predictions (DTP)
    result = toy_benchmark.make_trainer(seed=1, budget=96).run(make_scheduler(name))
    assert result.examples_seen == 96
    assert np.all(np.isfinite(result.test.losses))


@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_environment_steps_on_the_small_benchmark(toy_benchmark, observation):
    env = MTLSchedulingEnv(toy_benchmark, episode_steps=3, observation=observation)
    obs, info = env.reset(seed=0)
    assert obs.shape == observation_shape(observation, 3, 20)
    assert env.observation_space.contains(obs)
    for action in (0, 1, 2):
        previous_info = info
        obs, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_allclose(task_histograms(env, obs).sum(1), 1.0, rtol=1e-5)
        assert reward == pytest.approx(default_reward(previous_info, info))
        assert np.all((info["validation_accuracies"] >= 0) & (info["validation_accuracies"] <= 1))
    assert truncated and not terminated


def test_q_mtl_heads_replace_the_crfs_under_uniform_and_in_the_environment(toy_data_dir):
    bench = get_benchmark("tagging", data_dir=toy_data_dir, small=True, budget=192, qmtl_k=3)
    assert "3 Q-MTL heads" in bench.description
    trainer = bench.make_trainer(seed=0)
    model = trainer.model
    assert not model.crfs and all(isinstance(h, QMTLHead) for h in model.emissions.values())
    result = trainer.run(make_scheduler("uniform"))
    assert result.examples_seen == 192 and np.all(np.isfinite(result.test.losses))
    task = bench.tasks[1]
    batch = collate(model, task)
    model.eval()
    with torch.no_grad():
        output = model.task_output(task.name, batch)
        states = model.encoder(batch["words"], batch["mask"], batch.get("chars"))
        head = model.emissions[task.name]
        tokens = states[batch["mask"]]
        averaged = head.head_log_probabilities(tokens).exp().mean(dim=0)
        decoded = model.decode(task.name, batch)
    torch.testing.assert_close(output.probabilities(), averaged)
    torch.testing.assert_close(output.losses(), head.unit_losses(tokens, output.targets))
    lengths = batch["mask"].sum(dim=1).tolist()
    assert [len(tags) for tags in decoded] == lengths
    assert [tag for tags in decoded for tag in tags] == averaged.argmax(dim=-1).tolist()
    env = MTLSchedulingEnv(bench, episode_steps=2)
    env.reset(seed=0)
    obs, reward, *_ = env.step(2)
    np.testing.assert_allclose(task_histograms(env, obs).sum(1), 1.0, rtol=1e-5)
    assert np.isfinite(reward)


def test_references_keep_span_f1_for_schedulers_and_token_accuracy_for_the_penalty(
    toy_benchmark, monkeypatch, tmp_path
):
    monkeypatch.setenv("MTL_SCHED_CACHE", str(tmp_path))
    scores = single_task_references(toy_benchmark, measure="score")
    accuracies = single_task_references(toy_benchmark, measure="unit-accuracy")  # from the cache
    assert scores[0] == accuracies[0]  # POS is scored by token accuracy
    assert not np.allclose(scores[1:], accuracies[1:])  # chunk and NER by span F1
    env = MTLSchedulingEnv(toy_benchmark, reference_accuracies="auto")
    np.testing.assert_array_equal(env.reference_accuracies, accuracies)

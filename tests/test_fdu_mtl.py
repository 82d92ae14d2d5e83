"""The ``fdu-mtl`` benchmark: the FDU-MTL reader, the BiLSTM text classifier, runs and the env."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from observation_checks import observation_shape, task_histograms

from conftest import default_reward
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.data.fdu_mtl import FDU_MTL_DOMAINS, load_fdu_mtl, read_fdu_file
from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.models import text_classifier
from mtl_sched.models.encoders import BiLSTMEncoder
from mtl_sched.models.qmtl import QMTLHead
from mtl_sched.models.text_classifier import (
    INFERENCE_LENGTH_CHUNK,
    LENGTH_CHUNK,
    BiLSTMTextClassifier,
    UnpackedBiLSTMEncoder,
    build_vocabulary,
    inference_chunk_rows,
    load_word_vectors,
    reverse_padded,
)
from mtl_sched.registry import make_scheduler

# (train + dev lines, test lines) per domain, from the data's SOURCES.md
REAL_COUNTS = {
    "apparel": 1600,
    "baby": 1500,
    "books": 1600,
    "camera_photo": 1597,
    "dvd": 1600,
    "electronics": 1598,
    "health_personal_care": 1600,
    "imdb": 1600,
    "kitchen_housewares": 1600,
    "magazines": 1570,
    "MR": 1600,
    "music": 1600,
    "software": 1515,
    "sports_outdoors": 1600,
    "toys_games": 1600,
    "video": 1600,
}


def write_domain(root: Path, domain: str, train: bytes, test: bytes = b"1\tfine\n") -> None:
    folder = root / "fdu_mtl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{domain}.task.train").write_bytes(train)
    (folder / f"{domain}.task.test").write_bytes(test)


def toy_reviews(n: int, rng: np.random.Generator) -> bytes:
    """Reviews whose label is told by one sentiment word among neutral filler."""
    filler = ["the", "it", "was", "and", "a", "product", "this", "i", "of", "to"]
    lines = []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(filler, size=int(rng.integers(3, 12))))
        words.insert(int(rng.integers(len(words) + 1)), ("bad", "great")[label])
        lines.append(f"{label}\t{' '.join(words)}\n")
    return "".join(lines).encode()


@pytest.fixture(scope="module")
def toy_data_dir(tmp_path_factory) -> Path:
    """All 16 domains laid out like the real data, with 320 toy train+dev and 60 test lines."""
    root = tmp_path_factory.mktemp("toy-fdu")
    rng = np.random.default_rng(0)
    for domain in FDU_MTL_DOMAINS:
        write_domain(root, domain, toy_reviews(320, rng), toy_reviews(60, rng))
    return root


# ---------------------------------------------------------------------------------- reader
def test_splits_take_the_dev_set_from_the_end_of_the_train_file(tmp_path):
    lines = [f"{i % 2}\tword{i} and more\n" for i in range(7)]
    write_domain(tmp_path, "books", "".join(lines).encode(), b"0\tbad  book \n1\tgood\n")
    (task,) = load_fdu_mtl(tmp_path, domains=["books"], dev_size=3)
    assert task.name == "books" and task.num_classes == 2 and task.metric == "accuracy"
    assert task.label_names == ("negative", "positive")
    assert task.split("train")["tokens"] == [[f"word{i}", "and", "more"] for i in range(4)]
    assert task.split("train")["label"] == [0, 1, 0, 1]
    assert task.split("validation")["tokens"] == [[f"word{i}", "and", "more"] for i in (4, 5, 6)]
    assert task.split("validation")["label"] == [0, 1, 0]
    assert task.split("test")["tokens"] == [["bad", "book"], ["good"]]
    assert task.split("test")["label"] == [0, 1]


def test_limits_keep_a_prefix_of_each_split(tmp_path):
    lines = "".join(f"{i % 2}\tw{i}\n" for i in range(10)).encode()
    write_domain(tmp_path, "MR", lines, lines)
    (task,) = load_fdu_mtl(
        tmp_path, domains=["MR"], dev_size=4, max_train=2, max_validation=3, max_test=1
    )
    assert task.split("train")["tokens"] == [["w0"], ["w1"]]
    assert task.split("validation")["tokens"] == [["w6"], ["w7"], ["w8"]]
    assert task.split("test")["tokens"] == [["w0"]]


def test_cp1252_lines_are_decoded_and_utf8_lines_kept(tmp_path):
    path = tmp_path / "MR.task.train"
    # 0xe9 is e-acute and 0x96 an en dash in cp1252 (invalid UTF-8); 0x85 (an ellipsis in
    # cp1252) must not split the line as latin-1's NEL would
    path.write_bytes(b"1\tcaf\xe9 \x96 good\x85 fun\n0\tna\xc3\xafve\n")
    assert read_fdu_file(path) == [
        (["caf\u00e9", "\u2013", "good\u2026", "fun"], 1),
        (["na\u00efve"], 0),
    ]


def test_empty_text_is_an_example_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "x.task.train"
    path.write_bytes(b"0\t\n\n1\tok\n")
    assert read_fdu_file(path) == [([], 0), (["ok"], 1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"1\tgood\n2\tbad\n", "label must be 0 or 1"), (b"1\tgood\nno tab here\n", "no tab")],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "books.task.train"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=rf"books\.task\.train:2: .*{message}"):
        read_fdu_file(path)


def test_missing_files_and_short_train_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"books\.task\.train"):
        load_fdu_mtl(tmp_path, domains=["books"])
    write_domain(tmp_path, "books", b"1\ta\n0\tb\n")
    with pytest.raises(DataFormatError, match=r"books\.task\.train: 2 examples; need more than"):
        load_fdu_mtl(tmp_path, domains=["books"])
    (tmp_path / "fdu_mtl" / "books.task.test").unlink()
    with pytest.raises(FileNotFoundError, match=r"books\.task\.test"):
        load_fdu_mtl(tmp_path, domains=["books"], dev_size=1)
    with pytest.raises(ValueError, match="unknown FDU-MTL domain"):
        load_fdu_mtl(tmp_path, domains=["cars"])


def test_real_data_has_the_documented_splits(data_dir):
    tasks = load_fdu_mtl(data_dir)
    assert [t.name for t in tasks] == list(FDU_MTL_DOMAINS)
    assert sorted(FDU_MTL_DOMAINS) == sorted(REAL_COUNTS)
    for task in tasks:
        assert task.size("train") == REAL_COUNTS[task.name] - 200, task.name
        assert task.size("validation") == 200 and task.size("test") == 400
        for split in ("train", "validation", "test"):
            labels = set(task.split(split)["label"])
            assert labels == {0, 1}, (task.name, split)
    mr = next(t for t in tasks if t.name == "MR")
    # the cp1252 byte 0xe9 of MR's line 28 is e-acute
    assert any("\u00e9" in token for token in mr.split("train")["tokens"][27])


# ----------------------------------------------------------------------------------- model
def test_reverse_padded_reverses_each_row_within_its_length():
    values = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [0, 0, 0, 0]]).unsqueeze(-1)
    out = reverse_padded(values, torch.tensor([3, 2, 0]))
    assert out.squeeze(-1).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [0, 0, 0, 0]]


def test_unpacked_encoder_equals_the_packed_encoder():
    torch.manual_seed(0)
    encoder = UnpackedBiLSTMEncoder(30, embedding_dim=6, hidden_size=5).eval()
    words = torch.randint(2, 30, (4, 7))
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [3], [0], [5]])
    words[~mask] = 0
    fast = encoder(words, mask)
    packed = BiLSTMEncoder.forward(encoder, words, mask)
    assert fast.shape == (4, 7, 10)
    torch.testing.assert_close(fast, packed, rtol=0, atol=1e-6)
    assert [name for name, _ in encoder.named_parameters()] == [
        name for name, _ in BiLSTMEncoder(30, 6, 5).named_parameters()
    ]


def test_unpacked_encoder_follows_its_parameters():
    """The one-direction LSTMs compute with the encoder's current weights: after an optimizer
    step, in a deep copy, and after parameters are replaced by ``load_state_dict(assign=True)``."""
    torch.manual_seed(0)
    encoder = UnpackedBiLSTMEncoder(30, embedding_dim=6, hidden_size=5).eval()
    words = torch.randint(2, 30, (3, 6))
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [4], [2]])
    words[~mask] = 0

    def assert_packed_states(model):
        expected = BiLSTMEncoder.forward(model, words, mask)
        torch.testing.assert_close(model(words, mask), expected, rtol=0, atol=1e-6)

    assert_packed_states(encoder)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.5)
    encoder(words, mask).sum().backward()
    assert encoder.lstm.weight_hh_l0_reverse.grad.abs().sum() > 0
    optimizer.step()
    assert_packed_states(encoder)
    assert_packed_states(copy.deepcopy(encoder))
    replaced = {name: torch.randn_like(value) for name, value in encoder.state_dict().items()}
    encoder.load_state_dict(replaced, assign=True)
    assert_packed_states(encoder)
    assert list(encoder.state_dict()) == list(replaced)


def make_classifier(**kwargs) -> BiLSTMTextClassifier:
    vocab = Vocabulary(["good", "bad", "movie", "plot"])
    options = {"embedding_dim": 8, "hidden_size": 6, "max_length": 5}
    options.update(kwargs)
    return BiLSTMTextClassifier(vocab, {"a": 2, "b": 3}, **options)


def test_collate_encodes_truncates_and_pads():
    model = make_classifier(max_length=3)
    rows = {"tokens": [["good", "movie", "zzz", "plot"], []], "label": [1, 0]}
    batch = model.collate("a", rows)
    # good=2, movie=4, unknown=1; the 4th token is cut; the empty review is one padding slot
    assert batch["words"].tolist() == [[2, 4, 1], [0, 0, 0]]
    assert batch["mask"].tolist() == [[True, True, True], [False, False, False]]
    assert batch["label"].tolist() == [1, 0]
    out = model.task_output("b", batch)
    assert out.logits.shape == (2, 3) and out.targets.tolist() == [1, 0]


def test_padding_does_not_change_a_reviews_output():
    torch.manual_seed(0)
    model = make_classifier().eval()
    short = {"tokens": [["bad", "plot"]], "label": [0]}
    mixed = {"tokens": [["bad", "plot"], ["good", "movie", "good", "plot"]], "label": [0, 1]}
    alone = model.task_output("a", model.collate("a", short)).logits
    padded = model.task_output("a", model.collate("a", mixed)).logits[:1]
    torch.testing.assert_close(alone, padded, rtol=0, atol=1e-6)


def test_same_seed_same_model_and_same_training_step():
    def one_step(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        model = make_classifier(dropout=0.5)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        batch = model.collate("a", {"tokens": [["good", "movie"], ["bad"]], "label": [1, 0]})
        model.task_output("a", batch).loss().backward()
        optimizer.step()
        return model.state_dict()

    first, second, other = one_step(3), one_step(3), one_step(4)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_parameters_split_into_shared_and_per_task():
    model = make_classifier()
    shared = {id(p) for p in model.shared_parameters()}
    head_a = {id(p) for p in model.task_parameters("a")}
    head_b = {id(p) for p in model.task_parameters("b")}
    assert shared.isdisjoint(head_a | head_b) and head_a.isdisjoint(head_b)
    assert shared | head_a | head_b == {id(p) for p in model.parameters()}


def test_vocabulary_comes_from_training_words_only(tmp_path):
    write_domain(tmp_path, "books", b"1\tgood good\n0\tbad\n1\tdevword\n", b"0\ttestword\n")
    tasks = load_fdu_mtl(tmp_path, domains=["books"], dev_size=1)
    assert build_vocabulary(tasks).tokens == ["<pad>", "<unk>", "good", "bad"]
    assert build_vocabulary(tasks, min_count=2).tokens == ["<pad>", "<unk>", "good"]


def test_word_vectors_fill_known_words(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("good 1 2\nnew york 3 4\nzzz 5 6\n")
    vocab = Vocabulary(["good", "new york", "bad"])
    vectors, lines = load_word_vectors(path, vocab, dim=2)
    assert lines == 3 and sorted(vectors) == [2, 3]
    assert vectors[3].tolist() == [3.0, 4.0]
    model = BiLSTMTextClassifier(vocab, {"a": 2}, embedding_dim=2, word_vectors=vectors)
    assert model.encoder.embedding.weight[2].tolist() == [1.0, 2.0]
    path.write_text("good 1 2\nbad 1\n")
    with pytest.raises(DataFormatError, match=r"vectors\.txt:2: expected a word and 2 numbers"):
        load_word_vectors(path, vocab, dim=2)


# ------------------------------------------------------------------------------ benchmark
@pytest.fixture(scope="module")
def small_benchmark(toy_data_dir):
    return get_benchmark("fdu-mtl", data_dir=toy_data_dir, small=True)


def test_small_benchmark_uniform_run_learns_the_toy_sentiment(small_benchmark):
    assert small_benchmark.task_names == FDU_MTL_DOMAINS
    assert [t.size("train") for t in small_benchmark.tasks] == [100] * 16
    assert "/" not in str(small_benchmark.config)  # no path in the cache key
    result = small_benchmark.make_trainer(0).run(make_scheduler("uniform"))
    assert result.examples_seen == small_benchmark.trainer_config.budget
    assert result.test.scores.shape == (16,)
    # the toy labels are told by one word: chance is 0.5
    assert result.best_validation.average_score > 0.7


def test_small_benchmark_runs_inside_the_environment(small_benchmark):
    def rollout():
        env = MTLSchedulingEnv(small_benchmark)
        obs, _ = env.reset(seed=0)
        steps = [env.step(k) for k in (3, 15)]
        return env, obs, steps

    env, obs, steps = rollout()
    assert obs.shape == observation_shape("task-features", 16, 20)
    assert np.allclose(task_histograms(env, obs).sum(axis=1), 1.0)
    previous_info = steps[0][-1]
    _, reward, terminated, truncated, info = steps[-1]
    assert info["task_name"] == "MR" and not terminated and not truncated
    assert reward == pytest.approx(default_reward(previous_info, info))
    _, again_obs, again = rollout()
    assert np.array_equal(obs, again_obs) and again[-1][1] == reward


def test_every_domain_is_probed_at_every_decision_unless_a_refresh_is_asked(toy_data_dir):
    def probe_ages(**options):
        bench = get_benchmark("fdu-mtl", data_dir=toy_data_dir, small=True, **options)
        env = MTLSchedulingEnv(bench, reference_accuracies=None)
        assert env.steps_per_action == bench.decision_steps
        env.reset(seed=0)
        return [env.step(k)[-1]["probe_age"].tolist() for k in (5, 5)]

    assert probe_ages() == [[0] * 16, [0] * 16]
    # seed 002's frequency with the former partial probe: the trained domain and the oldest other
    first, second = probe_ages(probe_refresh=1, decision_steps=1)
    # after the reset's full probe all are equally old: the lowest index goes first
    assert [k for k in range(16) if first[k] == 0] == [0, 5]
    assert [k for k in range(16) if second[k] == 0] == [1, 5]
    assert first[1] == 1 and second[0] == 1
    assert probe_ages(probe_refresh="all") == [[0] * 16, [0] * 16]
    for bad in ("some", True, -1):
        with pytest.raises(ValueError, match="probe_refresh"):
            get_benchmark("fdu-mtl", data_dir=toy_data_dir, small=True, probe_refresh=bad)


def test_the_probe_pools_of_the_full_variant_follow_each_domains_label_shares(data_dir):
    bench = get_benchmark("fdu-mtl", data_dir=data_dir)
    trainer = bench.make_trainer(0)
    pool_size = bench.trainer_config.probe.pool_size
    for k, task in enumerate(bench.tasks):
        labels = np.asarray(task.split("validation")["label"])
        pool = trainer.probe_pool(k)
        assert len(pool) == pool_size
        share = labels[pool].mean()
        assert abs(share - labels.mean()) <= 1 / pool_size
    imdb = bench.task_names.index("imdb")
    first = np.asarray(bench.tasks[imdb].split("validation")["label"])[:8]
    assert first.tolist() == [1] * 8  # what the former "first 8 reviews" pool read


def test_q_mtl_heads_train_under_uniform_and_feed_the_environment(toy_data_dir):
    bench = get_benchmark("fdu-mtl", data_dir=toy_data_dir, small=True, qmtl_k=3)
    assert "3 Q-MTL heads" in bench.description and bench.config["qmtl"]["k"] == 3
    trainer = bench.make_trainer(0)
    head = trainer.model.heads["MR"]
    assert isinstance(head, QMTLHead) and head.k == 3
    assert trainer.run(make_scheduler("uniform")).best_validation.average_score > 0.7
    # the task output predicts the average of the three heads' distributions
    batch = trainer.model.collate("MR", {"tokens": [["bad", "it"], ["great"]], "label": [0, 1]})
    trainer.model.eval()
    with torch.no_grad():
        output = trainer.model.task_output("MR", batch)
        features = trainer.model.features(batch)
        averaged = torch.stack(
            [torch.softmax(head.export_head(j)(features), dim=-1) for j in range(3)]
        ).mean(dim=0)
    torch.testing.assert_close(output.probabilities(), averaged)
    env = MTLSchedulingEnv(bench)
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(15)
    assert np.allclose(task_histograms(env, obs).sum(axis=1), 1.0) and np.isfinite(reward)


def test_small_benchmark_reads_the_real_data(data_dir):
    bench = get_benchmark("fdu-mtl", data_dir=data_dir, small=True)
    assert [t.size(s) for t in bench.tasks[:1] for s in ("train", "validation", "test")] == [
        100,
        40,
        40,
    ]
    trainer = bench.make_trainer(0, budget=64)
    assert trainer.run(make_scheduler("round-robin")).examples_seen == 64


def test_one_pass_over_several_tasks_equals_a_pass_per_task(tmp_path):
    vocab = Vocabulary.build([["good", "bad", "film", "plot", "fine"]])
    model = BiLSTMTextClassifier(vocab, {"a": 2, "b": 2}, embedding_dim=6, hidden_size=5)
    model.eval()
    first = model.collate("a", {"tokens": [["good", "film"], ["bad"]], "label": [1, 0]})
    second = model.collate("b", {"tokens": [["fine", "plot", "bad", "film"]], "label": [0]})
    requests = [("a", first), ("b", second), ("a", second)]
    with torch.no_grad():
        together = model.task_outputs(requests)
        apart = [model.task_output(task, batch) for task, batch in requests]
    for joint, alone in zip(together, apart, strict=True):
        torch.testing.assert_close(joint.logits, alone.logits)
        assert torch.equal(joint.targets, alone.targets)


def test_large_batch_in_length_sorted_chunks_equals_one_review_at_a_time(monkeypatch):
    # no cells to spare: evaluation-mode passes run in chunks of INFERENCE_LENGTH_CHUNK reviews
    monkeypatch.setattr(text_classifier, "INFERENCE_CHUNK_CELLS", 0)
    words = ["good", "bad", "film", "plot", "fine", "dull"]
    vocab = Vocabulary.build([words])
    model = BiLSTMTextClassifier(vocab, {"a": 2}, embedding_dim=6, hidden_size=5)
    model.eval()
    generator = np.random.default_rng(0)
    reviews = [
        list(generator.choice(words, size=int(generator.integers(1, 30))))
        for _ in range(LENGTH_CHUNK + 9)
    ]
    batch = model.collate("a", {"tokens": reviews, "label": [0] * len(reviews)})
    parameters = list(model.encoder.parameters())

    def summed_gradient(features: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(features.sum(), parameters, allow_unused=False))

    chunked = model.features(batch)
    chunked_gradient = summed_gradient(chunked)
    alone = [model.features(model.collate("a", {"tokens": [r], "label": [0]})) for r in reviews]
    alone_gradient = summed_gradient(torch.cat(alone))
    padded = model.padded_features(batch["words"], batch["mask"])
    torch.testing.assert_close(chunked, torch.cat(alone))
    torch.testing.assert_close(chunked, padded)
    for by_chunks, by_review in zip(chunked_gradient, alone_gradient, strict=True):
        torch.testing.assert_close(by_chunks, by_review)
    with torch.no_grad():
        torch.testing.assert_close(model.features(batch), chunked.detach())


def test_inference_chunks_hold_the_full_models_cells_and_never_fewer_reviews():
    assert INFERENCE_LENGTH_CHUNK == 8
    assert inference_chunk_rows(200, 64) == 8  # fdu-mtl's full model: 8 x 200 x 64 cells
    assert inference_chunk_rows(40, 16) == 160  # the small variant: 160 x 40 x 16, the same
    assert inference_chunk_rows(100, 64) == 16
    assert inference_chunk_rows(400, 64) == 8  # longer than the full model's reviews: the floor
    assert inference_chunk_rows(0, 64) == 102_400


def test_a_left_out_domains_words_stay_unknown_whatever_was_built_first(tmp_path):
    rng = np.random.default_rng(1)
    for domain in FDU_MTL_DOMAINS:
        reviews = toy_reviews(320, rng)
        if domain == "books":  # a word only this domain uses, often enough to be kept
            reviews = b"".join(line + b" zebra\n" for line in reviews.splitlines())
        write_domain(tmp_path, domain, reviews, toy_reviews(60, rng))
    reduced_first = get_benchmark("fdu-mtl", data_dir=tmp_path, small=True)
    without_books = reduced_first.without_task("books").make_model(0).vocabulary
    assert "zebra" not in without_books
    assert "zebra" in reduced_first.make_model(0).vocabulary
    full_first = get_benchmark("fdu-mtl", data_dir=tmp_path, small=True)
    assert "zebra" in full_first.make_model(0).vocabulary
    again = full_first.without_task("books").make_model(0).vocabulary
    assert "zebra" not in again and len(again) == len(without_books)

import json
import random
import re

import numpy as np
import pytest
import torch
from observation_checks import observation_shape

from conftest import default_reward
from mtl_sched.benchmarks import benchmark_names, get_benchmark
from mtl_sched.data.conllu import ConlluSentence, read_conllu
from mtl_sched.data.linearize import (
    EWT_SIZES,
    delinearize_parse,
    ewt_seq2seq_tasks,
    linearize_parse,
    linearize_pos,
)
from mtl_sched.data.multi30k import MULTI30K_SIZES, multi30k_task
from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.seq2seq_task import (
    JOINER,
    SOURCE_VOCABULARY,
    build_source_vocabulary,
    detokenize,
    make_seq2seq_task,
    tokenize,
)
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.models.attention_decoder import beam_decode
from mtl_sched.models.seq2seq import Seq2SeqMTL
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import Step
from mtl_sched.training import Trainer, TrainerConfig, materialize, take_rows

CONLLU = """\
# sent_id = s1
# text = The dog barks.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
3.1\twent\tgo\tVERB\tVBD\t_\t_\t_\t3:conj\t_
4\tnow\tnow\tADV\tRB\t_\t3\tobl:tmod\t_\t_"""  # no trailing blank line: the file just ends


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------- CoNLL-U
def test_conllu_reader_skips_comments_multiword_ranges_and_empty_nodes(tmp_path):
    first, second = read_conllu(write(tmp_path / "a.conllu", CONLLU))
    assert first == ConlluSentence(
        ("The", "dog", "barks", "."),
        ("DET", "NOUN", "VERB", "PUNCT"),
        (2, 3, 0, 3),
        ("det", "nsubj", "root", "punct"),
        "s1",
        ("DT", "NN", "VBZ", "."),
    )
    assert second.forms == ("do", "n't", "go", "now")
    assert second.xpos == ("VBP", "RB", "VB", "RB")  # the empty node's VBD is skipped
    assert second.heads == (3, 3, 0, 3)
    assert second.deprels == ("aux", "advmod", "root", "obl:tmod")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_", "expected 10 tab-separated columns, got 9"),
        ("3\tdog\tdog\tNOUN\tNN\t_\t1\tnsubj\t_\t_", "word ID '3' where 2 was expected"),
        ("2\tdog\tdog\tNOUN\tNN\t_\tX\tnsubj\t_\t_", "head 'X' is not an integer"),
        ("2\tdog\tdog\tNOUN\tNN\t_\t9\tnsubj\t_\t_", "head 9 is beyond the sentence's 2 words"),
    ],
)
def test_conllu_errors_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "bad.conllu", f"# c\n1\tA\ta\tDET\tDT\t_\t2\tdet\t_\t_\n{line}\n\n")
    with pytest.raises(DataFormatError) as err:
        read_conllu(path)
    assert str(err.value) == f"{path}:3: {message}"


# --------------------------------------------------------------------------- linearization
def test_linearizations_of_a_hand_parsed_sentence(tmp_path):
    sentence = read_conllu(write(tmp_path / "a.conllu", CONLLU))[0]
    assert linearize_pos(sentence) == ["DET", "NOUN", "VERB", "PUNCT"]
    assert linearize_parse(sentence) == ["+1/det", "+1/nsubj", "+0/root", "-1/punct"]


def test_parse_linearization_round_trips_on_random_non_projective_trees():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        root = rng.randint(1, n)
        heads = tuple(
            0 if i == root else rng.choice([j for j in range(1, n + 1) if j != i])
            for i in range(1, n + 1)
        )
        deprels = tuple(rng.choice(["det", "nsubj:pass", "obl:tmod", "punct"]) for _ in heads)
        sentence = ConlluSentence(("w",) * n, ("X",) * n, heads, deprels)
        symbols = linearize_parse(sentence)
        assert len(symbols) == n
        assert delinearize_parse(symbols) == (list(heads), list(deprels))


@pytest.mark.parametrize(
    ("symbols", "message"),
    [(["+0/root", "1/det"], "symbol 2 ('1/det')"), (["+0/root", "+1/det"], "points at word 3")],
)
def test_delinearize_rejects_malformed_symbols(symbols, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        delinearize_parse(symbols)


# ----------------------------------------------------------------------------- tokenizing
def test_tokenize_marks_joins_and_detokenize_restores_the_text():
    text = 'Ein Boston Terrier läuft über saftig-grünes Gras, "schnell".'
    tokens = tokenize(text, mark_joins=True)
    assert tokens[4:9] == ["über", "saftig", JOINER + "-", JOINER + "grünes", "Gras"]
    assert tokens[-4:] == ['"', JOINER + "schnell", JOINER + '"', JOINER + "."]
    assert detokenize(tokens) == text
    assert detokenize(tokenize("  a  b,c ", mark_joins=True)) == "a b,c"
    assert tokenize("Two young, White males.") == ["Two", "young", ",", "White", "males", "."]


# -------------------------------------------------------------------------------- Multi30k
def write_multi30k(root, pairs_by_file):
    directory = root / "multi30k"
    directory.mkdir(parents=True, exist_ok=True)
    for stem, pairs in pairs_by_file.items():
        write(directory / f"{stem}.en", "".join(f"{en}\n" for en, _ in pairs))
        write(directory / f"{stem}.de", "".join(f"{de}\n" for _, de in pairs))
    return root


PAIRS = [
    ("A man is sleeping on a bench.", "Ein Mann schläft auf einer Bank."),
    ("A dog runs on the grass.", "Ein Hund rennt über das Gras."),
    ("Two children play in the water.", "Zwei Kinder spielen im Wasser."),
]


def test_multi30k_loader_builds_a_bleu_task_from_local_files(tmp_path):
    root = write_multi30k(
        tmp_path, {"train": PAIRS, "val": PAIRS[:2], "test_2016_flickr": PAIRS[2:]}
    )
    task = multi30k_task(root, min_count=2)
    assert (task.kind, task.metric, task.reference_column) == ("seq2seq", "bleu", "reference")
    assert [task.size(s) for s in ("train", "validation", "test")] == [3, 2, 1]
    # min_count=2 keeps the training tokens seen twice or more, by count, then alphabetically
    assert task.metadata[SOURCE_VOCABULARY].tokens == ["<pad>", "<unk>", ".", "A", "on", "the"]
    assert task.label_names == ("<pad>", "<unk>", "<s>", "</s>", JOINER + ".", "Ein")
    row = task.split("test")[0]
    assert row["source"] == [1, 1, 1, 1, 5, 1, 2]  # Two children play in the water .
    assert row["target"] == [1, 1, 1, 1, 1, 4]  # Zwei Kinder spielen im Wasser ￭.
    assert row["reference"] == "Zwei Kinder spielen im Wasser."


def test_multi30k_loader_errors_name_the_file_and_line(tmp_path):
    root = write_multi30k(tmp_path, {"train": PAIRS, "val": PAIRS, "test_2016_flickr": PAIRS})
    write(root / "multi30k" / "val.de", "Ein Mann.\nEin Hund.\n")
    with pytest.raises(DataFormatError, match=r"val\.en:3: has no aligned line in .*val\.de"):
        multi30k_task(root)
    write(root / "multi30k" / "val.de", "Ein Mann.\n  \nZwei.\n")
    with pytest.raises(DataFormatError, match=r"val\.de:2: empty sentence"):
        multi30k_task(root)
    write_multi30k(root, {"val": PAIRS})
    (root / "multi30k" / "test_2016_flickr.de").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_2016_flickr\.de"):
        multi30k_task(root)


def test_real_data_sizes_match_sources_md(data_dir):
    task = multi30k_task(data_dir)
    assert {s: task.size(s) for s in MULTI30K_SIZES} == MULTI30K_SIZES
    assert task.split("test")[0]["reference"] == (
        "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."
    )
    # 8,204 German tokens (joiner marks included) occur twice or more: the 8,000 cap binds
    assert task.num_classes == 4 + 8000
    pos, parse = ewt_seq2seq_tasks(data_dir, max_train=5)
    assert pos.size("validation") == EWT_SIZES["validation"]
    assert parse.size("test") == EWT_SIZES["test"]
    assert sum(len(t) for t in pos.split("validation")["target"]) == 25147  # dev words


# ----------------------------------------------------------------------------------- model
def tiny_tasks(pairs):
    columns = {
        "source": [tokenize(en) for en, _ in pairs],
        "target": [tokenize(de, mark_joins=True) for _, de in pairs],
        "reference": [de for _, de in pairs],
    }
    tags = {"source": columns["source"], "target": [["X"] * len(s) for s in columns["source"]]}
    splits = [{s: c for s in ("train", "validation", "test")} for c in (columns, tags)]
    vocabulary = build_source_vocabulary(splits, min_count=1)
    return [
        make_seq2seq_task("translation", splits[0], vocabulary, metric="bleu"),
        make_seq2seq_task("pos", splits[1], vocabulary),
    ]


def tiny_model(tasks, seed=0, **options):
    torch.manual_seed(seed)
    return Seq2SeqMTL.for_tasks(tasks, embedding_dim=16, hidden_size=16, **options)


def collate_all(model, task):
    return model.collate(task.name, take_rows(materialize(task.split("train")), slice(None)))


def test_task_output_has_one_unit_per_target_token_plus_eos():
    tasks = tiny_tasks(PAIRS)
    model = tiny_model(tasks)
    batch = collate_all(model, tasks[0])
    assert batch["source"].shape == (3, 8)
    out = model.task_output("translation", batch)
    lengths = [len(t) + 1 for t in tasks[0].split("train")["target"]]
    assert out.logits.shape == (sum(lengths), tasks[0].num_classes)
    eos = tasks[0].label_names.index("</s>")
    ends = np.cumsum(lengths) - 1
    assert out.targets[ends].tolist() == [eos] * 3
    assert set(model.shared_parameters()).isdisjoint(model.task_parameters("translation"))


def test_one_encoder_pass_over_several_tasks_equals_a_pass_per_task():
    tasks = tiny_tasks(PAIRS)
    model = tiny_model(tasks, dropout=0.3)
    model.eval()
    rows = [take_rows(materialize(task.split("train")), slice(None)) for task in tasks]
    requests = [
        ("translation", model.collate("translation", rows[0])),
        ("pos", model.collate("pos", take_rows(rows[1], slice(0, 1)))),
        ("translation", model.collate("translation", take_rows(rows[0], slice(1, 3)))),
        ("pos", model.collate("pos", rows[1])),
    ]
    widths = {batch["source"].shape[1] for _, batch in requests}
    assert len(widths) > 1  # the stacked sources really are padded
    together = model.task_outputs(requests)
    for (task, batch), joint in zip(requests, together, strict=True):
        alone = model.task_output(task, batch)
        torch.testing.assert_close(joint.logits, alone.logits)
        torch.testing.assert_close(joint.losses(), alone.losses())
        assert torch.equal(joint.targets, alone.targets)


def test_beam_size_one_equals_greedy_and_decoding_respects_the_length_cap():
    tasks = tiny_tasks(PAIRS)
    model = tiny_model(tasks, seed=3, max_target_length=5)
    batch = collate_all(model, tasks[0])
    greedy = model.decode_ids("translation", batch, beam_size=1)
    memory = model.encoder(batch["source"], batch["source_mask"])
    decoder, limits = model.decoders["translation"], torch.full((3,), 5)
    assert beam_decode(decoder, memory, batch["source_mask"], 2, 3, limits, beam_size=1) == greedy
    # an untrained model rarely stops by itself: the cap ends every row
    assert all(len(ids) <= 5 for ids in greedy)
    assert all(len(ids) <= 5 for ids in model.decode_ids("translation", batch, beam_size=4))


def test_memorized_pairs_decode_exactly_and_score_bleu_100():
    tasks = tiny_tasks(PAIRS)
    model = tiny_model(tasks)
    trainer = Trainer(
        model, tasks, TrainerConfig(budget=10, batch_size=3, learning_rate=0.03), seed=0
    )
    for _ in range(40):  # measured: the pairs are reproduced after 20 steps
        trainer.train_step(Step.weighted([1.0, 1.0]))
    batch = collate_all(model, tasks[0])
    assert model.decode("translation", batch) == [de for _, de in PAIRS]
    assert model.decode("translation", batch, beam_size=3) == [de for _, de in PAIRS]
    result = trainer.evaluate("test")
    assert result.metric_names == ("bleu", "accuracy")
    assert result.scores[0] == pytest.approx(1.0)  # BLEU 100 / 100


# ------------------------------------------------------------------------------- benchmark
def test_small_benchmark_runs_under_uniform_and_inside_the_environment(data_dir):
    assert "nmt-aux" in benchmark_names()
    bench = get_benchmark("nmt-aux", data_dir=data_dir, small=True)
    assert str(data_dir) not in json.dumps(bench.config)
    assert bench.task_names == ("translation", "pos", "parse")
    assert [t.size("train") for t in bench.tasks] == [300, 300, 300]
    result = bench.make_trainer(0, budget=192, eval_every=192).run(make_scheduler("uniform"))
    assert result.examples_seen == 192 and result.steps == 2
    assert result.test.metric_names == ("bleu", "accuracy", "accuracy")
    assert np.all((result.test.scores >= 0) & (result.test.scores <= 1))

    env = MTLSchedulingEnv(bench, episode_steps=3)
    obs, info = env.reset(seed=0)
    assert obs.shape == observation_shape("task-features", 3, 20)
    assert env.observation_space.contains(obs)
    for step, action in enumerate([0, 2, 1], start=1):
        previous_info = info
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["task_name"] == bench.task_names[action]
        assert reward == pytest.approx(default_reward(previous_info, info))
        assert (terminated, truncated) == (False, step == 3)

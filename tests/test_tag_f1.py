"""The ``tag-f1`` metric (F1 over the tokens not tagged ``O``, seed 003's score for SUPSENSE and
SEMTR): hand-computed values, its edge cases, and a tagging task scored by it end to end."""

from __future__ import annotations

import random

import pytest
import torch

from mtl_sched.benchmarks.relations import relations_benchmark
from mtl_sched.data.conll import tagging_task
from mtl_sched.data.semcor import load_semcor_semtr
from mtl_sched.data.tagging_tasks import register_tagging_task
from mtl_sched.data.task import METRICS
from mtl_sched.metrics import accuracy, tag_f1, task_score
from mtl_sched.training.evaluation import EvalBatches, evaluate_tasks

GOLD = [["O", "A", "B", "O"], ["C", "O"]]
PREDICTED = [["O", "A", "C", "A"], ["C", "O"]]


def _token_accuracy(predicted: list[list[str]], gold: list[list[str]]) -> float:
    pairs = [
        (p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)
    ]
    return accuracy([p for p, _ in pairs], [g for _, g in pairs])


def test_hand_computed_precision_recall_and_f1() -> None:
    # non-O predictions A C A C (4), non-O gold A B C (3), correct A and C (2):
    # P = 2/4, R = 2/3, F1 = 2PR / (P + R) = 4/7
    assert tag_f1(PREDICTED, GOLD) == pytest.approx(4 / 7)
    # token accuracy counts the two correct O tokens too: 4 of 6
    assert _token_accuracy(PREDICTED, GOLD) == pytest.approx(4 / 6)


def test_correct_outside_tags_do_not_count() -> None:
    padded_gold = [[*s, "O", "O", "O"] for s in GOLD]
    padded_predicted = [[*s, "O", "O", "O"] for s in PREDICTED]
    assert tag_f1(padded_predicted, padded_gold) == pytest.approx(4 / 7)


def test_a_wrong_non_o_tag_is_both_a_false_positive_and_a_miss() -> None:
    # gold A, predicted B: P = 0/1, R = 0/1
    assert tag_f1([["B"]], [["A"]]) == 0.0
    # one right, one swapped: P = R = 1/2
    assert tag_f1([["A", "C"]], [["A", "B"]]) == pytest.approx(0.5)


def test_precision_and_recall_counted_over_the_whole_split() -> None:
    # micro average: sentence 1 has P = R = 1 (1 token), sentence 2 P = 0/3, R = 0/1;
    # over both P = 1/4, R = 1/2, F1 = 1/3 (a mean of per-sentence F1s would give 1/2)
    predicted = [["A"], ["B", "B", "B"]]
    gold = [["A"], ["C", "O", "O"]]
    assert tag_f1(predicted, gold) == pytest.approx(1 / 3)


def test_all_outside_edge_cases() -> None:
    # nothing to find and nothing predicted: exactly right
    assert tag_f1([["O", "O"], ["O"]], [["O", "O"], ["O"]]) == 1.0
    # no non-O gold, one non-O prediction: precision 0/1
    assert tag_f1([["O", "A"]], [["O", "O"]]) == 0.0
    # non-O gold, no non-O prediction: recall 0/1
    assert tag_f1([["O", "O"]], [["O", "A"]]) == 0.0
    # no sentences: nothing scored, as for the other metrics
    assert tag_f1([], []) == 0.0


def test_without_outside_tags_it_equals_token_accuracy() -> None:
    # every token is a non-O one-token span: P = R = correct / tokens
    rng = random.Random(0)
    gold = [[rng.choice("ABC") for _ in range(rng.randint(1, 6))] for _ in range(30)]
    predicted = [[rng.choice("ABC") for _ in s] for s in gold]
    assert tag_f1(predicted, gold) == pytest.approx(_token_accuracy(predicted, gold))


def test_another_outside_tag_can_be_named() -> None:
    assert tag_f1([["-", "A"]], [["-", "A"]], outside="-") == 1.0
    # with "-" outside, "O" is an ordinary tag: P = 1/2, R = 1/1
    assert tag_f1([["O", "A"]], [["-", "A"]], outside="-") == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("predicted", "gold", "message"),
    [
        ([["A"]], [["A"], ["B"]], "1 predictions for 2 references"),
        ([["A", "B"]], [["A"]], "sentence 0: 2 predicted tags for 1 gold tags"),
    ],
)
def test_unpaired_input_is_refused(predicted, gold, message) -> None:
    with pytest.raises(ValueError, match=message):
        tag_f1(predicted, gold)


def _sentences(rng: random.Random, n: int) -> list[dict[str, list[str]]]:
    """Mostly-O tags: every fourth word of twelve carries a trait."""
    out = []
    for _ in range(n):
        words = [f"w{rng.randrange(12)}" for _ in range(rng.randint(3, 7))]
        tags = [f"T{int(w[1:]) // 4}" if int(w[1:]) % 4 == 0 else "O" for w in words]
        out.append({"word": words, "tag": tags})
    return out


def _traits_task(name: str = "traits") -> object:
    rng = random.Random(3)
    splits = {"train": _sentences(rng, 40), "validation": _sentences(rng, 12)}
    splits["test"] = _sentences(rng, 12)
    return tagging_task(name, splits, "tag", "tag-f1")


def test_a_task_names_tag_f1_and_task_score_reads_its_tag_ids() -> None:
    assert "tag-f1" in METRICS
    task = _traits_task()
    assert task.metric == "tag-f1" and task.reference_column == "tags"
    gold = task.split("test")[:]["tags"]
    outside = task.label_names.index("O")
    # predicting O everywhere finds nothing
    assert task_score(task, [[outside] * len(s) for s in gold], gold) == 0.0
    assert task_score(task, gold, gold) == 1.0


def test_evaluation_scores_a_tag_f1_task_by_the_decoded_tags() -> None:
    register_tagging_task("traits-e2e", lambda _d, _l: _traits_task("traits-e2e"))
    benchmark = relations_benchmark(tasks=["traits-e2e"], small=True)
    (task,) = benchmark.tasks
    model = benchmark.make_model(seed=0)
    batches = EvalBatches(model, [task], torch.device("cpu"), batch_size=5)
    result = evaluate_tasks(model, batches, "test", step=0)
    assert result.metric_names == ("tag-f1",)
    model.eval()  # evaluate_tasks decoded without dropout
    decoded = [
        tags for batch in batches.split(0, "test") for tags in model.decode(task.name, batch)
    ]
    names = task.label_names
    expected = tag_f1(
        [[names[t] for t in s] for s in decoded],
        [[names[t] for t in s] for s in task.split("test")[:]["tags"]],
    )
    assert result.scores[0] == pytest.approx(expected)
    # not the token accuracy, which counts the many correct O tags
    assert result.scores[0] != pytest.approx(result.unit_accuracies[0])


def test_semtr_is_scored_by_tag_f1(tmp_path) -> None:
    folder = tmp_path / "semcor_semantictraits"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        (folder / f"semcor_semantictraits_{split}.conll").write_text(
            "The\tO\nJury\tObject\nsaid\tMental\n"
        )
    task = load_semcor_semtr(tmp_path)
    assert task.metric == "tag-f1" and task.reference_column == "tags"
    assert task.metadata["source"]["metric"] == "tag-f1"
    assert task.label_names == ("O", "Mental", "Object")

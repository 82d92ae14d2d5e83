import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtl_sched.models.qmtl import QMTLHead


def made_distributions_head(distributions, combine="average"):
    """A PTA-form head whose j-th head predicts ``distributions[j]`` for every input."""
    probabilities = torch.tensor(distributions)
    k, classes = probabilities.shape
    head = QMTLHead(3, classes, k=k, hidden=0, combine=combine)
    with torch.no_grad():
        head.W.zero_()
        head.b_W.copy_(probabilities.log())
    return head


def test_one_head_equals_a_plain_linear_relu_linear_head_with_the_same_parameters():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 5))
    head = QMTLHead(6, 5, k=1, hidden=4)
    head.load_head(0, plain)
    h = torch.randn(7, 6, requires_grad=True)
    targets = torch.randint(0, 5, (7,))
    torch.testing.assert_close(head(h), F.log_softmax(plain(h), dim=-1))
    losses = head.unit_losses(h, targets)
    expected = F.cross_entropy(plain(h), targets, reduction="none")
    torch.testing.assert_close(losses, expected)
    (grad_head,) = torch.autograd.grad(losses.sum(), h)
    (grad_plain,) = torch.autograd.grad(expected.sum(), h)
    torch.testing.assert_close(grad_head, grad_plain)


@pytest.mark.parametrize("hidden", [0, 20])
def test_batched_heads_equal_k_separately_computed_heads(hidden):
    torch.manual_seed(1)
    head = QMTLHead(8, 3, k=4, hidden=hidden)
    h = torch.randn(2, 5, 8)  # (sentences, tokens, features)
    targets = torch.randint(0, 3, (2, 5))
    separate = [head.export_head(j) for j in range(4)]
    for j, module in enumerate(separate):
        torch.testing.assert_close(head.head_logits(h)[j], module(h))
    summed = sum(
        F.cross_entropy(m(h).reshape(-1, 3), targets.reshape(-1), reduction="none")
        for m in separate
    )
    losses = head.unit_losses(h, targets)
    assert losses.shape == (2, 5)
    torch.testing.assert_close(losses.reshape(-1), summed)
    # gradients of the stacked parameters equal those of the separate heads
    losses.sum().backward()
    summed.sum().backward()
    for j, module in enumerate(separate):
        torch.testing.assert_close(head.W.grad[j], module[-1].weight.grad.T)
        torch.testing.assert_close(head.b_W.grad[j], module[-1].bias.grad)
        if hidden:
            torch.testing.assert_close(head.V.grad[j], module[0].weight.grad.T)


def test_averaging_and_selection_on_hand_made_distributions():
    distributions = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]
    head = made_distributions_head(distributions)
    h = torch.zeros(1, 3)
    # model averaging: (0.7 + 0.1) / 2, (0.2 + 0.3) / 2, (0.1 + 0.6) / 2
    torch.testing.assert_close(head(h).exp(), torch.tensor([[0.4, 0.25, 0.35]]), rtol=0, atol=1e-6)
    assert head(h).argmax(dim=-1).tolist() == [0]
    assert head.head_predictions(h).tolist() == [[0], [2]]
    # the loss sums both heads' cross-entropies: target 2 -> -log 0.1 - log 0.6
    expected = -math.log(0.1) - math.log(0.6)
    assert head.unit_losses(h, torch.tensor([2])).item() == pytest.approx(expected, rel=1e-6)

    # model selection: on development targets [2, 2, 0] head 1 is right twice, head 0 once
    selecting = made_distributions_head(distributions, combine="select")
    dev = torch.zeros(3, 3)
    accuracies = selecting.head_accuracies(dev, torch.tensor([2, 2, 0]))
    torch.testing.assert_close(accuracies, torch.tensor([1 / 3, 2 / 3]))
    assert selecting.select_best(dev, torch.tensor([2, 2, 0])) == 1
    torch.testing.assert_close(
        selecting(h).exp(), torch.tensor([[0.1, 0.3, 0.6]]), rtol=0, atol=1e-6
    )
    output = selecting.output(h, torch.tensor([2]))
    torch.testing.assert_close(output.probabilities(), torch.tensor([[0.1, 0.3, 0.6]]))
    assert output.loss().item() == pytest.approx(expected, rel=1e-6)


def test_frobenius_norms_per_head():
    head = QMTLHead(2, 2, k=2, hidden=2)
    with torch.no_grad():
        head.V.copy_(torch.tensor([[[3.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]]))
        head.W.copy_(torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]]))
    norms = head.frobenius_norms()
    torch.testing.assert_close(norms["V"], torch.tensor([5.0, 2.0]))
    torch.testing.assert_close(norms["W"], torch.tensor([1.0, 2.0]))
    assert set(QMTLHead(2, 2, k=3, hidden=0).frobenius_norms()) == {"W"}


def test_the_pta_form_has_no_relu_layer_and_matches_a_linear_layer():
    torch.manual_seed(2)
    head = QMTLHead(5, 3, k=2, hidden=0)
    assert head.V is None and head.b_V is None
    linear = head.export_head(1)
    assert len(linear) == 1 and isinstance(linear[0], nn.Linear)
    h = torch.randn(4, 5)
    torch.testing.assert_close(head.head_logits(h)[1], linear(h))


def test_seeded_heads_are_identical_and_differ_from_each_other():
    torch.manual_seed(3)
    first = QMTLHead(6, 4, k=3)
    torch.manual_seed(3)
    second = QMTLHead(6, 4, k=3)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.V[0], first.V[1])
    bound = 1 / math.sqrt(6)
    assert first.V.abs().max() <= bound and first.b_V.abs().max() <= bound


def test_selected_head_is_saved_and_loaded():
    head = made_distributions_head([[0.2, 0.8], [0.9, 0.1]], combine="select")
    head.select_best(torch.zeros(2, 3), torch.tensor([0, 0]))
    restored = made_distributions_head([[0.2, 0.8], [0.9, 0.1]], combine="select")
    restored.load_state_dict(head.state_dict())
    assert int(restored.selected) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k >= 1"),
        ({"hidden": -1}, "hidden must be >= 0"),
        ({"combine": "vote"}, "combine must be"),
        ({"num_classes": 1}, "at least 2 classes"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    arguments = {"in_features": 4, "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        QMTLHead(**arguments)


def test_wrong_input_width_and_head_index_are_reported():
    head = QMTLHead(4, 3, k=2)
    with pytest.raises(ValueError, match="width 4"):
        head(torch.zeros(2, 5))
    with pytest.raises(IndexError, match="out of range"):
        head.export_head(2)
    with pytest.raises(ValueError, match="expected 2 Linear"):
        head.load_head(0, nn.Sequential(nn.Linear(4, 3)))


def _toy_tagging_task(name):
    from mtl_sched.data.conll import tagging_task

    words = [f"w{i}" for i in range(6)]
    sentences = [
        {
            "word": [words[(i + j) % 6] for j in range(4)],
            "tag": [f"T{(i + j) % 3}" for j in range(4)],
        }
        for i in range(12)
    ]
    splits = {"train": sentences, "validation": sentences[:6], "test": sentences[6:]}
    return tagging_task(name, splits, "tag", "accuracy")


def test_the_trainer_selects_the_head_best_on_validation_and_scores_with_it():
    from mtl_sched.models.qmtl import QMTLConfig
    from mtl_sched.models.sequence_tagger import SequenceTagger
    from mtl_sched.registry import make_scheduler
    from mtl_sched.training import Trainer, TrainerConfig

    torch.manual_seed(0)
    tasks = [_toy_tagging_task("a"), _toy_tagging_task("b")]
    model = SequenceTagger.for_tasks(
        tasks,
        qmtl=QMTLConfig(k=3, hidden=0, combine="select"),
        embedding_dim=8,
        hidden_size=8,
        char_embedding_dim=4,
        char_hidden_size=4,
        dropout=0.0,
    )
    heads = {name: model.emissions[name] for name in ("a", "b")}
    config = TrainerConfig(budget=800, batch_size=4, eval_every=800, learning_rate=0.05)
    trainer = Trainer(model, tasks, config, seed=0)
    trainer.run(make_scheduler("uniform"))
    with torch.no_grad():  # heads 0 and 1 now always say T2: head 2, trained, is the best
        for head in heads.values():
            head.W[:2].zero_()
            head.b_W[:2].copy_(torch.tensor([0.0, 0.0, 5.0]))
    result = trainer.evaluate("validation")
    model.eval()
    for k, name in enumerate(("a", "b")):
        batch = model.collate(name, tasks[k].split("validation")[:])
        states = model.encoder(batch["words"], batch["mask"], batch["chars"])[batch["mask"]]
        accuracies = heads[name].head_accuracies(states, batch["tags"][batch["mask"]])
        assert int(heads[name].selected) == int(accuracies.argmax())
        # the reported validation accuracy is the selected head's
        assert result.scores[k] == pytest.approx(float(accuracies.max()))
    assert [int(h.selected) for h in heads.values()] == [2, 2]

"""The layer GradNorm balances: each model names it, and GradNorm never guesses it."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mtl_sched.data.conll import tagging_task
from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.models import SharedMLP
from mtl_sched.models.base import MissingSharedLayerError, last_shared_layer
from mtl_sched.models.qmtl import QMTLConfig
from mtl_sched.models.seq2seq import Seq2SeqMTL
from mtl_sched.models.sequence_tagger import SequenceTagger
from mtl_sched.models.shared_decoder_tagger import SharedDecoderTagger
from mtl_sched.models.text_classifier import BiLSTMTextClassifier
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import CombineContext, Step, TrainState

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "external_model.py"
SIZES = {"embedding_dim": 6, "hidden_size": 5}
TAGGER_SIZES = {**SIZES, "char_embedding_dim": 3, "char_hidden_size": 3, "dropout": 0.0}

WORDS = Vocabulary(["the", "cat", "sat", "a", "dog", "ran"])
CHARS = Vocabulary(sorted(set("thecatsadogrn")))
SENTENCES = [["the", "cat", "sat"], ["a", "dog", "ran", "the"]]
TAG_ROWS = {"tokens": SENTENCES, "tags": [[0, 1, 2], [1, 2, 0, 1]]}
TEXT_ROWS = {"tokens": SENTENCES, "label": [0, 1]}
SEQ2SEQ_TARGETS = ["<pad>", "<unk>", "<s>", "</s>", "x", "y", "z"]
SEQ2SEQ_ROWS = {"source": [[2, 3, 4], [5, 6, 7, 8]], "target": [[4, 5], [6, 4, 5]]}


def _tagging_task(name: str, tags: list[str]) -> Any:
    sentences = [{"word": s, "tag": [tags[t] for t in row]}
                 for s, row in zip(SENTENCES, TAG_ROWS["tags"], strict=True)]  # fmt: skip
    splits = {"train": sentences, "validation": sentences, "test": sentences}
    return tagging_task(name, splits, "tag", "accuracy")


TAGGING_TASKS = [_tagging_task("pos", ["DT", "NN", "VBD"]), _tagging_task("chunk", ["B", "I", "O"])]


def _example_model() -> nn.Module:
    spec = importlib.util.spec_from_file_location("external_model_layer_test", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    args = module.Args(seq_len=5, vocab_size=8, d_model=8, nhead=2, num_layers=2)
    return module.TransformerMTL(args, {"majority": 2, "first-last": 2})


EXAMPLE_ROWS = {"tokens": [[1, 2, 3, 4, 5], [7, 6, 5, 4, 3]], "label": [0, 1]}

MODELS: dict[str, tuple[Callable[[], nn.Module], dict[str, Any]]] = {
    "shared-mlp": (
        lambda: SharedMLP(4, {"a": 2, "b": 3}),
        {"x": np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "label": [0, 1, 1]},
    ),
    "text-classifier": (
        lambda: BiLSTMTextClassifier(WORDS, {"a": 2, "b": 2}, **SIZES),
        TEXT_ROWS,
    ),
    "text-classifier-2-layers-qmtl": (
        lambda: BiLSTMTextClassifier(
            WORDS, {"a": 2, "b": 2}, num_layers=2, qmtl=QMTLConfig(k=2, hidden=4), **SIZES
        ),
        TEXT_ROWS,
    ),
    "tagger": (lambda: SequenceTagger(WORDS, CHARS, {"a": 3, "b": 3}, **TAGGER_SIZES), TAG_ROWS),
    "tagger-2-layers-no-chars": (
        lambda: SequenceTagger(WORDS, None, {"a": 3, "b": 3}, num_layers=2, **TAGGER_SIZES),
        TAG_ROWS,
    ),
    "tagger-qmtl": (
        lambda: SequenceTagger(
            WORDS, CHARS, {"a": 3, "b": 3}, qmtl=QMTLConfig(k=2, hidden=0), **TAGGER_SIZES
        ),
        TAG_ROWS,
    ),
    "te-dec": (
        lambda: SharedDecoderTagger.for_tasks(TAGGING_TASKS, "decoder", **TAGGER_SIZES),
        TAG_ROWS,
    ),
    "te-enc": (
        lambda: SharedDecoderTagger.for_tasks(TAGGING_TASKS, "encoder", **TAGGER_SIZES),
        TAG_ROWS,
    ),
    "seq2seq": (
        lambda: Seq2SeqMTL(10, {"a": SEQ2SEQ_TARGETS, "b": SEQ2SEQ_TARGETS}, **SIZES),
        SEQ2SEQ_ROWS,
    ),
    "example-transformer": (_example_model, EXAMPLE_ROWS),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_named_layer_is_shared_and_every_task_loss_reaches_all_of_it(name: str) -> None:
    build, rows = MODELS[name]
    torch.manual_seed(0)
    model = build()
    model.train()
    layer = list(model.last_shared_layer())
    shared = {id(p) for p in model.shared_parameters()}
    assert layer and all(id(p) in shared for p in layer)
    assert last_shared_layer(model) == layer
    for task in model.task_names:
        loss = model.task_output(task, model.collate(task, rows)).loss()
        grads = torch.autograd.grad(loss, layer, allow_unused=True)
        for parameter, grad in zip(layer, grads, strict=True):
            assert grad is not None and grad.abs().sum() > 0, (task, tuple(parameter.shape))


@pytest.mark.parametrize("name", ["tagger", "text-classifier-2-layers-qmtl", "seq2seq"])
def test_bilstm_models_name_both_directions_of_the_top_layer(name: str) -> None:
    model = MODELS[name][0]()
    lstm = model.encoder.lstm
    top = lstm.num_layers - 1
    expected = [f"{w}_l{top}{d}" for d in ("", "_reverse") for w in ("weight_ih", "weight_hh")]
    assert [id(p) for p in model.last_shared_layer()] == [id(getattr(lstm, n)) for n in expected]


@pytest.mark.parametrize("injection", ["decoder", "encoder"])
def test_the_shared_decoder_taggers_layer_is_the_encoder_not_the_crf(injection: str) -> None:
    model = SharedDecoderTagger.for_tasks(TAGGING_TASKS, injection, **TAGGER_SIZES)
    layer = {id(p) for p in model.last_shared_layer()}
    assert id(model.crf.transitions) not in layer
    assert id(model.decoder.weight) not in layer
    # the guess GradNorm used to make: the last matrix of shared_parameters()
    assert [p for p in model.shared_parameters() if p.dim() == 2][-1] is model.crf.transitions
    assert layer <= {id(p) for p in model.encoder.lstm.parameters()}


def test_shared_mlp_names_the_weight_of_its_last_linear_layer() -> None:
    model = SharedMLP(4, {"a": 2}, hidden_sizes=(5, 3), dropout=0.1)
    assert model.last_shared_layer() == [model.encoder[3].weight]  # Linear ReLU Dropout Linear
    with pytest.raises(ValueError, match="no shared layer"):
        SharedMLP(4, {"a": 2}, hidden_sizes=()).last_shared_layer()


# ----------------------------------------------------------------------- GradNorm itself
class TwoTaskModel(nn.Module):
    """``L_k = u_k . (W x + b) + c T[k, k]``: the named layer is ``(W, b)``; the shared matrix
    ``T``, last in `shared_parameters`, is read one entry per task (as a CRF restricted to
    each task's tags is)."""

    def __init__(self, name_layer: bool = True) -> None:
        super().__init__()
        self.task_names = ("a", "b")
        self.layer = nn.Linear(3, 2)
        self.transitions = nn.Parameter(torch.ones(2, 2))
        self.heads = nn.Parameter(torch.tensor([[1.0, 2.0], [-3.0, 0.5]]))  # u_a, u_b
        if name_layer:
            self.last_shared_layer = lambda: [self.layer.weight, self.layer.bias]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.layer.parameters()
        yield self.transitions

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield self.heads

    def losses(self, x: torch.Tensor, c: float) -> torch.Tensor:
        z = self.layer(x)
        return torch.stack([self.heads[k] @ z + c * self.transitions[k, k] for k in range(2)])


def _context(model: nn.Module, step: int = 0) -> CombineContext:
    state = TrainState(
        step=step,
        examples_seen=0,
        budget=0,
        examples_per_task=np.zeros(2, dtype=np.int64),
        train_losses=np.full(2, np.nan),
    )
    return CombineContext(Step.weighted([1.0, 1.0]), model, [], state)  # type: ignore[arg-type]


def _gradnorm(**hyperparameters: Any) -> Any:
    gradnorm = make_scheduler("gradnorm", **hyperparameters)
    gradnorm.reset([SimpleNamespace(name="a"), SimpleNamespace(name="b")], 0)
    return gradnorm


X = torch.tensor([1.0, -2.0, 0.5])
C = 3.0


def test_gradient_norms_are_over_the_named_layer_all_tensors_together() -> None:
    torch.manual_seed(0)
    model = TwoTaskModel()
    gradnorm = _gradnorm()
    losses = model.losses(X, C)
    norms = gradnorm.shared_gradient_norms(losses, _context(model))
    # grad_W L_k = u_k x^T and grad_b L_k = u_k: ||(grad_W, grad_b)|| = ||u_k|| sqrt(||x||^2 + 1)
    scale = math.sqrt(float(X @ X) + 1)
    expected = [math.hypot(1.0, 2.0) * scale, math.hypot(-3.0, 0.5) * scale]
    assert norms.tolist() == pytest.approx(expected)
    # the first combine: r_k = 1, so the target is the mean G; Adam's first step moves each
    # weight by the learning rate against the sign of G_k - mean G
    gradnorm.combine(losses, _context(model))
    lr = gradnorm.weight_learning_rate
    assert gradnorm.task_weights.tolist() == pytest.approx([1 + lr, 1 - lr], rel=1e-6)
    # G_k = w_k ||grad_W L_k|| with the updated weights
    weights = np.array([1 + lr, 1 - lr])
    grad_norms = (
        weights * gradnorm.shared_gradient_norms(model.losses(X, C), _context(model)).numpy()
    )
    assert grad_norms == pytest.approx(weights * np.array(expected))


def test_a_model_that_does_not_name_its_layer_makes_gradnorm_raise() -> None:
    model = TwoTaskModel(name_layer=False)
    gradnorm = _gradnorm()
    with pytest.raises(MissingSharedLayerError, match=r"add a method `last_shared_layer\(self\)"):
        gradnorm.combine(model.losses(X, C), _context(model))
    assert gradnorm.task_weights.tolist() == [1.0, 1.0]


def test_the_layer_hyperparameter_names_parameters_explicitly() -> None:
    model = TwoTaskModel(name_layer=False)
    scale = math.sqrt(float(X @ X) + 1)
    both = _gradnorm(layer="layer.weight, layer.bias")
    norms = both.shared_gradient_norms(model.losses(X, C), _context(model))
    assert norms.tolist() == pytest.approx([math.hypot(1, 2) * scale, math.hypot(3, 0.5) * scale])
    weight_only = _gradnorm(layer="layer.w*")
    norms = weight_only.shared_gradient_norms(model.losses(X, C), _context(model))
    length = math.sqrt(float(X @ X))
    assert norms.tolist() == pytest.approx([math.hypot(1, 2) * length, math.hypot(3, 0.5) * length])
    # it overrides the model's own choice
    named = TwoTaskModel()
    assert _gradnorm(layer="transitions").shared_layer(named) == [named.transitions]
    with pytest.raises(
        ValueError, match=r"matches no parameter; shared parameters: transitions, layer\.weight"
    ):
        _gradnorm(layer="encoder.*").shared_layer(model)
    with pytest.raises(ValueError, match="'heads', which is not a shared parameter"):
        _gradnorm(layer="heads").shared_layer(model)
    with pytest.raises(ValueError, match="at least one parameter pattern"):
        make_scheduler("gradnorm", layer=" , ")

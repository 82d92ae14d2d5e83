"""Seed 003's shared-decoder taggers (TE+DEC, TE+ENC) and the restricted CRF they decode with."""

from __future__ import annotations

import pytest
import torch

from mtl_sched.data.conll import tagging_task
from mtl_sched.models.crf import CRF
from mtl_sched.models.shared_decoder_tagger import SharedDecoderTagger, task_token

SIZES = {"embedding_dim": 8, "hidden_size": 8, "char_embedding_dim": 4, "char_hidden_size": 4}


def test_a_restricted_crf_is_the_crf_with_the_other_tags_excluded() -> None:
    torch.manual_seed(0)
    crf = CRF(6)
    kept = torch.tensor([4, 0, 2])  # any order: the view's tag j is the shared tag kept[j]
    emissions = torch.randn(2, 5, 3)
    tags = torch.tensor([[0, 2, 1, 1, 0], [2, 2, 0, 0, 0]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    view = crf.restricted(kept)
    nll, marginals = view.nll_and_marginals(emissions, tags, mask)
    # the same thing on all six tags, every tag outside ``kept`` scored minus "infinity"
    full = torch.full((2, 5, 6), -1e4)
    full[..., kept] = emissions
    full_nll, full_marginals = crf.nll_and_marginals(full, kept[tags], mask)
    torch.testing.assert_close(nll, full_nll, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(marginals[mask], full_marginals[..., kept][mask], atol=1e-5, rtol=0)
    paths = view.viterbi(emissions, mask)
    assert [[int(kept[t]) for t in path] for path in paths] == crf.viterbi(full, mask)
    # gradients reach only the kept tags' transition scores of the shared CRF
    nll.sum().backward()
    touched = crf.transitions.grad.abs() > 0
    outside = torch.ones(6, dtype=torch.bool)
    outside[kept] = False
    assert touched[kept][:, kept].all()
    assert not touched[outside].any() and not touched[:, outside].any()


def _task(name: str, tags: list[str]) -> object:
    sentences = [
        {"word": ["the", "cat", "sat"], "tag": tags[:3]},
        {"word": ["a", "dog"], "tag": tags[1:3]},
    ]
    return tagging_task(name, {"train": sentences, "validation": sentences, "test": sentences},
                        "tag", "accuracy")  # fmt: skip


TASKS = [_task("pos", ["DT", "NN", "VBD"]), _task("chunk", ["B-NP", "I-NP", "O"])]
ROWS = {"tokens": [["the", "cat", "sat"], ["a", "dog"]], "tags": [[0, 1, 2], [1, 2]]}


@pytest.mark.parametrize("injection", ["decoder", "encoder"])
def test_each_task_gets_distributions_over_its_own_tags(injection: str) -> None:
    torch.manual_seed(0)
    model = SharedDecoderTagger.for_tasks(TASKS, injection=injection, dropout=0.0, **SIZES)
    model.eval()
    assert len(model.union_labels) == 6
    for task in ("pos", "chunk"):
        batch = model.collate(task, ROWS)
        output = model.task_output(task, batch)
        assert output.logits.shape == (5, 3)  # five real tokens, the task's three tags
        torch.testing.assert_close(output.logits.exp().sum(dim=1), torch.ones(5))
        assert output.targets.tolist() == [0, 1, 2, 1, 2]
        assert [len(p) for p in model.decode(task, batch)] == [3, 2]
    params = {id(p) for p in model.parameters()}
    owned = {id(p) for p in model.shared_parameters()}
    owned |= {id(p) for t in ("pos", "chunk") for p in model.task_parameters(t)}
    assert owned == params


def test_te_enc_reads_the_task_token_as_a_word_and_te_dec_an_embedding() -> None:
    torch.manual_seed(0)
    enc = SharedDecoderTagger.for_tasks(TASKS, injection="encoder", dropout=0.0, **SIZES)
    batch = enc.collate("chunk", ROWS)
    assert batch["words"][:, 0].tolist() == [enc.word_vocabulary.index(task_token("chunk"))] * 2
    assert enc.task_embeddings() is None
    dec = SharedDecoderTagger.for_tasks(TASKS, injection="decoder", dropout=0.0, **SIZES)
    assert dec.task_embeddings().shape == (2, 25)
    # two tasks with the same tag names share their union entries; only the task input
    # (embedding or token) tells them apart, and it changes the scores
    twins = [_task("left", ["X", "Y", "Z"]), _task("right", ["X", "Y", "Z"])]
    for injection in ("decoder", "encoder"):
        model = SharedDecoderTagger.for_tasks(twins, injection=injection, dropout=0.0, **SIZES)
        model.eval()
        assert model.union_labels == ("X", "Y", "Z")
        left = model.task_output("left", model.collate("left", ROWS)).logits
        right = model.task_output("right", model.collate("right", ROWS)).logits
        assert not torch.allclose(left, right)


def test_task_names_with_dots_work_as_module_keys() -> None:
    from mtl_sched.models.sequence_tagger import SequenceTagger

    torch.manual_seed(0)
    tasks = [_task("eu_bdt_v1.4", ["A", "B", "C"]), _task("pos", ["DT", "NN", "VBD"])]
    model = SequenceTagger.for_tasks(tasks, dropout=0.0, **SIZES)
    assert list(model.emissions) == ["eu_bdt_v1.4", "pos"] and "eu_bdt_v1.4" in model.crfs
    assert len(list(model.task_parameters("eu_bdt_v1.4"))) == 5  # weight, bias, 3 CRF tensors
    output = model.task_output("eu_bdt_v1.4", model.collate("eu_bdt_v1.4", ROWS))
    assert output.logits.shape == (5, 3)
    copy = SequenceTagger.for_tasks(tasks, dropout=0.0, **SIZES)
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        copy.emissions["eu_bdt_v1.4"].weight, model.emissions["eu_bdt_v1.4"].weight
    )

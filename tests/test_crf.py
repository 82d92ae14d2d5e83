"""The linear-chain CRF against brute-force enumeration of every tag sequence."""

import itertools

import pytest
import torch

from mtl_sched.models.crf import CRF

C = 3
LENGTHS = [4, 1, 3, 2]  # one batch, padded to 4


def make_inputs(seed: int = 0, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(C)
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(C, C, generator=gen) * scale)
        crf.start_transitions.copy_(torch.randn(C, generator=gen) * scale)
        crf.end_transitions.copy_(torch.randn(C, generator=gen) * scale)
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), C, generator=gen, dtype=torch.float64)
    emissions = emissions * scale
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    tags = torch.randint(0, C, (len(LENGTHS), max(LENGTHS)), generator=gen)
    return crf.double(), emissions, mask, tags


def path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    """s(y) straight from the definition, for one unpadded sequence."""
    total = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
    for t, tag in enumerate(path):
        total = total + emissions[t, tag]
        if t > 0:
            total = total + crf.transitions[path[t - 1], tag]
    return total


def all_paths(length: int):
    return list(itertools.product(range(C), repeat=length))


def brute_force_log_z(crf, emissions, length):
    scores = torch.stack([path_score(crf, emissions[:length], p) for p in all_paths(length)])
    return torch.logsumexp(scores, dim=0)


def test_nll_equals_brute_force_log_sum_exp_over_all_sequences():
    crf, emissions, mask, tags = make_inputs()
    nll = crf(emissions, tags, mask)
    for b, n in enumerate(LENGTHS):
        gold = tuple(tags[b, :n].tolist())
        expected = brute_force_log_z(crf, emissions[b], n) - path_score(crf, emissions[b], gold)
        torch.testing.assert_close(nll[b], expected)
    assert bool((nll > 0).all())  # p(gold) < 1 when several sequences have mass


def test_padding_values_and_width_do_not_change_the_nll():
    crf, emissions, mask, tags = make_inputs(seed=1)
    reference = crf(emissions, tags, mask)
    noisy = emissions.masked_fill(~mask.unsqueeze(2), 1e4)
    wider = torch.cat([noisy, torch.full_like(noisy[:, :2], -7.0)], dim=1)
    wider_mask = torch.cat([mask, torch.zeros_like(mask[:, :2])], dim=1)
    wider_tags = torch.cat([tags, torch.full_like(tags[:, :2], C - 1)], dim=1)
    torch.testing.assert_close(crf(wider, wider_tags, wider_mask), reference)
    # each row alone gives the same value as inside the batch
    for b, n in enumerate(LENGTHS):
        alone = crf(emissions[b : b + 1, :n], tags[b : b + 1, :n], mask[b : b + 1, :n])
        torch.testing.assert_close(alone[0], reference[b])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_equals_brute_force_argmax(seed):
    crf, emissions, mask, _ = make_inputs(seed=seed, scale=2.0)
    decoded = crf.viterbi(emissions, mask)
    assert [len(p) for p in decoded] == LENGTHS
    for b, n in enumerate(LENGTHS):
        with torch.no_grad():
            scores = {p: float(path_score(crf, emissions[b], p)) for p in all_paths(n)}
        assert tuple(decoded[b]) == max(scores, key=scores.get)


def test_marginals_match_brute_force_and_sum_to_one():
    crf, emissions, mask, _ = make_inputs(seed=3)
    log_marginals = crf.marginals(emissions, mask)
    assert log_marginals.shape == emissions.shape
    torch.testing.assert_close(
        log_marginals.exp().sum(dim=2), torch.ones(mask.shape, dtype=torch.float64)
    )
    for b, n in enumerate(LENGTHS):
        log_z = brute_force_log_z(crf, emissions[b], n)
        expected = torch.zeros(n, C, dtype=torch.float64)
        for p in all_paths(n):
            weight = torch.exp(path_score(crf, emissions[b], p) - log_z)
            for t, tag in enumerate(p):
                expected[t, tag] += weight
        torch.testing.assert_close(log_marginals[b, :n].exp(), expected)


def test_log_partition_is_stable_for_huge_scores():
    crf, emissions, mask, tags = make_inputs(seed=4)
    big = emissions.float() * 1e4
    crf = crf.float()
    log_z = crf.log_partition(big, mask)
    assert bool(torch.isfinite(log_z).all())
    assert bool(torch.isfinite(crf.marginals(big, mask)).all())
    # with one dominant path, log Z is that path's score and the NLL of it is ~0
    best = crf.viterbi(big, mask)
    padded = torch.zeros_like(tags)
    for b, path in enumerate(best):
        padded[b, : len(path)] = torch.tensor(path)
    nll = crf(big, padded, mask).detach()
    assert bool((nll >= -1e-2).all()) and float(nll.max()) < 1.0


def test_gradients_are_finite_and_reach_every_parameter():
    crf, emissions, mask, tags = make_inputs(seed=5)
    emissions.requires_grad_(True)
    crf(emissions, tags, mask).sum().backward()
    for grad in (emissions.grad, crf.transitions.grad, crf.start_transitions.grad):
        assert grad is not None and bool(torch.isfinite(grad).all())
    assert float(crf.end_transitions.grad.abs().sum()) > 0
    # padded positions get no gradient: they do not enter the likelihood
    assert float(emissions.grad[~mask].abs().max()) == 0.0


def test_emission_gradient_is_marginal_minus_gold_indicator():
    # d NLL / d e_t[j] = p(y_t = j | x) - [y_t == j], a classical CRF identity
    crf, emissions, mask, tags = make_inputs(seed=6)
    emissions.requires_grad_(True)
    crf(emissions, tags, mask).sum().backward()
    gold = torch.nn.functional.one_hot(tags, C).to(emissions.dtype)
    expected = (crf.marginals(emissions.detach(), mask).exp() - gold) * mask.unsqueeze(2)
    torch.testing.assert_close(emissions.grad, expected)


def test_rejects_empty_sequences_and_bad_shapes():
    crf, emissions, mask, tags = make_inputs()
    empty = mask.clone()
    empty[1] = False
    with pytest.raises(ValueError, match="at least one real token"):
        crf(emissions, tags, empty)
    with pytest.raises(ValueError, match="does not match"):
        crf.viterbi(emissions, mask[:, :2])
    with pytest.raises(ValueError, match="at least one tag"):
        CRF(0)


def test_nll_and_marginals_agree_with_the_separate_computations():
    crf, emissions, mask, tags = make_inputs(seed=7)
    emissions.requires_grad_(True)
    nll, log_marginals = crf.nll_and_marginals(emissions, tags, mask)
    torch.testing.assert_close(nll, crf(emissions, tags, mask))
    torch.testing.assert_close(log_marginals, crf.marginals(emissions, mask))
    assert nll.requires_grad and not log_marginals.requires_grad

"""Word dropout and Gaussian input noise of the BiLSTM encoder (seed settings of Q-MTL)."""

import pytest
import torch

from mtl_sched.models.encoders import BiLSTMEncoder, word_dropout_probabilities


def test_word_dropout_probability_is_alpha_over_alpha_plus_count():
    probabilities = word_dropout_probabilities([0, 0, 1, 3, 100], alpha=0.25)
    expected = torch.tensor([0.0, 0.0, 0.25 / 1.25, 0.25 / 3.25, 0.25 / 100.25])
    torch.testing.assert_close(probabilities, expected)


def _encoder(word_dropout=None, noise=0.0, seed=0):
    torch.manual_seed(seed)
    return BiLSTMEncoder(
        vocab_size=6,
        embedding_dim=4,
        hidden_size=3,
        word_dropout=word_dropout,
        unk_idx=1,
        embedding_noise=noise,
    )


WORDS = torch.tensor([[2, 3, 4, 5], [5, 5, 0, 0]])
MASK = WORDS != 0


def test_certain_dropout_reads_the_word_as_unk_and_only_while_training():
    always_drop_five = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    dropping, plain = _encoder(always_drop_five), _encoder()
    as_unk = WORDS.masked_fill(WORDS == 5, 1)
    dropping.train(), plain.train()  # no dropout layer is active: dropout=0.0
    torch.testing.assert_close(dropping(WORDS, MASK), plain(as_unk, MASK))
    dropping.eval(), plain.eval()
    torch.testing.assert_close(dropping(WORDS, MASK), plain(WORDS, MASK))


def test_dropout_rate_matches_the_probability():
    half = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0, 0.0])
    encoder = _encoder(half).train()
    seen = []
    encoder.embedding.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    torch.manual_seed(1)
    words = torch.full((200, 50), 2)
    encoder(words, words != 0)
    rate = float((seen[0] == 1).float().mean())
    assert rate == pytest.approx(0.5, abs=0.02)


def test_gaussian_noise_only_while_training_and_reproducible_under_a_seed():
    noisy, plain = _encoder(noise=0.2), _encoder()
    noisy.eval(), plain.eval()
    torch.testing.assert_close(noisy(WORDS, MASK), plain(WORDS, MASK))
    noisy.train(), plain.train()
    torch.manual_seed(3)
    first = noisy(WORDS, MASK)
    assert not torch.allclose(first, plain(WORDS, MASK))
    torch.manual_seed(3)
    torch.testing.assert_close(noisy(WORDS, MASK), first)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="one probability per word"):
        _encoder(torch.zeros(3))
    with pytest.raises(ValueError, match="embedding_noise"):
        _encoder(noise=-0.1)

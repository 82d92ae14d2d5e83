import numpy as np
import pytest

from mtl_sched.studies.qmtl.label_noise import inject_label_noise


def random_sentences(count, num_classes, seed=0):
    generator = np.random.default_rng(seed)
    return [
        generator.integers(0, num_classes, size=int(generator.integers(1, 30))).tolist()
        for _ in range(count)
    ]


def test_zero_noise_keeps_every_label_and_shapes_are_kept():
    sentences = random_sentences(50, 5)
    assert inject_label_noise(sentences, 5, 0.0, seed=1) == sentences
    noisy = inject_label_noise(sentences, 5, 0.3, seed=1)
    assert [len(s) for s in noisy] == [len(s) for s in sentences]


def test_the_rate_is_close_to_p_and_every_relabel_is_a_different_valid_label():
    sentences = random_sentences(2000, 17)
    flat = np.concatenate(sentences)
    noisy = np.concatenate(inject_label_noise(sentences, 17, 0.2, seed=3))
    changed = noisy != flat
    # 30,000 tokens: the rate's standard error is about 0.0023
    assert abs(changed.mean() - 0.2) < 0.01
    assert noisy.min() >= 0 and noisy.max() < 17


def test_same_seed_same_noise_for_every_approach_and_nested_over_p():
    sentences = random_sentences(300, 4)
    flat = np.concatenate(sentences)
    first = np.concatenate(inject_label_noise(sentences, 4, 0.1, seed=7))
    again = np.concatenate(inject_label_noise(sentences, 4, 0.1, seed=7))
    other = np.concatenate(inject_label_noise(sentences, 4, 0.1, seed=8))
    higher = np.concatenate(inject_label_noise(sentences, 4, 0.3, seed=7))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    low, high = first != flat, higher != flat
    assert np.all(high[low])  # every token noisy at 0.1 is noisy at 0.3 ...
    assert np.array_equal(higher[low], first[low])  # ... with the same wrong label
    assert high.sum() > low.sum()


def test_full_noise_changes_every_label():
    sentences = random_sentences(100, 2)
    noisy = inject_label_noise(sentences, 2, 1.0, seed=0)
    assert noisy == [[1 - label for label in sentence] for sentence in sentences]


@pytest.mark.parametrize(
    ("labels", "classes", "p", "message"),
    [
        ([[0, 1]], 2, 1.5, "p must be in"),
        ([[0, 1]], 1, 0.1, "at least 2 classes"),
        ([[0, 1], [2, 5]], 3, 0.1, "label 5 of sentence 1, position 1"),
    ],
)
def test_bad_input_is_reported(labels, classes, p, message):
    with pytest.raises(ValueError, match=message):
        inject_label_noise(labels, classes, p, seed=0)

"""Small CoNLL-U texts written by the tests that read treebanks."""

from __future__ import annotations


def conllu_text(sentences: list[list[tuple[str, str]]]) -> str:
    """CoNLL-U lines of ``(word, UPOS tag)`` sentences (the word is its own lemma; every token
    hangs from the root), blank lines between sentences.

    :param sentences: the sentences, each a list of ``(word, tag)``.
    """
    blocks = []
    for sentence in sentences:
        lines = [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(sentence, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)

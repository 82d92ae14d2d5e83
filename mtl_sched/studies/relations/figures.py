"""Figures of the task-relation study: the pairwise benefit/harm graph (seed 003 Figure 3) and
a t-SNE map of the task embeddings learned by TE+DEC (seed 003 Figure 4)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mtl_sched.reporting.figures import save_figure
from mtl_sched.studies.relations.plan import Stats, relation

_COLOURS = {"higher": "tab:green", "lower": "tab:red"}


def relation_edges(
    stats: Stats, tasks: Sequence[str], k: float = 1.5
) -> list[tuple[str, str, str, str]]:
    """The graph's edges ``(s, t, relation, style)``: ``s`` benefits (``"higher"``) or harms
    (``"lower"``) ``t`` pairwise. Style ``"mutual"`` when ``t`` does the same to ``s`` (drawn
    once, dashed), ``"asymmetric"`` when it does the opposite (dotted), else ``"directed"``.

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks.
    :param k: the rule's width.
    """
    edges = []
    for i, s in enumerate(tasks):
        for t in tasks:
            forward = relation(stats, tasks, s, t, k)
            if forward is None:
                continue
            backward = relation(stats, tasks, t, s, k)
            if backward == forward:
                if tasks.index(t) > i:  # one edge for the pair
                    edges.append((s, t, forward, "mutual"))
            elif backward is not None:
                edges.append((s, t, forward, "asymmetric"))
            else:
                edges.append((s, t, forward, "directed"))
    return edges


def plot_relation_graph(
    stats: Stats, tasks: Sequence[str], path: str | os.PathLike[str], k: float = 1.5
) -> Path:
    """Draw the tasks on a circle with green (benefit) and red (harm) arrows from helper to
    test task: solid for one direction, dashed for a mutual relation, dotted for a benefit
    answered by harm.

    :param stats: ``(task set, test task) -> Score``.
    :param tasks: the study's tasks.
    :param path: the PNG to write.
    :param k: the rule's width.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    angles = [math.pi / 2 - 2 * math.pi * i / len(tasks) for i in range(len(tasks))]
    position = {t: (math.cos(a), math.sin(a)) for t, a in zip(tasks, angles, strict=True)}
    figure, axes = plt.subplots(figsize=(5, 5))
    styles = {"directed": "-", "mutual": "--", "asymmetric": ":"}
    for s, t, kind, style in relation_edges(stats, tasks, k):
        arrow = "<|-|>" if style == "mutual" else "-|>"
        axes.annotate(
            "",
            xy=position[t],
            xytext=position[s],
            arrowprops={
                "arrowstyle": arrow,
                "color": _COLOURS[kind],
                "linestyle": styles[style],
                "shrinkA": 18,
                "shrinkB": 18,
                "connectionstyle": "arc3,rad=0.12",
                "lw": 1.5,
            },
        )
    for task, (x, y) in position.items():
        axes.text(
            x, y, task.upper(), ha="center", va="center", bbox={"boxstyle": "round", "fc": "w"}
        )
    axes.set_xlim(-1.4, 1.4)
    axes.set_ylim(-1.4, 1.4)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title("pairwise MTL: green benefits, red harms (arrow: helper -> test task)")
    return save_figure(figure, path, dpi=120)


def embedding_map(embedding: Mapping[str, Sequence[float]], seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates of one model's task embeddings, in the mapping's task order.

    Each model's embeddings live in their own space (they start from their own random
    initialization), so each model gets its own map.

    :param embedding: ``task -> embedding`` of one All model.
    :param seed: t-SNE's random state.
    """
    from sklearn.manifold import TSNE

    vectors = np.array(list(embedding.values()), dtype=float)
    if len(vectors) < 3:
        raise ValueError(f"t-SNE needs at least 3 task embeddings; got {len(vectors)}")
    # perplexity must stay below the number of points
    perplexity = float(min(5.0, (len(vectors) - 1) / 2))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="random", random_state=seed)
    return tsne.fit_transform(vectors)


def plot_embedding_map(
    embeddings: Sequence[Mapping[str, Sequence[float]]], path: str | os.PathLike[str]
) -> Path:
    """One t-SNE panel per model (seed) of the task embeddings, each point named by its task
    (seed 003 Figure 4).

    :param embeddings: per seed, ``task -> embedding`` of the All model.
    :param path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(embeddings), figsize=(4 * len(embeddings), 3.6))
    for i, (ax, embedding) in enumerate(zip(np.atleast_1d(axes), embeddings, strict=True)):
        points = embedding_map(embedding)
        for j, (task, (x, y)) in enumerate(zip(embedding, points, strict=True)):
            ax.scatter([x], [y], color=f"C{j % 10}")
            ax.annotate(task.upper(), (x, y), textcoords="offset points", xytext=(4, 4))
        ax.set_title(f"model {i + 1}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle("t-SNE of TE+DEC task embeddings of the All models")
    return save_figure(figure, path, dpi=120)

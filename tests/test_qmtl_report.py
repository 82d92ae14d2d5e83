import numpy as np
import pytest

from mtl_sched.results import ResultRow, TrialKey
from mtl_sched.studies.qmtl import report

TREEBANKS = ("en_ewt", "hu_szeged")
SEEDS = (0, 1, 2)
NOISES = (0.0, 0.2)
METHODS = ("stl-0", "stl-1", "qmtl-k2", "ensemble-k2", "pta-k2")
PNG = b"\x89PNG\r\n\x1a\n"
# head j of Q-MTL minus stl-j, per treebank, in (seed, j) order; a tie is not a win
HEAD_DELTA = {
    "en_ewt": (0.010, -0.005, 0.002, 0.003, 0.0, -0.004),
    "hu_szeged": (0.004, 0.001, -0.002, 0.006, 0.001, 0.002),
}


def make_row(benchmark, scheduler, seed, split, task, metric, value, noise=0.0, fraction=1.0,
             settings="fast"):  # fmt: skip
    config = {"label_noise": noise, "train_fraction": fraction, "settings": settings}
    key = TrialKey(benchmark, f"h-{noise}-{fraction}-{settings}", scheduler, seed)
    return ResultRow(key, config, split, task, metric, value)


def build():
    """Rows as the study writes them, and the score values by (split, task, method, noise, seed)."""
    rng = np.random.default_rng(0)
    rows, score, select, seconds = [], {}, {}, {}
    for split in ("validation", "test"):
        for task in TREEBANKS:
            for method in METHODS:
                for noise in NOISES:
                    for seed in SEEDS:
                        key = (split, task, method, noise, seed)
                        score[key] = round(float(rng.uniform(0.85, 0.97)), 4)
                        rows.append(make_row("qmtl-upos", method, seed, split, task, "score",
                                             score[key], noise))  # fmt: skip
                        if method in ("qmtl-k2", "pta-k2"):
                            select[key] = round(float(rng.uniform(0.80, 0.84)), 4)
                            rows.append(make_row("qmtl-upos", method, seed, split, task,
                                                 "score_select", select[key], noise))  # fmt: skip
    for split in ("validation", "test"):
        for task in TREEBANKS:
            for seed in SEEDS:
                for j in range(2):
                    for noise in NOISES:
                        base = score[split, task, f"stl-{j}", noise, seed]
                        # at noise 0.2 every head loses: those rows must not count
                        delta = HEAD_DELTA[task][2 * seed + j] if noise == 0.0 else -0.05
                        rows.append(make_row("qmtl-upos", "qmtl-k2", seed, split, task,
                                             f"head{j}_score", base + delta, noise))  # fmt: skip
    for task_index, task in enumerate(TREEBANKS):
        for seed in SEEDS:
            for method, base in (("stl-0", 100), ("stl-1", 110), ("qmtl-k2", 130),
                                 ("ensemble-k2", 210), ("pta-k2", 120)):  # fmt: skip
                for noise in NOISES:
                    value = base * (task_index + 1) + 10 * seed + (1000 if noise else 0)
                    seconds[task, method, noise, seed] = value
                    rows.append(make_row("qmtl-upos", method, seed, "model", task,
                                         "train_seconds", float(value), noise))  # fmt: skip
            for j in range(2):
                for matrix, stl_norm, head_norm in (("V", 3.0, 1.0), ("W", 5.0, 2.0)):
                    rows.append(make_row("qmtl-upos", f"stl-{j}", seed, "model", task,
                                         f"frobenius_{matrix}", stl_norm + seed))  # fmt: skip
                    name = f"head{j}_frobenius_{matrix}"
                    rows.append(make_row("qmtl-upos", "qmtl-k2", seed, "model", task, name,
                                         head_norm + seed))  # fmt: skip
    return rows, score, select, seconds


def ner_rows():
    values = {
        (1.0, "stl-0"): (0.86, 0.87), (1.0, "qmtl-k2"): (0.88, 0.87),
        (1.0, "ensemble-k2"): (0.89, 0.90), (0.1, "stl-0"): (0.75, 0.78),
        (0.1, "qmtl-k2"): (0.80, 0.81), (0.1, "ensemble-k2"): (0.79, 0.77),
    }  # fmt: skip
    rows = [
        make_row("qmtl-ner", method, seed, split, "ner", "score", value, 0.0, fraction)
        for (fraction, method), pair in values.items()
        for seed, value in enumerate(pair)
        for split in ("validation", "test")
    ]
    return rows, values


def fmt(values):
    array = np.asarray(values, dtype=float) * 100
    std = array.std(ddof=1) if len(values) > 1 else 0.0
    return f"{array.mean():.2f} ± {std:.2f} (n={len(values)})"


def line(table, *first):
    """The cells of the table line whose first cells are ``first``."""
    for text in table.splitlines():
        cells = [cell.strip() for cell in text.strip().strip("|").split("|")]
        if text.startswith("|") and tuple(cells[: len(first)]) == first:
            return cells
    raise AssertionError(f"no line {first} in\n{table}")


@pytest.fixture(scope="module")
def study():
    return build()


def test_accuracy_table_cells_average_and_paper_column(study):
    rows, score, _, _ = study
    table = report.accuracy_table(rows, "validation")
    header = line(table, "treebank")
    assert header == ["treebank", "STL", "Q-MTL 2", "Ensemble 2", "paper (k=1/10/30)"]
    assert "settings: fast" in table
    means = {}
    for task in TREEBANKS:
        cells = line(table, task)
        for column, method in ((1, "stl-0"), (2, "qmtl-k2"), (3, "ensemble-k2")):
            values = [score["validation", task, method, 0.0, seed] for seed in SEEDS]
            assert cells[column] == fmt(values)
            means[task, method] = np.mean(values)
    assert line(table, "en_ewt")[4] == "94.99 / 95.23 / 95.21"
    average = line(table, "average")
    for column, method in ((1, "stl-0"), (2, "qmtl-k2"), (3, "ensemble-k2")):
        expected = (means["en_ewt", method] + means["hu_szeged", method]) / 2 * 100
        assert average[column] == f"{expected:.2f}"
    # with unequal seed counts the mean of treebank means differs from the pooled mean
    dropped = ("hu_szeged", "stl-0", 2, "validation")
    fewer = [r for r in rows if (r.task, r.key.scheduler, r.key.seed, r.split) != dropped]
    hu = np.mean([score["validation", "hu_szeged", "stl-0", 0.0, seed] for seed in (0, 1)])
    expected = (means["en_ewt", "stl-0"] + hu) / 2 * 100
    assert line(report.accuracy_table(fewer, "validation"), "average")[1] == f"{expected:.2f}"
    test_table = report.accuracy_table(rows, "test")
    assert "paper" not in test_table
    one_seed = report.accuracy_table([r for r in rows if r.key.seed == 0], "test")
    assert line(one_seed, "en_ewt")[1] == fmt([score["test", "en_ewt", "stl-0", 0.0, 0]])
    assert "± 0.00 (n=1)" in one_seed


def test_per_head_summary_counts_strict_wins_at_noise_zero(study):
    rows, *_ = study
    table = report.per_head_summary(rows, "test")
    assert line(table, "en_ewt") == [
        "en_ewt",
        "6",
        "3",
        f"{np.mean(HEAD_DELTA['en_ewt']) * 100:+.2f}",
    ]
    assert line(table, "hu_szeged")[1:3] == ["6", "5"]
    assert report.per_head_summary(ner_rows()[0]) == ""
    assert report.per_head_figure(ner_rows()[0], "unused.png") is None


def test_noise_table_stl_is_the_mean_of_the_k_single_models(study):
    rows, score, _, _ = study
    # Q-MTL with k = 3 at noise 0 only: the noise table must stay at k = 2
    extra = [make_row("qmtl-upos", "qmtl-k3", 0, "test", "en_ewt", "score", 0.5)]
    table = report.noise_table(rows + extra, "test")
    assert "Q-MTL 3" not in table and "k = 2" in table
    stl = "STL (mean of the k single models)"
    task_means = []
    for task in TREEBANKS:
        per_seed = [
            np.mean([score["test", task, f"stl-{j}", 0.2, seed] for j in range(2)])
            for seed in SEEDS
        ]
        assert line(table, "0.2", stl)[3 + TREEBANKS.index(task)] == fmt(per_seed)
        task_means.append(np.mean(per_seed))
    assert line(table, "0.2", stl)[2] == f"{np.mean(task_means) * 100:.2f}"
    ensemble = [score["test", "hu_szeged", "ensemble-k2", 0.0, seed] for seed in SEEDS]
    assert line(table, "0", "Ensemble 2")[4] == fmt(ensemble)
    assert "Q-MTL 3" in report.accuracy_table(rows + extra, "test")


def test_time_table_means_and_ratios(study):
    rows, _, _, seconds = study
    table = report.time_table(rows)
    cells = line(table, "hu_szeged")
    stl = np.mean([seconds["hu_szeged", "stl-0", 0.0, s] for s in SEEDS])
    qmtl = np.mean([seconds["hu_szeged", "qmtl-k2", 0.0, s] for s in SEEDS])
    ensemble = np.mean([seconds["hu_szeged", "ensemble-k2", 0.0, s] for s in SEEDS])
    assert line(table, "treebank")[1:] == ["STL (s)", "Q-MTL 2 (s)", "Q-MTL 2 / STL",
                                           "Ensemble 2 (s)", "Ensemble 2 / STL"]  # fmt: skip
    assert cells[1:] == [f"{stl:.1f}", f"{qmtl:.1f}", f"{qmtl / stl:.2f}", f"{ensemble:.1f}",
                         f"{ensemble / stl:.2f}"]  # fmt: skip
    assert cells[3] == "1.29"  # 270 / 210 seconds, noise-0.2 rows left out


def test_selection_table_separates_averaging_and_selection(study):
    rows, score, select, _ = study
    table = report.selection_table(rows, "test")
    assert line(table, "treebank")[2:] == [
        "Q-MTL averaging", "Q-MTL selection", "PTA averaging", "PTA selection"
    ]  # fmt: skip
    cells = line(table, "en_ewt", "0.2")
    expected = [
        fmt([source["test", "en_ewt", method, 0.2, s] for s in SEEDS])
        for source, method in ((score, "qmtl-k2"), (select, "qmtl-k2"), (score, "pta-k2"),
                               (select, "pta-k2"))
    ]  # fmt: skip
    assert cells[2:] == expected
    assert [text.split("|")[1].strip() for text in table.splitlines()[4:]] == [
        "en_ewt", "en_ewt", "hu_szeged", "hu_szeged"
    ]  # fmt: skip


def test_norms_summary_means(study):
    rows, *_ = study
    cells = line(report.norms_summary(rows), "en_ewt")
    # STL V norms are 3 + seed, head norms 1 + seed; 2 models (heads) x 3 seeds each
    assert cells[1:] == ["2.000 (n=6)", "4.000 (n=6)", "3.000 (n=6)", "6.000 (n=6)"]


def test_ner_table_lines_and_paper_numbers():
    rows, values = ner_rows()
    table = report.ner_table(rows, "test")
    assert line(table, "train data") == ["train data", "STL", "Q-MTL 2", "Ensemble 2",
                                         "paper (STL/Q-MTL/ensemble, k=10)"]  # fmt: skip
    for label, fraction, paper in (("100%", 1.0, "86.68 / 86.88 / 87.86"),
                                   ("10%", 0.1, "77.54 / 80.24 / 78.52")):  # fmt: skip
        cells = line(table, label)
        methods = ("stl-0", "qmtl-k2", "ensemble-k2")
        assert cells[1:4] == [fmt(values[fraction, m]) for m in methods]
        assert cells[4] == paper
    assert table.index("| 100%") < table.index("| 10%")
    assert "paper" not in report.ner_table(rows, "validation")
    assert report.ner_table(build()[0], "test") == ""


def test_write_report_writes_every_part_and_png_figures(study, tmp_path):
    rows, *_ = study
    written = report.write_report(rows + ner_rows()[0], tmp_path / "out")
    names = [path.name for path in written]
    assert names[0] == "qmtl_report.md"
    assert sorted(names[1:]) == sorted(
        f"qmtl_{part}.png" for part in ("per_head", "norms", "noise", "time", "selection")
    )
    for path in written[1:]:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    markdown = written[0].read_text()
    assert "Parts without rows" not in markdown
    assert markdown.count("UPOS accuracy (%) on ") == 2 and "NER span F1" in markdown


def test_write_report_skips_parts_without_rows(tmp_path):
    rows, _ = ner_rows()
    written = report.write_report(rows, tmp_path)
    assert [path.name for path in written] == ["qmtl_report.md"]
    markdown = written[0].read_text()
    missing = markdown.split("Parts without rows")[1]
    assert "UPOS accuracy" in missing and "Label noise" in missing and "NER" not in missing
    assert not list(tmp_path.glob("*.png"))
    empty = report.write_report([], tmp_path / "empty")
    assert [path.name for path in empty] == ["qmtl_report.md"]


def test_write_report_keeps_settings_apart(tmp_path):
    rows = [
        make_row("qmtl-upos", method, 0, "model", "en_ewt", "train_seconds", value)
        for method, value in (("stl-0", 10.0), ("qmtl-k2", 12.0))
    ]
    ner = [make_row("qmtl-ner", "stl-0", 0, "test", "ner", "score", 0.8, settings="seed")]
    names = sorted(path.name for path in report.write_report(rows + ner, tmp_path))
    assert names == ["qmtl_report.md", "qmtl_time_fast.png"]
    markdown = (tmp_path / "qmtl_report.md").read_text()
    fast, seed = markdown.split("## settings: fast")[1].split("## settings: seed")
    assert "Training time" in fast and "NER" not in fast.split("Parts without rows")[0]
    assert "80.00 ± 0.00 (n=1)" in seed and "settings: seed" in seed

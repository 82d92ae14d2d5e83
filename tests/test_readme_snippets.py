"""Every Python snippet of the README and of the documentation pages runs, in order within its
page's section, at small budgets.

A snippet preceded by ``<!-- not-run: reason -->`` is skipped for that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from documentation_pages import documentation_pages

from mtl_sched import benchmarks, registry
from mtl_sched.cli.examples import fenced_blocks
from mtl_sched.data import tagging_tasks
from mtl_sched.scheduler_needs import needs_table

PAGES = documentation_pages()
NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->$")
NEEDS_TABLE = re.compile(r"<!-- needs-table -->\n(?P<table>.*?)<!-- /needs-table -->", re.S)
NEEDS_TABLE_PAGE = "docs/guide/plug-in.md"
# The pages' runs at their real sizes take minutes; these cuts (page -> text -> its stand-in)
# make each section run in seconds. Every cut must still find its text in its page.
CUTS = {
    page: {
        'get_benchmark("synthetic")': 'get_benchmark("synthetic", small=True)',
        "agent.learn(6_000)": "agent.learn(40)",
    }
    for page in ("README.md", "docs/getting-started.md")
} | {
    "docs/guide/plug-in.md": {"agent.learn(2_000)": "agent.learn(40)"},
}

# a snippet importing one of these stops its section, skipped, where the extra is not installed
OPTIONAL_EXTRAS = {
    "transformers": "hf",
    "ray": "ray",
    "torchjd": "jd",
    "tensorboard": "tensorboard",
}
# (page, section) pairs whose snippets take over ~10 s on two CPU cores, kept out of the default
# run; none today (the slowest, "Your own framework" of the plug-in guide, takes about 6 s)
SLOW_SECTIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Snippet:
    """One fenced Python block of a Markdown file.

    :param section: the heading of its level-1 or level-2 section.
    :param line: the line of its opening fence (1-based).
    :param code: its source.
    :param skip_reason: the reason of a ``not-run`` marker before it, else ``None``.
    """

    section: str
    line: int
    code: str
    skip_reason: str | None = None


def extract_snippets(path: Path) -> list[Snippet]:
    """The ```python blocks of the Markdown file ``path``, in order."""
    snippets = []
    for block in fenced_blocks(path.read_text(encoding="utf-8")):
        if block.info != "python":
            continue
        marker = NOT_RUN.match(block.preceding)
        reason = marker.group("reason").strip() if marker else None
        if marker and not reason:
            raise ValueError(f"{path}:{block.line}: a not-run marker must give its reason")
        snippets.append(Snippet(block.section, block.line, "\n".join(block.lines) + "\n", reason))
    return snippets


def page_sections() -> dict[tuple[str, str], list[Snippet]]:
    """The snippets of every page, grouped by (page, section), in order."""
    grouped: dict[tuple[str, str], list[Snippet]] = {}
    for page, path in PAGES.items():
        for snippet in extract_snippets(path):
            grouped.setdefault((page, snippet.section), []).append(snippet)
    return grouped


SECTIONS = page_sections()


def run_snippets(path: Path, snippets: list[Snippet], cuts: dict[str, str]) -> None:
    """Run ``snippets`` of ``path`` in order in one namespace, with ``cuts`` applied."""
    torch.manual_seed(0)
    namespace: dict[str, object] = {"__name__": "documentation_snippet"}
    for snippet in snippets:
        if snippet.skip_reason is not None:
            continue
        code = snippet.code
        for real, small in cuts.items():
            code = code.replace(real, small)
        try:
            exec(compile(code, f"{path}:{snippet.line}", "exec"), namespace)
        except ModuleNotFoundError as err:
            if err.name not in OPTIONAL_EXTRAS:
                raise
            pytest.skip(f"{path}:{snippet.line} needs the {OPTIONAL_EXTRAS[err.name]} extra")


@pytest.fixture
def restored_registries(monkeypatch, tmp_path):
    """Benchmarks, schedulers and tagging tasks a snippet registers, and files it writes, do not
    outlive it."""
    monkeypatch.chdir(tmp_path)
    registry.scheduler_names()  # the built-in ones are registered once, on first use
    tables = (
        benchmarks._BENCHMARKS,
        registry._SCHEDULERS,
        tagging_tasks._LOADERS,
        tagging_tasks._CONLL_SPECS,
    )
    saved = [(table, dict(table)) for table in tables]
    yield
    for table, entries in saved:
        table.clear()
        table.update(entries)


@pytest.mark.parametrize(
    ("page", "section"),
    [
        pytest.param(
            page,
            section,
            id=f"{page}#{section}",
            marks=[pytest.mark.slow] if (page, section) in SLOW_SECTIONS else [],
        )
        for page, section in SECTIONS
    ],
)
def test_the_snippets_of_a_section_run_in_order(page, section, restored_registries):
    run_snippets(PAGES[page], SECTIONS[page, section], CUTS.get(page, {}))


def test_the_pages_with_snippets_include_the_readme_and_the_guides():
    pages = {page for page, _ in SECTIONS}
    assert {"README.md", "docs/getting-started.md", NEEDS_TABLE_PAGE} <= pages
    assert set(SECTIONS) >= SLOW_SECTIONS


def test_every_cut_finds_its_text_in_its_page():
    missing = []
    for page, cuts in CUTS.items():
        code = "".join(snippet.code for snippet in extract_snippets(PAGES[page]))
        missing += [(page, real) for real in cuts if real not in code]
    assert missing == []


def test_the_needs_table_is_the_rendered_one():
    assert NEEDS_TABLE.search(PAGES[NEEDS_TABLE_PAGE].read_text(encoding="utf-8"))
    for page, path in PAGES.items():
        found = NEEDS_TABLE.search(path.read_text(encoding="utf-8"))
        if found is None:
            continue
        # the registry's order depends on which modules were imported first: compare the rows
        # the page lists, in its order, and that it lists every scheduler
        names = re.findall(r"^\| `([^`]+)` \|", found.group("table"), re.M)
        assert sorted(names) == sorted(registry.scheduler_names()), page
        assert found.group("table") == needs_table(names), page


def test_extraction_by_hand(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```python\na = 1\n```\n\n## Use\n\ntext\n\n```bash\nls\n```\n\n"
        "<!-- not-run: needs a GPU -->\n\n```python\nb = 2\n```\n\n### Detail\n\n"
        "- item\n\n  ```python\n  c = a\n  # not a heading\n  ```\n"
    )
    assert extract_snippets(page) == [
        Snippet("Title", 3, "a = 1\n"),
        Snippet("Use", 17, "b = 2\n", "needs a GPU"),
        Snippet("Use", 25, "c = a\n# not a heading\n"),
    ]
    page.write_text("<!-- not-run: -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="reason"):
        extract_snippets(page)


def test_a_wrong_snippet_fails_its_section(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "## Use\n\n```python\ntotal = 1\n```\n\n<!-- not-run: shown only -->\n"
        "```python\nraise RuntimeError\n```\n\n```python\nprint(totl)\n```\n"
    )
    snippets = extract_snippets(page)
    run_snippets(page, snippets[:2], {})  # the skipped one is not run
    with pytest.raises(NameError, match="totl"):
        run_snippets(page, snippets, {})
    run_snippets(page, snippets, {"totl": "total"})

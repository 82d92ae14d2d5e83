"""The documentation pages whose snippets and command lines the tests check."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def documentation_pages() -> dict[str, Path]:
    """The README and every page of the MkDocs site (``docs/**/*.md``), by their paths relative
    to the repository, README first. The README read is ``$MTL_SCHED_README`` when set (a
    draft of a section, say)."""
    readme = Path(os.environ.get("MTL_SCHED_README", REPOSITORY / "README.md"))
    pages = {"README.md": readme}
    for page in sorted((REPOSITORY / "docs").rglob("*.md")):
        pages[page.relative_to(REPOSITORY).as_posix()] = page
    return pages

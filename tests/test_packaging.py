"""What the wheel ships: every package of the source tree, the type marker, the license and
the ``python -m mtl_sched`` entry point. ``.ci/install_check`` installs the wheel itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the standard library reads TOML from 3.11 on
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_packages(package_dir: dict[str, str]) -> dict[str, Path]:
    """Every directory holding an ``__init__.py`` under the mapped source roots, by the dotted
    name it is installed as."""
    found = {}
    for name, directory in package_dir.items():
        root = ROOT / directory
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            if "__pycache__" not in relative:
                found[".".join((name, *relative))] = init.parent
    return found


def test_every_source_package_is_listed_in_pyproject():
    table = _setuptools_table()
    source = _source_packages(table["package-dir"])
    listed = set(table["packages"])
    missing = sorted(set(source) - listed)
    assert not missing, f"packages missing from pyproject's [tool.setuptools] packages: {missing}"
    stale = sorted(listed - set(source))
    assert not stale, f"pyproject lists packages that have no __init__.py: {stale}"


def test_the_source_roots_map_where_the_packages_are():
    # the subpackages kept outside mtl_sched/ are found only through this mapping
    package_dir = _setuptools_table()["package-dir"]
    assert package_dir == {
        "mtl_sched": "mtl_sched",
        "mtl_sched.envs": "envs",
        "mtl_sched.agents": "agents",
        "mtl_sched.baselines": "baselines",
    }
    for directory in package_dir.values():
        assert (ROOT / directory / "__init__.py").is_file(), directory


def test_the_type_marker_and_license_ship():
    assert (ROOT / "mtl_sched" / "py.typed").is_file()
    assert "py.typed" in _setuptools_table()["package-data"]["mtl_sched"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_extra_is_declared_and_all_gathers_the_optional_parts():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"dev", "ray", "jd", "tensorboard", "hf", "docs", "all"} <= set(extras)
    assert extras["all"] == ["mtl-sched[ray,jd,tensorboard,hf]"]


@pytest.mark.serial
def test_python_dash_m_runs_the_command():
    module = subprocess.run(
        [sys.executable, "-m", "mtl_sched", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert module.stdout.startswith("usage: mtl-sched")
    for command in ("train-agent", "run", "compare", "report", "study"):
        assert command in module.stdout

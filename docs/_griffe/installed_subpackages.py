"""Griffe extension: document the packages that are installed inside `mtl_sched`.

`envs/`, `agents/` and `baselines/` sit at the top of the repository but are installed as
`mtl_sched.envs`, `mtl_sched.agents` and `mtl_sched.baselines` (setuptools' ``package-dir``).
Griffe reads `mtl_sched` from its folder and would not find them there, so this extension loads
each folder and attaches it to `mtl_sched` under its installed name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from griffe import Extension, GriffeLoader, Module

REPOSITORY = Path(__file__).resolve().parents[2]
INSTALLED_INSIDE = {"mtl_sched": ("envs", "agents", "baselines")}


class InstalledSubpackages(Extension):
    """Attach the top-level folders of `INSTALLED_INSIDE` to the package they install into."""

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        """Load each folder installed inside ``pkg`` and make it a member of ``pkg``.

        :param pkg: the package just loaded.
        :param loader: the loader that loaded it.
        """
        for folder in INSTALLED_INSIDE.get(pkg.name, ()):
            # sharing the collection lets the folder's imports of `mtl_sched.<folder>.*` resolve
            folder_loader = GriffeLoader(
                search_paths=[REPOSITORY], modules_collection=loader.modules_collection
            )
            module = folder_loader.load(folder)
            assert isinstance(module, Module)
            loader.modules_collection.del_member(folder)
            pkg.set_member(folder, module)

"""Packaging contract of the monorepo.

* every distribution declares a static version equal to its ``__version__``;
* every sibling requirement (``xtal-graph>=0.1,<0.2`` ...) is satisfiable by the sibling's version;
* the dependency direction of docs/DESIGN.md holds, with no cycles, both in the metadata and in the
  import statements of the source tree (an undeclared sibling import is a bug too);
* xtal-eval never imports torch; xtal-data's core never imports torch or a model package.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {
    "xtal-graph": ROOT / "packages" / "xtal_graph",
    "score-decoder": ROOT / "packages" / "score_decoder",
    "cond-vae": ROOT / "packages" / "cond_vae",
    "xtal-eval": ROOT / "packages" / "xtal_eval",
    "xtal-data": ROOT / "packages" / "xtal_data",
    "xtal-tools": ROOT / "tools",
}
IMPORT_NAME = {dist: dist.replace("-", "_") for dist in PROJECTS}

# Allowed sibling dependencies (core requirements, and extras where noted), from docs/DESIGN.md.
ALLOWED_CORE = {
    "xtal-graph": set(),
    "score-decoder": {"xtal-graph"},
    "cond-vae": {"xtal-graph", "score-decoder"},
    "xtal-eval": set(),
    "xtal-data": {"xtal-eval"},  # the torch-free base (minimum image, structure-file parsing)
    "xtal-tools": {"xtal-graph", "score-decoder", "cond-vae", "xtal-eval", "xtal-data"},
}
ALLOWED_EXTRA = {
    "xtal-graph": set(),
    "score-decoder": set(),
    "cond-vae": {"xtal-data", "xtal-eval"},
    "xtal-eval": set(),
    "xtal-data": {"xtal-graph"},  # the torch adapter
    "xtal-tools": set(),
}


def _meta(dist: str) -> dict:
    return tomllib.loads((PROJECTS[dist] / "pyproject.toml").read_text())["project"]


def _sibling_requirements(dist: str) -> tuple[list[Requirement], list[Requirement]]:
    meta = _meta(dist)
    core = [Requirement(r) for r in meta.get("dependencies", [])]
    extra = [Requirement(r) for reqs in meta.get("optional-dependencies", {}).values() for r in reqs]
    keep = lambda reqs: [r for r in reqs if r.name in PROJECTS]  # noqa: E731
    return keep(core), keep(extra)


@pytest.mark.parametrize("dist", sorted(PROJECTS))
def test_static_version_matches_dunder_version(dist):
    meta = _meta(dist)
    assert meta["name"] == dist
    version = meta["version"]
    init = PROJECTS[dist] / "src" / IMPORT_NAME[dist] / "__init__.py"
    found = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.M)
    assert found, f"{init} does not define __version__"
    assert found.group(1) == version, f"{dist}: pyproject {version} != __version__ {found.group(1)}"
    assert (init.parent / "py.typed").exists(), f"{dist} ships no py.typed"
    assert (PROJECTS[dist] / "README.md").exists(), f"{dist} has no README.md"


@pytest.mark.parametrize("dist", sorted(PROJECTS))
def test_sibling_ranges_are_satisfiable_and_direction_holds(dist):
    core, extra = _sibling_requirements(dist)
    for req in core + extra:
        sibling_version = _meta(req.name)["version"]
        assert req.specifier.contains(sibling_version, prereleases=True), (
            f"{dist} requires {req}, but {req.name} is at {sibling_version}"
        )
        assert str(req.specifier), f"{dist}: sibling requirement {req.name} has no version range"
    assert {r.name for r in core} <= ALLOWED_CORE[dist], f"{dist}: core deps break DESIGN.md direction"
    assert {r.name for r in extra} <= ALLOWED_CORE[dist] | ALLOWED_EXTRA[dist], (
        f"{dist}: optional deps break DESIGN.md direction"
    )


def test_no_dependency_cycles():
    graph = {d: {r.name for r in sum(_sibling_requirements(d), [])} for d in PROJECTS}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("dependency cycle: " + " -> ".join([*path, node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph[node]:
            visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def _imported_top_level(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# Undeclared sibling imports that are deliberate: lazy, optional, and behind an ImportError fallback.
OPTIONAL_IMPORTS = {
    "xtal-eval": {
        "xtal_data"
    },  # xtal_eval.io reads a store if xtal-data (which depends on xtal-eval) is there
}


@pytest.mark.parametrize("dist", sorted(PROJECTS))
def test_source_imports_follow_declared_dependencies(dist):
    core, extra = _sibling_requirements(dist)
    declared = (
        {IMPORT_NAME[r.name] for r in core + extra} | {IMPORT_NAME[dist]} | OPTIONAL_IMPORTS.get(dist, set())
    )
    siblings = set(IMPORT_NAME.values())
    for path in (PROJECTS[dist] / "src").rglob("*.py"):
        used = _imported_top_level(path) & siblings
        assert used <= declared, f"{path.relative_to(ROOT)} imports undeclared siblings {used - declared}"


def test_xtal_eval_never_imports_torch():
    for path in (PROJECTS["xtal-eval"] / "src").rglob("*.py"):
        used = _imported_top_level(path)
        assert not used & {"torch", "torch_geometric", "e3nn"}, f"{path} imports torch"
        assert not used & (set(IMPORT_NAME.values()) - {"xtal_eval", "xtal_data"}), path


def test_xtal_data_core_is_torch_free():
    """Only xtal_data/torch* modules (the optional adapter) may import torch or a model package."""
    forbidden = {"torch", "xtal_graph", "score_decoder", "cond_vae", "torch_geometric"}
    for path in (PROJECTS["xtal-data"] / "src").rglob("*.py"):
        if path.stem.startswith("torch") or "torch" in path.parent.name:
            continue
        used = _imported_top_level(path)
        assert not used & forbidden, f"{path.relative_to(ROOT)} (core) imports {used & forbidden}"

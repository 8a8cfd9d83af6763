"""The shape of xtal-tools: a workflow library, and thin commands over it.

* a command module (``xtal_tools/cli/<command>.py``) imports no other command module, only the shared
  ``cli._common`` / ``cli._options``, and stays thin (it parses, resolves one config, calls the library,
  reports);
* the library (everything outside ``xtal_tools/cli``) never imports typer or the command line, and
  imports without typer installed;
* no import is silenced: a command whose import breaks fails loudly instead of vanishing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "src" / "xtal_tools"
CLI = PACKAGE / "cli"
SHARED = {"__init__", "_common", "_options", "_shared"}
# a command is a module of cli/, or of a command group's package (cli/benchmark/: one module per family)
COMMANDS = sorted(p for p in [*CLI.glob("*.py"), *CLI.glob("*/*.py")] if p.stem not in SHARED)
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if CLI not in p.parents)
MAX_COMMAND_LINES = 400  # a module (paper: four benchmarks, one option per line)
MAX_BODY_LINES = 45  # a command's body (after its signature and docstring): parse, resolve, call, report


def _module(path: Path) -> str:
    return ".".join(("xtal_tools", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
        ".__init__"
    )


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; ``from a import b`` counts ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_there_are_commands_and_library_modules():
    assert {p.stem for p in COMMANDS} == {
        "train",
        "sample",
        "csp",
        "evaluate",
        "model_info",
        "paper",
        "pressure",
    }
    assert len(LIBRARY) > 10


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.stem)
def test_a_command_imports_no_other_command(path):
    others = {_module(p) for p in COMMANDS if p != path}
    assert not _imports(path) & others, f"{path.name} imports another command module"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.stem)
def test_a_command_stays_thin(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_COMMAND_LINES, f"{path.name}: {lines} lines; move the logic into the library"
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        body = node.body[1:] if ast.get_docstring(node) else node.body
        size = body[-1].end_lineno - body[0].lineno + 1
        assert size <= MAX_BODY_LINES, f"{path.name}: {node.name}() has {size} lines of body"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_library_never_imports_the_command_line(path):
    bad = {
        name for name in _imports(path) if name == "typer" or name.startswith(("typer.", "xtal_tools.cli"))
    }
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", [*COMMANDS, *CLI.rglob("__init__.py")], ids=lambda p: _module(p))
def test_no_command_silences_an_import_error(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = ast.unparse(node.type)
            assert "ImportError" not in caught and "ModuleNotFoundError" not in caught, path.name


def test_the_library_imports_without_typer():
    """Every library module imports in a Python where ``import typer`` fails."""
    modules = [_module(p) for p in LIBRARY]
    code = "import sys; sys.modules['typer'] = None\nimport importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]

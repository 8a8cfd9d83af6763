"""Run the scripts of ``examples/`` from tests: in this process (``load_example``) or in a fresh
interpreter (``run_example``), both with ``examples/`` on the path as when run as a script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, monkeypatch) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (``monkeypatch`` undoes the path change)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(name: str, *args: str, check_no_torch: bool = False, timeout: float = 120):
    """``python examples/<name>.py ARGS`` in a subprocess; with ``check_no_torch`` it fails when the
    script imported torch (directly or through a dependency)."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{str(EXAMPLES / f'{name}.py')!r}, *{list(args)!r}]\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    if check_no_torch:
        code += "assert 'torch' not in sys.modules, 'the example imported torch'\nprint('NO_TORCH_OK')\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )

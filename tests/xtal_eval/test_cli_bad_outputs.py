"""xtal-eval command line and bad output paths (issue 17): checked before computing, metrics never lost."""

from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import pytest
from typer import testing as typer_testing
from xtal_eval import __version__
from xtal_eval.cli import app

from tests.xtal_eval.test_io_cli import files  # noqa: F401  (fixture)

runner = typer_testing.CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _recon(tmp, *extra: str):
    return runner.invoke(app, ["recon", str(tmp / "pred"), str(tmp / "gt.csv"), "--no-gates", *extra])


def test_unwritable_output_is_refused_before_computing(files, monkeypatch):  # noqa: F811
    tmp, _, _ = files
    import xtal_eval.recon

    monkeypatch.setattr(xtal_eval.recon, "reconstruction", lambda *a, **k: pytest.fail("computed anyway"))
    (tmp / "a_file").write_text("x")
    result = _recon(tmp, "--json", str(tmp / "a_file" / "out.json"))
    assert result.exit_code == 1 and "a_file is not a folder" in result.output
    result = _recon(tmp, "--csv", str(tmp / "pred"))
    assert result.exit_code == 1 and "it is a folder" in result.output
    monkeypatch.setattr(
        "tempfile.TemporaryFile", lambda **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
    )
    result = _recon(tmp, "--json", str(tmp / "locked" / "out.json"))
    assert result.exit_code == 1 and "is not writable (Permission denied)" in result.output
    assert not (tmp / "locked").exists()


def test_failed_write_prints_the_metrics_and_exits_1(files, monkeypatch):  # noqa: F811
    tmp, _, _ = files
    import xtal_eval._cli_app as cli_app

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cli_app, "write_json", refuse)
    result = _recon(tmp, "--preset", "cdvae", "--json", str(tmp / "out.json"))
    assert result.exit_code == 1 and f"cannot write {tmp / 'out.json'} (Permission denied)" in result.output
    printed = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
    assert printed["match_rate"] == 1.0 and printed["command"] == "recon"
    assert not (tmp / "out.json").exists()


def test_typer_is_a_core_dependency_and_version():
    meta = tomllib.loads((ROOT / "packages" / "xtal_eval" / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("typer") for d in meta["dependencies"])
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"xtal-eval {__version__}"


def test_importing_the_cli_installs_no_warning_filter():
    before = list(warnings.filters)
    import importlib

    import xtal_eval._cli_app

    importlib.reload(xtal_eval._cli_app)
    assert warnings.filters == before


def test_warnings_are_reported_once_with_a_count(files, monkeypatch):  # noqa: F811
    tmp, _, _ = files
    import xtal_eval._cli_app as cli_app

    real = cli_app.load_structures

    def noisy(path, **kwargs):
        for _ in range(3):
            warnings.warn("Issues encountered while parsing CIF: rounded", UserWarning, stacklevel=1)
        return real(path, **kwargs)

    monkeypatch.setattr(cli_app, "load_structures", noisy)
    result = _recon(tmp, "--preset", "cdvae")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "Issues encountered" in line]
    assert lines == ["warning (6x): UserWarning: Issues encountered while parsing CIF: rounded"]

"""The ``xtal`` umbrella command registers every tool and prints every distribution's version."""

from __future__ import annotations

from typer.testing import CliRunner
from xtal_tools.cli import app

runner = CliRunner()


def test_version_lists_all_six_distributions():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    for dist in ("xtal-graph", "score-decoder", "cond-vae", "xtal-eval", "xtal-data", "xtal-tools"):
        assert f"{dist} 0.1.0" in res.output


def test_every_tool_is_registered():
    for args in (
        ["train", "--help"],
        ["sample", "--help"],
        ["csp", "--help"],
        ["evaluate", "recon", "--help"],
        ["benchmark", "recon", "--help"],
        ["benchmark", "success", "--help"],
        ["benchmark", "known-phase", "--help"],
        ["benchmark", "localopt", "--help"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "--out" in res.output

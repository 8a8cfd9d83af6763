"""The one error exit of the command-line apps: ``error: <message>`` on stderr, status 1."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner
from xtal_eval.cli_support import EXPECTED_ERRORS, checked, fail

pytestmark = pytest.mark.torch_free


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def run() -> None:
        with checked():
            raise exc

    return app


@pytest.mark.parametrize(
    ("exc", "line"),
    [(ValueError("bad value"), "error: bad value"), (KeyError("no split 'x'"), "error: no split 'x'")],
)
def test_expected_errors_exit_1_with_one_line(exc, line):
    result = CliRunner().invoke(_app(exc), [])
    assert result.exit_code == 1 and result.stderr.strip() == line  # a KeyError's message is unquoted


def test_unexpected_errors_propagate_and_fail_takes_a_string():
    result = CliRunner().invoke(_app(RuntimeError("bug")), [])
    assert isinstance(result.exception, RuntimeError)
    assert RuntimeError not in EXPECTED_ERRORS
    with pytest.raises(typer.Exit) as info:
        fail("plain message")
    assert info.value.exit_code == 1

"""Entry point of the ``xtal-eval`` command (typer is a core dependency: it is small and torch-free)."""

from __future__ import annotations

from xtal_eval._cli_app import app

__all__ = ["app"]

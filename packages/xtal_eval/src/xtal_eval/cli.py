"""Entry point of the ``xtal-eval`` command (needs the ``cli`` extra, i.e. typer).

Without typer, ``xtal-eval`` prints how to install it and exits with status 1.
"""

from __future__ import annotations

import sys

try:
    from xtal_eval._cli_app import app
except ImportError as _exc:  # typer is missing
    if getattr(_exc, "name", None) not in ("typer", "click"):
        raise
    _MESSAGE = f"xtal-eval's command line needs typer ({_exc}); install it with: pip install 'xtal-eval[cli]'"

    def app() -> None:  # type: ignore[no-redef]
        """Stand-in entry point that explains the missing dependency."""
        sys.stderr.write(_MESSAGE + "\n")
        raise SystemExit(1)


__all__ = ["app"]

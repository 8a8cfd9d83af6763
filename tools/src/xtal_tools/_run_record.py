"""``run.toml``: what a tool run did, written into its output directory.

Holds the command line, the resolved configuration, the seed, the versions of the six distributions
(plus Python and torch), the git commit of the source tree when there is one, start and end times and
the outcome. Torch-free, so light commands can use it too::

    record = RunRecord.start(out_dir, command="train", config=resolved_dict, seed=42)
    ...                                        # on success
    record.finish(summary={"steps": 1000})     # or record.fail(err)
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("xtal-graph", "score-decoder", "cond-vae", "xtal-eval", "xtal-data", "xtal-tools")
FILENAME = "run.toml"


def package_versions() -> dict[str, str]:
    """Installed versions of the six distributions, torch and Python ("not installed" when absent)."""
    return {**installed_versions((*DISTRIBUTIONS, "torch")), "python": platform.python_version()}


def installed_versions(names) -> dict[str, str]:
    """``{name: version}`` of installed distributions; ``"not installed"`` for the absent ones."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``path`` (this file), or None."""
    where = str((path or Path(__file__)).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())} if sha else None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """An open ``run.toml``; ``finish``/``fail`` rewrite it with the end time and outcome."""

    out_dir: Path
    command: str
    config: Mapping[str, Any]
    seed: int | None
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    started: str = field(default_factory=_now)
    enabled: bool = True  # False on non-zero ranks under torchrun: only rank 0 writes

    @classmethod
    def start(cls, out_dir: str | Path, *, command: str, config: Mapping[str, Any], seed: int | None):
        rank = int(os.environ.get("RANK", "0") or 0)
        record = cls(Path(out_dir), command, config, seed, enabled=rank == 0)
        record._write(status="running")
        return record

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        self._write(status="completed", finished=_now(), summary=summary)

    def fail(self, error: BaseException) -> None:
        self._write(status="failed", finished=_now(), error=f"{type(error).__name__}: {error}")

    def _write(self, *, status: str, finished: str | None = None, summary=None, error=None) -> None:
        if not self.enabled:
            return
        run = {
            "command": self.command,
            "argv": self.argv,
            "status": status,
            "started": self.started,
            "finished": finished,
            "error": error,
            "seed": self.seed,
            "host": platform.node(),
        }
        git = git_commit()
        data = {
            "run": run,
            "git": git,
            "versions": package_versions(),
            "summary": summary,
            "config": self.config,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / f".{FILENAME}.tmp"
        tmp.write_text(dumps_toml({k: v for k, v in data.items() if v is not None}))
        os.replace(tmp, self.out_dir / FILENAME)


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Nested dicts of strings, numbers, booleans and lists as TOML; ``None`` values are left out."""
    lines: list[str] = []

    def table(node: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        scalars = {k: v for k, v in node.items() if v is not None and not isinstance(v, Mapping)}
        tables = {k: v for k, v in node.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
        if scalars:
            lines.append("")
        for k, v in tables.items():
            table(v, (*prefix, k))

    table(data, ())
    return "\n".join(lines).strip() + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
            if not math.isfinite(value)
            else repr(value)
        )
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, Path):
        return _value(str(value))
    raise TypeError(f"cannot write {type(value).__name__} to run.toml: {value!r}")

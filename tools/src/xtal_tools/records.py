"""``run.toml``: what a tool run did, written into its output directory; the machine it ran on.

``run.toml`` holds the resolved settings in the shape ``--config`` reads them (the command's table and
``[sampler]`` / ``[relax]``: :func:`xtal_tools.config.to_tables`), so ``--config OUT/run.toml`` repeats
the run; and the record tables ``[run]`` (command line, seed, status, start and end, host, error),
``[derived]`` (what the run worked out: decoder calls, cell formulas, warnings), ``[summary]`` (its
results), ``[versions]`` (the six distributions, Python, torch) and ``[git]`` (commit of the source
tree, when there is one)::

    record = RunRecord.start(out_dir, command="sample", tables=to_tables(config, table="sample"), seed=0)
    ...                                          # on success
    record.finish(summary={"written": 100})      # or record.fail(err)

Only rank 0 of a multi-process run writes (:func:`cond_vae.distributed.process_env`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["RunRecord", "installed_versions", "machine_info", "package_versions"]

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
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
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
    tables: Mapping[str, Any]
    seed: int | None
    derived: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    started: str = field(default_factory=_now)
    enabled: bool = True  # False on non-zero ranks under torchrun: only rank 0 writes

    @classmethod
    def start(
        cls,
        out_dir: str | Path,
        *,
        command: str,
        tables: Mapping[str, Any],
        seed: int | None,
        derived: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Write ``run.toml`` with status ``running``: ``tables`` are the resolved settings."""
        from cond_vae.distributed import process_env

        record = cls(Path(out_dir), command, tables, seed, dict(derived or {}), enabled=process_env().is_main)
        record._write(status="running")
        return record

    def finish(self, summary: Mapping[str, Any] | None = None, *, warnings: list[str] | None = None) -> None:
        """Mark the run completed with its ``summary``; ``warnings``: every warning the run reported."""
        if warnings is not None:
            self.derived["warnings"] = list(warnings)
        self._write(status="completed", finished=_now(), summary=summary)

    def fail(self, error: BaseException) -> None:
        self._write(status="failed", finished=_now(), error=f"{type(error).__name__}: {error}")

    def _write(self, *, status: str, finished: str | None = None, summary=None, error=None) -> None:
        from cond_vae.toml import dumps

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
        data = {
            "run": run,
            **self.tables,
            "derived": self.derived or None,
            "summary": summary,
            "versions": package_versions(),
            "git": git_commit(),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / f".{FILENAME}.tmp"
        tmp.write_text(dumps({k: v for k, v in data.items() if v is not None}))
        os.replace(tmp, self.out_dir / FILENAME)


def machine_info(device: str | None = None) -> dict:
    """Platform, CPU model and count, torch version/threads and the device's name (for summary.json)."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["device"] = device or "cpu"
        if device is not None and device.startswith("cuda") and torch.cuda.is_available():
            info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    except ImportError:
        info["torch"] = "not installed"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

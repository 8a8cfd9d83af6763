"""Suite-wide test configuration.

* Hypothesis profiles: ``dev`` (default) and ``ci`` (derandomised, fewer examples), chosen by the
  ``HYPOTHESIS_PROFILE`` environment variable; CI sets ``ci``. Torch tests need ``deadline=None``.
* ``shared_data``: the folder ``../shared/data`` relative to the project root; tests that need it
  skip with a clear message when it is absent, so the project also works elsewhere.
* ``devices``: ``["cpu"]`` plus ``"cuda"`` when a GPU is present (see ``DEVICES``).
* Every test starts from the same random state.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))

settings.register_profile("dev", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002  (the legacy global RNG that third-party code may draw from)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA} (set XTAL_SHARED_DATA to point elsewhere)")
    return SHARED_DATA

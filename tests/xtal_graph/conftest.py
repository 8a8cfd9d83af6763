"""xtal_graph tests run torch single-threaded: their tensors are tiny, and on a shared machine
waking a second OpenMP thread costs milliseconds per operation. Restored after each test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

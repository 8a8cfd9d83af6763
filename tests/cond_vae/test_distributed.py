"""``cond_vae.distributed``: the launcher's environment read once, and the single-process context."""

from __future__ import annotations

import pytest
import torch
from cond_vae.distributed import DistContext, ProcessEnv, process_env, setup, single_process, teardown


def test_process_env_defaults_outside_a_launcher():
    assert process_env({}) == ProcessEnv(rank=0, world_size=1, local_rank=0)
    assert process_env({"RANK": "", "WORLD_SIZE": ""}) == ProcessEnv()
    assert process_env({}).is_main and not process_env({}).distributed


def test_process_env_reads_torchrun_variables():
    env = process_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert env == ProcessEnv(rank=3, world_size=4, local_rank=1)
    assert env.distributed and not env.is_main


def test_process_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "5")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert process_env() == ProcessEnv(2, 5, 0)


def test_a_non_integer_variable_is_named():
    with pytest.raises(ValueError, match=r"environment variable WORLD_SIZE='two' is not an integer"):
        process_env({"WORLD_SIZE": "two"})


def test_setup_on_one_cpu_process_joins_no_group():
    ctx = setup("cpu", ProcessEnv())
    assert ctx == DistContext(0, 1, 0, torch.device("cpu"), owns_group=False)
    assert ctx.env == ProcessEnv() and not torch.distributed.is_initialized()
    teardown(ctx)
    assert single_process() == ctx

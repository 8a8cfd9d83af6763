"""Two gloo processes on CPU (DistributedDataParallel) against one process with the same global batch.

Each DDP process takes the strided half of every global batch and draws its noise from the seed
stream of its micro-batch number (``g = m * world_size + rank``, see ``cond_vae.training._step``).
One process with ``accumulate = 2`` and twice the batch sees exactly the same crystals with the same
noise in its two micro-batches, so the two runs compute the same global gradient. They can still
differ in the last bits: DDP sums the two halves' gradients in buckets with gloo's all-reduce, the
single process accumulates ``g0 / 2 + g1 / 2`` in ``.grad``. Both add the same two float64 numbers
(exact halving, commutative addition), so in float64 they agree to ~1e-12 after a few Adam steps;
replicas must agree bit for bit with each other (DDP broadcasts and averages identically on both).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from cond_vae import CondCDVAE, CondCDVAEConfig
from cond_vae.training import TrainConfig, train
from safetensors.torch import load_file, save_file

from tests.cond_vae.test_training_support import loss_rows, synthetic_crystals, weights

BATCH_PER_PROCESS = 3
CONFIG = TrainConfig(
    seed=7,
    device="cpu",
    dtype="float64",
    batch_size=BATCH_PER_PROCESS,
    val_batch_size=2,  # validation batches (and their noise) must not depend on the batch size either
    max_epochs=2,
    val_every_epochs=1,
    teacher_forcing_max_epoch=0,  # epoch 1 decodes in the predicted lattice
    log_every_steps=1,
    checkpoint_every_steps=1000,
    progress=False,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, root: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    result = train(
        CONFIG,
        CondCDVAEConfig.tiny(),
        synthetic_crystals(12, seed=0),
        synthetic_crystals(5, seed=1, prefix="v"),
        Path(root) / "ddp",
    )
    # Every replica dumps its own final parameters (the checkpoint holds rank 0's only).
    assert result.steps == 4
    state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, str(Path(root) / f"rank{rank}.safetensors"))


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    ranks = mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 300  # seconds: the run takes about 10; a hang fails instead of blocking CI
    while not ranks.join(timeout=5):
        if time.monotonic() > deadline:
            for process in ranks.processes:
                process.kill()
            pytest.fail("the two gloo processes did not finish within 300 s (one is waiting on the other)")
    single = train(
        CONFIG.replace(batch_size=2 * BATCH_PER_PROCESS, accumulate=2),
        CondCDVAEConfig.tiny(),
        synthetic_crystals(12, seed=0),
        synthetic_crystals(5, seed=1, prefix="v"),
        tmp_path / "single",
    )
    ddp_rows, single_rows = loss_rows(tmp_path / "ddp"), loss_rows(tmp_path / "single")
    assert [r["split"] for r in ddp_rows] == [r["split"] for r in single_rows]
    assert len(ddp_rows) == 2 * 2 + 2  # 2 steps per epoch, 2 epochs, one validation per epoch
    for a, b in zip(ddp_rows, single_rows, strict=True):
        assert a["num_crystals"] == b["num_crystals"]
        for key in ("loss", "lattice", "coord", "kl"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-10, abs=1e-12), (a, b)
    ref = weights(single.final_checkpoint)
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == ref.keys()
    for name, value in ref.items():
        assert torch.equal(rank0[name], rank1[name]), f"replicas differ in {name}"
        torch.testing.assert_close(rank0[name], value, rtol=1e-9, atol=1e-11, msg=f"DDP != 1 process: {name}")
    # The runs actually trained: every parameter moved away from its initial value.
    torch.manual_seed(CONFIG.seed)
    initial = CondCDVAE(CondCDVAEConfig.tiny()).to(torch.float64)
    for name, value in initial.named_parameters():
        assert not torch.equal(value.detach(), ref[name]), f"{name} never changed"

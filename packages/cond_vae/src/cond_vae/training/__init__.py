"""Training for Cond-CDVAE: one process on CPU or GPU, or many through ``torchrun`` (DDP).

>>> from cond_vae.training import TrainConfig, train          # doctest: +SKIP
>>> result = train(TrainConfig(max_epochs=10), CondCDVAEConfig.tiny(), crystals, val, "runs/tiny")

See ``_loop`` for the output layout, ``_step`` for how randomness is made resumable and independent
of the number of processes, and ``_state`` for the pickle-free resumable checkpoints.
"""

from cond_vae.training._config import DataConfig, TrainConfig
from cond_vae.training._graph_cache import EncoderGraphData
from cond_vae.training._loop import SkippedBatch, TrainResult, train
from cond_vae.training._metrics import ValMetrics, read_metrics
from cond_vae.training._runconfig import (
    MODEL_PRESETS,
    RunConfig,
    load_run_config,
    model_config_from_table,
    run_config_from_dict,
)
from cond_vae.training._state import LoopState, latest_checkpoint, read_training_meta
from cond_vae.training._step import NonFiniteLossError
from cond_vae.training._store import open_store_split

__all__ = [
    "MODEL_PRESETS",
    "DataConfig",
    "EncoderGraphData",
    "LoopState",
    "NonFiniteLossError",
    "RunConfig",
    "SkippedBatch",
    "TrainConfig",
    "TrainResult",
    "ValMetrics",
    "latest_checkpoint",
    "load_run_config",
    "run_config_from_dict",
    "model_config_from_table",
    "open_store_split",
    "read_metrics",
    "read_training_meta",
    "train",
]

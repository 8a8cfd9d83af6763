"""Sampling: one engine for every tool, several samplers, per-(row, sample) randomness.

::

    from cond_vae.sampling import SamplerConfig, sample
    samples = sample(model, ["Si4O8"], [50.0], num_per_row=20, seed=0, sampler=SamplerConfig())

Parts: :class:`SamplerConfig` (method and budget), the samplers' update rules (``_samplers``), the
engine (:func:`sample_requests`, blocks and ranks), the :class:`ScoreModel` protocol (plug in your own
denoiser) and JSON records/shards for distributed runs.
"""

from ._api import make_requests, reconstruct, sample
from ._config import DEFAULT_SAMPLER, METHODS, SamplerConfig
from ._engine import SampledStructure, SampleRequest, job_blocks, run_block, sample_requests
from ._protocol import CondCDVAEScore, Proposal, ScoreModel, as_score_model
from ._records import from_record, merge_shards, to_record, write_shard
from ._samplers import Step, plan, visited_levels, visited_sigmas

__all__ = [
    "DEFAULT_SAMPLER",
    "METHODS",
    "CondCDVAEScore",
    "Proposal",
    "SampleRequest",
    "SampledStructure",
    "SamplerConfig",
    "ScoreModel",
    "Step",
    "as_score_model",
    "from_record",
    "job_blocks",
    "make_requests",
    "merge_shards",
    "plan",
    "reconstruct",
    "run_block",
    "sample",
    "sample_requests",
    "to_record",
    "visited_levels",
    "visited_sigmas",
    "write_shard",
]

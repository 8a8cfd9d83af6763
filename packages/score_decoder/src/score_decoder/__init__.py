"""GemNet score network: noise-conditional, per-atom Cartesian score vectors, equivariant by construction.

>>> from score_decoder import GemNetConfig, GemNetScore
>>> model = GemNetScore(GemNetConfig.tiny())
"""

from ._config import GemNetConfig
from ._fitting import fit_scale_factors
from ._model import GemNetScore

__version__ = "0.1.0"

__all__ = ["GemNetConfig", "GemNetScore", "__version__", "fit_scale_factors"]

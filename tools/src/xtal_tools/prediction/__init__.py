"""Crystal structure prediction of a composition at a pressure: sample, relax, de-duplicate, rank.

:func:`predict` is the whole job at one pressure (what ``tools/csp`` runs); :mod:`.job` has its steps and
:mod:`.report` writes the result (ranked CIFs, a table of every candidate, a plot).
"""

from xtal_tools.prediction.job import (
    STATUSES,
    Candidate,
    PredictConfig,
    PredictionRun,
    cell_formulas,
    parse_formula_units,
    predict,
    prepare_prediction,
    rank_candidates,
    relax_samples,
    sample_structures,
    spacegroup,
    status_counts,
)
from xtal_tools.prediction.report import write_results

__all__ = [
    "STATUSES",
    "Candidate",
    "PredictConfig",
    "PredictionRun",
    "cell_formulas",
    "parse_formula_units",
    "predict",
    "prepare_prediction",
    "rank_candidates",
    "relax_samples",
    "sample_structures",
    "spacegroup",
    "status_counts",
    "write_results",
]

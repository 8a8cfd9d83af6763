"""Torch-free structure matching and generation metrics for crystal generation and CSP.

Every match decision and RMSD equals a direct pymatgen ``StructureMatcher`` call; the package only skips
work that provably cannot change the answer, and spreads the rest over processes or a Dask cluster.
"""

__version__ = "0.1.0"

from xtal_eval.csp import CspReport, csp, success_curve
from xtal_eval.generation import (
    coverage,
    density_wasserstein,
    novelty,
    num_elements_wasserstein,
    unique_groups,
    uniqueness,
)
from xtal_eval.io import StructureSet, load_structures, pair_sets
from xtal_eval.matching import MatchResult, match_prepared, prepare
from xtal_eval.pairs import PairTable, match_pairs
from xtal_eval.parallel import Parallel
from xtal_eval.presets import PRESETS, MatcherPreset, resolve_presets
from xtal_eval.recon import ReconReport, reconstruction
from xtal_eval.rmsd import relaxation_rmsd, relaxation_rmsds
from xtal_eval.symmetry import spacegroup_agreement
from xtal_eval.validity import composition_valid, structure_valid, validity

__all__ = [
    "PRESETS",
    "CspReport",
    "MatchResult",
    "MatcherPreset",
    "PairTable",
    "Parallel",
    "ReconReport",
    "StructureSet",
    "__version__",
    "composition_valid",
    "uniqueness",
    "unique_groups",
    "num_elements_wasserstein",
    "novelty",
    "density_wasserstein",
    "coverage",
    "csp",
    "success_curve",
    "load_structures",
    "match_pairs",
    "match_prepared",
    "pair_sets",
    "prepare",
    "reconstruction",
    "relaxation_rmsd",
    "relaxation_rmsds",
    "resolve_presets",
    "spacegroup_agreement",
    "structure_valid",
    "validity",
]

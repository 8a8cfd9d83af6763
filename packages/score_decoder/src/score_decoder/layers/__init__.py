"""Building blocks of the GemNet-T score network, usable on their own.

Every layer takes explicit keyword arguments and initialises itself so that unit-variance inputs
give outputs of order one.
"""

from ._base import Dense, ResidualLayer, ScaledSiLU, he_orthogonal_
from ._basis import AngleBasis, CircularBasis, PolynomialEnvelope, RadialBasis
from ._embedding import AtomEmbedding, EdgeEmbedding
from ._interaction import AtomUpdate, InteractionBlock, TripletInteraction
from ._layout import TripletLayout, build_triplet_layout, reverse_edges
from ._output import OutputBlock
from ._scale import ScaleFactor

__all__ = [
    "AngleBasis",
    "AtomEmbedding",
    "AtomUpdate",
    "CircularBasis",
    "Dense",
    "EdgeEmbedding",
    "InteractionBlock",
    "OutputBlock",
    "PolynomialEnvelope",
    "RadialBasis",
    "ResidualLayer",
    "ScaleFactor",
    "ScaledSiLU",
    "TripletInteraction",
    "TripletLayout",
    "build_triplet_layout",
    "he_orthogonal_",
    "reverse_edges",
]

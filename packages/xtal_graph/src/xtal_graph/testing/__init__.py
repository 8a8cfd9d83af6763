"""Test helpers for every package: symmetry transforms of crystal batches, invariance and
equivariance assertions reporting the largest error, and (with hypothesis installed) strategies
for lattices, crystals, unimodular matrices and supercells in :mod:`xtal_graph.testing.strategies`.

Typical use::

    from xtal_graph.testing import assert_equivariant, standard_transforms

    assert_equivariant(
        lambda b: model(b).score, batch, transforms=standard_transforms(seed=0), actions="cart_vector"
    )
"""

from ._asserts import assert_edges_equivalent, assert_equivariant, assert_invariant, equivariance_errors
from ._transforms import (
    Transformed,
    change_basis,
    make_supercell,
    permute_atoms,
    random_permutation,
    random_rotation,
    random_unimodular,
    rotate,
    shift_images,
    standard_transforms,
    translate,
)

__all__ = [
    "Transformed",
    "assert_edges_equivalent",
    "assert_equivariant",
    "assert_invariant",
    "change_basis",
    "equivariance_errors",
    "make_supercell",
    "permute_atoms",
    "random_permutation",
    "random_rotation",
    "random_unimodular",
    "rotate",
    "shift_images",
    "standard_transforms",
    "translate",
]

"""Without teacher forcing, a predicted lattice whose angles admit no cell falls back to the true one
(training once crashed on a singular predicted cell), and gradients stay finite."""

from __future__ import annotations

import torch
from cond_vae._model import usable_predicted_lattice
from xtal_graph import lattice_to_params


def _params(lengths, angles):
    return torch.tensor([[*lengths, *angles]], dtype=torch.float64)


def test_degenerate_predictions_fall_back_and_gradients_stay_finite():
    num_atoms = torch.tensor([4, 4, 4])
    true = torch.cat([_params((3.0, 3.0, 3.0), (90.0, 90.0, 90.0))] * 3)
    pred = torch.cat(
        [
            _params((3.5, 3.0, 2.8), (80.0, 95.0, 100.0)),  # a fine cell: kept
            _params((3.0, 3.0, 3.0), (30.0, 30.0, 120.0)),  # alpha + beta < gamma: no cell
            _params((3.0, float("nan"), 3.0), (90.0, 90.0, 90.0)),  # not finite
        ]
    ).requires_grad_(True)
    lattice, n_bad = usable_predicted_lattice(pred, true, num_atoms)
    assert int(n_bad) == 2
    assert torch.linalg.det(lattice).abs().min() > 1.0  # every cell is invertible
    params = lattice_to_params(lattice)
    scale = num_atoms.to(torch.float64).pow(1 / 3)[:, None]
    torch.testing.assert_close(params.lengths[0], pred[0, :3].detach() * scale[0])
    torch.testing.assert_close(params.lengths[1:], true[1:, :3] * scale[1:])
    torch.testing.assert_close(params.angles[1:], true[1:, 3:])
    lattice.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[0].abs().sum() > 0 and pred.grad[1:].abs().sum() == 0

"""Simple and complex cells against scikit-image's Gabor kernel, hand cases, and the Neocognitron's S-plane = convolution."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.filters import gabor_kernel as sk_gabor

from cvkit.conv.cortex import complex_cells, gabor_bank, gabor_kernel, grating, light_bar, simple_cells
from cvkit.models.neocognitron import CLayer, Neocognitron


@pytest.mark.parametrize("theta", [0.0, math.pi / 6, math.pi / 2])
@pytest.mark.parametrize("phase", [0.0, -math.pi / 2])
def test_gabor_matches_scikit_image(theta, phase):
    ref = sk_gabor(0.15, theta=theta, sigma_x=3.0, sigma_y=3.0, n_stds=3, offset=phase).real  # grid depends on theta
    size = ref.shape[0]
    ours = gabor_kernel(size, 0.15, theta, 3.0, phase=phase).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_simple_cell_is_orientation_tuned_and_phase_sensitive_complex_cell_is_not():
    bank = gabor_bank(15, 0.125, 3.0, orientations=[0.0], phases=(0.0, -math.pi / 2))
    at = lambda maps: maps[0, 0, 15, 15].item()  # noqa: E731  the cell at the centre
    # orientation: a grating at the preferred orientation excites far more than one rotated by 90 degrees
    pref = at(simple_cells(grating(31, 0.125, 0.0), bank[:1]))
    ortho = at(simple_cells(grating(31, 0.125, math.pi / 2), bank[:1]))
    assert pref > 20 * max(ortho, 1e-6)
    # phase: shifting the grating makes the simple cell go silent; the energy (complex) cell does not change
    phases = torch.linspace(0, 2 * math.pi, 9)[:-1]
    simple = torch.tensor([at(simple_cells(grating(31, 0.125, 0.0, float(p)), bank[:1])) for p in phases])
    cx = torch.tensor([at(complex_cells(grating(31, 0.125, 0.0, float(p)), bank)) for p in phases])
    assert simple.min() < 1e-3 * simple.max()
    assert (cx.max() - cx.min()) / cx.mean() < 0.05


def test_light_bar_and_errors():
    bar = light_bar(11, 0.0, width=1)
    assert bar[:, 5].sum() == 11 and bar.sum() == 11  # theta = 0: varies along x, so a vertical bar
    with pytest.raises(ValueError, match="odd"):
        gabor_kernel(10, 0.1, 0.0, 2.0)
    with pytest.raises(ValueError, match="even and an odd"):
        complex_cells(torch.rand(8, 8), torch.rand(3, 1, 3, 3))


def test_an_s_plane_is_a_convolution():
    # Fukushima's S-plane: one cell per position, all with the same weights on their window = F.conv2d
    torch.manual_seed(0)
    image, w = torch.rand(1, 1, 9, 9), torch.randn(1, 1, 3, 3)
    cells = torch.zeros(7, 7)
    for r in range(7):
        for c in range(7):
            cells[r, c] = (image[0, 0, r : r + 3, c : c + 3] * w[0, 0]).sum()  # the cell at (r, c)
    torch.testing.assert_close(cells, F.conv2d(image, w)[0, 0])


def test_neocognitron_layers_and_c_layer_saturation():
    net = Neocognitron(s2_planes=4)
    maps = net.layers(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape[1:]) for m in maps.values()] == [(8, 28, 28), (8, 14, 14), (4, 14, 14), (4, 7, 7)]
    c = CLayer()(torch.full((1, 1, 4, 4), 3.0))
    torch.testing.assert_close(c, torch.full((1, 1, 2, 2), 0.75))  # psi(3) = 3 / 4
    assert not any(p is net.s1_kernels for p in net.parameters()), "S1 is fixed"

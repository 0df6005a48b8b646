"""Optical flow against scikit-image's iterative Lucas-Kanade and known shifts; stereo block matching, depth and point
clouds by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.registration import optical_flow_ilk

from cvkit.geometry import (
    block_matching,
    depth_from_disparity,
    disparity_error,
    endpoint_error,
    horn_schunck,
    lucas_kanade,
    point_cloud,
    warp,
)


def smooth_texture(h=64, w=64, seed=0):  # box-filtered noise: for block matching (whole-pixel shifts)
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, h, w, generator=g)
    k = torch.ones(1, 1, 5, 5) / 25
    return F.conv2d(F.pad(noise, (2, 2, 2, 2), mode="reflect"), k)[0, 0]


def sinusoids(xs, ys, seed=0, waves=12):
    """A smooth random texture, evaluated exactly at any (sub-pixel) coordinates."""
    g = torch.Generator().manual_seed(seed)
    freq = (torch.rand(waves, 2, generator=g) - 0.5) * 0.8  # radians per pixel, |k| < 0.57
    phase = torch.rand(waves, generator=g) * 6.28
    return sum(torch.sin(k[0] * xs + k[1] * ys + p) for k, p in zip(freq, phase)) / waves + 0.5


def shifted_pair(dx, dy, size=64):
    """Frame 2 is frame 1's texture moved by (dx, dy): b(x) = a(x - u), computed exactly (no interpolation)."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    a, b = sinusoids(xs, ys), sinusoids(xs - dx, ys - dy)
    flow = torch.stack([torch.full((size, size), float(dx)), torch.full((size, size), float(dy))])
    return a, b, flow


def test_warp_by_hand():
    img = torch.arange(12.0).view(3, 4)
    out = warp(img, torch.stack([torch.ones(3, 4), torch.zeros(3, 4)]))  # out(x) = img(x + 1)
    torch.testing.assert_close(out[:, :3], img[:, 1:])


@pytest.mark.parametrize("shift", [(0.6, -0.4), (2.5, 1.5)])
def test_lucas_kanade_recovers_a_shift_and_agrees_with_scikit_image(shift):
    a, b, truth = shifted_pair(*shift)
    ours = lucas_kanade(a, b, radius=7, iterations=10, levels=3)
    inner = (slice(None), slice(10, -10), slice(10, -10))
    assert endpoint_error(ours[inner], truth[inner]) < 0.1
    ref = optical_flow_ilk(a.numpy(), b.numpy(), radius=7, num_warp=10)  # (row, col) = (dy, dx)
    ref = torch.from_numpy(np.stack([ref[1], ref[0]])).float()
    assert endpoint_error(ours[inner], ref[inner]) < 0.1


def test_horn_schunck_recovers_a_small_shift():
    a, b, truth = shifted_pair(0.5, 0.3)
    flow = horn_schunck(a, b, alpha=0.05, iterations=300)
    assert endpoint_error(flow[:, 10:-10, 10:-10], truth[:, 10:-10, 10:-10]) < 0.05
    with pytest.raises(ValueError, match="alpha"):
        horn_schunck(a, b, alpha=0)


def test_block_matching_finds_a_constant_disparity():
    right = smooth_texture(40, 80, seed=1)
    d = 7
    left = torch.zeros_like(right)
    left[:, d:] = right[:, :-d]  # left(x) = right(x - d)
    disp = block_matching(left, right, max_disparity=16, radius=3)
    assert (disp[:, 20:-5] == d).float().mean() > 0.99
    truth = torch.full_like(disp, float(d))
    truth[:, :d] = float("nan")
    assert disparity_error(disp, truth)["bad"] < 0.05


def test_depth_and_point_cloud_by_hand():
    depth = depth_from_disparity(torch.tensor([[10.0, 0.0]]), focal=100.0, baseline=50.0, doffs=0.0)
    assert depth[0, 0] == 500.0 and torch.isinf(depth[0, 1])
    points, colours = point_cloud(torch.tensor([[2.0, 4.0]]), focal=2.0, cx=0.0, cy=0.0, colours=torch.ones(3, 1, 2))
    torch.testing.assert_close(points, torch.tensor([[0.0, 0.0, 2.0], [2.0, 0.0, 4.0]]))  # x = 1: X = 1 * 4 / 2
    assert colours.shape == (2, 3)
    # round trip: project the points back with x = f X / Z + cx
    torch.testing.assert_close(2.0 * points[:, 0] / points[:, 2], torch.tensor([0.0, 1.0]))


def test_flow_pairs_and_the_flow_network_step():
    from cvkit.data.video import flow_pairs
    from cvkit.geometry import flow_step
    from cvkit.models import create_model

    pairs, flow = flow_pairs(4, image_size=32, seed=0)
    assert pairs.shape == (4, 6, 32, 32) and flow.shape == (4, 2, 32, 32)
    # wherever the flow is non-zero, frame 1's pixel reappears in frame 2 displaced by it (an unoccluded object pixel)
    b, y, x = (flow[:, 0] != 0).nonzero()[0].tolist()
    dx, dy = int(flow[b, 0, y, x]), int(flow[b, 1, y, x])
    if 0 <= y + dy < 32 and 0 <= x + dx < 32:
        assert (pairs[b, :3, y, x] - pairs[b, 3:, y + dy, x + dx]).abs().max() < 0.25  # same colour up to noise
    model = create_model("tiny_flownet", width=4)
    torch.testing.assert_close(
        flow_step(model, (pairs, flow), balanced=False).loss, (model(pairs) - flow).norm(dim=1).mean()
    )


def test_the_balanced_flow_loss_weights_moving_and_still_pixels_equally():
    from cvkit.geometry import flow_step

    class Constant(torch.nn.Module):  # predicts (dx, dy) = (1, 0) at every pixel
        def forward(self, pairs):
            return torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(len(pairs), 2, *pairs.shape[-2:])

    truth = torch.zeros(1, 2, 4, 4)
    truth[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # one moving pixel of 16: its error is |(1, 0) - (3, 4)| = sqrt(20)
    pairs = torch.zeros(1, 6, 4, 4)
    balanced = flow_step(Constant(), (pairs, truth)).loss.item()
    plain = flow_step(Constant(), (pairs, truth), balanced=False).loss.item()
    assert balanced == pytest.approx(20**0.5 + 1.0)  # the moving mean plus the still mean (every still error is 1)
    assert plain == pytest.approx((20**0.5 + 15 * 1.0) / 16)
    # a batch with still pixels only: their mean
    assert flow_step(Constant(), (pairs, torch.zeros(1, 2, 4, 4))).loss.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        flow_step(Constant(), (pairs, torch.zeros(1, 3, 4, 4)))


def test_stereo_pair_matches_its_ground_truth_and_calibration_scales():
    from cvkit.data import load_stereo

    left, right, disp, cal = load_stereo(downscale=2)
    assert left.shape == right.shape == (3, 250, 370) and disp.shape == (250, 370)
    assert abs(cal["focal"] - 994.978 / 2) < 1e-6 and cal["baseline_mm"] == 193.001
    grey_l, grey_r = left.mean(0), right.mean(0)
    ys, xs = torch.nonzero(torch.isfinite(disp), as_tuple=True)
    d = disp[ys, xs].round().long()

    def error(sign):
        xr = xs + sign * d
        ok = (xr >= 0) & (xr < 370)
        return (grey_l[ys[ok], xs[ok]] - grey_r[ys[ok], xr[ok]]).abs().mean().item()

    assert error(-1) < 0.5 * error(+1)  # left x sees what right x - d sees

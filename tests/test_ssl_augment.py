"""Batched augmentations (cvkit.data.augment) and SimCLR's recipe: checked against torchvision's and scipy's definitions."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from scipy import ndimage

from cvkit.data.augment import (
    ColorJitter,
    RandomCutout,
    RandomResizedCrop,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    gaussian_blur,
    grayscale,
    resized_crop,
    rotate90,
    sobel,
)
from cvkit.ssl.augment import simclr_augmentation, simclr_gallery


@pytest.fixture
def batch():
    return torch.rand(4, 3, 20, 24, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (adjust_brightness, TF.adjust_brightness),
        (adjust_contrast, TF.adjust_contrast),
        (adjust_saturation, TF.adjust_saturation),
    ],
)
def test_colour_adjustments_match_torchvision(batch, ours, theirs):
    factors = torch.tensor([0.3, 1.0, 1.4, 1.8])
    expected = torch.stack([theirs(batch[i], float(factors[i])) for i in range(4)])
    torch.testing.assert_close(ours(batch, factors), expected, atol=1e-5, rtol=0)


def test_hue_matches_torchvision(batch):
    factors = torch.tensor([-0.45, -0.1, 0.2, 0.5])
    expected = torch.stack([TF.adjust_hue(batch[i], float(factors[i])) for i in range(4)])
    torch.testing.assert_close(adjust_hue(batch, factors), expected, atol=1e-5, rtol=0)


def test_grayscale_and_blur_match_torchvision(batch):
    torch.testing.assert_close(grayscale(batch), TF.rgb_to_grayscale(batch), atol=1e-6, rtol=0)
    sigma = torch.tensor([0.5, 1.0, 1.7, 2.5])
    expected = torch.stack([TF.gaussian_blur(batch[i], [7, 7], [float(sigma[i])] * 2) for i in range(4)])
    torch.testing.assert_close(gaussian_blur(batch, 7, sigma), expected, atol=1e-5, rtol=0)


def test_resized_crop_copies_a_box_of_the_output_size_and_matches_torchvision_inside(batch):
    boxes = torch.tensor([[2.0, 3.0, 12.0, 13.0]]).repeat(4, 1)
    torch.testing.assert_close(resized_crop(batch, boxes, 10), batch[:, :, 3:13, 2:12], atol=1e-5, rtol=0)
    up = resized_crop(batch, boxes, 20)
    ref = TF.resized_crop(batch, 3, 2, 10, 10, [20, 20], antialias=False)
    # inside the box both interpolate the same pixels; at its border grid_sample may read the neighbours outside the box
    torch.testing.assert_close(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_random_resized_crop_boxes_respect_scale_and_ratio():
    t = RandomResizedCrop(16, scale=(0.2, 0.5), ratio=(0.75, 1.333))
    boxes = t.sample_boxes(torch.zeros(2000, 1, 100, 100), torch.Generator().manual_seed(0))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = w * h / 100**2
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 0.5 + 1e-5
    assert (w / h).min() >= 0.75 - 1e-4 and (w / h).max() <= 1.333 + 1e-4
    assert boxes[:, :2].min() >= 0 and boxes[:, 2].max() <= 100 and boxes[:, 3].max() <= 100


def test_rotate90_and_sobel_match_torch_and_scipy(batch):
    k = torch.tensor([0, 1, 2, 3])
    square = batch[..., :20]
    rotated = rotate90(square, k)
    for i in range(4):
        torch.testing.assert_close(rotated[i], torch.rot90(square[i], int(k[i]), dims=(-2, -1)))
    grey = grayscale(batch)[0, 0].double().numpy()
    mag = np.hypot(ndimage.sobel(grey, axis=1, mode="nearest"), ndimage.sobel(grey, axis=0, mode="nearest"))
    np.testing.assert_allclose(sobel(batch)[0, 0].double().numpy(), mag / mag.max(), atol=1e-5)


def test_cutout_hole_has_the_requested_side():
    x = torch.ones(8, 1, 32, 32)
    out = RandomCutout(0.25, p=1.0)(x, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64  # an 8x8 hole when fully inside
    assert (zeros <= 64).all() and (zeros > 0).all()


def test_augmentations_are_reproducible_from_the_generator(batch):
    aug = simclr_augmentation(16, crop_scale=(0.2, 1.0))
    a = aug(batch, torch.Generator().manual_seed(3))
    b = aug(batch, torch.Generator().manual_seed(3))
    c = aug(batch, torch.Generator().manual_seed(4))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_every_gallery_transform_keeps_shape_and_range(batch):
    square = batch[..., :20]
    g = torch.Generator().manual_seed(0)
    for name, t in simclr_gallery(20).items():
        out = t(square, g)
        assert out.shape == square.shape, name
        assert out.min() >= 0 and out.max() <= 1 + 1e-6, name
    grey = square[:, :1]
    assert simclr_augmentation(20)(grey, g).shape == grey.shape  # one channel: colour steps are no-ops


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(8, scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="hue"):
        ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(torch.zeros(1, 1, 8, 8), 4, torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ColorJitter()(torch.zeros(3, 8, 8))

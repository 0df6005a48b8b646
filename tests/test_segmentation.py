"""cvkit.segmentation against torch and torchmetrics, the lecture's worked examples, and the segmentation models."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvkit import segmentation as S
from cvkit.conv import conv_matrix
from cvkit.models import create_model
from cvkit.viz.annotations import PALETTE


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# -- unpooling ---------------------------------------------------------------------------------


def test_lecture_max_unpooling_grid():
    pooled, indices = F.max_pool2d(S.SEED_POOL_INPUT[None, None], 2, return_indices=True)
    assert pooled[0, 0].tolist() == [[5, 6], [7, 8]]
    out = S.max_unpool(S.SEED_UNPOOL_INPUT[None, None], indices, (4, 4))
    assert out[0, 0].tolist() == [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]]


def test_max_unpool_matches_torch(gen):
    x = torch.randn(2, 3, 8, 10, generator=gen)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    values = torch.randn(pooled.shape, generator=gen)
    torch.testing.assert_close(
        S.max_unpool(values, indices, (8, 10)), F.max_unpool2d(values, indices, 2, output_size=(8, 10))
    )
    with pytest.raises(ValueError, match="indices"):
        S.max_unpool(values, indices + 1000, (8, 10))


def test_nearest_and_bed_of_nails(gen):
    x = torch.randn(2, 3, 4, 5, generator=gen)
    torch.testing.assert_close(S.nearest_unpool(x, 3), F.interpolate(x, scale_factor=3, mode="nearest"))
    nails = S.bed_of_nails_unpool(x, 2)
    kernel = torch.zeros(3, 3, 2, 2)
    kernel[range(3), range(3), 0, 0] = 1.0  # top-left tap only, per channel
    torch.testing.assert_close(nails, F.conv_transpose2d(x, kernel, stride=2))
    assert S.bed_of_nails_unpool(torch.tensor([[[[1.0, 2], [3, 4]]]]))[0, 0].tolist() == [
        [1, 0, 2, 0],
        [0, 0, 0, 0],
        [3, 0, 4, 0],
        [0, 0, 0, 0],
    ]
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        S.nearest_unpool(torch.zeros(4, 4))


# -- transposed convolution ------------------------------------------------------------------------


def test_lecture_convolution_matrix_is_4x16_and_its_transpose_is_printed_ct():
    c = conv_matrix((4, 4), S.SEED_KERNEL)
    assert c.shape == (4, 16)
    assert torch.equal(c.T, S.SEED_CT)
    x = torch.arange(16.0).reshape(4, 4)
    torch.testing.assert_close(
        (c @ x.reshape(-1)).reshape(2, 2), F.conv2d(x[None, None], S.SEED_KERNEL[None, None])[0, 0]
    )
    y = torch.tensor([[5.0, 6], [7, 8]])
    up = S.conv_transpose_via_matrix(y, S.SEED_KERNEL, (4, 4))
    torch.testing.assert_close(up, F.conv_transpose2d(y[None, None], S.SEED_KERNEL[None, None])[0, 0])
    assert up[0].tolist() == [5, 26, 29, 6]  # 5*1; 5*4+6*1; 5*1+6*4; 6*1


@pytest.mark.parametrize(
    "size,k,stride,padding", [((5, 5), 3, 1, 0), ((6, 7), 3, 2, 1), ((4, 4), 2, 2, 0), ((7, 5), 3, 2, 0)]
)
def test_transpose_via_matrix_equals_conv_transpose2d(gen, size, k, stride, padding):
    kernel = torch.randn(k, k, generator=gen)
    x = torch.randn(*size, generator=gen)
    c = conv_matrix(size, kernel, stride, padding)
    expected = F.conv2d(x[None, None], kernel[None, None], stride=stride, padding=padding)[0, 0]
    torch.testing.assert_close((c @ x.reshape(-1)).reshape(expected.shape), expected, atol=1e-5, rtol=1e-5)
    y = torch.randn(expected.shape, generator=gen)
    up = F.conv_transpose2d(y[None, None], kernel[None, None], stride=stride, padding=padding)[0, 0]
    if up.shape == size:  # the transposed conv reaches the input size when no output padding is needed
        torch.testing.assert_close(
            S.conv_transpose_via_matrix(y, kernel, size, stride, padding), up, atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("stride,padding,output_padding", [(1, 0, 0), (2, 0, 0), (2, 1, 1), (3, 1, 2), (2, 2, 0)])
def test_conv_transpose2d_matches_torch(gen, stride, padding, output_padding):
    x = torch.randn(2, 3, 5, 4, generator=gen)
    w = torch.randn(3, 4, 3, 3, generator=gen)
    b = torch.randn(4, generator=gen)
    torch.testing.assert_close(
        S.conv_transpose2d(x, w, b, stride, padding, output_padding),
        F.conv_transpose2d(x, w, b, stride, padding, output_padding),
        atol=1e-5,
        rtol=1e-5,
    )
    with pytest.raises(ValueError):
        S.conv_transpose2d(x, torch.randn(2, 4, 3, 3), stride=stride)


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_bilinear_kernel_upsamples_like_interpolate(gen, factor):
    x = torch.randn(1, 2, 6, 5, generator=gen)
    up = F.conv_transpose2d(
        x,
        S.bilinear_kernel(factor, 2),
        **{k: v for k, v in S.bilinear_upsample_args(factor).items() if k != "kernel_size"},
    )
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape
    f = factor
    torch.testing.assert_close(
        up[..., f:-f, f:-f], ref[..., f:-f, f:-f], atol=1e-5, rtol=1e-5
    )  # equal away from the border


# -- metrics ---------------------------------------------------------------------------------------


def _noisy_prediction(gen, k=4, shape=(6, 32, 32)):
    target = torch.randint(0, k, shape, generator=gen)
    target[:, :8] = 0  # plenty of background, like real masks
    pred = torch.where(torch.rand(shape, generator=gen) < 0.7, target, torch.randint(0, k, shape, generator=gen))
    return pred, target


def test_iou_and_dice_match_torchmetrics(gen):
    from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

    pred, target = _noisy_prediction(gen)
    iou = S.per_class_iou(pred, target, 4)
    torch.testing.assert_close(iou, MulticlassJaccardIndex(4, average=None)(pred.flatten(), target.flatten()))
    torch.testing.assert_close(
        S.mean_iou(pred, target, 4), MulticlassJaccardIndex(4, average="macro")(pred.flatten(), target.flatten())
    )
    torch.testing.assert_close(
        S.dice_score(pred, target, 4, average="none"),
        MulticlassF1Score(4, average=None)(pred.flatten(), target.flatten()),
    )
    torch.testing.assert_close(
        S.dice_score(pred, target, 4, average="none"), 2 * iou / (1 + iou)
    )  # Dice = 2 IoU / (1 + IoU)


def test_single_image_metrics_match_torchmetrics_segmentation(gen):
    from torchmetrics.segmentation import DiceScore, MeanIoU

    pred, target = _noisy_prediction(gen, shape=(1, 32, 32))
    miou = MeanIoU(num_classes=4, per_class=True, input_format="index")(pred, target)
    torch.testing.assert_close(S.per_class_iou(pred, target, 4), miou.float().reshape(-1))
    dice = DiceScore(num_classes=4, average="none", input_format="index")(pred, target)
    torch.testing.assert_close(S.dice_score(pred, target, 4, average="none"), dice.float().reshape(-1))


def test_metrics_hand_computed_absent_class_and_ignore_index():
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])
    # class 0: TP 3, FP 1, FN 1 -> 3/5; class 1: TP 3, FP 1, FN 1 -> 3/5; class 2 absent -> NaN
    iou = S.per_class_iou(pred, target, 3)
    torch.testing.assert_close(iou[:2], torch.tensor([0.6, 0.6]))
    assert torch.isnan(iou[2])
    assert S.mean_iou(pred, target, 3).item() == pytest.approx(0.6)
    assert S.dice_score(pred, target, 3).item() == pytest.approx(0.75)
    ignored = target.clone()
    ignored[0, 1] = 255
    assert S.confusion_matrix(pred, ignored, 3, ignore_index=255).sum().item() == 7
    assert S.per_class_iou(pred, ignored, 3, ignore_index=255)[0].item() == pytest.approx(3 / 4)
    with pytest.raises(TypeError, match="argmax"):
        S.mean_iou(pred.float(), target, 3)
    with pytest.raises(ValueError, match="outside"):
        S.mean_iou(pred + 5, target, 3)


def test_segmentation_meter_accumulates_over_batches(gen):
    pred, target = _noisy_prediction(gen)
    meter = S.SegmentationMeter(4)
    for p, t in zip(pred.split(2), target.split(2)):
        meter.update(p, t)
    torch.testing.assert_close(meter.iou(), S.per_class_iou(pred, target, 4))
    assert meter.miou() == pytest.approx(S.mean_iou(pred, target, 4).item())
    assert meter.pixel_accuracy() == pytest.approx((pred == target).float().mean().item())


# -- colour maps -----------------------------------------------------------------------------------


def test_colour_maps():
    voc = S.label_colormap(4, "voc")
    assert (voc * 255).round().astype(int).tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    kit = S.label_colormap(4)
    assert kit[0].tolist() == [0, 0, 0] and np.allclose(kit[1:], PALETTE[:3])
    painted = S.colorize(torch.tensor([[0, 1], [2, 3]]), 4)
    assert painted.shape == (2, 2, 3) and np.allclose(painted[1, 1], PALETTE[2])
    with pytest.raises(ValueError, match="labels"):
        S.colorize(torch.tensor([[0, 7]]), 4)


# -- models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
def test_unet_shapes_and_input_check(upsample):
    model = create_model("unet", base=8, depth=3, upsample=upsample)
    assert model(torch.rand(2, 3, 32, 48)).shape == (2, 4, 32, 48)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 3, 30, 32))


@pytest.mark.parametrize("variant", ["fcn16s", "fcn8s", "fcn4s"])
def test_fcn_variants(variant):
    model = create_model("fcn", widths=(8, 8, 16, 16), variant=variant)
    assert model(torch.rand(2, 3, 32, 64)).shape == (2, 4, 32, 64)


def test_fcn_starts_as_bilinear_upsampling_of_its_scores():
    model = create_model("fcn", widths=(8, 8, 16, 16), variant="fcn16s").eval()
    x = torch.rand(1, 3, 64, 64)
    features = list(model.backbone(x).values())[-1]
    scores = model.head.score[0](features)  # (1, 4, 4, 4)
    ref = F.interpolate(scores, scale_factor=16, mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x)[..., 16:-16, 16:-16], ref[..., 16:-16, 16:-16], atol=1e-5, rtol=1e-4)

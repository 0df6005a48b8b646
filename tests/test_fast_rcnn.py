"""Fast R-CNN: the multi-task loss by hand, the RoI sampling, shared features (one backbone pass) and detection."""

import pytest
import torch
import torch.nn.functional as F

from cvkit.data import ShapesDataset
from cvkit.detection.fast_rcnn import RoIBatches, fast_rcnn_detect, fast_rcnn_loss, fast_rcnn_step, jittered_proposals
from cvkit.models import create_model


def test_loss_uses_the_true_class_regressor_of_foreground_rois_only():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # RoI 0 background, RoI 1 class 1
    deltas = torch.zeros(2, 3, 4)
    deltas[1, 1] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # the regressor of class 1 is off by 1 in dx
    deltas[1, 2] = 100.0  # another class's regressor: must not count
    deltas[0] = 100.0  # a background RoI's boxes: must not count
    labels = torch.tensor([0, 1])
    targets = torch.zeros(2, 4)
    expected = (
        F.cross_entropy(logits, labels) + (1.0 - 0.5 / 9) / 2
    )  # smooth L1 (beta 1/9) of 1 is 1 - beta/2, over R = 2
    torch.testing.assert_close(fast_rcnn_loss(logits, deltas, labels, targets), expected)
    with pytest.raises(ValueError, match="expected logits"):
        fast_rcnn_loss(logits, deltas[:, :2], labels, targets)


def test_batches_sample_a_quarter_foreground_and_the_model_trains_a_step():
    ds = ShapesDataset(n=6, image_size=64, seed=0)
    g = torch.Generator().manual_seed(0)
    windows = torch.tensor([[x, y, x + 24.0, y + 24.0] for x in range(0, 40, 8) for y in range(0, 40, 8)])
    batches = RoIBatches(
        ds,
        lambda i, s: jittered_proposals(s.boxes, (64, 64), windows=windows, generator=g),
        images_per_batch=3,
        rois_per_image=16,
    )
    images, rois, labels, deltas = next(iter(batches))
    assert images.shape == (3, 3, 64, 64) and rois.shape[1] == 5 and len(batches) == 2
    for b in range(3):
        lab = labels[rois[:, 0] == b]
        assert len(lab) == 16 and (lab > 0).sum() == 4  # 25% foreground
    model = create_model("fast_rcnn", widths=(8, 16), hidden=32)
    out = fast_rcnn_step(model, (images, rois, labels, deltas))
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters())


def test_detect_runs_the_backbone_once():
    model = create_model("fast_rcnn", widths=(8, 16), hidden=32)
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append(1))
    proposals = torch.tensor([[0.0, 0, 20, 20], [10, 10, 40, 30], [5, 5, 60, 60]])
    det = fast_rcnn_detect(model, torch.rand(3, 64, 64), proposals, score_threshold=0.0, nms_threshold=1.0)
    assert len(calls) == 1 and det["boxes"].shape == (9, 4)  # 3 proposals x 3 classes, nothing suppressed
    assert (det["boxes"] >= 0).all() and (det["boxes"] <= 64).all()


def test_rois_are_pooled_at_their_float32_coordinates_under_bf16_autocast():
    """GPU training runs under bf16 autocast: the RoIs must not be rounded to bf16 (37.3 -> 37.25) before pooling."""
    import torchvision

    torch.manual_seed(0)
    model = create_model("fast_rcnn", widths=(8, 16), hidden=32, pooling="align").eval()
    images = torch.rand(1, 3, 64, 64)
    rois = torch.tensor([[0.0, 5.3, 9.7, 37.3, 50.9]])  # none of the coordinates is a bf16 number
    seen = {}
    model.fc.register_forward_pre_hook(lambda m, args: seen.update(pooled=args[0]))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fmap = model.features(images)
        model.head(fmap, rois)
        expected = torchvision.ops.roi_align(fmap.float(), rois, model.pool, 1.0 / model.stride, 2, True)
    assert fmap.dtype == torch.bfloat16 and seen["pooled"].dtype == torch.bfloat16
    torch.testing.assert_close(seen["pooled"].float(), expected.to(torch.bfloat16).float(), rtol=0, atol=0)

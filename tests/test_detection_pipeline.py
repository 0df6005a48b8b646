"""The detection/segmentation plumbing around the ops: batches, steps, evaluation, R-CNN regions, DETR parts, pictures."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from cvkit import detection as D  # noqa: E402
from cvkit import segmentation as S  # noqa: E402
from cvkit.data import ShapesDataset  # noqa: E402
from cvkit.models import create_model  # noqa: E402
from cvkit.models.detr import sine_position_encoding  # noqa: E402


@pytest.fixture(scope="module")
def shapes():
    return ShapesDataset(n=6, image_size=64, seed=5)


def _mask_box(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def test_detection_batches_flip_boxes_with_the_masks(shapes):
    batches = D.DetectionBatches(shapes, batch_size=4, flip=True, masks=True, seed=1)
    assert len(batches) == 2
    seen = 0
    for images, targets in batches:
        assert images.shape[1:] == (3, 64, 64)
        for target in targets:
            assert target["labels"].min() >= 1  # label_offset=1: 0 is torchvision's background
            for box, mask in zip(target["boxes"], target["masks"]):
                torch.testing.assert_close(box, _mask_box(mask.bool()))  # boxes and masks flipped together
            seen += 1
    assert seen == 6
    first = [t["boxes"] for _, ts in D.DetectionBatches(shapes, 4, flip=True, seed=1) for t in ts]
    again = [t["boxes"] for _, ts in D.DetectionBatches(shapes, 4, flip=True, seed=1) for t in ts]
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # deterministic per seed and epoch
    with pytest.raises(ValueError, match="batch_size"):
        D.DetectionBatches(shapes, batch_size=0)


class _Oracle(torch.nn.Module):
    """A 'detector' that returns the ground truth of a fixed list of samples (AP must be 1)."""

    def __init__(self, samples):
        super().__init__()
        self.samples = samples
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, images):
        out = []
        for _ in images:
            s = self.samples[self.calls]
            self.calls += 1
            out.append({"boxes": s.boxes, "scores": torch.ones(len(s.boxes)), "labels": s.labels + 1})
        return out


def test_evaluate_detector_scores_a_perfect_detector_one(shapes):
    result = D.evaluate_detector(_Oracle([shapes[i] for i in range(6)]), shapes, label_offset=1, batch_size=4)
    assert result["map"].item() == pytest.approx(1.0)
    assert len(result["predictions"]) == 6 and D.format_ap(result).startswith("AP 1.000")


def test_torchvision_detector_step_rpn_proposals_and_predictions(shapes):
    torch.manual_seed(0)
    model = create_model("faster_rcnn_small", widths=(8, 16, 32), representation=32)
    images, targets = next(iter(D.DetectionBatches(shapes, batch_size=2)))
    out = D.torchvision_detection_step(model, (images, targets))
    assert out.count == 2 and out.loss.dim() == 0 and torch.isfinite(out.loss)
    proposals = D.rpn_proposals(model, images)
    assert len(proposals) == 2 and all(p.shape[1] == 4 and len(p) <= 100 for p in proposals)
    assert all(((p >= 0) & (p <= 64)).all() for p in proposals)  # clipped to the image
    preds = D.predict_detections(model, images)
    assert set(preds[0]) == {"boxes", "scores", "labels"}


def test_detr_step_prediction_format_and_position_encoding(shapes):
    torch.manual_seed(0)
    model = create_model("detr_small", dim=32, ffn=64, widths=(8, 16, 32), num_queries=5)
    images, targets = next(iter(D.DetectionBatches(shapes, batch_size=3, label_offset=0)))
    out = D.detr_step(model, (images, targets))
    # the loss is the set loss of every decoder layer, each matched image by image (what detr_step batches)
    with torch.no_grad():
        raw = model(images)
        expected = 0.0
        for layer in [raw, *raw["aux"]]:
            matches = [
                D.match_predictions(layer["logits"][b], layer["boxes"][b], t["labels"], t["boxes"], (64, 64))
                for b, t in enumerate(targets)
            ]
            expected += D.set_prediction_loss(layer["logits"], layer["boxes"], targets, (64, 64), matches=matches)[
                "loss"
            ]
    assert len(raw["aux"]) > 0 and tuple(images.shape[-2:]) == (64, 64)
    torch.testing.assert_close(out.loss.detach(), expected)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.query_pos.grad is not None
    preds = model.predict(images)
    assert len(preds) == 3 and preds[0]["boxes"].shape == (5, 4) and preds[0]["labels"].max() < 3
    assert (preds[0]["boxes"][:, 2:] >= preds[0]["boxes"][:, :2]).all()  # a sigmoid width and height: never inverted
    pos = sine_position_encoding(4, 6, 16)
    assert pos.shape == (24, 16)
    assert torch.unique(pos, dim=0).shape[0] == 24  # every position gets its own code
    # the first y channel is sin(2 pi (i + 1) / H) for row i
    torch.testing.assert_close(pos.reshape(4, 6, 16)[:, 0, 0], torch.sin(2 * math.pi * torch.arange(1, 5) / 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        sine_position_encoding(2, 2, 6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.set_sync_debug_mode)")
def test_detr_step_syncs_do_not_grow_with_the_batch():
    """Matching image by image copied each image's cost to the CPU after every decoder layer: B x layers waits for the
    GPU per step (DETR's full profile ran slower on a shared H200 than on 2 CPU cores). detr_step matches the batch
    and all layers in one call, so its syncs per step are a constant."""
    import warnings

    data = ShapesDataset(n=16, image_size=64, seed=5)
    model = create_model("detr_small", dim=32, ffn=64, widths=(8, 16, 32), num_queries=5).cuda()
    syncs = {}
    for batch_size in (2, 8):
        images, targets = next(iter(D.DetectionBatches(data, batch_size=batch_size, label_offset=0)))
        images = images.cuda()
        targets = [{k: v.cuda() for k, v in t.items()} for t in targets]
        D.detr_step(model, (images, targets)).loss.backward()  # warm-up
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                D.detr_step(model, (images, targets)).loss.backward()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs[batch_size] = sum("synchroniz" in str(w.message) for w in caught)
    assert syncs[2] == syncs[8], syncs


def test_region_targets_follow_rcnn_thresholds():
    gt = torch.tensor([[10.0, 10, 30, 30]])
    regions = torch.tensor([[10.0, 10, 30, 30], [12.0, 12, 32, 32], [20.0, 20, 40, 40], [40.0, 40, 60, 60]])
    labels, deltas = D.region_targets(regions, gt, torch.tensor([2]))
    # IoU 1 and 0.68: class 2 -> label 3; IoU 0.14: background; IoU 0: background
    assert labels.tolist() == [3, 3, 0, 0]
    torch.testing.assert_close(deltas[0], torch.zeros(4))
    torch.testing.assert_close(deltas[1], D.encode_boxes(gt, regions[1:2])[0])
    labels, _ = D.region_targets(torch.tensor([[10.0, 10, 30, 38]]), gt, torch.tensor([0]))  # IoU 0.71: positive
    assert labels.tolist() == [1]
    labels, _ = D.region_targets(torch.tensor([[10.0, 10, 30, 50]]), gt, torch.tensor([0]))  # IoU 0.5 exactly: positive
    assert labels.tolist() == [1]
    labels, _ = D.region_targets(torch.tensor([[10.0, 10, 30, 60]]), gt, torch.tensor([0]))  # IoU 0.4: ignored
    assert labels.tolist() == [-1]


class _CentreClassifier(torch.nn.Module):
    """Calls a crop 'class 1' when its centre pixel is bright: enough to check the R-CNN plumbing."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, crops):
        centre = crops[:, 0, crops.shape[2] // 2, crops.shape[3] // 2]  # (B,)
        logits = torch.stack(
            [-10 * centre, 10 * centre, torch.zeros_like(centre)], dim=1
        )  # background, class 0, class 1
        return {"logits": logits, "deltas": torch.zeros(len(crops), 4)}


def test_classify_regions_scores_refines_and_suppresses():
    image = torch.zeros(3, 32, 32)
    image[:, 8:16, 8:16] = 1.0
    windows = D.sliding_windows((32, 32), (8,), stride=2)
    out = D.classify_regions(_CentreClassifier(), image, windows, crop_size=8, score_threshold=0.9, nms_threshold=0.3)
    assert int(out["forward_passes"]) == len(windows)
    assert (out["labels"] == 0).all() and len(out["boxes"]) >= 1
    assert D.box_iou(out["boxes"][:1], torch.tensor([[8.0, 8, 16, 16]])).item() > 0.3
    assert (D.box_iou(out["boxes"], out["boxes"]).triu(1) <= 0.3).all()  # NMS left no two boxes overlapping more


def test_segmentation_step_and_evaluation():
    data = ShapesDataset(n=4, image_size=32, seed=0).stack()
    torch.manual_seed(0)
    model = create_model("unet", base=4, depth=2)
    out = S.segmentation_step(model, (data["images"], data["semantic"]))
    assert out.count == 4 and 0 <= out.correct.item() <= 4
    meter = S.evaluate_segmenter(model, data["images"], data["semantic"], 4)
    assert meter.cm.sum().item() == 4 * 32 * 32
    with pytest.raises(ValueError, match="matching masks"):
        S.segmentation_step(model, (data["images"], data["semantic"][:, :16]))


def test_visualizers_draw_what_they_are_given(shapes):
    import matplotlib.pyplot as plt

    from cvkit import viz
    from cvkit.widgets import explore_anchors

    s = shapes[0]
    fig = viz.plot_anchors(s.image, 8, (8, 16), (0.5, 1.0, 2.0), cell=(2, 3))
    assert len(fig.axes[0].patches) == 6 + 1  # the K anchors of the cell and the cell itself
    anchors = D.anchors_for_image((64, 64), (8, 8), (16,), (1.0,))
    matches = D.match_anchors(D.box_iou(s.boxes, anchors))
    fig = viz.plot_anchor_matches(s.image, anchors, s.boxes, matches, max_negatives=0)
    drawn = len(fig.axes[0].patches)
    assert drawn == int((matches >= 0).sum()) + int((matches == -2).sum()) + 2 * len(s.boxes)
    fig = viz.plot_nms(s.image, s.boxes, torch.tensor([0.9] * len(s.boxes)), torch.arange(len(s.boxes)))
    assert len(fig.axes) == 2
    fig = viz.plot_detr_matches(s.image, s.boxes + 1, s.boxes, torch.arange(len(s.boxes)), torch.arange(len(s.boxes)))
    assert len(fig.axes[0].lines) == len(s.boxes)  # one line per matched pair
    ax = viz.plot_instances(s.image, s.masks, s.labels, boxes=s.boxes)
    assert ax.get_xlim() == (-0.5, 63.5)
    result = D.mean_average_precision(
        [{"boxes": s.boxes, "scores": torch.ones(len(s.boxes)), "labels": s.labels}],
        [{"boxes": s.boxes, "labels": s.labels}],
    )
    fig = viz.plot_precision_recall(result)
    assert len(fig.axes[0].lines) == 2 * len(s.labels.unique())
    fig = viz.show_matrices([torch.eye(2), torch.ones(3, 1)], ["a", "b"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="2-D"):
        viz.show_matrices([torch.ones(2, 2, 2)])
    fig = explore_anchors(s.image, static=True)
    assert fig.axes[0].get_title().startswith("stride 8")
    plt.close("all")

"""cvkit.detection against its library twins (torchvision.ops, torchvision's detection utilities,
scipy, torchmetrics) plus hand-computed cases and the edge cases: empty sets, zero-area boxes, ties."""

import itertools
import math

import pytest
import torch
import torchvision.ops as ops

from cvkit import detection as D
from cvkit import segmentation as S


def random_boxes(n, generator, extent=60.0, max_size=25.0, min_size=0.5):
    xy = torch.rand(n, 2, generator=generator) * extent
    wh = torch.rand(n, 2, generator=generator) * max_size + min_size
    return torch.cat([xy, xy + wh], dim=1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# -- boxes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_convert_matches_torchvision_and_round_trips(gen, fmt):
    boxes = random_boxes(40, gen)
    converted = D.box_convert(boxes, "xyxy", fmt)
    torch.testing.assert_close(converted, ops.box_convert(boxes, "xyxy", fmt))
    torch.testing.assert_close(D.box_convert(converted, fmt, "xyxy"), boxes)
    torch.testing.assert_close(
        D.box_convert(converted, fmt, "xywh" if fmt == "cxcywh" else "cxcywh"),
        ops.box_convert(converted, fmt, "xywh" if fmt == "cxcywh" else "cxcywh"),
    )


def test_box_convert_rejects_unknown_format():
    with pytest.raises(ValueError, match="choose|one of"):
        D.box_convert(torch.zeros(1, 4), "xyxy", "yxyx")


def test_iou_and_giou_match_torchvision(gen):
    a, b = random_boxes(30, gen), random_boxes(17, gen)
    torch.testing.assert_close(D.box_iou(a, b), ops.box_iou(a, b))
    torch.testing.assert_close(D.generalized_box_iou(a, b), ops.generalized_box_iou(a, b))
    torch.testing.assert_close(D.elementwise_box_iou(a[:17], b), ops.box_iou(a[:17], b).diag())
    torch.testing.assert_close(
        D.elementwise_box_iou(a[:17], b, generalized=True), ops.generalized_box_iou(a[:17], b).diag()
    )
    for reduction in ("none", "mean", "sum"):
        torch.testing.assert_close(
            D.generalized_box_iou_loss(a[:17], b, reduction),
            ops.generalized_box_iou_loss(a[:17], b, reduction=reduction),
        )


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [2.0, 0, 3, 1], [0, 0, 2, 2]])
    # overlap 1, union 7; touching edges: 0; identical: 1
    torch.testing.assert_close(D.box_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))
    # disjoint unit squares 1 apart: IoU 0, enclosing box 3 x 1, union 2 -> GIoU = -1/3
    torch.testing.assert_close(
        D.generalized_box_iou(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[2.0, 0, 3, 1]])), torch.tensor([[-1 / 3]])
    )


def test_iou_edge_cases_empty_and_zero_area():
    boxes = torch.tensor([[0.0, 0, 4, 4]])
    assert D.box_iou(torch.zeros(0, 4), boxes).shape == (0, 1)
    assert D.generalized_box_iou(boxes, torch.zeros(0, 4)).shape == (1, 0)
    point = torch.tensor([[1.0, 1, 1, 1]])  # zero area, inside the box
    line = torch.tensor([[0.0, 2, 4, 2]])  # zero height
    torch.testing.assert_close(D.box_iou(point, boxes), ops.box_iou(point, boxes))  # 0, like torchvision
    torch.testing.assert_close(D.box_iou(line, boxes), torch.zeros(1, 1))
    # two identical degenerate boxes: torchvision gives 0/0 = NaN, the kit defines it as 0
    assert torch.isnan(ops.box_iou(point, point)).all()
    assert D.box_iou(point, point).item() == 0.0
    assert D.generalized_box_iou(point, point).item() == 0.0
    assert torch.isfinite(D.generalized_box_iou(point, line)).all()


def test_box_checks_raise_clear_errors():
    with pytest.raises(ValueError, match="x2 < x1"):
        D.box_iou(torch.tensor([[5.0, 0, 1, 1]]), torch.zeros(1, 4))
    with pytest.raises(TypeError, match="floating"):
        D.box_iou(torch.zeros(1, 4, dtype=torch.int64), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        D.box_iou(torch.zeros(3), torch.zeros(1, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        D.box_iou([[0, 0, 1, 1]], torch.zeros(1, 4))


def test_normalize_and_clip_boxes():
    boxes = torch.tensor([[-5.0, 10, 70, 40]])
    torch.testing.assert_close(D.normalize_boxes(boxes, (50, 100)), torch.tensor([[-0.05, 0.2, 0.7, 0.8]]))
    torch.testing.assert_close(D.denormalize_boxes(D.normalize_boxes(boxes, (50, 100)), (50, 100)), boxes)
    torch.testing.assert_close(D.clip_boxes(boxes, (30, 64)), ops.clip_boxes_to_image(boxes, (30, 64)))


# -- NMS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_torchvision(gen, threshold):
    boxes = random_boxes(200, gen, extent=40)
    scores = torch.rand(200, generator=gen)
    assert torch.equal(D.nms(boxes, scores, threshold), ops.nms(boxes, scores, threshold))


def test_nms_ties_empty_and_duplicates(gen):
    boxes = random_boxes(50, gen, extent=30)
    tied = torch.full((50,), 0.5)
    assert torch.equal(D.nms(boxes, tied, 0.4), ops.nms(boxes, tied, 0.4))  # equal scores keep input order
    assert D.nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    same = torch.tensor([[0.0, 0, 10, 10]] * 4)
    assert D.nms(same, torch.tensor([0.1, 0.9, 0.3, 0.9]), 0.5).tolist() == [1]  # one survivor: the first best
    degenerate = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 1]])  # zero area: IoU 0, nothing suppressed
    assert (
        D.nms(degenerate, torch.tensor([0.2, 0.1]), 0.5).tolist()
        == ops.nms(degenerate, torch.tensor([0.2, 0.1]), 0.5).tolist()
    )


def test_batched_nms_matches_torchvision(gen):
    boxes = random_boxes(150, gen, extent=40)
    scores = torch.rand(150, generator=gen)
    groups = torch.randint(0, 4, (150,), generator=gen)
    assert torch.equal(D.batched_nms(boxes, scores, groups, 0.5), ops.batched_nms(boxes, scores, groups, 0.5))
    assert D.batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0
    with pytest.raises(ValueError, match="groups"):
        D.batched_nms(boxes, scores, groups.float(), 0.5)


def test_nms_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scores"):
        D.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        D.nms(torch.zeros(3, 4), torch.zeros(3), 1.5)


# -- anchors and box coding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_size,feature_size,sizes,ratios",
    [
        ((64, 64), (8, 8), (8, 16, 32), (0.5, 1.0, 2.0)),
        ((64, 96), (4, 6), (24,), (1.0,)),
        ((80, 48), (10, 3), (10, 20), (0.25, 4.0)),
    ],
)
def test_anchors_match_torchvision_anchor_generator(image_size, feature_size, sizes, ratios):
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    generator = AnchorGenerator((tuple(sizes),), (tuple(ratios),))
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    expected = generator(images, [torch.zeros(1, 8, *feature_size)])[0]
    ours = D.anchors_for_image(image_size, feature_size, sizes, ratios)
    assert torch.equal(ours, expected)
    assert ours.shape == (feature_size[0] * feature_size[1] * len(sizes) * len(ratios), 4)


def test_cell_anchors_keep_area_and_ratio():
    anchors = D.cell_anchors((32,), (0.5, 1.0, 2.0))
    w, h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0]), rtol=0.05, atol=0)  # rounded to whole pixels
    torch.testing.assert_close(w * h, torch.full((3,), 32.0**2), rtol=0.03, atol=0)
    centred = D.grid_anchors((2, 2), 16, (16,), (1.0,), offset=8)
    torch.testing.assert_close(centred[:, :2] + 8, torch.tensor([[8.0, 8], [24, 8], [8, 24], [24, 24]]))
    with pytest.raises(ValueError, match="positive"):
        D.cell_anchors((0,), (1.0,))


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coding_matches_torchvision_box_coder(gen, weights):
    from torchvision.models.detection._utils import BoxCoder

    coder = BoxCoder(weights)
    gt, anchors = random_boxes(25, gen), random_boxes(25, gen)
    deltas = D.encode_boxes(gt, anchors, weights)
    torch.testing.assert_close(deltas, coder.encode_single(gt, anchors))
    torch.testing.assert_close(D.decode_boxes(deltas, anchors, weights), gt, atol=1e-4, rtol=1e-5)
    noisy = torch.randn(25, 4, generator=gen) * 3
    noisy[0, 2] = 50.0  # would overflow exp without the clip
    torch.testing.assert_close(D.decode_boxes(noisy, anchors, weights), coder.decode_single(noisy, anchors))
    assert torch.isfinite(D.decode_boxes(noisy, anchors, weights)).all()


def test_box_coding_hand_computed_and_errors():
    anchor = torch.tensor([[0.0, 0, 10, 20]])  # centre (5, 10), 10 x 20
    gt = torch.tensor([[5.0, 10, 25, 30]])  # centre (15, 20), 20 x 20
    torch.testing.assert_close(D.encode_boxes(gt, anchor), torch.tensor([[1.0, 0.5, math.log(2), 0.0]]))
    with pytest.raises(ValueError, match="positive width"):
        D.encode_boxes(gt, torch.tensor([[3.0, 3, 3, 9]]))
    with pytest.raises(ValueError, match="pair up"):
        D.encode_boxes(gt, torch.zeros(2, 4))


# -- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize("low_quality", [True, False])
def test_match_anchors_matches_torchvision_matcher(gen, low_quality):
    from torchvision.models.detection._utils import Matcher

    anchors = D.anchors_for_image((64, 64), (8, 8), (8, 16, 32), (0.5, 1.0, 2.0))
    gt = random_boxes(4, gen, extent=40, max_size=20, min_size=4)
    iou = D.box_iou(gt, anchors)
    expected = Matcher(0.7, 0.3, low_quality)(iou)
    assert torch.equal(D.match_anchors(iou, 0.7, 0.3, low_quality), expected)


def test_match_anchors_thresholds_ties_and_no_ground_truth():
    iou = torch.tensor([[0.8, 0.5, 0.1, 0.2], [0.1, 0.2, 0.2, 0.0]])  # box 1 peaks at 0.2 twice (a tie)
    assert D.match_anchors(iou, 0.7, 0.3, False).tolist() == [
        0,
        D.BETWEEN_THRESHOLDS,
        D.BELOW_LOW_THRESHOLD,
        D.BELOW_LOW_THRESHOLD,
    ]
    # low-quality matches: box 1's best anchors (1 and 2, tied at 0.2) become positive, each for its own best box
    assert D.match_anchors(iou, 0.7, 0.3, True).tolist() == [0, 0, 1, D.BELOW_LOW_THRESHOLD]
    assert D.match_anchors(torch.zeros(0, 5)).tolist() == [D.BELOW_LOW_THRESHOLD] * 5
    with pytest.raises(ValueError, match="low <= high"):
        D.match_anchors(iou, 0.3, 0.7)


def test_hungarian_match_is_optimal_by_brute_force(gen):
    for n, m in [(5, 3), (4, 4), (3, 5)]:
        cost = torch.rand(n, m, generator=gen)
        rows, cols = D.hungarian_match(cost)
        assert len(rows) == min(n, m) and len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        best = min(
            sum(float(cost[r, c]) for r, c in zip(perm, range(m)))
            if n >= m
            else sum(float(cost[r, c]) for r, c in zip(range(n), perm))
            for perm in itertools.permutations(range(max(n, m)), min(n, m))
        )
        assert float(cost[rows, cols].sum()) == pytest.approx(best, abs=1e-6)
    rows, cols = D.hungarian_match(torch.zeros(4, 0))
    assert rows.numel() == 0 and cols.numel() == 0 and rows.dtype == torch.int64
    with pytest.raises(ValueError, match="NaN"):
        D.hungarian_match(torch.tensor([[float("nan")]]))


def test_matching_cost_follows_detr_formula(gen):
    logits = torch.randn(6, 4, generator=gen)
    pred = random_boxes(6, gen)
    gt = random_boxes(3, gen)
    labels = torch.tensor([0, 2, 1])
    cost = D.matching_cost(logits, pred, labels, gt, image_size=(100, 100))
    prob = logits.softmax(-1)
    l1 = torch.cdist(ops.box_convert(pred / 100, "xyxy", "cxcywh"), ops.box_convert(gt / 100, "xyxy", "cxcywh"), p=1)
    expected = -prob[:, labels] + 5 * l1 - 2 * ops.generalized_box_iou(pred, gt)
    torch.testing.assert_close(cost, expected)


def test_match_predictions_recovers_a_permutation(gen):
    gt = random_boxes(3, gen)
    labels = torch.tensor([2, 0, 1])
    order = torch.tensor([4, 0, 2])  # gt j is predicted by query order[j]
    pred = random_boxes(5, gen)
    pred[order] = gt
    logits = torch.full((5, 4), -5.0)
    logits[:, 3] = 5.0  # "no object" everywhere ...
    logits[order, labels] = 8.0  # ... except the right class on the right queries
    rows, cols = D.match_predictions(logits, pred, labels, gt, (100, 100))
    assert dict(zip(cols.tolist(), rows.tolist())) == {0: 4, 1: 0, 2: 2}


def test_set_prediction_loss_perfect_predictions_and_gradients(gen):
    gt = random_boxes(2, gen)
    targets = [
        {"boxes": gt, "labels": torch.tensor([1, 0])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    boxes = random_boxes(8, gen).reshape(2, 4, 4)
    boxes[0, 1], boxes[0, 3] = gt[0], gt[1]
    logits = torch.full((2, 4, 3), -10.0)
    logits[..., 2] = 10.0
    logits[0, 1, 1], logits[0, 1, 2] = 10.0, -10.0
    logits[0, 3, 0], logits[0, 3, 2] = 10.0, -10.0
    logits.requires_grad_(True)
    boxes.requires_grad_(True)
    out = D.set_prediction_loss(logits, boxes, targets, (100, 100))
    assert out["loss_l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["loss_giou"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["loss_cls"].item() < 1e-6
    out["loss"].backward()
    assert boxes.grad is not None and logits.grad is not None
    # the class term is the weighted cross-entropy DETR uses: "no object" weighs 0.1
    targets_cls = torch.tensor([[2, 1, 2, 0], [2, 2, 2, 2]])
    noisy = torch.randn(2, 4, 3, generator=gen)
    got = D.set_prediction_loss(
        noisy,
        boxes.detach(),
        targets,
        (100, 100),
        matches=[(torch.tensor([1, 3]), torch.tensor([0, 1])), (torch.zeros(0, dtype=torch.int64),) * 2],
    )
    expected = torch.nn.functional.cross_entropy(
        noisy.transpose(1, 2), targets_cls, weight=torch.tensor([1.0, 1.0, 0.1])
    )
    torch.testing.assert_close(got["loss_cls"], expected)


def _detr_batch(gen, sizes, queries=6, classes=3):
    """Random DETR outputs for len(sizes) images and targets with sizes[b] objects each."""
    logits = torch.randn(len(sizes), queries, classes + 1, generator=gen)
    boxes = random_boxes(len(sizes) * queries, gen).reshape(len(sizes), queries, 4)
    targets = [{"boxes": random_boxes(m, gen), "labels": torch.randint(0, classes, (m,), generator=gen)} for m in sizes]
    return logits, boxes, targets


def test_match_batch_equals_matching_each_image(gen):
    sizes = [3, 0, 6, 1, 4]
    logits, boxes, targets = _detr_batch(gen, sizes)
    got = D.match_batch(logits, boxes, targets, (100, 100))
    assert len(got) == len(sizes)
    for b, t in enumerate(targets):
        rows, cols = D.match_predictions(logits[b], boxes[b], t["labels"], t["boxes"], (100, 100))
        assert torch.equal(got[b][0], rows) and torch.equal(got[b][1], cols), f"image {b}"
        assert len(got[b][0]) == min(6, sizes[b])
    with pytest.raises(ValueError, match="2 targets for a batch of 5"):
        D.match_batch(logits, boxes, targets[:2], (100, 100))
    targets[2]["labels"][0] = 3  # the "no object" index is not a class
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        D.match_batch(logits, boxes, targets, (100, 100))


def test_set_prediction_loss_matches_the_batch_like_each_image(gen):
    logits, boxes, targets = _detr_batch(gen, [2, 0, 5])
    logits.requires_grad_(True)
    got = D.set_prediction_loss(logits, boxes, targets, (100, 100))
    per_image = [
        D.match_predictions(logits[b].detach(), boxes[b], t["labels"], t["boxes"], (100, 100))
        for b, t in enumerate(targets)
    ]
    expected = D.set_prediction_loss(logits, boxes, targets, (100, 100), matches=per_image)
    for key in ("loss", "loss_cls", "loss_l1", "loss_giou"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    # the box terms by hand: L1 of normalised cxcywh and 1 - GIoU over the 7 matched pairs
    pred = torch.cat([boxes[b, p] for b, (p, _) in enumerate(per_image)])
    gt = torch.cat([t["boxes"][g] for (_, g), t in zip(per_image, targets)])
    l1 = (ops.box_convert(pred / 100, "xyxy", "cxcywh") - ops.box_convert(gt / 100, "xyxy", "cxcywh")).abs().sum() / 7
    giou = (1 - ops.generalized_box_iou(pred, gt).diagonal()).sum() / 7
    torch.testing.assert_close(got["loss_l1"], l1)
    torch.testing.assert_close(got["loss_giou"], giou)
    got["loss"].backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="2 matches for a batch of 3"):
        D.set_prediction_loss(logits, boxes, targets, (100, 100), matches=per_image[:2])


# -- RoI pooling and RoIAlign ----------------------------------------------------------------------


@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_torchvision(gen, sampling_ratio, aligned):
    features = torch.randn(2, 5, 12, 14, generator=gen)
    boxes = random_boxes(20, gen, extent=50, max_size=30, min_size=0.0)
    boxes[0] = torch.tensor([-10.0, -6, 20, 8])  # partly outside the image
    boxes[1] = torch.tensor([40.0, 30, 40.5, 30.2])  # almost empty
    rois = torch.cat([torch.randint(0, 2, (20, 1), generator=gen).float(), boxes], dim=1)
    expected = ops.roi_align(features, rois, (3, 4), spatial_scale=0.25, sampling_ratio=sampling_ratio, aligned=aligned)
    torch.testing.assert_close(
        D.roi_align(features, rois, (3, 4), 0.25, sampling_ratio, aligned), expected, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("scale,size", [(1.0, 2), (0.25, (3, 4)), (0.5, 7)])
def test_roi_pool_matches_torchvision(gen, scale, size):
    features = torch.randn(2, 4, 16, 16, generator=gen)
    boxes = random_boxes(15, gen, extent=50, max_size=20, min_size=0.0)
    boxes[0] = torch.tensor([-8.0, -8, 6, 5])
    per_image = [boxes[:7], boxes[7:]]
    torch.testing.assert_close(
        D.roi_pool(features, per_image, size, scale), ops.roi_pool(features, per_image, size, scale)
    )


def test_roi_ops_empty_and_errors(gen):
    features = torch.randn(1, 3, 8, 8, generator=gen)
    assert D.roi_align(features, torch.zeros(0, 5), 2).shape == (0, 3, 2, 2)
    assert D.roi_pool(features, [torch.zeros(0, 4)], 2).shape == (0, 3, 2, 2)
    with pytest.raises(ValueError, match="batch indices"):
        D.roi_align(features, torch.tensor([[1.0, 0, 0, 4, 4]]), 2)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        D.roi_pool(features, torch.zeros(3, 4), 2)


def test_roi_align_of_a_constant_map_is_constant():
    features = torch.full((1, 1, 10, 10), 3.0)
    out = D.roi_align(features, torch.tensor([[0.0, 1.3, 2.2, 7.9, 8.1]]), 4, 1.0, 2, True)
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), 3.0))


# -- AP ----------------------------------------------------------------------------------------


def _scene(gen, images=25, classes=4):
    preds, targets = [], []
    for i in range(images):
        k = int(torch.randint(0, 5, (1,), generator=gen))
        gt = random_boxes(k, gen, min_size=3.0)
        labels = torch.randint(0, classes, (k,), generator=gen)
        jitter = gt + torch.randn(k, 4, generator=gen) * 1.5
        jitter = torch.cat(
            [torch.minimum(jitter[:, :2], jitter[:, 2:]), torch.maximum(jitter[:, :2], jitter[:, 2:])], dim=1
        )
        flip = torch.rand(k, generator=gen) < 0.15  # some wrong classes
        pred_labels = torch.where(flip, (labels + 1) % classes, labels)
        boxes = torch.cat([jitter, jitter[:1], random_boxes(3, gen)])  # a duplicate and false positives
        pred_labels = torch.cat([pred_labels, pred_labels[:1], torch.randint(0, classes, (3,), generator=gen)])
        scores = torch.rand(len(boxes), generator=gen)
        if i == 4:
            scores = torch.full((len(boxes),), 0.5)  # ties
        if i == 7:
            boxes, pred_labels, scores = boxes[:0], pred_labels[:0], scores[:0]  # no predictions
        preds.append({"boxes": boxes, "scores": scores, "labels": pred_labels})
        targets.append({"boxes": gt, "labels": labels})
    return preds, targets


def _torchmetrics_map(preds, targets):
    from torchmetrics.detection import MeanAveragePrecision

    # pycocotools' own thresholds (float64); torchmetrics' defaults are float32 copies, which move
    # an exact boundary such as recall 8/10 = 0.8 (float32 0.8 is 0.800000012)
    metric = MeanAveragePrecision(
        class_metrics=True,
        backend="pycocotools",
        iou_thresholds=D.metrics.COCO_IOU_THRESHOLDS.tolist(),
        rec_thresholds=D.metrics.COCO_RECALL_LEVELS.tolist(),
    )
    metric.update(preds, targets)
    return metric.compute()


def test_map_matches_torchmetrics_pycocotools(gen):
    preds, targets = _scene(gen)
    expected = _torchmetrics_map(preds, targets)
    ours = D.mean_average_precision(preds, targets)
    for key in ("map", "map_50", "map_75"):
        assert ours[key].item() == pytest.approx(expected[key].item(), abs=1e-6), key
    torch.testing.assert_close(ours["map_per_class"], expected["map_per_class"], atol=1e-6, rtol=0)
    assert ours["classes"].tolist() == expected["classes"].tolist()
    assert 0.05 < ours["map"].item() < 0.95  # a scene that is neither trivial nor hopeless


def test_map_keeps_the_best_max_detections_per_image_and_class(gen):
    preds, targets = _scene(gen, images=10)
    top3 = []
    for p in preds:  # keep each image's 3 best detections of every class by hand
        keep = torch.cat(
            [
                idx[p["scores"][idx].argsort(descending=True, stable=True)[:3]]
                for idx in (torch.where(p["labels"] == c)[0] for c in p["labels"].unique())
            ]
            or [torch.zeros(0, dtype=torch.int64)]
        )
        top3.append({k: v[keep] for k, v in p.items()})
    expected = _torchmetrics_map(top3, targets)["map"].item()
    assert D.mean_average_precision(preds, targets, max_detections=3)["map"].item() == pytest.approx(expected, abs=1e-6)
    assert D.mean_average_precision(preds, targets)["map"].item() != pytest.approx(expected, abs=1e-6)


def test_mask_map_matches_torchmetrics_segm(gen):
    from torchmetrics.detection import MeanAveragePrecision

    from cvkit.data import ShapesDataset

    shapes = ShapesDataset(n=12, image_size=48, seed=4)
    preds, targets = [], []
    for i in range(len(shapes)):
        s = shapes[i]
        shift = torch.randint(-2, 3, (2,), generator=gen).tolist()
        masks = s.masks.roll(shifts=shift, dims=(1, 2))  # imperfect masks: shifted by up to 2 pixels
        labels = torch.where(torch.rand(len(s.labels), generator=gen) < 0.2, (s.labels + 1) % 3, s.labels)
        preds.append(
            {"masks": masks, "scores": torch.rand(len(masks), generator=gen), "labels": labels, "boxes": s.boxes}
        )
        targets.append({"masks": s.masks, "labels": s.labels, "boxes": s.boxes})
    metric = MeanAveragePrecision(
        iou_type="segm",
        backend="pycocotools",
        iou_thresholds=D.metrics.COCO_IOU_THRESHOLDS.tolist(),
        rec_thresholds=D.metrics.COCO_RECALL_LEVELS.tolist(),
    )
    metric.update(
        [{k: v for k, v in p.items() if k != "boxes"} for p in preds],
        [{k: v for k, v in t.items() if k != "boxes"} for t in targets],
    )
    expected = metric.compute()
    ours = D.mean_average_precision(preds, targets, iou_type="segm")
    for key in ("map", "map_50", "map_75"):
        assert ours[key].item() == pytest.approx(expected[key].item(), abs=1e-6), key
    assert 0.05 < ours["map"].item() < 0.95
    probabilities = [
        dict(p, masks=p["masks"][:, None].float() * 0.9) for p in preds
    ]  # Mask R-CNN's (D, 1, H, W) format
    assert D.mean_average_precision(probabilities, targets, iou_type="segm")["map"].item() == pytest.approx(
        ours["map"].item()
    )


def test_mask_iou_hand_computed():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    a[0, :2, :2] = True  # 4 pixels
    b = torch.zeros(1, 4, 4, dtype=torch.bool)
    b[0, 1:3, 1:3] = True  # 4 pixels, 1 shared with a[0]
    torch.testing.assert_close(S.mask_iou(a, b), torch.tensor([[1 / 7], [0.0]], dtype=torch.float64))


def test_map_hand_computed_cases():
    gt = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]]), "labels": torch.tensor([1, 1])}
    perfect = {"boxes": gt["boxes"].clone(), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 1])}
    assert D.mean_average_precision([perfect], [gt])["map"].item() == pytest.approx(1.0)
    # one of two objects found: recall stops at 0.5, so AP = 51 / 101 recall levels at precision 1
    half = {"boxes": gt["boxes"][:1], "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}
    assert D.mean_average_precision([half], [gt])["map_50"].item() == pytest.approx(51 / 101)
    # a higher-scoring duplicate-free false positive first: precision 1/2 then 2/3 at recalls 0.5 and 1
    fp_first = {
        "boxes": torch.cat([torch.tensor([[40.0, 40, 50, 50]]), gt["boxes"]]),
        "scores": torch.tensor([0.95, 0.9, 0.8]),
        "labels": torch.tensor([1, 1, 1]),
    }
    assert D.mean_average_precision([fp_first], [gt])["map_50"].item() == pytest.approx(2 / 3)
    # no predictions at all: AP 0; no ground truth at all: undefined (-1), as in COCO
    none = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    assert D.mean_average_precision([none], [gt])["map"].item() == 0.0
    empty_gt = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    assert D.mean_average_precision([perfect], [empty_gt])["map"].item() == -1.0
    assert D.mean_average_precision([], [])["map"].item() == -1.0


def test_map_rejects_malformed_input():
    gt = {"boxes": torch.zeros(1, 4), "labels": torch.tensor([0])}
    with pytest.raises(ValueError, match="scores"):
        D.mean_average_precision([{"boxes": torch.zeros(1, 4), "labels": torch.tensor([0])}], [gt])
    with pytest.raises(ValueError, match="one dict per image"):
        D.mean_average_precision([], [gt])


# -- regions ---------------------------------------------------------------------------------------


def test_sliding_windows_count_and_bounds():
    windows = D.sliding_windows((64, 48), (16, 32), stride=8)
    expected = ((64 - 16) // 8 + 1) * ((48 - 16) // 8 + 1) + ((64 - 32) // 8 + 1) * ((48 - 32) // 8 + 1)
    assert windows.shape == (expected, 4)
    assert (windows[:, 0] >= 0).all() and (windows[:, 2] <= 48).all() and (windows[:, 3] <= 64).all()


def test_segment_proposals_cover_the_shapes():
    from cvkit.data import ShapesDataset

    sample = ShapesDataset(n=3, image_size=64, seed=3, noise=0.0)[0]
    proposals = D.segment_proposals(sample.image)
    assert 0 < proposals.shape[0] <= 200
    best = D.box_iou(sample.boxes, proposals).max(dim=1).values
    assert (best > 0.7).all(), best  # every object has a well-fitting proposal


def test_crop_regions_warps_to_a_fixed_size():
    image = torch.zeros(3, 20, 20)
    image[:, 5:15, 5:15] = 1.0
    crops = D.crop_regions(image, torch.tensor([[5.0, 5, 15, 15], [0.0, 0, 4, 4]]), 8)
    assert crops.shape == (2, 3, 8, 8)
    torch.testing.assert_close(
        crops[0, :, 1:-1, 1:-1], torch.ones(3, 6, 6)
    )  # the border samples blend with outside pixels
    assert crops[0].min() > 0.5
    torch.testing.assert_close(crops[1], torch.zeros(3, 8, 8))


def test_proposal_recall_hand_computed():
    gt = [torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]]), torch.tensor([[0.0, 0, 4, 4]])]
    proposals = [
        torch.tensor([[0.0, 0, 10, 12], [50.0, 50, 60, 60]]),  # IoU 100/120 = 0.83 with the first box only
        torch.zeros(0, 4),
    ]  # no candidate at all in the second image
    assert D.proposal_recall(proposals, gt, 0.5) == pytest.approx(1 / 3)
    assert D.proposal_recall(proposals, gt, 0.9) == 0.0
    assert D.proposal_recall([torch.zeros(0, 4)], [torch.zeros(0, 4)]) == 0.0  # no object: 0, not a division by zero
    with pytest.raises(ValueError, match="as many"):
        D.proposal_recall(proposals, gt[:1])
    with pytest.raises(ValueError, match="iou_threshold"):
        D.proposal_recall(proposals, gt, 1.5)


class _FixedDETR(torch.nn.Module):
    """A stand-in DETR whose queries predict given boxes and object probabilities for every image."""

    def __init__(self, boxes, p_object):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.boxes, self.p = boxes, p_object  # (N, Q, 4), (N, Q)

    def forward(self, images):
        n = images.shape[0]
        p = self.p[:n].clamp(1e-6, 1 - 1e-6)
        logits = torch.stack([p.log(), (1 - p).log()], -1)  # one class and "no object"
        return {"logits": logits + 0 * self.w, "boxes": self.boxes[:n]}


def test_query_specialisation_tells_a_collapsed_prior_from_specialised_queries():
    n = 40
    images = torch.zeros(n, 3, 64, 64)
    # collapsed: query q fires on every image at one spot (4q, 4q)
    fixed = torch.tensor([[4.0 * q, 4.0 * q, 4.0 * q + 2, 4.0 * q + 2] for q in range(2)]).expand(n, 2, 4)
    collapsed = D.query_specialisation(_FixedDETR(fixed, torch.full((n, 2), 0.9)), images)
    assert collapsed["max_firing"] == 1.0 and collapsed["spread"].tolist() == [0.0, 0.0]
    # specialised: query 0 fires on the left half of the images, query 1 on the others, each near its own corner
    g = torch.Generator().manual_seed(0)
    centres = torch.stack(
        [torch.rand(n, 2, generator=g) * 8 + 4, torch.rand(n, 2, generator=g) * 8 + 50], 1
    )  # (n, 2 queries, xy)
    boxes = torch.cat([centres - 1, centres + 1], -1)
    p = torch.stack([torch.arange(n) < n // 2, torch.arange(n) >= n // 2], 1).float()
    spec = D.query_specialisation(_FixedDETR(boxes, p), images, min_count=5)
    assert spec["firing"].tolist() == [0.5, 0.5] and spec["max_firing"] == 0.5
    manual = [(c - c.mean(0)).pow(2).sum(1).mean().sqrt().item() for c in (centres[: n // 2, 0], centres[n // 2 :, 1])]
    assert spec["spread"].tolist() == pytest.approx(manual, rel=1e-5)
    everything = torch.cat([centres[: n // 2, 0], centres[n // 2 :, 1]])
    overall = (everything - everything.mean(0)).pow(2).sum(1).mean().sqrt().item()
    assert spec["spread_ratio"] == pytest.approx(sum(manual) / 2 / overall, rel=1e-5) and spec["spread_ratio"] < 0.2
    with pytest.raises(ValueError, match="N, 3, H, W"):
        D.query_specialisation(_FixedDETR(boxes, p), images[0])

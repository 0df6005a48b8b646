"""Where to look before a detector learns to propose: sliding windows, region proposals, warped crops.

* **Sliding windows**: classify a crop at every position, scale and aspect ratio. Simple and
  exhaustive, and hopelessly expensive with a CNN per crop (thousands of forward passes).
* **Region proposals** (R-CNN, Girshick et al. 2014, uses selective search, Uijlings et al.
  2013): a cheap, class-agnostic algorithm finds ~2000 "blobby" regions likely to hold an
  object. :func:`segment_proposals` is selective search's first step: Felzenszwalb and
  Huttenlocher's graph-based segmentation (IJCV 2004, in scikit-image) at several scales,
  plus the hierarchical grouping of neighbouring segments; every segment and every merged
  group gives a box.
* **Warped crops**: R-CNN warps every region to the CNN's fixed input size;
  :func:`crop_regions` does it with bilinear sampling.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cvkit.detection.box_coder import decode_boxes, encode_boxes
from cvkit.detection.boxes import box_iou, check_boxes, clip_boxes
from cvkit.detection.matching import BETWEEN_THRESHOLDS, match_anchors
from cvkit.detection.nms import batched_nms, nms


def sliding_windows(
    image_size: Sequence[int],
    window_sizes: Sequence[int],
    stride: int | None = None,
    aspect_ratios: Sequence[float] = (1.0,),
) -> torch.Tensor:
    """Every window position over an image, for several sizes and aspect ratios.

    Args:
        image_size: ``(height, width)`` in pixels.
        window_sizes: window sizes S in pixels (square root of the area).
        stride: step between windows in pixels (default: a quarter of each window's size).
        aspect_ratios: ratios height / width (a window is ``S / sqrt(r)`` wide, ``S * sqrt(r)`` tall).

    Returns:
        (N, 4) float32, xyxy pixels, every window fully inside the image.

    Raises:
        ValueError: non-positive sizes, stride or ratios.
    """
    h, w = image_size
    if (
        min(h, w) <= 0
        or not window_sizes
        or min(window_sizes) <= 0
        or (stride is not None and stride <= 0)
        or min(aspect_ratios) <= 0
    ):
        raise ValueError(
            f"need positive image size, window sizes, stride and ratios; got {image_size}, {window_sizes}, {stride}, {aspect_ratios}"
        )
    boxes = []
    for size in window_sizes:
        for r in aspect_ratios:
            ww, wh = round(size / r**0.5), round(size * r**0.5)
            if ww > w or wh > h:
                continue
            step = stride or max(1, size // 4)
            ys = torch.arange(0, h - wh + 1, step, dtype=torch.float32)
            xs = torch.arange(0, w - ww + 1, step, dtype=torch.float32)
            y0, x0 = torch.meshgrid(ys, xs, indexing="ij")  # (ny, nx)
            boxes.append(torch.stack([x0, y0, x0 + ww, y0 + wh], dim=-1).reshape(-1, 4))
    return torch.cat(boxes) if boxes else torch.zeros(0, 4)


def segment_proposals(
    image: torch.Tensor,
    scales: Sequence[float] = (50, 100, 200),
    sigma: float = 0.5,
    min_size: int = 10,
    max_proposals: int = 200,
    merge_iou: float = 0.9,
) -> torch.Tensor:
    """Class-agnostic region proposals from graph-based segmentation (selective search's first step).

    Each segment of Felzenszwalb's segmentation at each ``scale`` gives a box; so do all pairs
    of adjacent segments (one level of selective search's hierarchical grouping). Duplicates
    (IoU above ``merge_iou``) are removed, larger boxes first.

    Args:
        image: (3, H, W) float in [0, 1].
        scales: Felzenszwalb's ``scale`` parameters (larger: fewer, larger segments).
        sigma: Gaussian pre-smoothing.
        min_size: smallest segment in pixels.
        max_proposals: at most this many boxes are returned.
        merge_iou: IoU above which two proposals count as one.

    Returns:
        (P, 4) float32, xyxy pixels, P <= ``max_proposals``.

    Raises:
        ValueError: ``image`` is not (3, H, W).
    """
    from skimage.segmentation import felzenszwalb

    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) tensor, got {getattr(image, 'shape', type(image).__name__)}")
    rgb = image.detach().permute(1, 2, 0).cpu().numpy()  # (H, W, 3) for scikit-image
    boxes = []
    for scale in scales:
        seg = felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size)  # (H, W) segment ids
        ids = np.unique(seg)
        ys, xs = np.indices(seg.shape)
        seg_boxes = {
            i: (xs[seg == i].min(), ys[seg == i].min(), xs[seg == i].max() + 1, ys[seg == i].max() + 1) for i in ids
        }
        boxes.extend(seg_boxes.values())
        # neighbouring segments: pairs of different ids across horizontal or vertical pixel edges
        pairs = set()
        for a, b in ((seg[:, :-1], seg[:, 1:]), (seg[:-1, :], seg[1:, :])):
            diff = a != b
            pairs.update(zip(a[diff].tolist(), b[diff].tolist()))
        for i, j in pairs:
            if i < j:
                bi, bj = seg_boxes[i], seg_boxes[j]
                boxes.append((min(bi[0], bj[0]), min(bi[1], bj[1]), max(bi[2], bj[2]), max(bi[3], bj[3])))
    boxes_t = torch.tensor(boxes, dtype=torch.float32).unique(dim=0)
    area = (boxes_t[:, 2] - boxes_t[:, 0]) * (boxes_t[:, 3] - boxes_t[:, 1])
    keep = nms(boxes_t, area, merge_iou)  # score = area: among near-duplicates keep the larger box
    return boxes_t[keep[:max_proposals]]


def crop_regions(
    images: torch.Tensor, boxes: torch.Tensor | Sequence[torch.Tensor], size: int | Sequence[int]
) -> torch.Tensor:
    """Warp image regions to a fixed size, as R-CNN feeds proposals to its CNN.

    Args:
        images: (N, C, H, W) float images, or one (C, H, W) image.
        boxes: (K, 4) xyxy pixels (all from the single image) or a list of N per-image (K_i, 4) tensors.
        size: output ``(height, width)`` or one int.

    Returns:
        (sum K_i, C, height, width) float crops, bilinearly resampled (``torchvision.ops.roi_align``
        with ``aligned=True``, two samples per output pixel and axis).

    Raises:
        ValueError: malformed images or boxes.
    """
    from torchvision.ops import roi_align

    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    per_image = [boxes] if isinstance(boxes, torch.Tensor) else list(boxes)
    if len(per_image) != images.shape[0]:
        raise ValueError(f"got boxes for {len(per_image)} images but {images.shape[0]} images")
    for i, b in enumerate(per_image):
        check_boxes(b, f"boxes[{i}]")
    out = (size, size) if isinstance(size, int) else tuple(size)
    return roi_align(
        images, [b.to(images) for b in per_image], output_size=out, spatial_scale=1.0, sampling_ratio=2, aligned=True
    )


def region_targets(
    regions: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    fg_iou: float = 0.5,
    bg_iou: float = 0.3,
    box_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """R-CNN's training labels for candidate regions of one image.

    A region overlapping a ground-truth box with IoU >= ``fg_iou`` takes its class (shifted by
    one: 0 is background) and learns the correction to it; below ``bg_iou`` it is background;
    in between it is ignored (-1), as in R-CNN's fine-tuning (Girshick et al. 2014, Sec. 2.3).

    Args:
        regions: (N, 4) float candidate boxes, xyxy pixels.
        gt_boxes: (M, 4) float, xyxy pixels; gt_labels: (M,) int64 in [0, K).
        fg_iou, bg_iou: the thresholds.
        box_weights: weights of :func:`cvkit.detection.encode_boxes`.

    Returns:
        ``(labels, deltas)``: (N,) int64 in {-1 (ignore), 0 (background), 1..K}, and (N, 4) float
        box corrections (zeros where the label is not an object).
    """

    matches = match_anchors(box_iou(gt_boxes, regions), fg_iou, bg_iou, allow_low_quality_matches=False)  # (N,)
    positive = matches >= 0
    labels = torch.zeros(len(regions), dtype=torch.int64)  # background unless matched
    labels[positive] = gt_labels[matches[positive]] + 1
    labels[matches == BETWEEN_THRESHOLDS] = -1
    deltas = torch.zeros(len(regions), 4)
    if bool(positive.any()):
        deltas[positive] = encode_boxes(gt_boxes[matches[positive]], regions[positive], box_weights)
    return labels, deltas


@torch.no_grad()
def classify_regions(
    model: torch.nn.Module,
    image: torch.Tensor,
    regions: torch.Tensor,
    crop_size: int = 24,
    score_threshold: float = 0.5,
    nms_threshold: float = 0.3,
    box_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    batch_size: int = 512,
) -> dict[str, torch.Tensor]:
    """Detect objects the R-CNN way: warp every region, classify it, refine its box, then per-class NMS.

    Args:
        model: a network mapping (B, 3, crop, crop) crops to ``{"logits": (B, K + 1), "deltas": (B, 4)}``
            with class 0 = background (:class:`cvkit.models.region_cnn.RegionCNN`).
        image: (3, H, W) float in [0, 1].
        regions: (N, 4) candidate boxes (sliding windows or proposals), xyxy pixels.
        crop_size: side of the warped crops.
        score_threshold: drop detections whose class probability is below it.
        nms_threshold: IoU threshold of the per-class NMS.
        box_weights: weights the box corrections were encoded with.
        batch_size: crops per forward pass.

    Returns:
        dict with ``boxes`` (D, 4) xyxy pixels (refined and clipped), ``scores`` (D,), ``labels`` (D,)
        int64 in [0, K) (background removed), best first, and ``forward_passes``: N (one CNN run per region).
    """

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits, deltas = [], []
        for start in range(0, len(regions), batch_size):
            crops = crop_regions(image[None].to(device), regions[start : start + batch_size].to(device), crop_size)
            out = model(crops)
            logits.append(out["logits"].cpu())
            deltas.append(out["deltas"].cpu())
    finally:
        model.train(was_training)
    prob = torch.cat(logits).softmax(dim=1) if logits else torch.zeros(0, 2)  # (N, K + 1)
    scores, labels = prob[:, 1:].max(dim=1)  # best object class per region
    boxes = (
        clip_boxes(decode_boxes(torch.cat(deltas), regions, box_weights), image.shape[-2:])
        if len(regions)
        else torch.zeros(0, 4)
    )
    keep = scores >= score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, nms_threshold)
    return {
        "boxes": boxes[keep],
        "scores": scores[keep],
        "labels": labels[keep],
        "forward_passes": torch.tensor(len(regions)),
    }

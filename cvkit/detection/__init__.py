"""Object detection, one concept per module, each tested against its library twin (lecture 08).

============================  =====================================================  ==========================================
module                        what                                                   library twin
============================  =====================================================  ==========================================
:mod:`~.boxes`                box formats, area, IoU, GIoU                           ``torchvision.ops.box_iou`` & co.
:mod:`~.nms`                  greedy and batched non-maximum suppression             ``torchvision.ops.nms`` / ``batched_nms``
:mod:`~.regions`              sliding windows, region proposals, warped crops        (scikit-image's Felzenszwalb segmentation)
:mod:`~.roi`                  RoI pooling (Fast R-CNN), RoIAlign (Mask R-CNN)        ``torchvision.ops.roi_pool`` / ``roi_align``
:mod:`~.anchors`              anchors over a feature grid (sizes x aspect ratios)     ``torchvision`` ``AnchorGenerator``
:mod:`~.box_coder`            (dx, dy, dw, dh) box encoding and decoding              ``torchvision`` ``BoxCoder``
:mod:`~.matching`             anchor-to-GT matching; DETR's Hungarian matching       ``Matcher``; ``scipy`` ``linear_sum_assignment``
:mod:`~.set_loss`             DETR's set prediction (Hungarian) loss
:mod:`~.metrics`              COCO AP, AP50, AP75; recall of proposals                ``torchmetrics`` ``MeanAveragePrecision``
:mod:`~.training`             batches, ``fit`` steps and AP evaluation for detectors
============================  =====================================================  ==========================================

Boxes are ``xyxy`` in pixels everywhere; the focal loss lives in :mod:`cvkit.train.losses`.
"""

from cvkit.detection.anchors import anchors_for_image, cell_anchors, grid_anchors
from cvkit.detection.box_coder import decode_boxes, encode_boxes
from cvkit.detection.boxes import (
    box_area,
    box_convert,
    box_iou,
    check_boxes,
    clip_boxes,
    denormalize_boxes,
    elementwise_box_iou,
    generalized_box_iou,
    generalized_box_iou_loss,
    normalize_boxes,
)
from cvkit.detection.matching import (
    BELOW_LOW_THRESHOLD,
    BETWEEN_THRESHOLDS,
    MatchCostWeights,
    hungarian_match,
    match_anchors,
    match_batch,
    match_predictions,
    matching_cost,
)
from cvkit.detection.metrics import mean_average_precision, proposal_recall
from cvkit.detection.nms import batched_nms, nms
from cvkit.detection.regions import classify_regions, crop_regions, region_targets, segment_proposals, sliding_windows
from cvkit.detection.roi import roi_align, roi_pool, rois_from_boxes
from cvkit.detection.set_loss import SetLossWeights, set_prediction_loss
from cvkit.detection.training import (
    DetectionBatches,
    detr_step,
    evaluate_detector,
    format_ap,
    predict_detections,
    query_specialisation,
    rpn_proposals,
    torchvision_detection_step,
)

__all__ = [
    "BELOW_LOW_THRESHOLD",
    "BETWEEN_THRESHOLDS",
    "DetectionBatches",
    "MatchCostWeights",
    "SetLossWeights",
    "anchors_for_image",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "cell_anchors",
    "classify_regions",
    "check_boxes",
    "clip_boxes",
    "crop_regions",
    "decode_boxes",
    "denormalize_boxes",
    "detr_step",
    "elementwise_box_iou",
    "encode_boxes",
    "evaluate_detector",
    "format_ap",
    "generalized_box_iou",
    "generalized_box_iou_loss",
    "grid_anchors",
    "hungarian_match",
    "match_anchors",
    "match_batch",
    "match_predictions",
    "matching_cost",
    "mean_average_precision",
    "nms",
    "proposal_recall",
    "query_specialisation",
    "normalize_boxes",
    "predict_detections",
    "region_targets",
    "roi_align",
    "roi_pool",
    "rois_from_boxes",
    "rpn_proposals",
    "segment_proposals",
    "set_prediction_loss",
    "sliding_windows",
    "torchvision_detection_step",
]

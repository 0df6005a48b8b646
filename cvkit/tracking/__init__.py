"""Tracking with one appearance model, UniTrack's way (Wang et al., "Do Different Tracking Tasks Require Different
Appearance Models?", NeurIPS 2021; lecture 11).

UniTrack's level-2 primitives, each a function of frozen features from any (self-supervised) encoder:

* :mod:`~cvkit.tracking.propagation`: carry a mask (or any per-pixel label) from past frames to the next one by
  feature affinity (video object segmentation, pose propagation);
* :mod:`~cvkit.tracking.association`: match this frame's detections to existing tracks by appearance (multi-object
  tracking), with the Hungarian algorithm.
"""

from cvkit.tracking.association import associate, embed_boxes, identity_accuracy, track_by_appearance
from cvkit.tracking.propagation import affinity, propagate_labels, propagate_mask

__all__ = [
    "affinity",
    "associate",
    "embed_boxes",
    "identity_accuracy",
    "propagate_labels",
    "propagate_mask",
    "track_by_appearance",
]

"""Moving-shapes videos (ground truth by hand) and UniTrack's propagation and association primitives."""

import pytest
import torch
import torch.nn.functional as F

from cvkit.data import ShapesDataset
from cvkit.data.video import moving_shapes
from cvkit.tracking import affinity, associate, identity_accuracy, propagate_labels, propagate_mask, track_by_appearance


def test_video_moves_objects_and_flow_is_their_velocity():
    s = ShapesDataset(n=1, image_size=48, min_shapes=2, max_shapes=2, seed=3)[0]
    video = moving_shapes(s, frames=4, velocities=[(2, 0), (0, -1)], noise=0.0)
    assert video.frames.shape == (4, 3, 48, 48) and video.flow.shape == (3, 2, 48, 48)
    for k, (vx, vy) in enumerate([(2, 0), (0, -1)]):
        if video.visible[2, k] and video.visible[0, k] and video.masks[0, k].sum() == video.masks[2, k].sum():
            torch.testing.assert_close(video.boxes[2, k] - video.boxes[0, k], torch.tensor([2.0 * vx, 2.0 * vy] * 2))
        assert (video.flow[0, 0][video.masks[0, k]] == vx).all() and (video.flow[0, 1][video.masks[0, k]] == vy).all()
    background = ~video.masks[0].any(0)
    assert (video.flow[0][:, background] == 0).all()
    with pytest.raises(ValueError, match="velocities"):
        moving_shapes(s, velocities=[(1, 1)])


def test_affinity_is_a_sparse_softmax_and_propagation_copies_identical_features():
    torch.manual_seed(0)
    ref = torch.randn(8, 4, 4)
    a = affinity(ref, ref, temperature=0.01, topk=3)
    torch.testing.assert_close(a.sum(1), torch.ones(16))
    assert ((a > 0).sum(1) <= 3).all()
    mask = (torch.rand(4, 4) > 0.5).float()
    out = propagate_labels(ref, ref, torch.stack([1 - mask, mask]), temperature=0.01, topk=3)
    torch.testing.assert_close(out[1], mask, atol=1e-3, rtol=0)  # the same frame: each position finds itself


def test_propagation_follows_a_shifted_pattern():
    torch.manual_seed(0)
    base = torch.randn(16, 10, 10)
    feats = torch.stack(
        [torch.roll(base, shifts=t, dims=2) for t in range(3)]
    )  # the "object" moves 1 cell right per frame
    mask = torch.zeros(10, 10)
    mask[3:6, 2:5] = 1
    out = propagate_mask(feats, mask, temperature=0.01, topk=1)
    torch.testing.assert_close(out[2], torch.roll(mask, 2, dims=1), atol=1e-3, rtol=0)


def test_association_by_hand():
    tracks = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    dets = F.normalize(torch.tensor([[0.1, 1.0], [1.0, 0.1], [-1.0, 0.0]]), dim=1)
    assert sorted(associate(tracks, dets, max_cost=0.5)) == [(0, 1), (1, 0)]
    ids = track_by_appearance([tracks, dets[:2]])
    assert ids[1].tolist() == [1, 0]
    assert identity_accuracy(ids, [torch.tensor([0, 1]), torch.tensor([1, 0])]) == 1.0
    assert identity_accuracy(ids, [torch.tensor([0, 1]), torch.tensor([0, 1])]) == 0.0


def _two_squares(vx: int) -> "object":
    """A hand-built sample: a red 8 x 8 square at (8, 8) and a blue one at (28, 24) on a 48 x 48 image."""
    from cvkit.data.shapes import ShapesSample

    masks = torch.zeros(2, 48, 48, dtype=torch.bool)
    masks[0, 8:16, 8:16] = True
    masks[1, 24:32, 28:36] = True
    image = torch.full((3, 48, 48), 0.5)
    image[:, masks[0]] = torch.tensor([1.0, 0.0, 0.0])[:, None]
    image[:, masks[1]] = torch.tensor([0.0, 0.0, 1.0])[:, None]
    boxes = torch.tensor([[8.0, 8.0, 16.0, 16.0], [28.0, 24.0, 36.0, 32.0]])
    sample = ShapesSample(
        image, boxes, torch.tensor([1, 1]), torch.tensor([0, 2]), masks, masks.long().argmax(0), "", 0, 0
    )
    return moving_shapes(sample, frames=4, velocities=[(vx, 0), (0, vx)], noise=0.0)


def test_unitrack_lesson_scores_on_hand_built_videos():
    from cvkit.layers import ConvEncoder
    from cvkit.lessons.tracking import (
        association_accuracy,
        frame_features,
        propagated_masks,
        propagation_j,
        static_mask_j,
    )
    from cvkit.ssl import PatchGridEncoder

    still, moving = _two_squares(0), _two_squares(4)  # 4 pixels per frame: one feature cell
    assert static_mask_j([still]) == 1.0
    # frame 0's mask kept: IoU 32/96 after one step (8x8 squares shifted by half their width), 0 after two and three
    assert static_mask_j([moving]) == pytest.approx((32 / 96 + 0 + 0) / 3)
    # pixels as the appearance model: still objects stay put, moving ones are followed, identities are kept
    # still objects stay put: each square is 2 x 2 feature cells; bilinear upsampling rounds off one pixel at each of
    # its 4 corners (0.625 x 0.625 < 0.5), so J = 60 / 64
    assert propagation_j([still], None) == pytest.approx(60 / 64)
    predicted = propagated_masks(moving, None)
    # frame 3: the red square has moved 12 pixels right, to columns 20-27 (inside, away from the rounded corners)
    assert predicted.shape == (4, 2, 48, 48) and predicted[3, 0, 9:15, 20:28].all()
    assert not predicted[3, 0, :, :16].any()
    assert propagation_j([moving], None) > 0.9
    assert association_accuracy([moving], None) == 1.0
    # every appearance model has one cell per 4 x 4 pixels (CPC's grid: 8-pixel patches every 4 pixels)
    torch.manual_seed(0)
    assert frame_features(None, moving.frames)[0].shape == (4, 48, 12, 12)
    assert frame_features(ConvEncoder(1, (8, 16, 16)), moving.frames)[0].shape == (4, 16, 12, 12)
    assert frame_features(PatchGridEncoder(ConvEncoder(1, (8, 16, 16)), 8, 4), moving.frames)[0].shape == (
        4,
        16,
        11,
        11,
    )
    with pytest.raises(TypeError, match="neither forward_map nor grid"):
        frame_features(torch.nn.Linear(2, 2), moving.frames)

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

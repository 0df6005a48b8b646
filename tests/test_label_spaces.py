"""UniDetector's label-space structures: union order, the two losses against cross-entropy written out, region labels."""

import pytest
import torch
import torch.nn.functional as F

from cvkit.data import ShapesDataset
from cvkit.detection.label_spaces import LabelSpaceClassifier, label_space_loss, name_embeddings, space_regions

SPACES = {"A": ["background", "circle", "square"], "B": ["background", "triangle", "square"]}


def test_union_and_losses_by_hand():
    clf = LabelSpaceClassifier(8, SPACES, embed_dim=4)
    assert clf.union == ["background", "circle", "square", "triangle"]
    feats = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 1, 0])  # in B: background, triangle, square, triangle, background
    all_logits = clf(feats)
    torch.testing.assert_close(
        label_space_loss(clf, feats, labels, "B", "partitioned"), F.cross_entropy(all_logits[:, [0, 3, 2]], labels)
    )
    torch.testing.assert_close(
        label_space_loss(clf, feats, labels, "B", "unified"), F.cross_entropy(all_logits, torch.tensor([0, 3, 2, 3, 0]))
    )
    with pytest.raises(ValueError, match="structure"):
        label_space_loss(clf, feats, labels, "B", "separate")
    with pytest.raises(ValueError, match="unknown label space"):
        clf(feats, "C")


def test_name_embeddings_are_fixed_per_name():
    a = name_embeddings(["circle", "red"], 16)
    b = name_embeddings(["red"], 16)
    torch.testing.assert_close(a[1], b[0])
    torch.testing.assert_close(a.norm(dim=1), torch.ones(2))


def test_unannotated_objects_become_background():
    s = ShapesDataset(n=50, image_size=48, min_shapes=3, max_shapes=3, seed=0)
    sample = next(x for x in (s[i] for i in range(50)) if 2 in x.labels.tolist())  # holds a triangle
    boxes, labels = space_regions(sample, SPACES["A"], background_boxes=2, generator=torch.Generator().manual_seed(0))
    tri = (sample.labels == 2).nonzero().flatten()
    assert (labels[tri] == 0).all()  # the triangle is unlabelled in space A: background
    assert len(boxes) == len(labels) == sample.num_objects + 2


def test_label_space_step_and_detector():
    from cvkit.detection.label_spaces import label_space_step
    from cvkit.models.unidetector import LabelSpaceDetector

    net = LabelSpaceDetector(SPACES, widths=(8, 16), dim=16, embed_dim=8)
    images, rois = torch.rand(2, 3, 48, 48), torch.tensor([[0, 2.0, 2, 30, 30], [1, 5, 5, 40, 40]])
    labels = torch.tensor([1, 0])
    out = label_space_step("partitioned")(net, (images, rois, labels, "A"))
    torch.testing.assert_close(out.loss, F.cross_entropy(net(images, rois)[:, [0, 1, 2]], labels))
    assert net(images, rois).shape == (2, 4)

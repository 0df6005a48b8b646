r"""Training one detector on datasets with different label spaces: UniDetector's structures (Wang et al., "Detecting
Everything in the Open World: Towards Universal Object Detection", CVPR 2023, sec. 3.2 and Fig. 3; lecture 13).

Datasets label different things: COCO has 80 classes, Objects365 365, OpenImages 500, with overlaps and gaps. An
object that one dataset does not annotate is not background there, only *unlabelled*. UniDetector classifies each
region by its similarity to the **language embeddings** of class names (so any name can be asked at test time) and
compares three ways to train on several datasets:

* **separate**: one network per dataset, ensembled at inference;
* **unified**: merge all label spaces into one and train one head on everything: every class a dataset does not
  annotate is treated as a negative for its images, which punishes the right answer when the image does contain it;
* **partitioned**: one shared backbone, one classification over each dataset's own label space; an image's loss
  only involves the classes of the dataset it came from. Their Table 1 (partitioned "P" rows) is the best.

Here the "datasets" are synthetic shapes annotated in two overlapping label spaces, ``{circle, square}`` and
``{triangle, square}``: in the first, triangles are in the images but unlabelled, so regions on them count as
background there; in the second, circles are. :class:`LabelSpaceClassifier` scores a region feature against fixed
name embeddings (``background`` is a name too); at test time every region is scored against the union of names.
The unified structure trains "triangle" as a negative for the first dataset's triangles; the partitioned one never
puts "triangle" in that dataset's softmax.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

Structure = Literal["unified", "partitioned"]


def name_embeddings(names: Sequence[str], dim: int, seed: int = 0) -> torch.Tensor:
    """Fixed unit vectors standing in for a text encoder's embeddings of class names (one per name, seeded by the
    name so the same name always gets the same vector).

    Returns:
        (len(names), dim) float32, L2-normalised.
    """
    rows = []
    for name in names:
        g = torch.Generator().manual_seed(seed * 1_000_003 + sum(ord(c) * 31**i for i, c in enumerate(name)) % 2**31)
        rows.append(torch.randn(dim, generator=g))
    return F.normalize(torch.stack(rows), dim=1)


class LabelSpaceClassifier(nn.Module):
    """Region features -> cosine similarity with the name embeddings of every label space, over a temperature.

    Args:
        feature_dim: D of the region features. label_spaces: ``{space: [class names]}``.
        embed_dim: width of the name embeddings (the features are projected to it).
        temperature: divides the cosine similarities.

    Shapes:
        ``forward(features (R, D), space)`` -> (R, K_space) logits; ``space=None`` gives the logits over the union of
        all names (the unified label space), in the order of :attr:`union` (a name shared by two spaces appears once).

    Raises:
        ValueError: an empty label space or a name repeated inside one.
    """

    def __init__(
        self,
        feature_dim: int,
        label_spaces: Mapping[str, Sequence[str]],
        embed_dim: int = 64,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        self.label_spaces = {k: list(v) for k, v in label_spaces.items()}
        self.union = list(dict.fromkeys(n for names in self.label_spaces.values() for n in names))  # shared names once
        if any(len(set(v)) != len(v) or not v for v in self.label_spaces.values()):
            raise ValueError("every label space needs at least one name, without repeats")
        self.project = nn.Linear(feature_dim, embed_dim)
        self.register_buffer("names", name_embeddings(self.union, embed_dim))
        self.temperature = temperature

    def forward(self, features: torch.Tensor, space: str | None = None) -> torch.Tensor:
        sims = F.normalize(self.project(features), dim=1) @ self.names.T / self.temperature  # (R, |union|)
        if space is None:
            return sims
        if space not in self.label_spaces:
            raise ValueError(f"unknown label space {space!r}; choose one of {sorted(self.label_spaces)}")
        return sims[:, [self.union.index(n) for n in self.label_spaces[space]]]


def label_space_loss(
    classifier: LabelSpaceClassifier,
    features: torch.Tensor,
    labels: torch.Tensor,
    space: str,
    structure: Structure = "partitioned",
) -> torch.Tensor:
    """The classification loss of regions from a dataset labelled in ``space``.

    * ``"partitioned"``: softmax cross-entropy over ``space``'s classes only.
    * ``"unified"``: softmax cross-entropy over the union of all names, the target being the same name: every name of
      the other spaces acts as a negative for these regions.

    Args:
        features: (R, D). labels: (R,) int64 class indices within ``space``. space: the dataset's label space.

    Raises:
        ValueError: an unknown ``structure`` or ``space``.
    """
    if structure == "partitioned":
        return F.cross_entropy(classifier(features, space), labels)
    if structure == "unified":
        to_union = torch.tensor(
            [classifier.union.index(n) for n in classifier.label_spaces[space]], device=labels.device
        )
        return F.cross_entropy(classifier(features, None), to_union[labels])
    raise ValueError(f"structure must be 'partitioned' or 'unified', got {structure!r}")


@torch.no_grad()
def predict_in_space(classifier: LabelSpaceClassifier, features: torch.Tensor, space: str) -> torch.Tensor:
    """The best class of ``space`` for each region (an open-world query: the other spaces are not candidates)."""
    return classifier(features, space).argmax(dim=1)


def space_regions(
    sample,
    names: Sequence[str],
    background_boxes: int = 4,
    generator: torch.Generator | None = None,
    shape_names: Sequence[str] = ("circle", "square", "triangle"),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training regions of one shapes image as a dataset with label space ``names`` would label them.

    Objects whose class is in ``names`` keep it; objects the space does not name are unlabelled, so their regions
    become ``"background"`` (as a detector trained on that dataset would see them); ``background_boxes`` random boxes
    that overlap no object (IoU < 0.3) are background too.

    Args:
        sample: a :class:`cvkit.data.ShapesSample`. names: the space's names, including ``"background"``.
        background_boxes: random background regions per image. generator: seeds them.
        shape_names: the name of each shape class index.

    Returns:
        boxes (R, 4) float xyxy pixels and labels (R,) int64 indices into ``names``.

    Raises:
        ValueError: ``names`` without ``"background"``.
    """
    from cvkit.detection.boxes import box_iou

    if "background" not in names:
        raise ValueError("the label space needs a 'background' name")
    names = list(names)
    bg = names.index("background")
    labels = [names.index(shape_names[int(c)]) if shape_names[int(c)] in names else bg for c in sample.labels]
    size = sample.image.shape[-1]
    extra = []
    for _ in range(50):
        if len(extra) == background_boxes:
            break
        xy = torch.rand(2, generator=generator) * size * 0.7
        wh = (torch.rand(2, generator=generator) * 0.25 + 0.15) * size
        box = torch.cat([xy, (xy + wh).clamp(max=size)])[None]
        if len(sample.boxes) == 0 or float(box_iou(box, sample.boxes).max()) < 0.3:
            extra.append(box[0])
    boxes = torch.cat([sample.boxes, torch.stack(extra)]) if extra else sample.boxes
    return boxes, torch.tensor(labels + [bg] * len(extra), dtype=torch.int64)


def label_space_step(structure: Structure = "partitioned"):
    """A ``fit`` step for batches ``(images (B, 3, H, W), rois (R, 5), labels (R,), space)``: every batch comes from
    one dataset, labelled in ``space``.

    The model needs ``regions(images, rois) -> (R, D)`` and ``classifier`` (a :class:`LabelSpaceClassifier`), as
    :class:`cvkit.models.unidetector.LabelSpaceDetector` has.

    Raises:
        ValueError: an unknown ``structure`` (at the first step).
    """
    from cvkit.train.loop import StepOutput

    def step(model: nn.Module, batch) -> StepOutput:
        images, rois, labels, space = batch
        loss = label_space_loss(model.classifier, model.regions(images, rois), labels, space, structure)
        return StepOutput(loss, len(labels))

    return step

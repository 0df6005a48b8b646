"""A small labelled image dataset held as two tensors (the classic classification record)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset


@dataclass
class LabeledImages(Dataset):
    """Images and class labels kept as whole tensors, small enough to live in memory or on a GPU.

    It is a ``torch.utils.data.Dataset`` (item ``i`` is ``(image float32 (C, H, W) in [0, 1], label int64)``)
    for the textbook ``DataLoader`` loop, and its tensors feed :class:`cvkit.data.DeviceLoader` directly.

    Attributes:
        images: (N, C, H, W) uint8 in [0, 255].
        labels: (N,) int64 in [0, len(classes)).
        classes: class names, index = label.
        source: where the data came from (``"Debian package"``, ``"$CVKIT_DATA"``, ...).

    Raises:
        TypeError / ValueError: on construction, when the tensors do not have the shapes and dtypes above.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or not isinstance(self.labels, torch.Tensor):
            raise TypeError(
                f"images and labels must be torch.Tensors, got {type(self.images).__name__} and {type(self.labels).__name__}"
            )
        if self.images.dim() != 4 or self.images.dtype != torch.uint8:
            raise ValueError(
                f"images must be (N, C, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}; "
                "convert with (x * 255).round().to(torch.uint8) and add a channel axis with x[:, None] if needed"
            )
        if self.labels.shape != (self.images.shape[0],) or self.labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be ({self.images.shape[0]},) int64 to match images, got "
                f"{tuple(self.labels.shape)} {self.labels.dtype}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].float().div(255), self.labels[index]

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``, or ``max(label) + 1`` when names are missing)."""
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    def float_images(self) -> torch.Tensor:
        """All images as (N, C, H, W) float32 in [0, 1]."""
        return self.images.float().div(255)

    def subset(self, n: int | None, seed: int = 0, stratified: bool = True) -> "LabeledImages":
        """The first ``n`` images of a seeded shuffle (class-balanced when ``stratified``).

        Args:
            n: number of images to keep; ``None`` or ``n >= len(self)`` keeps all.
            seed: shuffle seed, so a subset is the same on every machine.
            stratified: keep the class proportions (round-robin over classes).

        Raises:
            ValueError: ``n`` is not positive.
        """
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"n must be a positive number of images, got {n}")
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=g)
        if stratified:
            labels = self.labels[order]
            # rank of each image within its class, so sorting by rank interleaves the classes
            rank = torch.zeros_like(labels)
            for c in labels.unique():
                idx = (labels == c).nonzero().squeeze(1)
                rank[idx] = torch.arange(idx.numel())
            order = order[torch.argsort(rank * (int(labels.max()) + 1) + labels)]
        keep = order[:n].sort().values
        return LabeledImages(self.images[keep], self.labels[keep], self.classes, self.source)

    def split(self, fraction: float, seed: int = 0) -> tuple["LabeledImages", "LabeledImages"]:
        """Split into (first, second) with ``fraction`` of the images in the second part (e.g. a validation split).

        Raises:
            ValueError: ``fraction`` not in (0, 1).
        """
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=g)
        n_second = max(1, round(len(self) * fraction))
        second, first = order[:n_second].sort().values, order[n_second:].sort().values
        return (
            LabeledImages(self.images[first], self.labels[first], self.classes, self.source),
            LabeledImages(self.images[second], self.labels[second], self.classes, self.source),
        )

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"LabeledImages({n} images, {c}x{h}x{w} uint8, {self.num_classes} classes, source={self.source!r})"

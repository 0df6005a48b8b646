"""A loader for small datasets that keeps every image on the device and augments there.

With 2 CPU cores (Colab), a ``DataLoader`` that decodes and transforms one image at a
time cannot feed a GPU. Fashion-MNIST (47 MB as uint8) and CIFAR-10 (150 MB) fit on any
GPU, so :class:`DeviceLoader` copies them there once, as uint8, and each batch is an index,
a conversion to float, a normalisation and a batched augmentation, all on the device.

Under ``torchrun`` (several processes, one per GPU) every process holds the whole dataset and
takes its own share of each global batch: the processes together see exactly the batches one
process would, in the same order, with the same augmentations.
"""

from __future__ import annotations

from typing import Iterator, Literal, Sequence

import torch
import torch.distributed as dist

from cvkit.data.augment import BatchTransform
from cvkit.data.labeled import LabeledImages
from cvkit.runtime import pick_device


class DeviceLoader:
    """Iterate over ``(images, labels)`` batches of tensors resident on one device.

    Args:
        images: (N, C, H, W) uint8 in [0, 255] or float in [0, 1].
        labels: (N,) int64 (or any per-image tensor with N rows, e.g. (N, H, W) masks).
        batch_size: images per batch.
        shuffle: reshuffle every epoch (the order depends only on ``seed`` and the epoch).
        augment: a batched transform (e.g. :func:`cvkit.data.augment.flip_and_translate`),
            applied after normalisation to every training batch.
        device: where the tensors live (``None``: :func:`cvkit.runtime.pick_device`).
        drop_last: drop the final incomplete batch.
        seed: seed for shuffling and augmentation.
        mean, std: per-channel normalisation ``(x - mean) / std`` applied to the [0, 1]
            images (sequences of length C; ``None``: no normalisation).
        channels_last: return batches in ``torch.channels_last`` memory format (faster
            convolutions with tensor cores).
        dtype: floating dtype of the returned images.
        shard: split every batch among the processes of a ``torch.distributed`` group
            (``torchrun``): ``"auto"`` (default) does so when a group of two or more processes is
            initialised at iteration time (:func:`cvkit.train.fit` initialises it), ``False``
            gives every process every batch.

    Yields:
        images (B, C, H, W) ``dtype`` on ``device``, labels (B, ...) on ``device``; under
        ``torchrun``, this process's share of each batch (below).

    Raises:
        ValueError: mismatched lengths, wrong ranks or a non-positive batch size.

    The epoch advances by one at each ``iter()``; :func:`cvkit.train.fit` calls
    :meth:`set_epoch` so that a resumed run sees the same batches as an uninterrupted one.

    **Several processes.** ``batch_size`` is the *global* batch. Every process draws the same
    order (same seed and epoch), cuts the same global batches, and keeps part ``rank`` of
    ``batch.tensor_split(world_size)``: B / N images (shares differ by at most one image when N
    does not divide B). Augmentation is drawn for the whole global batch before the split, so
    each image gets the augmentation it would get in one process (this costs each process the
    augmentation of B images, cheap next to the model). A final batch of fewer than N images is
    dropped (at most N - 1 images per epoch), since a process with no image cannot take part
    in the step. :meth:`shard_weights` says how :func:`cvkit.train.fit` weights unequal shares.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 256,
        *,
        shuffle: bool = True,
        augment: BatchTransform | None = None,
        device: str | torch.device | None = None,
        drop_last: bool = False,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
        shard: bool | Literal["auto"] = "auto",
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"images and labels must have the same length, got {images.shape[0]} and {labels.shape[0]}"
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if shard not in (True, False, "auto"):
            raise ValueError(f"shard must be True, False or 'auto', got {shard!r}")
        self.device = pick_device(device)
        self.images = images.to(self.device, non_blocking=True)
        self.labels = labels.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.seed = seed
        self.channels_last = channels_last
        self.dtype = dtype
        self.shard = shard
        c = images.shape[1]
        if mean is not None:
            if len(mean) != c or len(std) != c:
                raise ValueError(f"mean and std need one value per channel ({c}), got {len(mean)} and {len(std)}")
            self.mean = torch.tensor(mean, dtype=dtype, device=self.device).view(1, c, 1, 1)
            self.std = torch.tensor(std, dtype=dtype, device=self.device).view(1, c, 1, 1)
        else:
            self.mean = self.std = None
        self.epoch = 0
        self._generator = torch.Generator(device=self.device)

    @classmethod
    def from_dataset(cls, dataset: LabeledImages, batch_size: int = 256, **kwargs) -> "DeviceLoader":
        """Build a loader from a :class:`cvkit.data.LabeledImages` (e.g. ``load_fashion_mnist()``)."""
        if not isinstance(dataset, LabeledImages):
            raise TypeError(
                f"expected LabeledImages, got {type(dataset).__name__}; use DeviceLoader(images, labels) for raw tensors"
            )
        return cls(dataset.images, dataset.labels, batch_size, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch``'s order and augmentations."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.images.shape[0]
        if self.drop_last:
            return n // self.batch_size
        full, last = divmod(n, self.batch_size)
        return full + (0 < last and last >= self.num_shards)  # a last batch too small to share is dropped

    @property
    def shard_index(self) -> int:
        """This process's share of each batch (its rank; 0 when the batches are not split)."""
        return dist.get_rank() if self.num_shards > 1 else 0

    @property
    def num_shards(self) -> int:
        """Into how many shares each batch is split: the number of processes under ``torchrun``, else 1."""
        if self.shard is False or not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size()

    def shard_weights(self) -> list[float] | None:
        """Per step, ``N * n_rank / n``: the factor by which this process's mean loss is multiplied.

        DistributedDataParallel averages the N processes' gradients, each the gradient of a mean
        over that process's ``n_rank`` images; the gradient of the mean over the global batch of
        ``n`` images is the average weighted by ``n_rank / n``. Scaling each process's loss by
        ``N * n_rank / n`` turns DDP's plain average into that weighted one.

        Returns:
            ``None`` when every share of every step is equal (no weighting needed), else one
            float per step (``len(self)`` of them).
        """
        world = self.num_shards
        if world == 1:
            return None
        n = self.images.shape[0]
        sizes = [min(self.batch_size, n - start) for start in range(0, n, self.batch_size)][: len(self)]
        rank = self.shard_index
        shares = [size // world + (rank < size % world) for size in sizes]  # the sizes tensor_split gives
        weights = [world * share / size for share, size in zip(shares, sizes)]
        return None if all(w == 1.0 for w in weights) else weights

    @property
    def num_images(self) -> int:
        """N, the number of images in the dataset."""
        return self.images.shape[0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.images.shape[0]
        self._generator.manual_seed(self.seed * 100_003 + self.epoch)
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        self.epoch += 1
        stop = n - n % self.batch_size if self.drop_last else n
        world, rank = self.num_shards, self.shard_index
        for start in range(0, stop, self.batch_size):
            idx = order[start : start + self.batch_size]  # (B,) the global batch
            if world == 1:
                yield self._prepare(self.images[idx]), self.labels[idx]
                continue
            if idx.numel() < world:
                break  # too few images to give every process one
            mine = idx.tensor_split(world)[rank]  # (about B / N,) this process's share
            if self.augment is None:
                yield self._prepare(self.images[mine]), self.labels[mine]
            else:  # augment the global batch, so every image is drawn the augmentation one process would draw
                yield self._prepare(self.images[idx]).tensor_split(world)[rank], self.labels[mine]

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.dtype)
        if batch.dtype == torch.uint8:
            x = x.div_(255)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.augment is not None:
            x = self.augment(x, self._generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (
            f"DeviceLoader({n} images {c}x{h}x{w} on {self.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, augment={self.augment!r})"
        )

"""Input checks shared by the vision-language models (one place for the messages)."""

from __future__ import annotations

import torch


def check_images(images: torch.Tensor) -> None:
    """Raise ValueError unless ``images`` is a (B, C, H, W) tensor."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, C, H, W) float tensor, got {got}")


def check_token_ids(tokens: torch.Tensor, vocab_size: int, batch: int | None = None) -> None:
    """Raise ValueError unless ``tokens`` is (B, T) int64 with ids in [0, vocab_size) (and B = ``batch`` when given)."""
    if (
        not isinstance(tokens, torch.Tensor)
        or tokens.dim() != 2
        or tokens.dtype != torch.long
        or (batch is not None and tokens.shape[0] != batch)
    ):
        got = (tuple(tokens.shape), tokens.dtype) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        want = f"({batch}, T)" if batch is not None else "(B, T)"
        raise ValueError(f"tokens must be {want} int64 ids (CaptionTokenizer.encode), got {got}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(
            f"token ids must be in [0, {vocab_size}), got range [{int(tokens.min())}, {int(tokens.max())}]"
        )

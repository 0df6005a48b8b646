"""A tiny FlowNet (Dosovitskiy et al., "FlowNet: Learning Optical Flow with Convolutional Networks", ICCV 2015,
FlowNetSimple): stack the two frames as one 6-channel image, let a CNN regress the flow (lecture 00's task tour).

Encoder of strided convolutions, decoder of upsampling + convolutions with skip connections from the encoder (the
paper's "refinement"), a 2-channel output (dx, dy) in pixels at full resolution. Each convolution is followed by
BatchNorm (Ioffe & Szegedy 2015), as in FlowNetS re-implementations' ``batchNorm`` variant: without it a short run
on moving shapes sits at predicting no motion for a seed-dependent number of epochs. Trained with the end-point error
on moving shapes (:func:`cvkit.data.video.flow_pairs`), it learns what Lucas-Kanade assumes nothing about: objects
move as a whole, and the background stays.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.models.registry import register_model


def _conv(cin: int, cout: int, stride: int = 1, batch_norm: bool = True) -> nn.Sequential:
    """3x3 convolution (+ BatchNorm) + LeakyReLU(0.1)."""
    if not batch_norm:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True)
    )


class TinyFlowNet(nn.Module):
    """FlowNetSimple in miniature.

    Args:
        width: channels of the first stage (doubled at each of the three stride-2 stages).
        batch_norm: BatchNorm after every convolution but the output one (the default; ``False``: the paper's
            plain FlowNetS, which trains far more slowly here).

    Shapes:
        pairs (B, 6, H, W) float in [0, 1] (frame 1 RGB, frame 2 RGB), H and W divisible by 8 ->
        flow (B, 2, H, W) float pixels (dx, dy).

    Raises:
        ValueError: an input that is not (B, 6, H, W) with H, W divisible by 8.
    """

    def __init__(self, width: int = 16, batch_norm: bool = True) -> None:
        super().__init__()
        w, bn = width, batch_norm
        self.enc1, self.enc2, self.enc3 = (
            _conv(6, w, 2, bn),
            _conv(w, 2 * w, 2, bn),
            _conv(2 * w, 4 * w, 2, bn),
        )  # 1/2, 1/4, 1/8
        self.mid = _conv(4 * w, 4 * w, 1, bn)
        self.dec3 = _conv(4 * w + 2 * w, 2 * w, 1, bn)  # at 1/4
        self.dec2 = _conv(2 * w + w, w, 1, bn)  # at 1/2
        self.dec1 = _conv(w + 6, w, 1, bn)  # at 1
        self.out = nn.Conv2d(w, 2, 3, padding=1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        if pairs.dim() != 4 or pairs.shape[1] != 6 or pairs.shape[2] % 8 or pairs.shape[3] % 8:
            raise ValueError(f"expected frame pairs (B, 6, H, W) with H, W divisible by 8, got {tuple(pairs.shape)}")
        e1 = self.enc1(pairs)  # (B, w, H/2, W/2)
        e2 = self.enc2(e1)  # (B, 2w, H/4, W/4)
        e3 = self.mid(self.enc3(e2))  # (B, 4w, H/8, W/8)
        up = lambda x, ref: F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        d = self.dec3(torch.cat([up(e3, e2), e2], 1))
        d = self.dec2(torch.cat([up(d, e1), e1], 1))
        d = self.dec1(torch.cat([up(d, pairs), pairs], 1))
        return self.out(d)


@register_model(
    "tiny_flownet",
    task="other",
    input_shape=(6, 32, 32),
    output_shape=(2, 32, 32),
    smoke_kwargs=dict(width=4),
    reference="Dosovitskiy et al. 2015 (FlowNetSimple)",
)
def tiny_flownet(width: int = 16, batch_norm: bool = True) -> TinyFlowNet:
    """A three-stage FlowNetSimple for 2 x RGB frame pairs (H, W divisible by 8); see :class:`TinyFlowNet`."""
    return TinyFlowNet(width, batch_norm)

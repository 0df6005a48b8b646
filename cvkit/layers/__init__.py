"""Building blocks the lectures build models from: one concept per module.

Image tensors are (B, C, H, W); token tensors are (B, N, D).
"""

from cvkit.layers.conv_encoder import ConvEncoder

__all__ = ["ConvEncoder"]

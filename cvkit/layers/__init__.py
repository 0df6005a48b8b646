"""Building blocks the lectures build models from: one concept per module.

Image tensors are (B, C, H, W); token tensors are (B, N, D).
"""

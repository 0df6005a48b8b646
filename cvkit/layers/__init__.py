"""Building blocks the lectures build models from: one concept per module.

Image tensors are (B, C, H, W); token tensors are (B, N, D).
"""

from cvkit.layers.attention import MultiHeadAttention, padding_to_attn_mask, scaled_dot_product_attention
from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.layers.maxvit import BlockGridAttention, PartitionAttention, block_partition, block_reverse, grid_partition, grid_reverse
from cvkit.layers.patch_embed import PatchEmbed, patchify, unpatchify
from cvkit.layers.patch_merging import PatchMerging
from cvkit.layers.position import (
    LearnedPositionEmbedding,
    SinCosPositionEmbedding2d,
    sincos_position_embedding_1d,
    sincos_position_embedding_2d,
)
from cvkit.layers.transformer import Mlp, TransformerBlock
from cvkit.layers.window import (
    RelativePositionBias,
    SwinBlock,
    WindowAttention,
    grid_to_tokens,
    relative_position_index,
    shifted_window_mask,
    tokens_to_grid,
    window_partition,
    window_reverse,
)

__all__ = [
    "BlockGridAttention",
    "ConvEncoder",
    "LearnedPositionEmbedding",
    "Mlp",
    "MultiHeadAttention",
    "PartitionAttention",
    "PatchEmbed",
    "PatchMerging",
    "RelativePositionBias",
    "SinCosPositionEmbedding2d",
    "SwinBlock",
    "TransformerBlock",
    "WindowAttention",
    "block_partition",
    "block_reverse",
    "grid_partition",
    "grid_reverse",
    "grid_to_tokens",
    "padding_to_attn_mask",
    "patchify",
    "relative_position_index",
    "scaled_dot_product_attention",
    "shifted_window_mask",
    "sincos_position_embedding_1d",
    "sincos_position_embedding_2d",
    "tokens_to_grid",
    "unpatchify",
    "window_partition",
    "window_reverse",
]

"""Building blocks the lectures build models from: one concept per module.

Image tensors are (B, C, H, W); token tensors are (B, N, D).

CNN blocks (lectures 03-04): :class:`ConvBNAct`, :class:`BasicBlock`, :class:`Bottleneck`,
:class:`InceptionModule`, :class:`DenseBlock`, :class:`SqueezeExcitation`,
:class:`SelectiveKernel`, :class:`ConvNeXtBlock`, :class:`RepLKBlock`, and batch
normalization written out by hand (:func:`batchnorm_forward`, :func:`batchnorm_backward`).
"""

from cvkit.layers.activations import ACTIVATIONS, make_activation
from cvkit.layers.attention import MultiHeadAttention, padding_to_attn_mask, scaled_dot_product_attention
from cvkit.layers.batchnorm import BatchNormCache, BatchNormScratch, batchnorm_backward, batchnorm_forward
from cvkit.layers.conv import ConvBNAct, fuse_conv_bn
from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.layers.convnext import ConvNeXtBlock, LayerNorm2d
from cvkit.layers.dense import DenseBlock, DenseLayer, Transition
from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.layers.inception import InceptionModule
from cvkit.layers.maxvit import (
    BlockGridAttention,
    PartitionAttention,
    block_partition,
    block_reverse,
    grid_partition,
    grid_reverse,
)
from cvkit.layers.patch_embed import PatchEmbed, patchify, unpatchify
from cvkit.layers.patch_merging import PatchMerging
from cvkit.layers.position import (
    LearnedPositionEmbedding,
    SinCosPositionEmbedding2d,
    sincos_position_embedding_1d,
    sincos_position_embedding_2d,
)
from cvkit.layers.replk import RepLKBlock, ReparamLargeKernelConv
from cvkit.layers.residual import BasicBlock, Bottleneck, PadShortcut, make_shortcut
from cvkit.layers.se import SqueezeExcitation
from cvkit.layers.sk import SelectiveKernel
from cvkit.layers.transformer import FeedForward, TransformerBlock
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
    "ACTIVATIONS",
    "BasicBlock",
    "BatchNormCache",
    "BatchNormScratch",
    "BlockGridAttention",
    "Bottleneck",
    "ConvBNAct",
    "ConvEncoder",
    "ConvNeXtBlock",
    "DenseBlock",
    "DenseLayer",
    "FeedForward",
    "InceptionModule",
    "LayerNorm2d",
    "LearnedPositionEmbedding",
    "MultiHeadAttention",
    "PadShortcut",
    "PartitionAttention",
    "PatchEmbed",
    "PatchMerging",
    "RelativePositionBias",
    "RepLKBlock",
    "ReparamLargeKernelConv",
    "SelectiveKernel",
    "SinCosPositionEmbedding2d",
    "SqueezeExcitation",
    "SwinBlock",
    "TransformerBlock",
    "Transition",
    "WindowAttention",
    "batchnorm_backward",
    "batchnorm_forward",
    "block_partition",
    "block_reverse",
    "fuse_conv_bn",
    "grid_partition",
    "grid_reverse",
    "grid_to_tokens",
    "feature_dim_of",
    "make_activation",
    "make_shortcut",
    "mlp_head",
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

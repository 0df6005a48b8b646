"""Building blocks the lectures build models from: one concept per module.

Image tensors are (B, C, H, W); token tensors are (B, N, D).

CNN blocks (lectures 03-04): :class:`ConvBNAct`, :class:`BasicBlock`, :class:`Bottleneck`,
:class:`InceptionModule`, :class:`DenseBlock`, :class:`SqueezeExcitation`,
:class:`SelectiveKernel`, :class:`ConvNeXtBlock`, :class:`RepLKBlock`, and batch
normalization written out by hand (:func:`batchnorm_forward`, :func:`batchnorm_backward`).
"""

from cvkit.layers.activations import ACTIVATIONS, make_activation
from cvkit.layers.batchnorm import BatchNormCache, BatchNormScratch, batchnorm_backward, batchnorm_forward
from cvkit.layers.conv import ConvBNAct, fuse_conv_bn
from cvkit.layers.convnext import ConvNeXtBlock, LayerNorm2d
from cvkit.layers.dense import DenseBlock, DenseLayer, Transition
from cvkit.layers.inception import InceptionModule
from cvkit.layers.replk import RepLKBlock, ReparamLargeKernelConv
from cvkit.layers.residual import BasicBlock, Bottleneck, PadShortcut, make_shortcut
from cvkit.layers.se import SqueezeExcitation
from cvkit.layers.sk import SelectiveKernel

__all__ = [
    "ACTIVATIONS",
    "BasicBlock",
    "BatchNormCache",
    "BatchNormScratch",
    "Bottleneck",
    "ConvBNAct",
    "ConvNeXtBlock",
    "DenseBlock",
    "DenseLayer",
    "InceptionModule",
    "LayerNorm2d",
    "PadShortcut",
    "RepLKBlock",
    "ReparamLargeKernelConv",
    "SelectiveKernel",
    "SqueezeExcitation",
    "Transition",
    "batchnorm_backward",
    "batchnorm_forward",
    "fuse_conv_bn",
    "make_activation",
    "make_shortcut",
]

"""Pretext tasks: labels made from the image itself, so a network learns features without annotations; one paper per module.

* :mod:`~cvkit.ssl.pretext.relative_position`: given the centre tile of a 3x3 grid and a neighbour, predict where the
  neighbour is (Doersch et al., ICCV 2015).
* :mod:`~cvkit.ssl.pretext.jigsaw`: predict which of a fixed set of permutations shuffled the 9 tiles (Noroozi &
  Favaro, ECCV 2016).
* :mod:`~cvkit.ssl.pretext.rotation`: predict the rotation, 0/90/180/270 degrees (Gidaris et al., ICLR 2018).
* :mod:`~cvkit.ssl.pretext.dense`: inpainting (Pathak et al., CVPR 2016) and colourisation (Zhang et al., ECCV 2016).
* :mod:`~cvkit.ssl.pretext.tiles`: the tiles the first two cut from an image.

Every task module takes one (B, C, H, W) batch and returns its loss, so it trains with the same loop as the
contrastive methods (``num_views = 1``); ``encoder`` is what a linear probe reads.
"""

from cvkit.ssl.pretext.dense import DensePretext, UpsamplingDecoder, chroma_to_rgb, rgb_to_chroma, square_hole
from cvkit.ssl.pretext.jigsaw import JigsawPuzzle, jigsaw_batch, jigsaw_permutations
from cvkit.ssl.pretext.relative_position import NEIGHBOUR_NAMES, NEIGHBOURS, RelativePosition, relative_position_batch
from cvkit.ssl.pretext.rotation import RotationPrediction, rotation_batch
from cvkit.ssl.pretext.tiles import grid_tiles

__all__ = [
    "NEIGHBOURS",
    "NEIGHBOUR_NAMES",
    "DensePretext",
    "JigsawPuzzle",
    "RelativePosition",
    "RotationPrediction",
    "UpsamplingDecoder",
    "chroma_to_rgb",
    "grid_tiles",
    "jigsaw_batch",
    "jigsaw_permutations",
    "relative_position_batch",
    "rgb_to_chroma",
    "rotation_batch",
    "square_hole",
]

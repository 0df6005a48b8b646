"""Self-supervised learning (lecture 11): pretext tasks, contrastive learning, self-distillation, masked image modelling.

One module per idea, each readable top to bottom:

* :mod:`~cvkit.ssl.augment`: SimCLR's augmentation recipe (the transforms are in :mod:`cvkit.data.augment`).
* :mod:`~cvkit.ssl.losses`: InfoNCE, NT-Xent, BYOL's loss.
* :mod:`~cvkit.ssl.pretext`: relative position, jigsaw, rotation, inpainting, colourisation (one module per paper).
* :mod:`~cvkit.ssl.simclr`, :mod:`~cvkit.ssl.moco`, :mod:`~cvkit.ssl.byol`, :mod:`~cvkit.ssl.dino`: the methods.
* :mod:`~cvkit.ssl.cpc`: Contrastive Predictive Coding; :mod:`~cvkit.ssl.dae`: the denoising autoencoder as an SSL method.
* :mod:`~cvkit.ssl.vit`, :mod:`~cvkit.ssl.mae`, :mod:`~cvkit.ssl.beit`: masked image modelling.
* :mod:`~cvkit.ssl.probe`: linear probe and k-NN evaluation; :mod:`~cvkit.ssl.train`: pre-training and the supervised baseline;
  :mod:`~cvkit.ssl.bench`: the lectures' comparison of methods against random-init and supervised baselines.

Every method is an ``nn.Module`` with ``forward(*views) -> loss``, a ``num_views`` attribute and an
``encoder`` (the backbone a linear probe reads), so :func:`pretrain` trains any of them.
"""

from cvkit.ssl.augment import simclr_augmentation, simclr_gallery, two_views
from cvkit.ssl.bench import ProbeBench
from cvkit.ssl.beit import BEiT, PatchKMeansTokenizer, blockwise_mask, blockwise_masks
from cvkit.ssl.byol import BYOL
from cvkit.ssl.cpc import CPC, CausalRowContext, PatchGridEncoder
from cvkit.ssl.dae import ConvDecoder, DenoisingAutoencoder
from cvkit.ssl.dino import DINO, DINOHead, dino_loss, update_center
from cvkit.ssl.losses import byol_loss, info_nce, nt_xent
from cvkit.ssl.mae import MaskedAutoencoder, random_masking
from cvkit.ssl.moco import MoCo
from cvkit.ssl.momentum import ema_update_, frozen_copy
from cvkit.ssl.pretext import (
    DensePretext,
    JigsawPuzzle,
    RelativePosition,
    RotationPrediction,
    jigsaw_batch,
    jigsaw_permutations,
    relative_position_batch,
    rotation_batch,
    square_hole,
)
from cvkit.ssl.probe import ProbeResult, extract_features, knn_classify, linear_probe
from cvkit.ssl.simclr import SimCLR
from cvkit.ssl.train import pretrain, probe_table, train_supervised
from cvkit.ssl.vit import ViTEncoder

__all__ = [
    "BEiT",
    "BYOL",
    "CPC",
    "CausalRowContext",
    "ConvDecoder",
    "DenoisingAutoencoder",
    "PatchGridEncoder",
    "DINO",
    "DINOHead",
    "DensePretext",
    "JigsawPuzzle",
    "MaskedAutoencoder",
    "MoCo",
    "PatchKMeansTokenizer",
    "ProbeBench",
    "ProbeResult",
    "RelativePosition",
    "RotationPrediction",
    "SimCLR",
    "ViTEncoder",
    "blockwise_mask",
    "blockwise_masks",
    "byol_loss",
    "dino_loss",
    "ema_update_",
    "extract_features",
    "frozen_copy",
    "info_nce",
    "jigsaw_batch",
    "jigsaw_permutations",
    "knn_classify",
    "linear_probe",
    "nt_xent",
    "pretrain",
    "probe_table",
    "random_masking",
    "relative_position_batch",
    "rotation_batch",
    "simclr_augmentation",
    "simclr_gallery",
    "square_hole",
    "train_supervised",
    "two_views",
    "update_center",
]

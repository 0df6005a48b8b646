"""Datasets that work offline first, batched on-device augmentation and a device-resident loader.

Search order for every dataset (shared/design/data.md): ``path=`` argument, ``$CVKIT_DATA``,
a copy installed by a system package, a download into ``~/.cache/cvkit``, then a
:class:`DatasetNotFoundError` naming everything tried.
"""

from cvkit.data.augment import Compose, RandomFlip, RandomTranslate, check_image_batch, flip_and_translate
from cvkit.data.cifar import CIFAR10_CLASSES, load_cifar10, locate_cifar10
from cvkit.data.digits import load_digits
from cvkit.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, locate_fashion_mnist
from cvkit.data.labeled import LabeledImages
from cvkit.data.loader import DeviceLoader
from cvkit.data.photos import PHOTOS, load_photo, load_stereo, photo_batch, resize, to_hwc_uint8
from cvkit.data.shapes import (
    CAPTION_VOCAB,
    COLOUR_NAMES,
    SHAPE_CLASSES,
    ShapesDataset,
    ShapesSample,
    collate_detection,
)
from cvkit.data.pets import PETS_CLASSES, load_oxford_pets, locate_oxford_pets
from cvkit.data.sources import DatasetNotFoundError, cache_home, data_home, find_dataset, try_dataset
from cvkit.data.voc import VOC_CLASSES, VocSample, coco_to_voc, load_voc_detection, locate_voc, parse_voc_annotation


__all__ = [
    "CAPTION_VOCAB",
    "CIFAR10_CLASSES",
    "COLOUR_NAMES",
    "Compose",
    "DatasetNotFoundError",
    "DeviceLoader",
    "FASHION_MNIST_CLASSES",
    "LabeledImages",
    "PETS_CLASSES",
    "PHOTOS",
    "RandomFlip",
    "RandomTranslate",
    "SHAPE_CLASSES",
    "ShapesDataset",
    "ShapesSample",
    "VOC_CLASSES",
    "VocSample",
    "cache_home",
    "check_image_batch",
    "coco_to_voc",
    "collate_detection",
    "data_home",
    "find_dataset",
    "flip_and_translate",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_oxford_pets",
    "load_photo",
    "load_stereo",
    "load_voc_detection",
    "locate_cifar10",
    "locate_fashion_mnist",
    "locate_oxford_pets",
    "locate_voc",
    "parse_voc_annotation",
    "photo_batch",
    "resize",
    "to_hwc_uint8",
    "try_dataset",
]

"""cvkit.data: offline resolution order, loaders' shapes and dtypes, synthetic shapes, on-device batches."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import cvkit.data.fashion_mnist as fm
from cvkit.data import (
    DatasetNotFoundError,
    DeviceLoader,
    LabeledImages,
    RandomFlip,
    RandomTranslate,
    ShapesDataset,
    flip_and_translate,
    load_digits,
    load_fashion_mnist,
    load_photo,
    photo_batch,
)
from cvkit.data.shapes import describe

FILES = [f for pair in fm.FILES.values() for f in pair]


# --- Fashion-MNIST ----------------------------------------------------------------------------
def test_fashion_mnist_test_split_shapes_and_dtypes():
    data = load_fashion_mnist("test")
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (10000,) and data.labels.dtype == torch.int64
    assert data.labels.bincount().tolist() == [1000] * 10  # the test split is balanced
    assert data.classes[9] == "Ankle boot"
    image, label = data[0]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert label.item() == 9  # the first test image of Fashion-MNIST is an ankle boot


def test_fashion_mnist_limit_is_balanced_and_deterministic():
    a = load_fashion_mnist("train", limit=1000)
    b = load_fashion_mnist("train", limit=1000)
    assert len(a) == 1000 and torch.equal(a.images, b.images)
    assert a.labels.bincount().tolist() == [100] * 10


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $CVKIT_DATA, an empty cache, and no Debian copy unless a test adds one."""
    monkeypatch.delenv("CVKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    return tmp_path


def _copy_files(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copyfile(src / f, dst / f)
    return dst


def test_resolution_order_path_then_env_then_debian(isolated, monkeypatch):
    real = Path("/usr/share/datasets/fashion-mnist")
    explicit = _copy_files(real, isolated / "explicit")
    env = _copy_files(real, isolated / "env" / "fashion-mnist")
    monkeypatch.setattr(fm, "DEBIAN_DIR", real)
    monkeypatch.setenv("CVKIT_DATA", str(isolated / "env"))
    assert fm.locate_fashion_mnist(explicit, download=False).label == "path argument"
    assert fm.locate_fashion_mnist(download=False).label == "$CVKIT_DATA"
    assert fm.locate_fashion_mnist(download=False).directory == env
    monkeypatch.delenv("CVKIT_DATA")
    assert fm.locate_fashion_mnist(download=False).label.startswith("Debian package")


def test_missing_everywhere_names_all_five_places(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("test", download=False)
    message = str(info.value)
    for place in (
        "1. path argument",
        "2. $CVKIT_DATA",
        "3. Kaggle input / Google Drive",
        "4. Debian package",
        "5. download",
        "apt-get install dataset-fashion-mnist",
    ):
        assert place in message


def test_failed_download_is_reported(isolated, monkeypatch):
    def offline(folder):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(fm, "_download", offline)
    with pytest.raises(DatasetNotFoundError, match="download into .*failed .*name resolution"):
        load_fashion_mnist("test")


def test_download_fills_the_cache(isolated, monkeypatch):
    real = Path("/usr/share/datasets/fashion-mnist")
    monkeypatch.setattr(fm, "_download", lambda folder: _copy_files(real, folder))
    assert fm.locate_fashion_mnist().label == "download"
    assert fm.locate_fashion_mnist().label == "download cache"  # the second call finds the cached copy


def test_wrong_explicit_path_fails_at_once(isolated, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not hold"):
        load_fashion_mnist(path=tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_fashion_mnist("val")


def test_read_idx_hand_made(tmp_path):
    payload = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    path = tmp_path / "x-idx2-ubyte.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(payload)
    np.testing.assert_array_equal(fm.read_idx(path), np.arange(6, dtype=np.uint8).reshape(2, 3))
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an uint8 IDX"):
        fm.read_idx(bad)


# --- photos, digits, LabeledImages -------------------------------------------------------------------
def test_photos_are_float_chw_in_unit_range():
    cat = load_photo("cat")
    assert cat.shape == (3, 300, 451) and cat.dtype == torch.float32
    assert 0 <= cat.min() and cat.max() <= 1
    assert load_photo("camera").shape == (3, 512, 512)  # grey photos get three equal channels
    assert load_photo("camera", rgb=False).shape == (1, 512, 512)
    assert load_photo("astronaut", 64, grey=True).shape == (1, 64, 64)
    assert load_photo("coffee", (32, 48)).shape == (3, 32, 48)
    assert photo_batch(["cat", "rocket"], 40).shape == (2, 3, 40, 40)
    # luma weights: a grey astronaut equals the BT.601 weighted sum of the colour one
    rgb, grey = load_photo("astronaut"), load_photo("astronaut", grey=True)
    assert torch.allclose(grey[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], atol=1e-6)


def test_unknown_photo_lists_names():
    with pytest.raises(ValueError, match="astronaut"):
        load_photo("eagle")


def test_digits():
    d = load_digits()
    assert d.images.shape == (1797, 1, 8, 8) and d.images.max() == 255 and len(d.classes) == 10


def test_labeled_images_validation_and_split():
    with pytest.raises(ValueError, match="uint8"):
        LabeledImages(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels must be"):
        LabeledImages(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))
    data = LabeledImages(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10) % 2)
    train, val = data.split(0.3)
    assert len(train) == 7 and len(val) == 3
    assert sorted(train.images.flatten().tolist() + val.images.flatten().tolist()) == list(range(10))


# --- synthetic shapes ---------------------------------------------------------------------------------
def test_shapes_are_deterministic_per_seed_and_index():
    a, b = ShapesDataset(5, seed=3)[4], ShapesDataset(50, seed=3)[4]
    assert torch.equal(a.image, b.image) and torch.equal(a.boxes, b.boxes) and a.caption == b.caption
    assert not torch.equal(ShapesDataset(5, seed=4)[4].image, a.image)


def test_shapes_annotations_are_consistent():
    ds = ShapesDataset(40, image_size=64, min_shapes=1, max_shapes=4, seed=0)
    for i in range(len(ds)):
        s = ds[i]
        k = s.num_objects
        assert s.image.shape == (3, 64, 64) and s.image.dtype == torch.float32
        assert s.boxes.shape == (k, 4) and s.masks.shape == (k, 64, 64) and s.masks.dtype == torch.bool
        assert s.labels.dtype == torch.int64 and s.semantic.shape == (64, 64)
        for m, box, label in zip(s.masks, s.boxes, s.labels):
            ys, xs = m.nonzero(as_tuple=True)
            # boxes are tight xyxy around the visible pixels, x2/y2 exclusive
            assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            assert (s.semantic[m] == label + 1).all()
        assert not (s.masks.sum(0) > 1).any()  # instance masks do not overlap
        assert ((s.semantic > 0) == s.masks.any(0)).all()
        centres = (s.boxes[:, 0] + s.boxes[:, 2]) / 2
        assert (centres[1:] >= centres[:-1]).all()  # objects are listed left to right, like the caption
        assert s.caption.count(" a ") + s.caption.startswith("a ") == k


def test_shapes_target_and_stack():
    ds = ShapesDataset(3, seed=1)
    t = ds[0].target()
    assert set(t) == {"boxes", "labels", "masks"} and t["masks"].dtype == torch.uint8
    assert torch.equal(t["labels"], ds[0].labels + 1)  # torchvision reserves 0 for background
    stacked = ds.stack()
    assert stacked["images"].shape == (3, 3, 64, 64) and stacked["semantic"].dtype == torch.int64


def test_captions():
    assert describe([("red", "circle"), ("blue", "square")]) == "a red circle left of a blue square"
    with pytest.raises(ValueError, match="classes"):
        ShapesDataset(classes=["hexagon"])


# --- on-device loader and augmentation -----------------------------------------------------------------
def test_device_loader_covers_every_image_once_and_replays_epochs():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    loader = DeviceLoader(images, torch.arange(10), batch_size=4, seed=1)
    first = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == list(range(10)) and len(loader) == 3
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(first, second)  # a new order each epoch
    loader.set_epoch(0)
    assert torch.equal(torch.cat([y for _, y in loader]), first)  # ...that can be replayed
    x, y = next(iter(DeviceLoader(images, torch.arange(10), 10, shuffle=False)))
    assert torch.allclose(x[:, 0, 0, 0], torch.arange(10) / 255)


def test_device_loader_normalises():
    images = torch.full((4, 3, 2, 2), 255, dtype=torch.uint8)
    x, _ = next(iter(DeviceLoader(images, torch.zeros(4), 4, mean=[0.5] * 3, std=[0.25] * 3)))
    assert torch.allclose(x, torch.full_like(x, 2.0))
    with pytest.raises(ValueError, match="one value per channel"):
        DeviceLoader(images, torch.zeros(4), 4, mean=[0.5], std=[0.25])


def test_random_flip_and_translate():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 2, 6, 5, generator=g)
    assert torch.equal(RandomFlip(1.0)(x, g), x.flip(-1))
    assert torch.equal(RandomFlip(0.0)(x, g), x)
    assert torch.equal(RandomTranslate(0)(x, g), x)
    out = RandomTranslate(2, mode="zeros")(x, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(8):  # every output is some 6x5 window of its zero-padded image
        assert any(torch.equal(out[b], padded[b, :, dy : dy + 6, dx : dx + 5]) for dy in range(5) for dx in range(5))
    assert flip_and_translate(2)(x, g).shape == x.shape
    with pytest.raises(ValueError, match="B, C, H, W"):
        RandomFlip()(x[0], g)

"""The full profile's real datasets (CIFAR-10, Oxford-IIIT Pet, PASCAL VOC), read from tiny fixtures written here in
each dataset's own on-disk format, and compared with torchvision's reader of the same files (the oracle). No download:
the machines that run the tests have no internet, so ``try_dataset``'s one-line fallback is tested too."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cvkit.data.cifar as cifar
import cvkit.data.pets as pets
import cvkit.data.voc as voc
from cvkit.data import (
    PETS_CLASSES,
    VOC_CLASSES,
    DatasetNotFoundError,
    load_cifar10,
    load_oxford_pets,
    load_voc_detection,
    parse_voc_annotation,
    try_dataset,
)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $CVKIT_DATA, an empty cache; downloads fail at once as they do offline (no network is touched)."""
    monkeypatch.delenv("CVKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*_args, **_kwargs):
        raise OSError("Temporary failure in name resolution")

    for module in (cifar, pets, voc):
        monkeypatch.setattr(module, "_download", offline)
    return tmp_path


# --- CIFAR-10: python pickles of 10000 x 3072 uint8 rows (R plane, G plane, B plane) --------------------------------
def write_cifar10(root: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py/ with data_batch_1..5 and test_batch of ``per_batch`` images each and batches.meta, as the
    real files are written (protocol-2 pickles of dicts); returns per split the images (N, 3, 32, 32) and labels."""
    folder = root / cifar.FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {"train": [], "test": []}
    for split, names in cifar.BATCHES.items():
        for b, name in enumerate(names):
            images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, per_batch)]
            record = {
                "batch_label": f"batch {b}",
                "labels": labels,
                "data": images.reshape(per_batch, 3072),
                "filenames": [f"img_{b}_{i}.png" for i in range(per_batch)],
            }
            with open(folder / name, "wb") as fh:
                pickle.dump(record, fh, protocol=2)
            written[split].append((images, labels))
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(
            {"label_names": list(cifar.CIFAR10_CLASSES), "num_cases_per_batch": per_batch, "num_vis": 3072},
            fh,
            protocol=2,
        )
    return {s: (np.concatenate([i for i, _ in w]), sum((lab for _, lab in w), [])) for s, w in written.items()}


def test_cifar10_reads_the_pickles_as_torchvision_does(isolated, monkeypatch):
    from torchvision.datasets import CIFAR10

    written = write_cifar10(isolated / "cifar")
    train = load_cifar10("train", path=isolated / "cifar")
    test = load_cifar10("test", path=isolated / "cifar")
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.uint8 and len(test) == 3
    assert (
        torch.equal(train.images, torch.from_numpy(written["train"][0]))
        and train.labels.tolist() == written["train"][1]
    )
    assert train.source == "path argument" and train.classes[3] == "cat"
    # the oracle: torchvision's CIFAR10 on the same files (its md5 check knows only the real ones)
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    reference = CIFAR10(str(isolated / "cifar"), train=True, download=False)
    assert torch.equal(train.images, torch.from_numpy(reference.data).permute(0, 3, 1, 2))  # torchvision keeps HWC
    assert train.labels.tolist() == list(reference.targets) and reference.classes == train.classes
    # found through $CVKIT_DATA/cifar-10/ too
    monkeypatch.setenv("CVKIT_DATA", str(isolated / "env"))
    write_cifar10(isolated / "env" / "cifar-10")
    assert load_cifar10("test").source == "$CVKIT_DATA"


def test_try_dataset_says_why_in_one_line_and_returns_none(isolated, capsys):
    assert try_dataset(load_cifar10, "train", instead="Fashion-MNIST instead") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("cifar-10 is not available here (download into ")
    assert "name resolution" in out and out.rstrip().endswith("; Fashion-MNIST instead")
    with pytest.raises(ValueError, match="split"):  # a wrong argument is not a missing dataset: raised, not hidden
        try_dataset(load_cifar10, "validation")


# --- Oxford-IIIT Pet: images/<name>.jpg, annotations/trimaps/<name>.png (1 pet, 2 background, 3 border) -----------
def write_pets(root: Path) -> dict[str, np.ndarray]:
    """Three photos of different shapes with trimaps whose regions are known; returns the trimaps."""
    base = root / pets.PETS_FOLDER
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    trimaps = {}
    for name, (h, w) in {"Abyssinian_1": (16, 16), "beagle_7": (12, 20), "Bengal_3": (20, 10)}.items():
        trimap = np.full((h, w), 2, np.uint8)  # background
        trimap[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1  # the pet in the middle
        trimap[h // 4, w // 4 : 3 * w // 4] = 3  # a border line along its top
        Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{name}.png")
        photo = np.zeros((h, w, 3), np.uint8)
        photo[..., 0] = 200 * (trimap == 1)  # a red pet on black
        Image.fromarray(photo).save(base / "images" / f"{name}.jpg", quality=95)
        trimaps[name] = trimap
    (base / "annotations" / "trainval.txt").write_text("Abyssinian_1 1 1 1\nbeagle_7 13 2 2\n")
    (base / "annotations" / "test.txt").write_text("Bengal_3 7 1 3\n")
    return trimaps


def test_oxford_pets_trimaps_become_semantic_maps(isolated):
    from torchvision.datasets import OxfordIIITPet

    trimaps = write_pets(isolated / "pets")
    data = load_oxford_pets("trainval", image_size=16, path=isolated / "pets")
    assert data["names"] == ["Abyssinian_1", "beagle_7"] and data["classes"] == PETS_CLASSES == (
        "background",
        "pet",
        "border",
    )
    assert data["images"].shape == (2, 3, 16, 16) and data["images"].dtype == torch.float32
    assert data["semantic"].shape == (2, 16, 16) and data["semantic"].dtype == torch.int64
    # a 16 x 16 photo at image_size 16: no crop, no resize, so the map is the trimap with 1 -> 1, 2 -> 0, 3 -> 2
    expected = torch.from_numpy(np.array([0, 1, 0, 2])[trimaps["Abyssinian_1"]])
    assert torch.equal(data["semantic"][0], expected)
    # the 12 x 20 photo is centre-cropped to 12 x 12 (columns 4..15), then resized to 16: the pet stays in the middle
    semantic = data["semantic"][1]
    assert set(semantic.unique().tolist()) == {0, 1, 2} and semantic[8, 8] == 1 and semantic[0, 0] == 0
    assert data["images"][1, 0, 8, 8] > 0.6 and data["images"][1, 0, 0, 0] < 0.1  # the red pet, under the "pet" pixels
    # the oracle: torchvision's reader lists the same images and the same trimap values
    reference = OxfordIIITPet(str(isolated / "pets"), split="trainval", target_types="segmentation", download=False)
    assert [p.stem for p in reference._images] == data["names"]
    assert np.array_equal(np.asarray(reference[0][1]), trimaps["Abyssinian_1"])
    test = load_oxford_pets("test", image_size=8, path=isolated / "pets", limit=1)
    assert test["names"] == ["Bengal_3"] and test["semantic"].shape == (1, 8, 8)
    with pytest.raises(DatasetNotFoundError, match="oxford-iiit-pet"):
        load_oxford_pets(download=False)
    with pytest.raises(ValueError, match="split"):
        load_oxford_pets("train", path=isolated / "pets")


# --- PASCAL VOC: VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main} -----------------------------------------
VOC_XML = """<annotation>
    <folder>VOC2007</folder><filename>{name}.jpg</filename>
    <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
    {objects}
</annotation>"""
VOC_OBJECT = (
    "<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
    "<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
)


def write_voc(root: Path) -> None:
    """Two images: 000005 (40 x 30) with a dog, a difficult chair and a person; 000007 (20 x 20) with only a
    difficult bottle; lists for trainval (both) and test (the first)."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True)
    images = {
        "000005": (40, 30, [("dog", 0, 1, 1, 20, 15), ("chair", 1, 5, 5, 10, 10), ("person", 0, 21, 11, 40, 30)]),
        "000007": (20, 20, [("bottle", 1, 2, 2, 8, 8)]),
    }
    for name, (w, h, objects) in images.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(base / "JPEGImages" / f"{name}.jpg")
        xml = VOC_XML.format(
            name=name,
            w=w,
            h=h,
            objects="".join(
                VOC_OBJECT.format(cls=c, d=d, x1=x1, y1=y1, x2=x2, y2=y2) for c, d, x1, y1, x2, y2 in objects
            ),
        )
        (base / "Annotations" / f"{name}.xml").write_text(xml)
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("000005\n000007\n")
    (base / "ImageSets" / "Main" / "test.txt").write_text("000005\n")


def test_voc_boxes_become_xyxy_pixel_edges_scaled_with_the_image(isolated):
    from torchvision.datasets import VOCDetection

    write_voc(isolated / "voc")
    samples = load_voc_detection("trainval", image_size=20, path=isolated / "voc")
    assert [s.name for s in samples] == ["000005"]  # 000007 has only a difficult object: skipped
    s = samples[0]
    assert s.image.shape == (3, 20, 20) and s.original_size == (30, 40) and s.num_objects == 2
    assert [VOC_CLASSES[i] for i in s.labels] == ["dog", "person"]
    # (xmin - 1, ymin - 1, xmax, ymax) on the 40 x 30 image, then x * 20/40 and y * 20/30
    expected = torch.tensor([[0, 0, 20, 15], [20, 10, 40, 30]]) * torch.tensor([0.5, 2 / 3, 0.5, 2 / 3])
    assert torch.allclose(s.boxes, expected) and s.boxes.dtype == torch.float32
    assert len(load_voc_detection("trainval", image_size=20, path=isolated / "voc", keep_difficult=True)) == 2
    # the oracle: torchvision's VOCDetection parses the same XML into the same classes and corners
    reference = VOCDetection(str(isolated / "voc"), year="2007", image_set="trainval", download=False)
    objects = reference[0][1]["annotation"]["object"]
    parsed = parse_voc_annotation((isolated / "voc/VOCdevkit/VOC2007/Annotations/000005.xml").read_text())
    assert [VOC_CLASSES.index(o["name"]) for o in objects] == parsed["labels"].tolist()
    corners = torch.tensor([[float(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")] for o in objects])
    assert torch.equal(parsed["boxes"], corners - torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert parsed["difficult"].tolist() == [False, True, False] and parsed["size"] == (30, 40)
    assert [s.name for s in load_voc_detection("test", image_size=20, path=isolated / "voc")] == ["000005"]
    native = load_voc_detection("test", image_size=None, path=isolated / "voc")[0]  # as on disk: boxes unscaled
    assert native.image.shape == (3, 30, 40) and torch.equal(
        native.boxes, torch.tensor([[0.0, 0, 20, 15], [20, 10, 40, 30]])
    )
    with pytest.raises(ValueError, match="unknown VOC class 'unicorn'"):
        parse_voc_annotation(
            VOC_XML.format(name="x", w=9, h=9, objects=VOC_OBJECT.format(cls="unicorn", d=0, x1=1, y1=1, x2=2, y2=2))
        )
    with pytest.raises(ValueError, match="outside the 9x9 image"):
        parse_voc_annotation(
            VOC_XML.format(name="x", w=9, h=9, objects=VOC_OBJECT.format(cls="dog", d=0, x1=1, y1=1, x2=12, y2=2))
        )
    with pytest.raises(DatasetNotFoundError, match="voc not found"):
        load_voc_detection(download=False)


def test_voc_samples_feed_the_detection_batches(isolated):
    """VocSample carries what DetectionBatches and evaluate_detector read: image, boxes, labels."""
    from cvkit.detection import DetectionBatches

    write_voc(isolated / "voc")
    samples = load_voc_detection("trainval", image_size=32, path=isolated / "voc", keep_difficult=True)
    images, targets = next(iter(DetectionBatches(samples, 2, shuffle=False, label_offset=1)))
    assert images.shape == (2, 3, 32, 32)
    assert targets[0]["labels"].tolist() == [VOC_CLASSES.index(c) + 1 for c in ("dog", "chair", "person")]


def test_coco_to_voc_maps_torchvision_coco_names():
    """The 20 VOC classes among torchvision's 91 COCO categories (the weights' metadata, no download)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    from cvkit.data import coco_to_voc

    categories = FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]
    idx = {name: categories.index(name) for name in ("person", "airplane", "tv", "couch", "truck", "dining table")}
    mapped = coco_to_voc(torch.tensor(list(idx.values())), categories)
    assert [VOC_CLASSES[i] if i >= 0 else None for i in mapped.tolist()] == [
        "person",
        "aeroplane",
        "tvmonitor",
        "sofa",
        None,
        "diningtable",
    ]
    every = coco_to_voc(torch.arange(len(categories)), categories)
    assert sorted(every[every >= 0].tolist()) == list(range(20))  # each VOC class exactly once
    with pytest.raises(ValueError, match="lack the VOC classes"):
        coco_to_voc(torch.tensor([0]), ["cat", "dog"])


def test_voc_download_asks_torchvision_for_the_right_archive(tmp_path, monkeypatch):
    """The download itself needs internet; everything up to it runs in torchvision's real VOCDetection, whose archive
    fetch is replaced by writing the fixture. VOC 2007's test set is a separate archive that torchvision chooses from
    year "2007" and image_set "test" (asking for year "2007-test", as the kit once did, is refused before any download)."""
    import torchvision.datasets.voc as tv_voc

    fetched = []

    def fetch(url, download_root, filename=None, md5=None, **_kwargs):
        fetched.append(filename)
        if not (Path(download_root) / "VOCdevkit").exists():
            write_voc(Path(download_root))

    monkeypatch.setattr(tv_voc, "download_and_extract_archive", fetch)
    voc._download(tmp_path, "2007", "test")
    voc._download(tmp_path, "2007", "trainval")
    assert fetched == ["VOCtest_06-Nov-2007.tar", "VOCtrainval_06-Nov-2007.tar"]


def test_downloads_land_where_the_loaders_look(tmp_path, monkeypatch):
    """End to end with downloads allowed: torchvision's real OxfordIIITPet and VOCDetection run, only their archive
    fetch writes the fixture instead of the network; the loaders then find the files in the cache and read them."""
    import torchvision.datasets.oxford_iiit_pet as tv_pets
    import torchvision.datasets.voc as tv_voc

    monkeypatch.delenv("CVKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def fetch_pets(url, download_root, md5=None, **_kwargs):  # download_root is <root>/oxford-iiit-pet
        if not (Path(download_root) / "annotations").exists():
            write_pets(Path(download_root).parent)

    def fetch_voc(url, download_root, filename=None, md5=None, **_kwargs):
        if not (Path(download_root) / "VOCdevkit").exists():
            write_voc(Path(download_root))

    monkeypatch.setattr(tv_pets, "download_and_extract_archive", fetch_pets)
    monkeypatch.setattr(tv_voc, "download_and_extract_archive", fetch_voc)
    assert load_oxford_pets("test", image_size=16)["names"] == ["Bengal_3"]
    assert [s.name for s in load_voc_detection("test", image_size=20)] == ["000005"]

"""Analytic receptive fields: hand-computed cases, published values, and agreement with the input-gradient support."""

import pytest
import torch
import torch.nn as nn
import torchvision

from cvkit.models import create_model
from cvkit.models.alexnet import AlexNet
from cvkit.models.resnet import resnet
from cvkit.models.vgg import VGG
from cvkit.conv import ReceptiveFieldError, empirical_receptive_field, linear_positive_copy, receptive_fields

META = torch.device("meta")  # the analytic field needs shapes only


def test_hand_computed_chain():
    # two 3x3 convs: 3 + 2 = 5; a stride-2 3x3 then a 3x3: 3 + 2*2 = 7 with stride 2; a dilated 3x3 (d = 2): 5
    t = receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)), (1, 9, 9))
    assert (t["1"].size, t["1"].stride, t["1"].padding) == ((5, 5), (1, 1), (2, 2))
    t = receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.ReLU(), nn.Conv2d(1, 1, 3, padding=1)), (1, 9, 9))
    assert (t["2"].size, t["2"].stride, t["2"].padding) == ((7, 7), (2, 2), (3, 3))
    assert t["2"].box(1, 2) == (1, -1, 8, 6)  # unit (1, 2) sees columns 2*2-3 .. +7 and rows 2-3 .. +7
    t = receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3, padding=2, dilation=2), nn.MaxPool2d(2)), (1, 8, 8))
    assert t["0"].size == (5, 5) and t["1"].size == (6, 6) and t["1"].stride == (2, 2)


def test_branches_take_the_union_of_paths():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.small = nn.Conv2d(1, 2, 1, stride=2)  # a strided 1x1 "shortcut": field 1
            self.big = nn.Sequential(nn.Conv2d(1, 2, 5, stride=2, padding=2), nn.Conv2d(2, 2, 3, padding=1))

        def forward(self, x):
            y = self.small(x) + self.big(x)
            return torch.cat([self.small(x), y], 1)

    t = receptive_fields(TwoPaths(), (1, 16, 16))
    assert t["small"].size == (1, 1) and t["big"].size == (9, 9)
    assert [r.op for r in t.rows if r.op in ("add", "cat")] == ["add", "cat"]
    assert all(r.size == (9, 9) and r.padding == (4, 4) for r in t.rows if r.op in ("add", "cat"))


def test_split_paths_and_the_plain_chain_formula_of_lecture_02():
    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(4, 4, 3, padding=1)
            self.d = nn.Conv2d(2, 2, 5, padding=2)

        def forward(self, x):
            a, b = torch.chunk(self.c(x), 2, dim=1)  # one half goes through a 5x5, the other does not
            return torch.cat([a, self.d(b)], 1)

    assert receptive_fields(Split(), (4, 16, 16)).rows[-1].size == (7, 7)
    # a plain chain agrees with cvkit.conv.receptive_field_chain (lecture 02)
    from cvkit.conv import receptive_field_chain

    layers = [(7, 2), (3, 2), (3, 1), (3, 2), (5, 1, 2)]
    chain = nn.Sequential(
        *[nn.Conv2d(1, 1, k, s, d * (k - 1) // 2, dilation=d) for k, s, d in ((*layer, 1)[:3] for layer in layers)]
    )
    rows = receptive_fields(chain, (1, 64, 64)).rows
    assert [(r.size[0], r.stride[0], r.padding[0]) for r in rows] == [
        (c["size"], c["jump"], c["padding"]) for c in receptive_field_chain(layers)
    ]


def test_published_values_for_torchvision_models():
    # Araujo et al., Distill 2019, Table 1: AlexNet pool5 195, VGG-16 pool5 212 (stride 32, padding 90)
    with META:
        alexnet, vgg16, resnet50 = (
            getattr(torchvision.models, n)(weights=None) for n in ("alexnet", "vgg16", "resnet50")
        )
        resnet50_v1 = resnet(50, stride_in="1x1")
    t = receptive_fields(alexnet)
    assert (
        t["features.10"].size == (163, 163)
        and t["features.12"].size == (195, 195)
        and t["features.12"].stride == (32, 32)
    )
    t = receptive_fields(vgg16)
    assert (
        t["features.28"].size[0],
        t["features.30"].size[0],
        t["features.30"].stride[0],
        t["features.30"].padding[0],
    ) == (196, 212, 32, 90)
    assert t.last("conv").name == "features.28"
    assert t.last("spatial").name == "avgpool" and t["avgpool"].size == t["features.30"].size  # 7x7 -> 7x7: an identity
    t = receptive_fields(resnet50)
    assert (t["layer4"].size[0], t["layer4"].stride[0]) == (427, 32)
    assert t["layer4.2.conv3"].size == t["layer4"].size
    assert [t[f"layer{i}"].size[0] for i in (1, 2, 3)] == [35, 91, 267]
    assert t["fc"].is_global
    # the paper's ResNet-50 (stride in the first 1x1): Distill's 483
    assert receptive_fields(resnet50_v1)["layer4"].size == (483, 483)


def test_our_vgg_and_alexnet_have_torchvisions_geometry():
    with META:
        pairs = [
            (VGG("D", width_mult=1 / 16), torchvision.models.vgg16()),
            (AlexNet(variant="torchvision", width_mult=1 / 8), torchvision.models.alexnet()),
        ]
    for ours, ref in pairs:
        a, b = receptive_fields(ours), receptive_fields(ref)
        assert [(r.size, r.stride, r.padding) for r in a if r.name.startswith("features")] == [
            (r.size, r.stride, r.padding) for r in b if r.name.startswith("features")
        ]


def _agrees(model, size, layer, units):
    field = receptive_fields(model, size)[layer]
    gh, gw = field.grid
    # one linear positive twin of the model and a positive input, as mode="support" makes them inside (the mode
    # itself is used in the tests below); building the twin once saves copying a big model per unit
    twin = linear_positive_copy(model)
    positive = torch.rand(size, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    for unit in units:
        unit = (unit[0] % gh, unit[1] % gw)
        measured = empirical_receptive_field(twin, layer, unit, image=positive, mode="gradient")
        assert measured.box == field.box(*unit, clip=size[1:]), (layer, unit)
        x1, y1, x2, y2 = measured.box
        assert bool(measured.support[y1:y2, x1:x2].all())  # no holes inside the field


CASES = {
    "torchvision resnet18 (downsample shortcuts)": (
        lambda: torchvision.models.resnet18(),
        (3, 160, 160),
        "layer3",
        [(0, 0), (-1, -1), (4, 1)],
    ),
    "torchvision resnet50 (bottlenecks)": (
        lambda: torchvision.models.resnet50(),
        (3, 96, 96),
        "layer2",
        [(0, 0), (-1, -1), (5, 2)],
    ),
    "vgg16 geometry": (lambda: VGG("D", width_mult=1 / 16), (3, 224, 224), "features.30", [(0, 0), (-1, -1), (3, 1)]),
    "alexnet geometry": (
        lambda: AlexNet(variant="torchvision", width_mult=1 / 8),
        (3, 224, 224),
        "features.12",
        [(0, 0), (-1, -1), (3, 1)],
    ),
    "inception branches": (lambda: create_model("googlenet_mini"), (1, 28, 28), "4", [(0, 0), (-1, -1)]),
    "dense concatenation": (
        lambda: create_model("densenet_mini"),
        (1, 28, 28),
        "features.denseblock2",
        [(0, 0), (-1, -1)],
    ),
    "option-A shortcuts": (lambda: create_model("resnet_cifar"), (3, 32, 32), "layer2", [(0, 0), (-1, -1), (8, 2)]),
    "convnext (channels last inside)": (
        lambda: create_model("convnext_mini"),
        (1, 28, 28),
        "features.1",
        [(0, 0), (-1, -1)],
    ),
    "large kernels": (lambda: create_model("replknet_mini"), (1, 28, 28), "features.1", [(0, 0), (-1, -1), (14, 3)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_analytic_equals_empirical(case):
    make, size, layer, units = CASES[case]
    torch.manual_seed(0)
    _agrees(make(), size, layer, units)


def test_global_gates_make_the_field_global():
    model = create_model("se_resnet_mini")  # the squeeze-and-excitation gate pools the whole image
    t = receptive_fields(model, (1, 28, 28))
    assert not t["layer1.0.conv2"].is_global and t["layer1.0"].is_global and t["layer1.0"].grid is None
    assert bool(empirical_receptive_field(model, "layer1.0", (0, 0), input_size=(1, 28, 28)).support.all())
    # mode="support" on a local field: the support's box is the clipped analytic box
    measured = empirical_receptive_field(model, "layer1.0.conv2", (2, 25), input_size=(1, 28, 28))
    assert (
        measured.box == t["layer1.0.conv2"].box(2, 25, clip=(28, 28)) == (22, 0, 28, 6)
    )  # RF 7: columns 22-28, rows -1..5
    assert receptive_fields(create_model("sknet_mini"), (1, 28, 28))["layer1.0.conv2"].is_global  # SK's selection too


def test_channels_last_grid_and_gradient_mode():
    t = receptive_fields(create_model("convnext_mini"), (1, 28, 28))
    inner = t["features.1.0.pwconv1"]  # a Linear applied to (B, H, W, C)
    assert inner.output_shape == (1, 14, 14, 128) and inner.grid == (14, 14) and not inner.is_global
    model = create_model("vgg_mini")
    image = torch.rand(1, 28, 28)
    eff = empirical_receptive_field(model, "features.9", (1, 1), image=image, mode="gradient")
    box = receptive_fields(model, (1, 28, 28))["features.9"].box(1, 1, clip=(28, 28))
    x1, y1, x2, y2 = box
    outside = eff.gradient.clone()
    outside[y1:y2, x1:x2] = 0
    assert float(outside.abs().max()) == 0.0  # the effective field lies inside the analytic one


def test_unsupported_operations_and_bad_arguments():
    with pytest.raises(ReceptiveFieldError, match="upsampling"):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)), (1, 8, 8))
    with pytest.raises(ValueError, match="input_size"):
        receptive_fields(nn.Conv2d(1, 1, 3), (8, 8))
    model = create_model("vgg_mini")
    with pytest.raises(KeyError, match="no module named 'layer9'"):
        empirical_receptive_field(model, "layer9", input_size=(1, 28, 28))
    with pytest.raises(ValueError, match="image="):
        empirical_receptive_field(model, "features.0", mode="gradient")
    with pytest.raises(ValueError, match="outside"):
        empirical_receptive_field(model, "features.0", (40, 0), input_size=(1, 28, 28))


def test_conv_chain_is_what_receptive_field_chain_describes():
    """Lecture 02's dilated stack: the formula, the traced graph and the measured gradient support agree (15 pixels)."""
    from cvkit.conv import conv_chain, receptive_field_chain

    layers = [(3, 1, 1), (3, 1, 2), (3, 1, 4)]
    net = conv_chain(layers)
    assert [m.dilation for m in net] == [(1, 1), (2, 2), (4, 4)] and [m.padding for m in net] == [
        (1, 1),
        (2, 2),
        (4, 4),
    ]
    assert receptive_field_chain(layers)[-1]["size"] == receptive_fields(net, (1, 41, 41))["2"].size[0] == 15
    assert empirical_receptive_field(net, "2", input_size=(1, 41, 41)).size == (15, 15)
    with pytest.raises(ValueError, match="at least one"):
        conv_chain([])

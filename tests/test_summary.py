"""The model summary against torchvision's documented counts, torch's FLOP counter, the ResNet paper and hand counts.

Big models are built on the meta device: shapes and counts without computing anything.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from cvkit.models.resnet import resnet
from cvkit.inspect import conv_macs, summary

META = torch.device("meta")

# torchvision's model documentation (https://pytorch.org/vision/stable/models.html, each model's page):
# num_params, and "GFLOPS" which are multiply-accumulates (e.g. ResNet-50: 25,557,032 and 4.09)
DOCUMENTED = {
    "alexnet": (61_100_840, 0.714),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_torchvision_documented_counts(name):
    params, gmacs = DOCUMENTED[name]
    with META:
        model = getattr(torchvision.models, name)(weights=None)
    s = summary(model, (3, 224, 224))
    assert s.total_params == params
    assert abs(s.total_macs / 1e9 - gmacs) / gmacs < 0.01


def test_documented_numbers_are_torchvisions_own_metadata():
    # the constants above are the ones torchvision ships with its weights (no download needed)
    w = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta
    assert (w["num_params"], w["_ops"]) == DOCUMENTED["resnet50"]


@pytest.mark.parametrize("name", ["resnet18", "convnext_tiny", "vit_b_16", "googlenet"])
def test_macs_equal_torch_flop_counter(name):
    with META:
        model = getattr(torchvision.models, name)(
            weights=None, **({"init_weights": False} if name == "googlenet" else {})
        ).eval()
    s = summary(model, (3, 224, 224))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device=META))
    assert s.total_macs == counter.get_total_flops() // 2  # torch counts 2 FLOPs per multiply-accumulate


def test_count_macs_and_summary_use_torchs_public_counter():
    """count_macs is FlopCounterMode's FLOPs / 2, summary totals agree, and no private torch module is imported."""
    import ast
    from pathlib import Path

    import cvkit.inspect.model_summary as module
    from cvkit.inspect import count_macs

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(5))
    x = torch.zeros(2, 3, 10, 10)
    net(x)  # materialise the lazy layer
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    expected = 2 * 8 * 8 * 8 * (3 * 3 * 3) + 2 * (8 * 8 * 8) * 5  # conv: B*H'*W'*C_out*(C_in*k*k); linear: B*in*out
    assert count_macs(net, x) == counter.get_total_flops() // 2 == expected
    assert summary(net, inputs=x).total_macs == expected
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m and any(part.startswith("_") for part in m.split(".")[1:])], imported


def test_hand_counted_small_network():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, groups=2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 10),
    )
    s = summary(model, (3, 8, 8))
    conv1 = 8 * 8 * 8 * (3 * 3 * 3)  # H_out W_out C_out * C_in k k
    conv2 = 2 * 2 * 16 * (4 * 3 * 3)  # groups: each output sees C_in / g = 4 channels
    fc = 64 * 10
    assert [r.macs for r in s.rows] == [conv1, 0, 0, conv2, 0, fc]
    assert [r.params for r in s.rows] == [8 * 27 + 8, 0, 0, 16 * 36 + 16, 0, 650]
    assert s.total_macs == conv1 + conv2 + fc
    assert s.rows[3].output_shape == (1, 16, 2, 2)
    assert conv_macs((1, 4, 3, 3), (4, 2, 2, 2), (1, 4, 6, 6), transposed=True) == 36 * 2 * 4


def test_functional_ops_and_attention_are_counted():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 2, 3, 3))

        def forward(self, x):
            y = F.conv2d(x, self.w, padding=1)  # (1, 4, 5, 5): 100 outputs x 18 MACs
            q = y.flatten(2).transpose(1, 2)  # (1, 25, 4)
            return F.scaled_dot_product_attention(q, q, q)  # QK^T: 25*25*4, AV: 25*25*4

    s = summary(Custom(), (2, 5, 5))
    assert s.total_macs == 100 * 18 + 2 * 25 * 25 * 4
    assert s.rows[0].name == "" and s.rows[0].params == 72  # the model itself holds a parameter


def test_shared_parameters_count_once_and_modes_are_restored():
    layer = nn.Linear(4, 4)
    model = nn.Sequential(layer, nn.ReLU(), layer).train()
    s = summary(model, inputs=torch.zeros(2, 4))
    assert s.total_params == 20 and sum(r.params for r in s.rows) == 20
    assert s.total_macs == 2 * 2 * 16 and s.macs_per_image == 32
    assert model.training


def test_resnet_paper_flops_row():
    # He et al. 2016, Table 1 "FLOPs": 1.8, 3.6, 3.8, 7.6, 11.3 x 10^9 (multiply-adds) with the stride in the first 1x1
    # of a bottleneck, as in the paper. The paper rounds loosely (3.66 -> 3.6, 3.86 -> 3.8), hence 2%.
    for depth, gmacs in [(18, 1.8), (34, 3.6), (50, 3.8), (101, 7.6), (152, 11.3)]:
        with META:
            model = resnet(depth, stride_in="1x1")
        measured = summary(model, (3, 224, 224)).total_macs / 1e9
        assert abs(measured - gmacs) / gmacs < 0.02, (depth, measured)
    # torchvision's "v1.5" bottleneck (stride in the 3x3) costs more: 4.09 vs 3.8
    with META:
        model = resnet(50)
    assert summary(model, (3, 224, 224)).total_macs / 1e9 > 3.8 * 1.05


def test_collapsed_summary_gives_the_papers_stage_output_sizes():
    with META:
        model = resnet(34)
    s = summary(model, (3, 224, 224), depth=1)
    rows = {r.name: r for r in s.rows}
    assert [rows[n].output_shape[-1] for n in ("stem", "layer1", "layer2", "layer3", "layer4")] == [56, 56, 28, 14, 7]
    assert s["stem.0.conv"].output_shape[-1] == 112  # conv1: 112x112
    assert sum(r.params for r in s.rows) == s.total_params
    assert sum(r.macs for r in s.rows) == s.total_macs
    text = s.to_markdown()
    assert "| layer1 | Sequential | 1x64x56x56 |" in text and "21.798 M parameters" in text


def test_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly one of"):
        summary(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="input_size must be"):
        summary(nn.Conv2d(3, 3, 1), (3, 8))
    with pytest.raises(TypeError, match="nn.Module"):
        summary(lambda x: x, (3, 8, 8))

"""The model zoo reproduces the parameter counts of the papers and of torchvision's implementations."""

import pytest
import torch
import torchvision

from cvkit.models import create_model
from cvkit.models.alexnet import AlexNet
from cvkit.models.convnext import convnext_tiny
from cvkit.models.densenet import densenet121
from cvkit.models.resnet import RESNET_DEPTHS, cifar_resnet, resnet, resnext50_32x4d
from cvkit.models.vgg import VGG, VGG_CONFIGS, vgg_config_table, weight_layers


def n_params(model):
    return sum(p.numel() for p in model.parameters())


META = torch.device("meta")  # models built here have shapes but no numbers: counting needs no initialisation


def test_lenet5_has_61706_parameters_and_the_paper_geometry():
    model = create_model("lenet5")
    # C1 6*(25+1) + C3 16*(6*25+1) + C5 120*(16*25+1) + F6 84*(120+1) + output 10*(84+1)
    assert n_params(model) == 156 + 2416 + 48120 + 10164 + 850 == 61706
    x = torch.rand(2, 1, 28, 28)
    assert model.features[:2](x).shape == (2, 6, 28, 28)  # 28 + 2*2 padding = the paper's 32x32 input
    assert model.features(x).shape == (2, 120, 1, 1)


def test_alexnet_2012_has_60965224_parameters():
    # "60 million parameters" (Krizhevsky et al. 2012): two-GPU grouped convolutions
    with META:
        assert n_params(AlexNet(variant="original")) == 60_965_224
        assert (
            n_params(AlexNet(variant="torchvision")) == n_params(torchvision.models.alexnet(weights=None)) == 61_100_840
        )


@pytest.mark.parametrize(
    "config,millions,tv",
    [
        ("A", 133, "vgg11"),
        ("A-LRN", 133, None),
        ("B", 133, "vgg13"),
        ("C", 134, None),
        ("D", 138, "vgg16"),
        ("E", 144, "vgg19"),
    ],
)
def test_vgg_table2_parameter_counts(config, millions, tv):
    with META:
        model = VGG(config)
        assert round(n_params(model) / 1e6) == millions  # Simonyan & Zisserman, Table 2
        if tv is not None:
            assert n_params(model) == n_params(getattr(torchvision.models, tv)(weights=None))


def test_vgg_config_table_reproduces_table1():
    table = vgg_config_table()
    lines = table.splitlines()
    assert lines[0] == "| A | A-LRN | B | C | D | E |"
    assert (
        lines[2]
        == "| 11 weight layers | 11 weight layers | 13 weight layers | 16 weight layers | 16 weight layers | 19 weight layers |"
    )
    assert "conv3-256<br>conv3-256<br>conv1-256" in table  # configuration C's 1x1 layers
    assert "conv3-64<br>LRN" in table
    assert [weight_layers(c) for c in VGG_CONFIGS] == [11, 11, 13, 16, 16, 19]
    with pytest.raises(ValueError, match="unknown VGG configuration"):
        VGG("F")


@pytest.mark.parametrize("depth", sorted(RESNET_DEPTHS))
def test_resnet_parameters_equal_torchvision(depth):
    with META:
        assert n_params(resnet(depth)) == n_params(getattr(torchvision.models, f"resnet{depth}")(weights=None))


def test_variants_equal_torchvision_and_papers():
    with META:
        assert n_params(resnext50_32x4d()) == n_params(torchvision.models.resnext50_32x4d(weights=None)) == 25_028_904
        assert n_params(densenet121()) == n_params(torchvision.models.densenet121(weights=None)) == 7_978_856
        assert n_params(convnext_tiny()) == n_params(torchvision.models.convnext_tiny(weights=None)) == 28_589_128
        assert round(n_params(create_model("se_resnet50")) / 1e6, 1) == 28.1  # Hu et al. 2018, Table 2: 28.1M


def test_cifar_resnets_have_the_papers_parameter_counts():
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M
    assert round(n_params(cifar_resnet(20)) / 1e6, 2) == 0.27
    assert round(n_params(cifar_resnet(56)) / 1e6, 2) == 0.85
    assert round(n_params(cifar_resnet(110)) / 1e6, 1) == 1.7
    # option-A shortcuts have no parameters: plain and residual twins are the same size
    assert n_params(create_model("plain_cifar", depth=20)) == n_params(cifar_resnet(20))
    with pytest.raises(ValueError, match="6n \\+ 2"):
        cifar_resnet(21)


def test_plain_and_residual_cifar_nets_differ_only_in_shortcuts():
    plain, res = create_model("plain_cifar", depth=14), create_model("resnet_cifar", depth=14)
    assert all(block.shortcut is None for block in plain.layer1)
    assert all(block.shortcut is not None for block in res.layer1)

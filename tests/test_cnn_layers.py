"""CNN building blocks against their library twins (torch, torchvision) and hand-computed cases."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.models.convnext import CNBlock
from torchvision.ops import SqueezeExcitation as TorchvisionSE

from cvkit.layers import (
    BasicBlock,
    BatchNormScratch,
    Bottleneck,
    ConvBNAct,
    ConvNeXtBlock,
    DenseBlock,
    InceptionModule,
    LayerNorm2d,
    RepLKBlock,
    ReparamLargeKernelConv,
    SelectiveKernel,
    SqueezeExcitation,
    Transition,
    batchnorm_backward,
    batchnorm_forward,
    fuse_conv_bn,
    make_activation,
)
from cvkit.models import create_model
from cvkit.models.resnet import resnet


def randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)


def copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy a state dict entry by entry in registration order (the names differ, the order and shapes match)."""
    s, d = list(src.state_dict().values()), dst.state_dict()
    assert len(s) == len(d), f"{len(s)} vs {len(d)} entries"
    for value, (name, target) in zip(s, d.items()):
        assert value.shape == target.shape, f"{name}: {tuple(value.shape)} vs {tuple(target.shape)}"
        target.copy_(value)


# -- activations and conv-BN-act -------------------------------------------------------------------
def test_make_activation_known_and_unknown():
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(make_activation("relu")(x), F.relu(x))
    assert torch.allclose(make_activation("gelu")(x), F.gelu(x))
    assert isinstance(make_activation(None), nn.Identity)
    assert make_activation("prelu", 8).weight.shape == (8,)  # one slope per channel
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        make_activation("swishy")


@pytest.mark.parametrize(
    "k,s,p,d,w_in,w_out", [(3, 1, None, 1, 32, 32), (5, 2, 0, 1, 32, 14), (3, 2, 1, 1, 7, 4), (3, 1, None, 2, 16, 16)]
)
def test_conv_bn_act_output_size_formula(k, s, p, d, w_in, w_out):
    # W2 = (W1 - F + 2P) / S + 1 with F the dilated kernel size
    block = ConvBNAct(3, 8, k, s, p, dilation=d)
    assert block(torch.rand(2, 3, w_in, w_in)).shape == (2, 8, w_out, w_out)
    assert block.conv.bias is None and isinstance(block.bn, nn.BatchNorm2d)


def test_conv_bn_act_rejects_bad_arguments():
    with pytest.raises(ValueError, match="divisible by groups"):
        ConvBNAct(6, 8, groups=4)
    with pytest.raises(ValueError, match="norm must be"):
        ConvBNAct(3, 8, norm="layer")


def test_fuse_conv_bn_matches_torch_and_the_pair():
    torch.manual_seed(0)
    block = ConvBNAct(4, 6, 3, groups=2, act=None).eval()
    randomize_bn(block)
    w, b = fuse_conv_bn(block.conv, block.bn)
    tw, tb = fuse_conv_bn_weights(
        block.conv.weight,
        None,
        block.bn.running_mean,
        block.bn.running_var,
        block.bn.eps,
        block.bn.weight,
        block.bn.bias,
    )
    assert torch.allclose(w, tw, atol=1e-6) and torch.allclose(b, tb, atol=1e-6)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(F.conv2d(x, w, b, padding=1, groups=2), block(x), atol=1e-5)


# -- batch normalization by hand ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 6, 7)])
def test_batchnorm_forward_and_backward_match_torch(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64) * 3 + 1
    gamma = torch.rand(shape[1], dtype=torch.float64) + 0.5
    beta = torch.randn(shape[1], dtype=torch.float64)
    y, cache = batchnorm_forward(x, gamma, beta, eps=1e-5)
    xt, gt, bt = (t.clone().requires_grad_(True) for t in (x, gamma, beta))
    yt = F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    assert torch.allclose(y, yt, atol=1e-10)
    dy = torch.randn(shape, dtype=torch.float64)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    tdx, tdg, tdb = torch.autograd.grad(yt, (xt, gt, bt), dy)
    assert torch.allclose(dx, tdx, atol=1e-10)
    assert torch.allclose(dgamma, tdg, atol=1e-10)
    assert torch.allclose(dbeta, tdb, atol=1e-10)


def test_batchnorm_backward_hand_case():
    # two values per feature: x = (1, 3): mu = 2, var = 1, x_hat = (-1, 1) (eps = 0); with dy = (1, 0) and gamma = 1,
    # dL/dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sigma = ((1 - .5 - .5), (0 - .5 + .5)) = (0, 0)
    x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    _, cache = batchnorm_forward(x, torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), eps=0.0)
    assert torch.allclose(cache.x_hat, torch.tensor([[-1.0], [1.0]], dtype=torch.float64))
    dx, dgamma, dbeta = batchnorm_backward(torch.tensor([[1.0], [0.0]], dtype=torch.float64), cache)
    assert torch.allclose(dx, torch.zeros(2, 1, dtype=torch.float64))
    assert dgamma.item() == -1.0 and dbeta.item() == 1.0


def test_batchnorm_scratch_module_matches_nn_batchnorm_in_train_and_eval():
    torch.manual_seed(0)
    ours, ref = BatchNormScratch(3), nn.BatchNorm2d(3)
    for _ in range(3):  # running statistics follow the same updates
        x = torch.randn(4, 3, 5, 5) * 2 + 0.5
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-6)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ours(x).pow(2).sum().backward()
    ref(x2).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-4)
    assert torch.allclose(ours.weight.grad, ref.weight.grad, atol=1e-4)
    ours.eval(), ref.eval()
    one = torch.randn(1, 3, 5, 5)
    assert torch.allclose(ours(one), ref(one), atol=1e-5)  # eval: running statistics, a batch of one is fine
    ours.train()
    with pytest.raises(ValueError, match="more than one value per channel"):
        ours(torch.randn(1, 3, 1, 1))


def test_batchnorm_scratch_passes_gradcheck():
    torch.manual_seed(0)
    bn = BatchNormScratch(2).double()
    x = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: bn(t), (x,))


# -- residual, SE, SK, inception, dense ------------------------------------------------------------------
def test_basic_block_shortcuts():
    x = torch.randn(2, 4, 8, 8)
    assert BasicBlock(4, 8, 2)(x).shape == (2, 8, 4, 4)
    pad = BasicBlock(4, 8, 2, shortcut="pad")
    assert sum(p.numel() for p in pad.shortcut.parameters()) == 0
    sc = pad.shortcut(x)
    assert torch.equal(sc[:, :4], x[:, :, ::2, ::2]) and torch.equal(sc[:, 4:], torch.zeros_like(sc[:, 4:]))
    plain = BasicBlock(4, 8, 2, shortcut="none")
    assert plain.shortcut is None
    with pytest.raises(ValueError, match="shortcut must be one of"):
        BasicBlock(4, 8, shortcut="dense")


def test_residual_block_is_identity_when_its_branch_is_zero():
    block = BasicBlock(4, 4).eval()
    nn.init.zeros_(block.conv2.bn.weight)  # F(x) = 0 -> y = ReLU(x)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(x), F.relu(x))


@pytest.mark.parametrize("depth", [18, 50])
def test_our_resnet_equals_torchvision_with_the_same_weights(depth):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    randomize_bn(ref)
    ours = resnet(depth).eval()
    copy_in_order(ref, ours)
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(ours(x), ref(x), atol=1e-4)


def test_bottleneck_stride_placement_and_resnext_groups():
    b = Bottleneck(64, 256, 2, stride_in="1x1")
    assert b.conv1.conv.stride == (2, 2) and b.conv2.conv.stride == (1, 1)
    b = Bottleneck(64, 256, 2, groups=32, mid_channels=128)
    assert b.conv2.conv.stride == (2, 2) and b.conv2.conv.groups == 32
    assert b(torch.randn(1, 64, 8, 8)).shape == (1, 256, 4, 4)


def test_squeeze_excitation_equals_torchvision_ops():
    torch.manual_seed(0)
    ours = SqueezeExcitation(32, reduction=8)
    ref = TorchvisionSE(32, 4)
    ref.load_state_dict(ours.state_dict())  # same names: avgpool, fc1, activation, fc2, scale_activation
    x = torch.randn(2, 32, 5, 5)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)
    gate = ours.gate(x)
    assert gate.shape == (2, 32, 1, 1) and bool(((gate > 0) & (gate < 1)).all())


def test_selective_kernel_attention_is_a_softmax_over_branches():
    torch.manual_seed(0)
    sk = SelectiveKernel(16, 16, 2, branches=3, groups=4, min_dim=8)
    x = torch.randn(2, 16, 8, 8)
    u, a = sk.attention(x)
    assert u.shape == (2, 3, 16, 4, 4) and a.shape == (2, 3, 16)
    assert torch.allclose(a.sum(dim=1), torch.ones(2, 16))
    assert torch.allclose(sk(x), (u * a[..., None, None]).sum(1))
    # branch m is a 3x3 conv with dilation m + 1: effective 3x3, 5x5, 7x7
    assert [b.conv.dilation for b in sk.branches] == [(1, 1), (2, 2), (3, 3)]


def test_inception_module_widths_and_paper_parameters():
    # inception (3a) of GoogLeNet Table 1: 64 + 128 + 32 + 32 = 256 channels and 159K weights (K = 1024)
    m = InceptionModule(192, 64, 96, 128, 16, 32, 32, norm="none")
    assert m(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    weights = sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight"))
    assert weights == 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32 == 163_328
    assert round(weights / 1024) == 160 and int(weights / 1024) == 159


def test_dense_block_concatenates_growth_channels():
    block = DenseBlock(4, 16, growth_rate=8)
    x = torch.randn(2, 16, 8, 8)
    y = block(x)
    assert y.shape == (2, 16 + 4 * 8, 8, 8)
    assert torch.equal(y[:, :16], x)  # the input is passed through untouched
    assert Transition(48, 24)(y).shape == (2, 24, 4, 4)


# -- ConvNeXt and large kernels --------------------------------------------------------------------------
def test_convnext_block_equals_torchvision_cnblock():
    torch.manual_seed(0)
    ours = ConvNeXtBlock(16, layer_scale=0.5).eval()
    ref = CNBlock(16, layer_scale=0.5, stochastic_depth_prob=0.0).eval()
    names = {
        "layer_scale": "layer_scale",
        "block.0": "dwconv",
        "block.2": "norm",
        "block.3": "pwconv1",
        "block.5": "pwconv2",
    }
    state = {}
    for k, v in ref.state_dict().items():
        prefix = next(p for p in names if k.startswith(p))
        state[k.replace(prefix, names[prefix], 1)] = v
    ours.load_state_dict(state)
    x = torch.randn(2, 16, 9, 9)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_layernorm2d_normalizes_each_pixel_over_channels():
    x = torch.randn(2, 8, 3, 3)
    y = LayerNorm2d(8, elementwise_affine=False)(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 3, 3), atol=1e-5)
    assert torch.allclose(y, F.layer_norm(x.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2), atol=1e-6)


def test_reparameterized_large_kernel_equals_its_branches():
    torch.manual_seed(0)
    conv = ReparamLargeKernelConv(6, kernel_size=9, small_kernel=3, stride=2).eval()
    randomize_bn(conv)
    x = torch.randn(2, 6, 17, 17)
    branches = conv(x)
    weight, bias = conv.merged_kernel()
    assert weight.shape == (6, 1, 9, 9)
    assert torch.allclose(F.conv2d(x, weight, bias, stride=2, padding=4, groups=6), branches, atol=1e-5)
    conv.reparameterize()
    assert conv.large is None and conv.small is None
    assert torch.allclose(conv(x), branches, atol=1e-5)
    with pytest.raises(RuntimeError, match="already re-parameterized"):
        conv.merged_kernel()


def test_replk_block_and_network_reparameterize_without_changing_outputs():
    torch.manual_seed(0)
    net = create_model("replknet_mini").eval()
    randomize_bn(net)
    x = torch.randn(2, 1, 28, 28)
    before = net(x)
    net.reparameterize()
    assert not any(
        isinstance(m, nn.BatchNorm2d)
        for b in net.modules()
        if isinstance(b, ReparamLargeKernelConv)
        for m in b.modules()
    )
    assert torch.allclose(net(x), before, atol=1e-4)
    assert RepLKBlock(8, 7, 3)(torch.randn(2, 8, 10, 10)).shape == (2, 8, 10, 10)
    with pytest.raises(ValueError, match="odd"):
        ReparamLargeKernelConv(4, 8, 3)

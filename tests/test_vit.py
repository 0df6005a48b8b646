"""ViT, DeiT and Swin models: same logits as torchvision's with copied weights; configs; the DeiT loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.swin_transformer import SwinTransformer as TVSwin
from torchvision.models.vision_transformer import VisionTransformer as TVViT

from cvkit.models import create_model
from cvkit.models.deit import distillation_loss, distillation_step
from cvkit.models.swin import SwinConfig, SwinTransformer
from cvkit.models.vit import VIT_SIZES, VisionTransformer, ViTConfig, vit_config


def test_vit_matches_torchvision_with_copied_weights():
    torch.manual_seed(0)
    tv = TVViT(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64, num_classes=7).eval()
    torch.nn.init.normal_(tv.heads.head.weight)  # torchvision zero-initialises the head
    ours = VisionTransformer.from_torchvision(tv).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-4)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


def test_vit_b_16_has_the_paper_parameter_count():
    # ViT-B/16: 86.6 M parameters (ViT Table 1 says 86 M; torchvision's vit_b_16 has 86,567,656)
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = create_model("vit_b_16")
    assert sum(p.numel() for p in model.parameters()) == 86_567_656


def test_distilled_vit_averages_two_heads():
    torch.manual_seed(0)
    model = create_model("deit_tiny_distilled_patch4_28").eval()
    x = torch.rand(2, 1, 28, 28)
    cls_logits, dist_logits = model.forward_heads(x)
    assert model.num_prefix_tokens == 2
    assert model.forward_tokens(x).shape == (2, 2 + 49, 48)
    assert torch.allclose(model(x), (cls_logits + dist_logits) / 2)
    assert not torch.allclose(cls_logits, dist_logits)


def test_patch_modes_and_sincos_positions_give_same_logits():
    torch.manual_seed(0)
    a = VisionTransformer(
        ViTConfig(
            img_size=16, patch_size=4, in_chans=1, num_classes=3, dim=16, depth=1, num_heads=2, pos_embed="sincos"
        )
    )
    b = VisionTransformer(a.config, patch_mode="linear")
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(a(x), b(x), atol=1e-5)
    assert not any("pos_embed" in n for n, _ in a.named_parameters())  # fixed, not learned


def test_config_errors():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        ViTConfig(img_size=30, patch_size=4)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        ViTConfig(dim=100, num_heads=3)
    with pytest.raises(ValueError, match="pos_embed"):
        ViTConfig(pos_embed="rope")
    with pytest.raises(ValueError, match="size must be one of"):
        vit_config("giant")
    assert vit_config("tiny").dim == VIT_SIZES["tiny"][0] == 192
    with pytest.raises(ValueError, match="PatchEmbed expects"):
        create_model("vit_tiny_patch4_28")(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match="torchvision VisionTransformer"):
        VisionTransformer.from_torchvision(torch.nn.Linear(2, 2))


def test_hard_distillation_loss_hand_case():
    cls_logits = torch.tensor([[2.0, 0.0]])
    dist_logits = torch.tensor([[0.0, 1.0]])
    labels = torch.tensor([0])
    teacher = torch.tensor([[0.0, 5.0]])  # the teacher says class 1
    expected = 0.5 * -math.log(math.exp(2) / (math.exp(2) + 1)) + 0.5 * -math.log(math.exp(1) / (1 + math.exp(1)))
    assert math.isclose(
        distillation_loss(cls_logits, dist_logits, labels, teacher, "hard").item(), expected, rel_tol=1e-6
    )


def test_soft_distillation_loss_matches_formula():
    torch.manual_seed(0)
    s, d, t = torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    tau, alpha = 2.0, 0.3
    p_t = F.softmax(t / tau, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(d / tau, 1))).sum(1).mean()
    expected = (1 - alpha) * F.cross_entropy(s, y) + alpha * tau**2 * kl
    assert torch.allclose(distillation_loss(s, d, y, t, "soft", alpha, tau), expected, atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        distillation_loss(s, d, y, t, "medium")


def test_distillation_step_trains_both_heads():
    torch.manual_seed(0)
    student = create_model("deit_tiny_distilled_patch4_28", depth=1, dim=32, num_heads=2)
    teacher = create_model("vit_tiny_patch4_28", depth=1, dim=32, num_heads=2)
    step = distillation_step(teacher, "hard")
    batch = (torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    out = step(student.train(), batch)
    out.loss.backward()
    assert student.head.weight.grad is not None and student.head_dist.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="distilled=True"):
        step(teacher, batch)


def test_swin_matches_torchvision_with_copied_weights():
    torch.manual_seed(0)
    tv = TVSwin(
        patch_size=[2, 2],
        embed_dim=16,
        depths=[2, 2],
        num_heads=[2, 4],
        window_size=[4, 4],
        num_classes=5,
        stochastic_depth_prob=0.0,
    ).eval()
    ours = SwinTransformer.from_torchvision(tv, img_size=16).eval()
    assert ours.resolutions == [(8, 8), (4, 4)] and ours.widths == [16, 32]
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-4)


def test_swin_t_matches_the_paper_size_and_stage_shapes():
    with torch.device("meta"):
        model = create_model("swin_t")
    assert sum(p.numel() for p in model.parameters()) == 28_288_354  # torchvision's swin_t; paper: 28 M
    small = create_model("swin_tiny_patch4_32")
    outs = small.forward_stages(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 32), (2, 16, 64)]
    with pytest.raises(ValueError, match="halve"):
        SwinConfig(img_size=28, patch_size=2, depths=(2, 2, 2), num_heads=(1, 1, 1))


def test_convnet_baseline_is_the_size_of_the_small_vit():
    cnn, vit = create_model("convnet_small_28"), create_model("vit_tiny_patch4_28")
    n_cnn, n_vit = (sum(p.numel() for p in m.parameters()) for m in (cnn, vit))
    assert 0.8 < n_cnn / n_vit < 1.2
    assert cnn(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        cnn(torch.rand(2, 3, 28, 28))

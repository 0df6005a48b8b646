"""Attention visualizers: hooks on cvkit's and torchvision's ViTs, rollout, attention distance, pictures."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torchvision.models.vision_transformer import VisionTransformer as TVViT

from cvkit.layers import shifted_window_mask, window_partition, grid_partition
from cvkit.models import create_model
from cvkit.models.vit import VisionTransformer
from cvkit.inspect import (
    attention_maps,
    attention_rollout,
    cls_attention,
    mean_attention_distance,
    record_attention,
    vit_token_layout,
)
from cvkit.viz import (
    group_ids,
    plot_attention_distance,
    show_attention_heads,
    show_attention_rollout,
    show_block_grid,
    show_shifted_windows,
    window_attention_map,
)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tv = TVViT(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=4).eval()
    return tv, VisionTransformer.from_torchvision(tv).eval()


def test_hooks_on_torchvision_match_cvkit_maps(pair):
    tv, ours = pair
    x = torch.rand(2, 3, 32, 32)
    tv_maps = attention_maps(tv, x)
    our_maps = attention_maps(ours, x)
    assert len(tv_maps) == len(our_maps) == 3
    for a, b in zip(tv_maps, our_maps):
        assert a.shape == (2, 2, 17, 17)
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.allclose(a.sum(-1), torch.ones(2, 2, 17), atol=1e-5)
    assert vit_token_layout(tv) == vit_token_layout(ours) == (1, (4, 4), 8)


def test_recording_leaves_models_unchanged(pair):
    tv, ours = pair
    x = torch.rand(1, 3, 32, 32)
    with record_attention(tv) as maps:
        tv(x)
    assert len(maps) == 3
    assert not tv.encoder.layers[0].self_attention._forward_pre_hooks
    assert not ours.blocks[0].attn.keep_attention
    with pytest.raises(ValueError, match="no attention layer"):
        with record_attention(torch.nn.Linear(2, 2)):
            pass


def test_cls_attention_reads_the_class_row():
    attn = torch.zeros(1, 1, 5, 5)
    attn[0, 0, 0] = torch.tensor([0.2, 0.1, 0.2, 0.3, 0.2])  # class token, then a 2x2 grid
    out = cls_attention(attn, (2, 2))
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out[0, 0], torch.tensor([[0.1, 0.2], [0.3, 0.2]]))
    with pytest.raises(ValueError, match="does not fit"):
        cls_attention(attn, (3, 3))


def test_rollout_hand_cases():
    torch.manual_seed(0)
    a1 = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    a2 = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    assert torch.allclose(attention_rollout([a1], residual=0.0), a1.mean(1))
    eye = torch.eye(4)
    m1 = 0.5 * a1.mean(1) + 0.5 * eye
    m2 = 0.5 * a2.mean(1) + 0.5 * eye
    rolled = attention_rollout([a1, a2])
    assert torch.allclose(rolled, m2 @ m1, atol=1e-6)  # rows of m already sum to 1
    assert torch.allclose(rolled.sum(-1), torch.ones(2, 4))
    assert torch.allclose(attention_rollout([a1], "max", 0.0), a1.amax(1) / a1.amax(1).sum(-1, keepdim=True))
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout([a1], "median")


def test_mean_attention_distance_hand_case():
    # a 1x3 row of patches of 10 pixels plus a class token; head 0 attends to itself, head 1 to its right/left neighbour
    attn = torch.zeros(1, 2, 4, 4)
    attn[0, 0, 1:, 1:] = torch.eye(3)
    attn[0, 1, 1, 2] = attn[0, 1, 2, 3] = attn[0, 1, 3, 2] = 1.0
    attn[0, :, 0, 0] = 1.0
    d = mean_attention_distance([attn, attn], (1, 3), 10)
    assert d.shape == (2, 2)
    assert torch.allclose(d[0], torch.tensor([0.0, 10.0]))


def test_group_ids_of_partitions():
    windows = group_ids(window_partition, (4, 4), 2)
    assert windows.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    grids = group_ids(grid_partition, (4, 4), 2)
    assert grids.tolist() == [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]]


def test_pictures_draw(pair):
    _, ours = pair
    x = torch.rand(2, 3, 32, 32)
    maps = attention_maps(ours, x)
    heads = cls_attention(maps[-1], (4, 4))
    fig = show_attention_heads(x[0], heads[0], title="heads")
    assert len(fig.axes) >= 3
    rolled = cls_attention(attention_rollout(maps), (4, 4))
    show_attention_rollout(x, rolled, titles=["a", "b"], last_layer=heads.mean(1))
    ax = plot_attention_distance(mean_attention_distance(maps, (4, 4), 8), lines={"image size": 32})
    assert len(ax.collections) == 2  # one scatter per head
    fig = show_shifted_windows((8, 8), 4)
    assert len(fig.axes) == 3 + shifted_window_mask((8, 8), 4, 2).shape[0]
    show_block_grid((8, 8), 2)


def test_swin_window_attention_is_recorded():
    model = create_model("swin_tiny_patch4_32")
    maps = attention_maps(model, torch.rand(1, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(4, 2, 16, 16)] * 2 + [(1, 4, 16, 16)] * 2  # (B*nW, h, M*M, M*M)
    assert (
        maps[1][1:].masked_select(~shifted_window_mask((8, 8), 4, 2)[1:, None]) == 0
    ).all()  # shifted block obeys its mask


def test_window_attention_map_undoes_the_shift():
    # 4x4 grid, M=2, s=1: query (0, 0) rolls to (3, 3), the last slot of window 3; make it attend to the slot of (1, 0)
    attn = torch.zeros(4, 1, 4, 4)
    attn[3, 0, 3, 2] = 1.0  # window 3 slot 2 = rolled (3, 2) = original (0, 3)
    canvas = window_attention_map(attn, (4, 4), 2, (0, 0), shift_size=1)
    assert canvas.shape == (1, 4, 4)
    assert canvas[0, 0, 3] == 1.0 and canvas.sum() == 1.0
    plain = window_attention_map(torch.ones(4, 2, 4, 4) / 4, (4, 4), 2, (3, 2))
    assert plain[:, 2:, 2:].sum() == 2 * 4 * 0.25 and plain[:, :2].sum() == 0

"""Swin's windows, shift mask, relative position bias, block and patch merging against torchvision's Swin."""

import pytest
import torch
from torchvision.models import swin_transformer as tv_swin

from cvkit.layers import (
    PatchMerging,
    SwinBlock,
    WindowAttention,
    grid_to_tokens,
    relative_position_index,
    shifted_window_mask,
    tokens_to_grid,
    window_partition,
    window_reverse,
)


def test_window_partition_hand_case_and_round_trip():
    grid = torch.arange(16.0).view(1, 4, 4, 1)  # token (r, c) has value 4r + c
    windows = window_partition(grid, 2)
    assert windows.shape == (4, 4, 1)
    assert windows[0, :, 0].tolist() == [0, 1, 4, 5]  # top-left window
    assert windows[1, :, 0].tolist() == [2, 3, 6, 7]  # top-right window
    assert windows[2, :, 0].tolist() == [8, 9, 12, 13]
    x = torch.randn(3, 14, 21, 5)
    assert torch.equal(window_reverse(window_partition(x, 7), 7, (14, 21)), x)
    assert torch.equal(grid_to_tokens(tokens_to_grid(x.reshape(3, -1, 5), (14, 21))), x.reshape(3, -1, 5))


def test_window_partition_errors():
    with pytest.raises(ValueError, match="not divisible"):
        window_partition(torch.randn(1, 6, 6, 2), 4)
    with pytest.raises(ValueError, match="token grid"):
        window_partition(torch.randn(6, 6, 2), 2)
    with pytest.raises(ValueError, match="expected windows"):
        window_reverse(torch.randn(5, 4, 2), 2, (4, 4))


def _brute_force_mask(h, w, m, s):
    """Two tokens of a window may attend iff, before the roll, they were on the same side of the wrap in each axis."""
    n_win_w = w // m
    masks = []
    for wi in range(h // m):
        for wj in range(n_win_w):
            cells = [(wi * m + a, wj * m + b) for a in range(m) for b in range(m)]
            wrapped = [(r + s >= h, c + s >= w) for r, c in cells]  # the roll by -s moved these from the far edge
            masks.append([[wrapped[p] == wrapped[q] for q in range(m * m)] for p in range(m * m)])
    return torch.tensor(masks)


@pytest.mark.parametrize("h,w,m,s", [(8, 8, 4, 2), (14, 14, 7, 3), (12, 8, 4, 1), (4, 4, 4, 2)])
def test_shift_mask_matches_brute_force(h, w, m, s):
    mask = shifted_window_mask((h, w), m, s)
    assert mask.shape == ((h // m) * (w // m), m * m, m * m)
    assert torch.equal(mask, _brute_force_mask(h, w, m, s))
    if h > m and w > m:
        assert mask[0].all()  # the top-left window holds no wrapped tokens
    assert torch.equal(mask, mask.transpose(1, 2))


def test_shift_mask_errors_and_no_shift():
    assert shifted_window_mask((8, 8), 4, 0).all()
    with pytest.raises(ValueError, match="shift_size"):
        shifted_window_mask((8, 8), 4, 4)


def test_relative_position_index_matches_torchvision():
    tv = tv_swin.ShiftedWindowAttention(8, [5, 5], [0, 0], 2)
    assert torch.equal(relative_position_index(5).flatten(), tv.relative_position_index)
    idx = relative_position_index(3)
    assert idx[0, 0] == idx[4, 4] == (3 - 1) * 5 + (3 - 1)  # zero offset is the centre of the 5x5 table


def _load_swin_block(ours: SwinBlock, tv) -> None:
    """Copy torchvision SwinTransformerBlock weights (fused qkv) into a cvkit SwinBlock."""
    ours.norm1.load_state_dict(tv.norm1.state_dict())
    ours.norm2.load_state_dict(tv.norm2.state_dict())
    attn = ours.attn.attn
    for proj, w, b in zip(
        (attn.q_proj, attn.k_proj, attn.v_proj), tv.attn.qkv.weight.chunk(3), tv.attn.qkv.bias.chunk(3)
    ):
        proj.weight.data.copy_(w)
        proj.bias.data.copy_(b)
    attn.out_proj.load_state_dict(tv.attn.proj.state_dict())
    ours.attn.position_bias.table.data.copy_(tv.attn.relative_position_bias_table)
    ours.mlp.fc1.load_state_dict(tv.mlp[0].state_dict())
    ours.mlp.fc2.load_state_dict(tv.mlp[3].state_dict())


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("fused", [True, False])
def test_swin_block_matches_torchvision(shift, fused):
    torch.manual_seed(0)
    tv = tv_swin.SwinTransformerBlock(16, 2, window_size=[4, 4], shift_size=[shift, shift]).eval()
    ours = SwinBlock(16, 2, (8, 12), window_size=4, shift_size=shift).eval()
    ours.attn.attn.fused = fused
    _load_swin_block(ours, tv)
    grid = torch.randn(2, 8, 12, 16)
    with torch.no_grad():
        expected = tv(grid)
        got = tokens_to_grid(ours(grid_to_tokens(grid)), (8, 12))
    assert torch.allclose(got, expected, atol=1e-5)


def test_window_attention_mask_blocks_wrapped_tokens():
    torch.manual_seed(0)
    attn = WindowAttention(8, 2, 2)
    attn.attn.keep_attention = True
    mask = shifted_window_mask((4, 4), 2, 1)
    attn(torch.randn(3 * 4, 4, 8), mask)
    weights = attn.attn.attention.view(3, 4, 2, 4, 4)  # (B, nW, h, N, N)
    assert (weights.masked_select(~mask[None, :, None]) == 0).all()
    with pytest.raises(ValueError, match="mask must be"):
        attn(torch.randn(10, 4, 8), mask)


def test_swin_block_clips_window_to_small_grids():
    block = SwinBlock(8, 2, (4, 4), window_size=7, shift_size=3)
    assert (block.window_size, block.shift_size) == (4, 0)
    with pytest.raises(ValueError, match="divisible"):
        SwinBlock(8, 2, (10, 10), window_size=4)


def test_patch_merging_matches_torchvision():
    torch.manual_seed(0)
    tv = tv_swin.PatchMerging(6)
    ours = PatchMerging(6, (4, 6))
    ours.load_state_dict(tv.state_dict())
    grid = torch.randn(2, 4, 6, 6)
    out = ours(grid_to_tokens(grid))
    assert out.shape == (2, 2 * 3, 12)
    assert torch.allclose(tokens_to_grid(out, (2, 3)), tv(grid), atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        PatchMerging(6, (5, 6))

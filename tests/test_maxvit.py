"""MaxViT's block and grid partitions against torchvision's MaxViT reshapes and a hand-built case."""

import pytest
import torch
from torchvision.models import maxvit as tv_maxvit

from cvkit.layers import (
    BlockGridAttention,
    PartitionAttention,
    block_partition,
    block_reverse,
    grid_partition,
    grid_reverse,
)


def test_grid_partition_hand_case():
    grid = torch.arange(16.0).view(1, 4, 4, 1)  # token (r, c) has value 4r + c
    groups = grid_partition(grid, 2)  # G = 2: tokens H/G = 2 apart
    assert groups.shape == (4, 4, 1)
    assert groups[0, :, 0].tolist() == [0, 2, 8, 10]  # rows {0, 2} x columns {0, 2}
    assert groups[1, :, 0].tolist() == [1, 3, 9, 11]
    assert groups[3, :, 0].tolist() == [5, 7, 13, 15]
    assert block_partition(grid, 2)[0, :, 0].tolist() == [0, 1, 4, 5]  # a block holds neighbours


@pytest.mark.parametrize("size", [2, 4])
def test_partitions_match_torchvision(size):
    x = torch.randn(2, 3, 8, 8)  # NCHW, as torchvision's MaxViT takes it (it assumes square grids)
    grid = x.permute(0, 2, 3, 1)  # (B, H, W, C)
    tv_block = tv_maxvit.WindowPartition()(x, size)  # (B, HW/P^2, P^2, C)
    assert torch.equal(block_partition(grid, size), tv_block.reshape(-1, size * size, 3))
    # torchvision's grid partition: cut into (H/G)-sized windows, then swap so the G^2 axis is the sequence
    tv_grid = tv_maxvit.SwapAxes(-2, -3)(tv_maxvit.WindowPartition()(x, 8 // size))  # (B, HW/G^2, G^2, C)
    assert torch.equal(grid_partition(grid, size), tv_grid.reshape(-1, size * size, 3))


def test_round_trips():
    x = torch.randn(2, 12, 8, 5)
    assert torch.equal(block_reverse(block_partition(x, 4), 4, (12, 8)), x)
    assert torch.equal(grid_reverse(grid_partition(x, 4), 4, (12, 8)), x)
    with pytest.raises(ValueError, match="expected groups"):
        grid_reverse(torch.randn(3, 16, 5), 4, (12, 8))


def test_grid_attention_mixes_globally_block_attention_locally():
    torch.manual_seed(0)
    x = torch.randn(1, 64, 8, requires_grad=True)  # an 8x8 grid
    for partition, reachable in (
        ("block", {0, 1, 8, 9}),
        ("grid", {0, 2, 4, 6, 16, 18, 20, 22, 32, 34, 36, 38, 48, 50, 52, 54}),
    ):
        layer = PartitionAttention(8, 2, (8, 8), partition, 2 if partition == "block" else 4)
        out = layer(x)
        (grad,) = torch.autograd.grad(out[0, 0].sum(), x)
        touched = set(grad[0].abs().sum(-1).nonzero().flatten().tolist())
        assert touched == reachable, partition


def test_block_grid_attention_shapes_and_errors():
    layer = BlockGridAttention(8, 2, (8, 8), size=4)
    assert layer(torch.randn(2, 64, 8)).shape == (2, 64, 8)
    with pytest.raises(ValueError, match="partition"):
        PartitionAttention(8, 2, (8, 8), "diagonal", 4)
    with pytest.raises(ValueError, match="divisible"):
        PartitionAttention(8, 2, (8, 8), "grid", 3)

"""SLaK's decomposed sparse kernel: the merged kernel against the branches (F.conv2d), counts, and prune-and-grow."""

import pytest
import torch
import torch.nn.functional as F

from cvkit.layers.slak import SparseLargeKernelConv


@pytest.mark.parametrize("sparsity", [0.0, 0.4])
def test_merged_kernel_equals_the_branches(sparsity):
    torch.manual_seed(0)
    conv = SparseLargeKernelConv(
        3, kernel_size=13, width=3, small_kernel=5, sparsity=sparsity, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(4, 3, 20, 20)
    conv.train()
    conv(x)  # BN running statistics move away from their initial values
    for bn in (conv.bn_tall, conv.bn_wide, conv.bn_small):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    conv.eval()
    weight, bias = conv.merged_kernel()
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=6, groups=3), conv(x), atol=1e-5, rtol=1e-4)
    # the merged kernel is a "+" of width 3 with a 5x5 centre: zero in the corners
    assert weight[:, :, :4, :4].abs().max() == 0 and weight.shape == (3, 1, 13, 13)


def test_counts_and_sparsity():
    conv = SparseLargeKernelConv(8, kernel_size=51, width=5, small_kernel=5)
    assert conv.active_weights() == 8 * (2 * 51 * 5 + 25)  # 535 per channel against 2601 for a dense 51x51
    sparse = SparseLargeKernelConv(8, 51, 5, 5, sparsity=0.4, generator=torch.Generator().manual_seed(0))
    density = (sparse.mask_tall.float().mean() + sparse.mask_wide.float().mean()) / 2
    assert abs(density.item() - 0.6) < 0.02
    assert (sparse.tall.weight[~sparse.mask_tall] == 0).all()


def test_prune_and_grow_keeps_the_count_and_drops_the_weakest():
    conv = SparseLargeKernelConv(2, 11, 3, None, sparsity=0.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conv.tall.weight.copy_(
            torch.arange(conv.tall.weight.numel(), dtype=torch.float32).view_as(conv.tall.weight) + 1
        )
        conv.tall.weight.mul_(conv.mask_tall)
    before = int(conv.mask_tall.sum())
    weakest = conv.tall.weight[conv.mask_tall].min().item()
    changed = conv.prune_and_grow(0.25, torch.Generator().manual_seed(1))
    assert int(conv.mask_tall.sum()) == before and changed > 0
    assert (conv.tall.weight == weakest).sum() == 0  # the smallest active weight was pruned
    assert (conv.tall.weight[~conv.mask_tall] == 0).all()


def test_errors():
    with pytest.raises(ValueError, match="odd"):
        SparseLargeKernelConv(2, 50, 5)
    with pytest.raises(ValueError, match="sparsity"):
        SparseLargeKernelConv(2, 51, 5, sparsity=1.0)
    with pytest.raises(ValueError, match="fraction"):
        SparseLargeKernelConv(2, 11, 3).prune_and_grow(2.0)

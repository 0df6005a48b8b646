"""MAE's random masking and BEiT's blockwise masking: exact ratios, the algorithm's bounds, round trips."""

import math

import pytest
import torch

from cvkit.ssl.beit import blockwise_mask, blockwise_masks
from cvkit.layers import patchify
from cvkit.ssl.mae import MaskedAutoencoder, random_masking
from cvkit.ssl.vit import ViTEncoder


@pytest.mark.parametrize("n", [16, 64, 196])
def test_random_masking_hides_exactly_75_percent(n):
    tokens = torch.randn(8, n, 4)
    kept, mask, ids_restore = random_masking(tokens, 0.75, torch.Generator().manual_seed(0))
    assert kept.shape == (8, n // 4, 4)
    assert (mask.sum(dim=1) == 3 * n // 4).all()
    assert mask.float().mean().item() == 0.75


def test_random_masking_keeps_int_n_times_one_minus_ratio_and_restores_order():
    tokens = torch.arange(2 * 49 * 3, dtype=torch.float32).view(2, 49, 3)
    kept, mask, ids_restore = random_masking(tokens, 0.75, torch.Generator().manual_seed(1))
    assert kept.shape[1] == int(49 * 0.25) == 12
    # the kept tokens are exactly the unmasked ones
    for b in range(2):
        visible = tokens[b][~mask[b]]
        assert sorted(visible[:, 0].tolist()) == sorted(kept[b][:, 0].tolist())
    # ids_restore puts [kept, hidden] back in patch order
    hidden = torch.stack([tokens[b][mask[b]] for b in range(2)])
    order = torch.cat([kept, hidden], dim=1)  # hidden ones in any order: only check kept positions map back
    restored = order.gather(1, ids_restore[..., None].expand(-1, -1, 3))
    torch.testing.assert_close(restored[~mask], tokens[~mask])


def test_random_masking_differs_per_sample_and_rejects_bad_ratio():
    _, mask, _ = random_masking(torch.zeros(16, 64, 2), 0.75, torch.Generator().manual_seed(0))
    assert len({tuple(m.tolist()) for m in mask}) == 16
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(torch.zeros(1, 4, 2), 1.0)


def test_mae_encoder_sees_only_visible_tokens_and_loss_only_counts_masked_patches():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(ViTEncoder(16, 4, 1, 16, 1, 2), decoder_dim=8, decoder_heads=2)
    x = torch.rand(3, 1, 16, 16)
    latent, mask, _ = mae.forward_encoder(x, torch.Generator().manual_seed(0))
    assert latent.shape == (3, 4, 16) and mask.sum().item() == 3 * 12
    # a perfect prediction on the masked patches gives zero loss whatever happens on the visible ones
    target = patchify(x, 4)
    pred = torch.where(mask[..., None], target, torch.rand_like(target))
    assert mae.reconstruction_loss(x, pred, mask).item() == pytest.approx(0.0, abs=1e-7)
    out = mae.reconstruct(x, torch.Generator().manual_seed(0))
    visible = ~mask[..., None].expand_as(target)
    torch.testing.assert_close(patchify(out["pasted"], 4)[visible], target[visible])


def test_blockwise_mask_stops_just_above_forty_percent():
    g = torch.Generator().manual_seed(0)
    ratios = []
    for _ in range(200):
        m, blocks = blockwise_mask(14, 14, generator=g, return_blocks=True)
        count = int(m.sum())
        assert count > 0.4 * 196  # until |M| > 0.4 N
        before = m.clone()
        before.zero_()
        for t, left, a, b, s, r in blocks[:-1]:
            before[t : t + a, left : left + b] = True
        assert int(before.sum()) <= 0.4 * 196  # the loop ran until, and only until, the bound was crossed
        ratios.append(count / 196)
    assert 0.40 < sum(ratios) / len(ratios) < 0.46


def test_blockwise_blocks_follow_the_algorithm():
    g = torch.Generator().manual_seed(1)
    for _ in range(100):
        m, blocks = blockwise_mask(14, 14, generator=g, return_blocks=True)
        union = torch.zeros(14, 14, dtype=torch.bool)
        masked_before = 0
        for t, left, a, b, s, r in blocks:
            assert 0.3 - 1e-9 <= r <= 1 / 0.3 + 1e-9  # aspect ratio in [0.3, 1/0.3]
            remaining = 0.4 * 196 - masked_before
            assert min(16, remaining) <= s <= max(16, remaining)  # s ~ Rand(16, 0.4N - |M|)
            assert a == max(1, round(math.sqrt(s * r))) and b == max(1, round(math.sqrt(s / r)))
            assert 0 <= t <= 14 - a and 0 <= left <= 14 - b  # inside the grid
            union[t : t + a, left : left + b] = True
            masked_before = int(union.sum())
        assert torch.equal(union, m)  # M is the union of the blocks


def test_blockwise_aspect_ratio_is_symmetric_and_blocks_are_contiguous():
    g = torch.Generator().manual_seed(2)
    logs = [math.log(r) for _ in range(300) for *_, r in blockwise_mask(14, 14, generator=g, return_blocks=True)[1]]
    assert abs(sum(logs) / len(logs)) < 0.1  # r and 1/r equally likely
    masks = blockwise_masks(4, 7, 7, torch.Generator().manual_seed(0), min_block=4)
    assert masks.shape == (4, 49) and masks.dtype == torch.bool
    assert ((masks.sum(1) > 0.4 * 49) & (masks.sum(1) <= 49)).all()


def test_blockwise_mask_is_reproducible_and_checks_arguments():
    a = blockwise_mask(14, 14, generator=torch.Generator().manual_seed(5))
    b = blockwise_mask(14, 14, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="mask_ratio"):
        blockwise_mask(14, 14, mask_ratio=0.0)
    with pytest.raises(ValueError, match="min_aspect"):
        blockwise_mask(14, 14, min_aspect=2.0)

"""Contrastive and distillation losses: hand-computed cases, the papers' formulas written out, and equivalences."""

import math

import pytest
import torch
import torch.nn.functional as F

from cvkit.ssl.dino import dino_loss, update_center
from cvkit.ssl.losses import byol_loss, info_nce, nt_xent
from cvkit.vl.clip import clip_loss


def test_info_nce_hand_computed_two_by_two():
    # unit vectors: q0 = k0 = e0, q1 = k1 = e1: cosine matrix [[1, 0], [0, 1]]
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0.0)))
    assert info_nce(q, q.clone(), temperature=tau).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_normalises_its_inputs():
    torch.manual_seed(0)
    q, k = torch.randn(6, 8), torch.randn(6, 8)
    assert info_nce(3 * q, 0.1 * k).item() == pytest.approx(info_nce(q, k).item(), rel=1e-5)


def test_info_nce_with_queue_matches_cpc_formula():
    torch.manual_seed(1)
    q, k, queue = torch.randn(4, 5), torch.randn(4, 5), torch.randn(7, 5)
    tau = 0.2
    qn, kn, nn_ = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    expected = []
    for i in range(4):  # -log f(x+, c) / sum_j f(x_j, c), f = exp(cos / tau)
        pos = torch.exp(qn[i] @ kn[i] / tau)
        neg = torch.exp(nn_ @ qn[i] / tau).sum()
        expected.append(-torch.log(pos / (pos + neg)))
    got = info_nce(q, k, queue, temperature=tau, reduction="none")
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-6)


def test_nt_xent_matches_the_paper_formula_written_out():
    torch.manual_seed(2)
    z1, z2 = torch.randn(5, 7), torch.randn(5, 7)
    tau = 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        j = (i + 5) % n  # the other view
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / denom)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / n, rel=1e-5)


def test_nt_xent_equals_info_nce_with_the_rest_of_the_batch_as_negatives():
    torch.manual_seed(3)
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    z = torch.cat([z1, z2])
    losses = []
    for i in range(8):
        j = (i + 4) % 8
        negatives = torch.stack([z[k] for k in range(8) if k not in (i, j)])
        losses.append(info_nce(z[i : i + 1], z[j : j + 1], negatives, temperature=0.3))
    assert nt_xent(z1, z2, 0.3).item() == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)


def test_loss_argument_checks():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(x, x, temperature=0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(x, torch.randn(5, 3))
    with pytest.raises(ValueError, match="B >= 2"):
        nt_xent(x[:1], x[:1])
    with pytest.raises(ValueError, match="reduction"):
        info_nce(x, x, reduction="avg")


def test_byol_loss_values_and_stop_gradient():
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], requires_grad=True)
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], requires_grad=True)
    per = byol_loss(p, z, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.0, 2.0, 4.0]))  # same direction, orthogonal, opposite
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None  # the target is detached


def test_clip_loss_hand_computed_two_by_two():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    # image->text: rows; text->image: columns
    i2t = [-math.log(math.exp(2) / (math.exp(2) + 1)), -math.log(math.exp(3) / (math.exp(1) + math.exp(3)))]
    t2i = [-math.log(math.exp(2) / (math.exp(2) + math.exp(1))), -math.log(math.exp(3) / (1 + math.exp(3)))]
    expected = (sum(i2t) / 2 + sum(t2i) / 2) / 2
    assert clip_loss(logits).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="square"):
        clip_loss(torch.zeros(2, 3))


def test_dino_loss_hand_computed():
    # two views, one image, K = 2; teacher sees both (global) views
    s = torch.tensor([[[0.2, 0.0]], [[0.0, 0.4]]])  # (V=2, B=1, K=2)
    t = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    c = torch.tensor([0.5, 0.5])
    ts, tt = 0.1, 0.05
    pt = [F.softmax((t[v, 0] - c) / tt, dim=0) for v in range(2)]
    ls = [F.log_softmax(s[v, 0] / ts, dim=0) for v in range(2)]
    expected = (-(pt[0] * ls[1]).sum() - (pt[1] * ls[0]).sum()) / 2  # only pairs of different views
    assert dino_loss(s, t, c, ts, tt).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dino_centering_and_sharpening_act_in_opposite_directions():
    torch.manual_seed(4)
    logits = torch.randn(1, 64, 10) + torch.tensor([3.0] + [0.0] * 9)  # one dimension dominates
    entropy = lambda p: -(p * p.clamp_min(1e-12).log()).sum(-1).mean()  # noqa: E731
    centred = F.softmax((logits - logits.mean(dim=(0, 1))) / 0.04, -1)
    raw = F.softmax(logits / 0.04, -1)
    assert (centred.argmax(-1) == 0).float().mean() < (
        raw.argmax(-1) == 0
    ).float().mean()  # centring: no dominant dimension
    assert entropy(F.softmax(logits / 0.04, -1)) < entropy(F.softmax(logits / 1.0, -1))  # sharpening: lower entropy


def test_update_center_is_an_exponential_moving_average():
    c = torch.tensor([1.0, 0.0, -1.0])
    t = torch.tensor([[[0.0, 2.0, 4.0]], [[2.0, 2.0, 0.0]]])  # mean over views and batch: [1, 2, 2]
    torch.testing.assert_close(update_center(c, t, 0.9), 0.9 * c + 0.1 * torch.tensor([1.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="momentum"):
        update_center(c, t, 1.5)

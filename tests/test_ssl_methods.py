"""SSL methods' machinery: momentum updates, MoCo's queue, stop-gradients, pretext labels, probes against scikit-learn."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from cvkit.layers import ConvEncoder
from cvkit.ssl import (
    BYOL,
    DINO,
    MoCo,
    RotationPrediction,
    SimCLR,
    ema_update_,
    frozen_copy,
    jigsaw_batch,
    jigsaw_permutations,
    knn_classify,
    linear_probe,
    pretrain,
    relative_position_batch,
    rotation_batch,
    square_hole,
)
from cvkit.ssl.pretext import NEIGHBOURS, grid_tiles
from cvkit.ssl.probe import fit_linear_classifier

SMALL = (8, 16, 32)


def test_ema_update_follows_the_formula_and_copies_buffers():
    online, target = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.weight.fill_(2.0)
        target.weight.fill_(1.0)
        online.running_mean.fill_(5.0)
    ema_update_(target, online, 0.9)
    torch.testing.assert_close(target.weight, torch.full((3,), 0.9 * 1.0 + 0.1 * 2.0))
    torch.testing.assert_close(target.running_mean, torch.full((3,), 5.0))
    with pytest.raises(ValueError, match="momentum"):
        ema_update_(target, online, -0.1)


def test_moco_queue_is_fifo_with_wraparound():
    moco = MoCo(ConvEncoder(1, SMALL), projection_dim=4, queue_size=5)
    keys = torch.arange(12, dtype=torch.float32).view(3, 4)
    moco.enqueue(keys)
    moco.enqueue(keys + 100)  # slots 3, 4, 0
    assert int(moco.queue_ptr) == 1
    torch.testing.assert_close(moco.queue[[3, 4, 0]], keys + 100)
    torch.testing.assert_close(moco.queue[[1, 2]], keys[1:])


def test_moco_forward_moves_the_key_encoder_and_enqueues_keys():
    torch.manual_seed(0)
    moco = MoCo(ConvEncoder(1, SMALL), projection_dim=8, queue_size=16, momentum=0.5)
    with torch.no_grad():
        for p in moco.encoder.parameters():
            p.add_(1.0)  # make query and key encoders differ
    before = [p.clone() for p in moco.encoder_k.parameters()]
    x = torch.rand(4, 1, 28, 28)
    loss = moco(x, x)
    loss.backward()
    for b, pk, pq in zip(before, moco.encoder_k.parameters(), moco.encoder.parameters()):
        torch.testing.assert_close(pk, 0.5 * b + 0.5 * pq.detach())
        assert pk.grad is None and not pk.requires_grad
    assert int(moco.queue_ptr) == 4
    torch.testing.assert_close(moco.queue[:4].norm(dim=1), torch.ones(4))


@pytest.mark.parametrize("method", [BYOL, DINO])
def test_target_networks_get_no_gradient(method):
    torch.manual_seed(0)
    model = method(ConvEncoder(1, SMALL))
    x = torch.rand(4, 1, 28, 28)
    model(x, torch.rand(4, 1, 28, 28)).backward()
    online = [p for n, p in model.named_parameters() if p.requires_grad]
    frozen = [p for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)
    assert all(p.grad is not None for p in online)


def test_dino_accepts_local_crops_of_another_size():
    torch.manual_seed(0)
    model = DINO(ConvEncoder(1, SMALL), out_dim=16)
    views = [torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28), torch.rand(3, 1, 12, 12), torch.rand(3, 1, 12, 12)]
    loss = model(*views)
    assert torch.isfinite(loss) and model.center.abs().sum() > 0


def test_frozen_copy_is_independent():
    enc = ConvEncoder(1, SMALL)
    copy = frozen_copy(enc)
    assert all(not p.requires_grad for p in copy.parameters())
    with torch.no_grad():
        next(enc.parameters()).add_(1)
    assert not torch.equal(next(enc.parameters()), next(copy.parameters()))


def test_rotation_batch_labels():
    x = torch.arange(2 * 9, dtype=torch.float32).view(2, 1, 3, 3)
    rotated, labels = rotation_batch(x)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    torch.testing.assert_close(rotated[3], torch.rot90(x[1], 1, dims=(-2, -1)))
    torch.testing.assert_close(rotated[6], torch.rot90(x[0], 3, dims=(-2, -1)))


def test_jigsaw_permutations_are_distinct_and_far_apart():
    perms = jigsaw_permutations(30, seed=0)
    assert perms.shape == (30, 9)
    assert len({tuple(p) for p in perms.tolist()}) == 30
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    dist = (perms[:, None] != perms[None]).sum(-1).float()
    random = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(i)) for i in range(30)])
    random_dist = (random[:, None] != random[None]).sum(-1).float()
    assert dist.sum() / (30 * 29) > random_dist.sum() / (30 * 29)  # maximal average Hamming distance beats random


def test_jigsaw_batch_shuffles_tiles_by_the_labelled_permutation():
    x = torch.rand(3, 1, 27, 27)
    perms = jigsaw_permutations(10)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    tiles = grid_tiles(x, 3, 7, g1)  # the same offsets, unshuffled
    shuffled, labels = jigsaw_batch(x, perms, 7, g2)
    for b in range(3):
        torch.testing.assert_close(shuffled[b], tiles[b, perms[labels[b]]])


def test_relative_position_pairs_come_from_the_labelled_neighbour():
    x = torch.zeros(50, 1, 30, 30)
    for r in range(3):
        for c in range(3):
            x[:, :, r * 10 : (r + 1) * 10, c * 10 : (c + 1) * 10] = r * 3 + c + 1.0  # each cell holds its index + 1
    x += 0.01 * torch.rand(x.shape, generator=torch.Generator().manual_seed(1))  # so normalised tiles keep their order
    centre, neighbour, labels = relative_position_batch(x, tile=8, generator=torch.Generator().manual_seed(0))
    assert set(labels.tolist()) == set(range(8))
    # the same draws without tile normalisation show which cell each tile came from
    g = torch.Generator().manual_seed(0)
    tiles = grid_tiles(x, 3, 8, g, normalize=False)
    same_labels = torch.randint(0, 8, (50,), generator=g)
    assert torch.equal(same_labels, labels)
    cell = torch.tensor([r * 3 + c for r, c in NEIGHBOURS])[labels]
    picked = tiles[torch.arange(50), cell]  # (50, 1, 8, 8)
    assert torch.allclose(picked.mean(dim=(1, 2, 3)), cell.float() + 1, atol=0.02)
    assert torch.allclose(tiles[:, 4].mean(dim=(1, 2, 3)), torch.full((50,), 5.0), atol=0.02)


def test_square_hole_has_the_requested_size():
    hole = square_hole(torch.zeros(5, 1, 20, 20), 0.5, torch.Generator().manual_seed(0))
    assert (hole.sum(dim=(1, 2, 3)) == 100).all()
    centre = square_hole(torch.zeros(1, 1, 20, 20), 0.5, center=True)
    assert centre[0, 0, 5:15, 5:15].all() and centre.sum() == 100


def test_linear_classifier_matches_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 3))).argmax(1) + 0
    x += 0.5 * rng.normal(size=x.shape).astype(np.float32)
    lam = 1e-2
    ours = fit_linear_classifier(torch.from_numpy(x), torch.from_numpy(y).long(), 3, weight_decay=lam, max_iter=500)
    sk = LogisticRegression(C=1 / (lam * len(x)), max_iter=2000, tol=1e-8).fit(x, y)
    torch.testing.assert_close(ours.weight.detach(), torch.from_numpy(sk.coef_).float(), atol=2e-3, rtol=2e-3)
    pred = ours(torch.from_numpy(x)).argmax(1).numpy()
    assert (pred == sk.predict(x)).mean() > 0.99


def test_knn_votes_for_the_nearest_class():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    pred = knn_classify(bank, labels, torch.tensor([[1.0, 0.05], [0.05, 1.0]]), k=2)
    assert pred.tolist() == [0, 1]


def test_linear_probe_separates_an_easy_dataset_and_leaves_the_encoder_alone():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 16, 16) * 0.2
    y = torch.arange(200) % 2
    x[y == 1, :, :8] += 0.7  # class 1 is bright on top
    enc = ConvEncoder(1, SMALL)
    enc.train()
    result = linear_probe(enc, x[:150], y[:150], x[150:], y[150:], knn=5)
    assert result.test_accuracy > 0.95 and result.knn_accuracy > 0.9
    assert enc.training  # mode restored
    with pytest.raises(ValueError, match="differ in length"):
        linear_probe(enc, x, y[:10], x, y)


def test_pretrain_runs_the_kit_loop_and_lowers_the_loss():
    torch.manual_seed(0)
    template = torch.zeros(1, 28, 28)
    template[:, 4:24, 4:9] = 1.0  # an "L": its rotation is easy to tell
    template[:, 19:24, 4:20] = 1.0
    images = ((template + 0.2 * torch.rand(256, 1, 28, 28)).clamp(0, 1) * 255).to(torch.uint8)
    method = RotationPrediction(ConvEncoder(1, SMALL))
    history = pretrain(method, images, epochs=3, batch_size=64, lr=3e-3, progress=False, verbose=False, device="cpu")
    losses = history["train_loss"]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0] and losses[-1] < 0.8 * 1.3863  # well below chance, ln 4
    with pytest.raises(ValueError, match="batch_size"):
        pretrain(SimCLR(ConvEncoder(1, SMALL)), images[:10], batch_size=64, device="cpu")


def test_colorization_predicts_chroma_and_keeps_the_luma():
    from cvkit.data.augment import grayscale
    from cvkit.ssl.pretext import DensePretext, chroma_to_rgb, rgb_to_chroma

    x = torch.rand(3, 3, 16, 16)
    y, uv = rgb_to_chroma(x)
    torch.testing.assert_close(chroma_to_rgb(y, uv), x, atol=1e-5, rtol=0)
    model = DensePretext(ConvEncoder(1, SMALL), out_channels=3, task="colorization").eval()
    grey, rgb, _ = model.predict(x)
    torch.testing.assert_close(grey, grayscale(x))
    # the prediction only adds colour: away from clipping, its luma is the input's
    inside = (rgb > 0.01) & (rgb < 0.99)
    keep = inside.all(dim=1, keepdim=True)
    torch.testing.assert_close(grayscale(rgb)[keep], grey[keep], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="out_channels must be 3"):
        DensePretext(ConvEncoder(1, SMALL), out_channels=1, task="colorization")


def test_plot_embeddings_one_panel_per_encoder():
    from cvkit.viz import plot_embeddings

    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(30, 1, 28, 28, generator=g), torch.arange(30) % 3
    encoders = {"a": ConvEncoder(1, SMALL), "b": ConvEncoder(1, SMALL)}
    fig = plot_embeddings(encoders, images, labels, ["x", "y", "z"], method="pca")
    assert [ax.get_title() for ax in fig.axes] == ["a (pca)", "b (pca)"]
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 30  # every image is a point
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="as many"):
        plot_embeddings(encoders, images, labels[:5])

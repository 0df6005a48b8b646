"""The small SAM: positional encoding, prompt encoding, decoder outputs, prompts, loss, predictor,
the official-SAM adapter (with a stand-in for segment_anything), memory attention and the widget."""

import math
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvkit.sam import (
    MemoryBank,
    OfficialSamPredictor,
    OfficialSamUnavailable,
    PromptEncoder,
    RandomFourierEncoding,
    SmallSAM,
    SmallSamPredictor,
    load_official_sam,
    masks_to_boxes,
    memory_readout,
    moving_object_video,
    sam_loss,
    sample_points,
    simulate_prompts,
    track_with_memory,
    try_official_sam,
)
from cvkit.sam.model import SamOutput
from cvkit.sam.training import dice_loss, evaluate_prompts, instance_pairs
from cvkit.segmentation import mask_iou, paired_mask_iou
from tests.oracles import require_oracle


def test_random_fourier_encoding_hand_computed():
    pe = RandomFourierEncoding(4)
    pe.frequencies.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # (2, D/2)
    v = torch.tensor([[0.75, 0.25]])  # -> 2v - 1 = (0.5, -0.5)
    expected = [
        math.sin(2 * math.pi * 0.5),
        math.sin(2 * math.pi * -1.0),
        math.cos(2 * math.pi * 0.5),
        math.cos(2 * math.pi * -1.0),
    ]
    assert pe.encode(v)[0].tolist() == pytest.approx(expected, abs=1e-6)
    # pixels are normalised by (W, H): the point (30, 10) of a 40x20 image is v = (0.75, 0.5)
    torch.testing.assert_close(
        pe.forward_points(torch.tensor([[[30.0, 10.0]]]), (20, 40))[0], pe.encode(torch.tensor([[0.75, 0.5]]))
    )


def test_grid_encoding_is_the_point_encoding_of_cell_centres():
    pe = RandomFourierEncoding(16, seed=3)
    grid = pe.grid(4, 8)  # (D, h, w)
    assert grid.shape == (16, 4, 8)
    torch.testing.assert_close(grid[:, 2, 5], pe.encode(torch.tensor([(5 + 0.5) / 8, (2 + 0.5) / 4])))
    # nearby positions have more similar codes than distant ones
    a, b, c = pe.encode(torch.tensor([[0.5, 0.5], [0.52, 0.5], [0.95, 0.1]]))
    assert F.cosine_similarity(a, b, dim=0) > F.cosine_similarity(a, c, dim=0)


def test_prompt_encoder_tokens():
    enc = PromptEncoder(8, (32, 32), (8, 8))
    pts, lab = torch.tensor([[[3.0, 4.0], [10.0, 12.0]]]), torch.tensor([[1, 0]])
    sparse, dense = enc(pts, lab)
    assert sparse.shape == (1, 3, 8) and dense.shape == (1, 8, 8, 8)  # a padding point is appended without a box
    pe = enc.pe.forward_points(pts + 0.5, (32, 32))[0]
    torch.testing.assert_close(sparse[0, 0], pe[0] + enc.point_embeddings.weight[1])
    torch.testing.assert_close(sparse[0, 1], pe[1] + enc.point_embeddings.weight[0])
    torch.testing.assert_close(sparse[0, 2], enc.not_a_point.weight[0])
    sparse, _ = enc(pts, lab, torch.tensor([[1.0, 2.0, 20.0, 30.0]]))
    assert sparse.shape == (1, 4, 8)  # two points + two corners, no padding
    corners = (
        enc.pe.forward_points(torch.tensor([[[1.5, 2.5], [20.5, 30.5]]]), (32, 32))[0] + enc.corner_embeddings.weight
    )
    torch.testing.assert_close(sparse[0, 2:], corners)
    with pytest.raises(ValueError, match="at least one prompt"):
        enc()
    with pytest.raises(ValueError, match="labels"):
        enc(pts, torch.tensor([[1]]))


def test_small_sam_outputs_and_encode_once():
    torch.manual_seed(0)
    model = SmallSAM(32, embed_dim=16, encoder_width=8).eval()
    images = torch.rand(2, 3, 32, 32)
    out = model(images, points=torch.rand(2, 1, 2) * 32, labels=torch.ones(2, 1, dtype=torch.long))
    assert out.masks.shape == (2, 3, 32, 32) and out.iou.shape == (2, 3)
    single = model(images, boxes=torch.tensor([[2.0, 2, 20, 20]] * 2), multimask=False)
    assert single.masks.shape == (2, 1, 32, 32)
    # decoding many prompts against one embedding equals running the full model per prompt
    emb = model.encode(images[:1])
    boxes = torch.tensor([[2.0, 2, 20, 20], [5.0, 6, 30, 31]])
    many = model.decode(emb, boxes=boxes, multimask=False)
    for i in range(2):
        torch.testing.assert_close(
            many.masks[i], model(images[:1], boxes=boxes[i : i + 1], multimask=False).masks[0], atol=1e-5, rtol=1e-4
        )
    with pytest.raises(ValueError, match="32x32"):
        model.encode(torch.rand(1, 3, 64, 64))


def test_prompt_simulation():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 10:16, 0:2] = True
    masks[2, 7, 7] = True
    pts = sample_points(masks, g)
    for i in range(3):
        x, y = pts[i, 0].long().tolist()
        assert masks[i, y, x], "a sampled click must fall inside its mask"
    torch.testing.assert_close(masks_to_boxes(masks), torch.tensor([[3.0, 2, 9, 5], [0, 10, 2, 16], [7, 7, 8, 8]]))
    p = simulate_prompts(masks, "point+box", generator=g)
    assert p.points.shape == (3, 1, 2) and p.labels.tolist() == [[1], [1], [1]] and p.boxes.shape == (3, 4)
    assert bool((p.boxes[:, 0] < p.boxes[:, 2]).all() and (p.boxes[:, 1] < p.boxes[:, 3]).all())
    assert simulate_prompts(masks, "box", box_noise=0).points is None
    with pytest.raises(ValueError, match="choose one of"):
        simulate_prompts(masks, "scribble")
    with pytest.raises(ValueError, match="at least one pixel"):
        sample_points(torch.zeros(1, 4, 4, dtype=torch.bool))


def test_paired_mask_iou_matches_torchmetrics_and_the_pairwise_one():
    tm = require_oracle("torchmetrics")
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 2, 8, 8, generator=g) > 0.5, torch.rand(4, 8, 8, generator=g) > 0.5
    ious = paired_mask_iou(pred, target[:, None])  # SAM's K candidates against their image's target
    assert ious.shape == (4, 2)
    for b in range(4):
        for k in range(2):
            ref = tm.functional.classification.binary_jaccard_index(pred[b, k].long(), target[b].long())
            assert ious[b, k].item() == pytest.approx(ref.item(), abs=1e-6)
            assert ious[b, k].item() == pytest.approx(mask_iou(pred[b, k][None], target[b][None]).item(), abs=1e-6)
    # logits count as inside where positive
    assert torch.equal(paired_mask_iou(torch.where(pred, 3.0, -3.0), target[:, None]), ious)
    # one convention for two empty masks, in both functions and in torchmetrics: IoU 0
    empty = torch.zeros(1, 2, 2, dtype=torch.bool)
    ref = tm.functional.classification.binary_jaccard_index(empty[0].long(), empty[0].long()).item()
    assert paired_mask_iou(empty, empty).item() == mask_iou(empty, empty).item() == ref == 0.0
    with pytest.raises(ValueError, match="one size"):
        paired_mask_iou(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3))


def test_sam_loss_backpropagates_only_the_best_candidate():
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    good = torch.where(target, 8.0, -8.0)[:, None]  # (1, 1, 8, 8), almost exactly the target
    logits = torch.cat([torch.zeros(1, 1, 8, 8), good, -good], dim=1).requires_grad_()
    iou = torch.tensor([[0.3, 1.0, 0.0]], requires_grad=True)
    loss = sam_loss(SamOutput(logits, iou), target)
    assert loss.chosen.tolist() == [1]
    assert loss.iou_loss.item() == pytest.approx((0.3 - 0.0) ** 2 / 3, abs=1e-6)  # actual IoUs are 0, 1, 0
    loss.loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0
    # the dice loss of a perfect prediction is about 0, of the inverse about 1
    d = dice_loss(torch.cat([good, -good], 1), target)
    assert d[0, 0].item() < 0.01 and d[0, 1].item() > 0.95


def test_training_reduces_the_loss_and_evaluation_runs():
    from cvkit.data import ShapesDataset
    from cvkit.sam.training import sam_step

    torch.manual_seed(0)
    images, masks = instance_pairs(ShapesDataset(3, 32, seed=0))
    assert images.dtype == torch.uint8 and masks.dtype == torch.bool and images.shape[0] == masks.shape[0] == 7
    model = SmallSAM(32, embed_dim=16, encoder_width=8)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    step = sam_step(kinds=("box",), focal_weight=1.0, box_noise=0)
    batch = (images[:4], masks[:4])
    first = step(model, batch).loss.item()
    for _ in range(30):
        loss = step(model, batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first
    res = evaluate_prompts(model, images, masks)
    assert set(res) == {"point", "box", "point+box"}
    assert all(0 <= r["miou"] <= r["oracle_miou"] <= 1 for r in res.values())


def test_small_sam_predictor_scales_prompts_and_masks():
    model = SmallSAM(32, embed_dim=16, encoder_width=8).eval()
    pred = SmallSamPredictor(model)
    with pytest.raises(RuntimeError, match="set_image"):
        pred.predict(points=[[1, 1]])
    image = torch.rand(3, 48, 96)
    pred.set_image(image)
    p = pred.predict(points=[[50.0, 20.0]], labels=[1])
    assert p.masks.shape == (3, 48, 96) and p.masks.dtype == torch.bool
    assert bool((p.scores[:-1] >= p.scores[1:]).all()), "candidates are sorted by predicted IoU"
    # the same prompt given directly to the model, in its 32x32 frame
    small = F.interpolate(image[None], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    direct = model(
        small, points=torch.tensor([[[50.0 / 3, 20.0 * 32 / 48]]]), labels=torch.ones(1, 1, dtype=torch.long)
    )
    torch.testing.assert_close(p.scores, direct.iou[0].sort(descending=True).values)
    with pytest.raises(ValueError, match="inside"):
        pred.predict(points=[[200.0, 1.0]])
    with pytest.raises(ValueError, match="x1 < x2"):
        pred.predict(box=[10, 10, 5, 20])


class _FakeSamPredictor:
    """Stands in for segment_anything.SamPredictor: records what it was given, returns numpy like SAM."""

    def set_image(self, image):
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2] == 3
        self.h, self.w = image.shape[:2]

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output=True):
        self.seen = (point_coords, point_labels, box, multimask_output)
        k = 3 if multimask_output else 1
        masks = np.zeros((k, self.h, self.w), dtype=bool)
        masks[0, : self.h // 2] = True
        logits = np.where(masks, 5.0, -5.0).astype(np.float32)[:, ::2, ::2]  # SAM's low-res logits
        return masks, np.array([0.2, 0.9, 0.5][:k], dtype=np.float32), logits


def test_official_adapter_converts_formats():
    fake = _FakeSamPredictor()
    pred = OfficialSamPredictor(sam_predictor=fake)
    assert pred.backend == "segment_anything"
    pred.set_image(torch.rand(3, 10, 12))
    out = pred.predict(points=torch.tensor([[3.0, 4.0]]), labels=torch.tensor([1]), box=torch.tensor([1.0, 1, 8, 9]))
    coords, labels, box, multi = fake.seen
    assert coords.tolist() == [[3.0, 4.0]] and labels.tolist() == [1] and box.tolist() == [1.0, 1.0, 8.0, 9.0] and multi
    assert out.scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert out.masks.shape == (3, 10, 12) and out.logits.shape == (3, 10, 12)
    assert out.masks[2, :5].all()  # the first SAM mask (score 0.2) is last after sorting
    with pytest.raises(ValueError, match="exactly one"):
        OfficialSamPredictor()


def test_official_sam_missing_gives_a_clear_message(monkeypatch, capsys):
    for name in ("segment_anything", "transformers"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(
        OfficialSamUnavailable, match="segment_anything is not installed.*transformers is not installed"
    ):
        load_official_sam(device="cpu")
    assert try_official_sam(device="cpu") is None
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "official SAM unavailable" in line
    with pytest.raises(ValueError, match="choose one of"):
        load_official_sam(backend="onnx")


def test_official_sam_with_package_but_no_checkpoint(monkeypatch):
    fake = types.ModuleType("segment_anything")
    fake.SamPredictor, fake.sam_model_registry = object, {}
    monkeypatch.setitem(sys.modules, "segment_anything", fake)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(OfficialSamUnavailable, match="needs a checkpoint file"):
        load_official_sam(checkpoint="/nonexistent/sam_vit_b.pth", device="cpu")


def test_official_sam_offline_asks_only_the_local_cache(monkeypatch):
    """Offline, the hub client is told to stay local (it would otherwise retry for half a minute before failing)."""
    import socket

    calls = []

    class FakeSam:
        @staticmethod
        def from_pretrained(model_id, local_files_only=False):
            calls.append(local_files_only)
            raise OSError("not cached")

    fake = types.ModuleType("transformers")
    fake.SamModel = fake.SamProcessor = FakeSam
    monkeypatch.setitem(sys.modules, "transformers", fake)
    monkeypatch.setitem(sys.modules, "segment_anything", None)

    def refuse(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(OfficialSamUnavailable, match="no internet and no cached copy"):
        load_official_sam(device="cpu")
    assert calls == [True]


def test_memory_readout_matches_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(5, 8, generator=g), torch.randn(7, 8, generator=g), torch.rand(7, 1, generator=g)
    out, w = memory_readout(q, k, v, temperature=0.5)
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None], scale=1 / (0.5 * math.sqrt(8)))[0]
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    # a query identical to one memory key, with a sharp temperature, reads out that key's value
    out, _ = memory_readout(k[3:4] * 10, k * 10, v, temperature=0.01)
    assert out.item() == pytest.approx(v[3].item(), abs=1e-4)


def test_memory_bank_keeps_first_and_recent():
    bank = MemoryBank(max_frames=2)
    with pytest.raises(RuntimeError, match="empty"):
        bank.tokens()
    for i in range(5):
        bank.add(torch.full((3, 2, 2), float(i)), torch.full((2, 2), float(i) / 10))
    keys, values = bank.tokens()
    assert len(bank) == 3 and keys.shape == (12, 3) and values.shape == (12, 1)
    assert keys[:, 0].unique().tolist() == [0.0, 3.0, 4.0]  # the prompted frame and the two latest


def test_moving_object_video_and_tracking_run():
    from cvkit.data import ShapesDataset

    s = ShapesDataset(1, 32, min_shapes=2, max_shapes=2, seed=3)[0]
    frames, masks = moving_object_video(s.image, s.masks[0], frames=3, velocity=(2, 1))
    assert frames.shape == (3, 3, 32, 32) and masks.shape == (3, 32, 32)
    torch.testing.assert_close(masks[2], torch.roll(s.masks[0], (2, 4), dims=(0, 1)))
    torch.testing.assert_close(frames[0][:, s.masks[0]], s.image[:, s.masks[0]])  # the object's pixels are kept
    model = SmallSAM(32, embed_dim=16, encoder_width=8)
    res = track_with_memory(model, frames, s.boxes[0])
    assert res.masks.shape == (3, 32, 32) and res.readouts.shape == (3, 8, 8) and res.scores.shape == (3,)


def test_click_to_segment_static_figure():
    import matplotlib

    matplotlib.use("Agg")
    from cvkit.widgets import ClickToSegment, click_to_segment

    model = SmallSAM(32, embed_dim=16, encoder_width=8)
    image = torch.rand(3, 40, 40)
    fig = click_to_segment(SmallSamPredictor(model), image, points=[[10, 12]], box=[2, 2, 30, 30], static=True)
    assert len(fig.axes) == 4  # the prompt panel and three candidates
    assert "predicted IoU" in fig.axes[1].get_title()
    seg = fig.cvkit_segmenter
    seg.clear().click(5, 5, "box corner")
    assert seg.box is None
    seg.click(20, 25, "box corner")
    assert seg.box == (5.0, 5.0, 20.0, 25.0)
    seg.click(3, 3, "background point")
    assert seg.labels == [0]
    assert len(seg.figure().axes) == 4
    assert ClickToSegment(SmallSamPredictor(model), image).predict() is None
    with pytest.raises(ValueError, match="outside"):
        seg.add_point(100, 5)
    with pytest.raises(TypeError, match="set_image"):
        ClickToSegment(object(), image)


def test_click_to_segment_live_controls_update_the_prompts():
    import matplotlib

    matplotlib.use("Agg")
    from cvkit.widgets import ClickToSegment

    seg = ClickToSegment(SmallSamPredictor(SmallSAM(32, embed_dim=16, encoder_width=8)), torch.rand(3, 40, 40))
    ui = seg.show(static=False)  # the ipywidgets version, built without a front end
    _, mode, row, picture, candidates = ui.children
    x, y, add, clear = row.children
    empty_picture, empty_candidates = picture.value, candidates.value
    x.value, y.value = 12, 20
    add.click()
    assert seg.points == [(12.0, 20.0)] and seg.labels == [1]
    assert picture.value != empty_picture and candidates.value != empty_candidates  # redrawn with the prompt and masks
    mode.value = "box corner"
    add.click()
    x.value, y.value = 30, 35
    add.click()
    assert seg.box == (12.0, 20.0, 30.0, 35.0)
    clear.click()
    assert seg.points == [] and seg.box is None
    assert picture.value == empty_picture  # nothing drawn on the image again


def test_click_to_segment_takes_clicks_on_the_image_through_ipyevents():
    """A click event as ipyevents delivers it (image pixels, at the PNG's scale) adds a point at that pixel."""
    pytest.importorskip("ipyevents")
    from cvkit.widgets import ClickToSegment

    seg = ClickToSegment(SmallSamPredictor(SmallSAM(32, embed_dim=16, encoder_width=8)), torch.rand(3, 40, 40))
    ui = seg.show(static=False)
    scale = 9  # 360 px for a 40-pixel image
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(ui.children[3].value)).size == (40 * scale, 40 * scale)  # clicks map to pixels exactly
    ui.listener._handle_mouse_msg(None, {"event": "click", "dataX": 12 * scale, "dataY": 30 * scale}, None)
    assert seg.points == [(12.0, 30.0)] and seg.labels == [1]


def test_official_adapter_drives_a_tiny_transformers_sam():
    transformers = require_oracle("transformers")
    from transformers.models.sam.configuration_sam import SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig

    torch.manual_seed(0)
    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=128,
        patch_size=16,
        global_attn_indexes=[1],
        mlp_dim=64,
        window_size=4,
        num_pos_feats=8,
    )
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=128, patch_size=16, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16
    )
    model = transformers.SamModel(
        transformers.SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    ).eval()
    processor = transformers.SamProcessor(
        image_processor=transformers.SamImageProcessor(
            size={"longest_edge": 128}, pad_size={"height": 128, "width": 128}
        )
    )
    pred = OfficialSamPredictor(hf_model=model, hf_processor=processor)
    image = torch.rand(3, 60, 90)
    pred.set_image(image)
    out = pred.predict(points=[[30.0, 20.0]], labels=[1])
    assert out.masks.shape == (3, 60, 90) and out.scores.shape == (3,)
    # the same prompt through the processor and the model directly, as transformers' docs do it
    from cvkit.data import to_hwc_uint8

    inputs = processor(
        images=to_hwc_uint8(image), input_points=[[[[30.0, 20.0]]]], input_labels=[[[1]]], return_tensors="pt"
    )
    with torch.no_grad():
        ref = model(
            pixel_values=inputs["pixel_values"],
            input_points=inputs["input_points"].float(),
            input_labels=inputs["input_labels"],
        )
    torch.testing.assert_close(out.scores, ref.iou_scores[0, 0].sort(descending=True).values, atol=1e-5, rtol=1e-4)
    assert pred.predict(box=[5, 5, 50, 40], multimask=False).masks.shape == (1, 60, 90)

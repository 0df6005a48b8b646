"""Vision-language: tokenizer, beam search against brute force, BLEU on known values, captioners and CLIP."""

import itertools
import math

import pytest
import torch
import torch.nn as nn

from cvkit.vl import (
    CLIP,
    CaptionTokenizer,
    CaptionedImages,
    ShowAttendTell,
    TransformerCaptioner,
    attention_on_named_objects,
    beam_search,
    caption_loss,
    caption_metrics,
    captioned_shapes,
    dense_similarity,
    dense_zero_shot_accuracy,
    greedy_decode,
    pointing_game,
    zero_shot_classifier,
    zero_shot_predict,
)

PAD, BOS, EOS = 0, 1, 2


def test_tokenizer_round_trip_unknown_words_and_truncation():
    tok = CaptionTokenizer()
    caption = "a red circle , a blue square and a green triangle"
    ids = tok.encode([caption, "a red circle"])
    assert ids.shape == (2, 13) and ids.dtype == torch.long
    assert ids[0, 0] == tok.bos_id and ids[1, 4] == tok.eos_id and (ids[1, 5:] == tok.pad_id).all()
    assert tok.decode(ids) == [caption, "a red circle"]
    assert tok.encode("a photo of a red circle")[0, 2].item() == tok.unk_id
    cut = tok.encode(caption, max_len=5)
    assert cut.shape == (1, 5) and cut[0, -1] == tok.eos_id
    with pytest.raises(ValueError, match="must start with"):
        CaptionTokenizer(["a", "b"])


class MarkovLM(nn.Module):
    """A toy decoder whose next-word distribution depends only on the previous word (for brute-force checks)."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.table = log_probs  # (V, V): row = previous word

    def encode(self, images):
        return torch.zeros(images.shape[0], 1, 1)

    def init_state(self, memory):
        return {"dummy": torch.zeros(memory.shape[0], 1)}

    def step(self, prev, state, memory):
        return self.table[prev], state, None


def _table(rows: dict[int, dict[int, float]], v: int = 5) -> torch.Tensor:
    t = torch.full((v, v), float("-inf"))
    for prev, nxt in rows.items():
        for word, p in nxt.items():
            t[prev, word] = math.log(p)
    return t


def test_beam_search_finds_what_greedy_misses():
    # words: 3 = "a", 4 = "b". Greedy takes "a" (0.6) and ends with p = 0.6 * 0.3 * ...;
    # the best caption is "b <eos>" with p = 0.4 * 0.9 = 0.36.
    table = _table({BOS: {3: 0.6, 4: 0.4}, 3: {3: 0.4, 4: 0.3, EOS: 0.3}, 4: {EOS: 0.9, 3: 0.1}})
    model, images = MarkovLM(table), torch.zeros(1, 1, 1, 1)
    greedy = greedy_decode(model, images, max_len=6)
    assert greedy.tokens[0, 0].item() == 3
    beam = beam_search(model, images, beam_size=2, max_len=6)
    assert beam.tokens[0, :2].tolist() == [4, EOS]
    assert beam.scores[0].item() == pytest.approx(math.log(0.36), rel=1e-5)


def test_beam_search_with_a_wide_beam_equals_brute_force():
    torch.manual_seed(0)
    words = [EOS, 3, 4]
    for trial in range(5):
        table = torch.full((5, 5), float("-inf"))
        table[:, words] = torch.randn(5, 3).log_softmax(dim=1)
        best = float("-inf")
        for length in range(1, 4):  # every caption of up to 3 words: ends with <eos>, or is cut at max_len
            for seq in itertools.product(words, repeat=length):
                if EOS in seq[:-1] or (length < 3 and seq[-1] != EOS):
                    continue
                prev, score = BOS, 0.0
                for w in seq:
                    score += float(table[prev, w])
                    prev = w
                best = max(best, score)
        out = beam_search(MarkovLM(table), torch.zeros(2, 1, 1, 1), beam_size=9, max_len=3)
        assert out.scores.tolist() == pytest.approx([best, best], rel=1e-5), trial


def test_beam_size_one_is_greedy_decoding():
    torch.manual_seed(1)
    model = ShowAttendTell(
        len(CaptionTokenizer()), widths=(8, 16, 32), embed_dim=16, hidden_dim=32, attention_dim=16
    ).eval()
    images = torch.rand(3, 3, 32, 32)
    g = greedy_decode(model, images, max_len=8)
    b = beam_search(model, images, beam_size=1, max_len=8)
    assert torch.equal(g.tokens, b.tokens)
    torch.testing.assert_close(g.scores, b.scores)
    torch.testing.assert_close(g.attention, b.attention)
    assert g.attention.shape == (3, g.tokens.shape[1], 16)
    torch.testing.assert_close(g.attention.sum(-1), torch.ones(3, g.tokens.shape[1]))


def test_bleu_on_known_values():
    preds = ["the cat is on the mat"]
    refs = [["there is a cat on the mat", "a cat is on the mat"]]
    m = caption_metrics(preds, refs)
    assert m["bleu1"] == pytest.approx(5 / 6, abs=1e-4)  # 5 of 6 unigrams match ("the" clipped to once)
    assert m["bleu2"] == pytest.approx(math.sqrt(5 / 6 * 4 / 5), abs=1e-4)  # "the cat" is in no reference
    assert m["bleu4"] == pytest.approx(0.7598, abs=1e-4)  # torchmetrics' documented example
    assert m["exact"] == 0.0
    same = "a red circle left of a blue square"
    assert caption_metrics([same], [same]) == {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0, "exact": 1.0}
    assert (
        caption_metrics(["a red circle"], ["a red circle"])["bleu4"] == 0.0
    )  # BLEU-4 needs 4-grams: 3 words have none
    with pytest.raises(ValueError, match="predictions"):
        caption_metrics(["a"], [])


@pytest.mark.parametrize("attention", [True, False])
def test_show_attend_tell_shapes_and_attention(attention):
    tok = CaptionTokenizer()
    model = ShowAttendTell(
        len(tok), widths=(8, 16, 32), embed_dim=16, hidden_dim=32, attention_dim=16, attention=attention
    )
    tokens = tok.encode(["a red circle left of a blue square"] * 2)
    logp, att = model(torch.rand(2, 3, 48, 48), tokens[:, :-1])
    assert logp.shape == (2, tokens.shape[1] - 1, len(tok))
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, tokens.shape[1] - 1))
    if attention:
        assert att.shape == (2, tokens.shape[1] - 1, 36)
    else:
        assert att is None
    with pytest.raises(ValueError, match="int64"):
        model(torch.rand(2, 3, 48, 48), tokens.float())


def test_transformer_captioner_is_causal():
    torch.manual_seed(0)
    tok = CaptionTokenizer()
    model = TransformerCaptioner(len(tok), widths=(8, 16, 32), dim=32, heads=2, image_size=32).eval()
    images = torch.rand(1, 3, 32, 32)
    a = tok.encode("a red circle left of a blue square")[:, :-1]
    b = a.clone()
    b[0, 5:] = tok.index["green"]  # change the future
    la, _ = model(images, a)
    lb, _ = model(images, b)
    torch.testing.assert_close(la[:, :5], lb[:, :5])  # predictions up to position 4 ignore later words


def test_caption_loss_ignores_padding_and_regularises_attention():
    logp = torch.log_softmax(torch.randn(2, 4, 6), -1)
    targets = torch.tensor([[3, 4, 2, 0], [3, 2, 0, 0]])
    manual = -(logp[0, 0, 3] + logp[0, 1, 4] + logp[0, 2, 2] + logp[1, 0, 3] + logp[1, 1, 2]) / 5
    assert caption_loss(logp, targets).item() == pytest.approx(manual.item(), rel=1e-6)
    att = torch.full((2, 4, 3), 1 / 3)
    reg = caption_loss(logp, targets, attention=att, attention_weight=1.0) - caption_loss(logp, targets)
    expected = ((1 - torch.tensor([3 / 3, 2 / 3])) ** 2).mean()  # sum over valid words of 1/3 per region
    assert reg.item() == pytest.approx(expected.item(), rel=1e-5)


def test_captioned_shapes_pairs_images_with_their_captions():
    data = captioned_shapes(6, 32, seed=3)
    tok = CaptionTokenizer()
    assert data.images.shape == (6, 3, 32, 32) and data.images.dtype == torch.uint8
    assert tok.decode(data.tokens) == data.captions
    assert all(len(o) == c.count(" a ") + 1 or len(o) == 1 for o, c in zip(data.objects, data.captions))


def test_clip_text_features_ignore_padding_and_zero_shot_uses_prompt_means():
    torch.manual_seed(0)
    tok = CaptionTokenizer()
    model = CLIP(len(tok), widths=(8, 16, 32), embed_dim=16, text_width=16, text_heads=2, text_layers=1).eval()
    short = tok.encode("a red circle")
    padded = tok.encode("a red circle", max_len=10)
    torch.testing.assert_close(model.encode_text(short), model.encode_text(padded), atol=1e-5, rtol=1e-5)
    weights = zero_shot_classifier(model, tok, ["red circle", "blue square"], ["a {}", "{}"])
    manual = torch.nn.functional.normalize(model.encode_text(tok.encode(["a red circle", "red circle"])).mean(0), dim=0)
    torch.testing.assert_close(weights[0], manual, atol=1e-5, rtol=1e-5)
    images = torch.rand(3, 3, 32, 32)
    logits = zero_shot_predict(model, images, weights)
    assert logits.shape == (3, 2)
    torch.testing.assert_close(logits, model.scale() * model.encode_image(images) @ weights.T)
    with pytest.raises(ValueError, match="template"):
        zero_shot_classifier(model, tok, ["red circle"], ["no placeholder"])


def test_clip_image_embedding_is_the_mean_of_its_dense_features():
    torch.manual_seed(0)
    model = CLIP(
        len(CaptionTokenizer()), widths=(8, 16, 32), embed_dim=16, text_width=16, text_heads=2, text_layers=1
    ).eval()
    images = torch.rand(2, 3, 32, 32)
    dense = model.image_encoder.forward_dense(images)
    torch.testing.assert_close(model.image_encoder(images), dense.mean(dim=(2, 3)))
    text = torch.nn.functional.normalize(torch.randn(3, 16), dim=1)
    maps = dense_similarity(model, images, text, size=(32, 32))
    assert maps.shape == (2, 3, 32, 32) and maps.abs().max() <= 1 + 1e-5
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == 100.0  # clamped as in CLIP


def test_pointing_game_and_dense_zero_shot_accuracy_on_a_hand_built_case():
    from types import SimpleNamespace

    class HalfAndHalf(nn.Module):  # region features (1, 0) on columns 0-3 and (0, 1) on columns 4-7 of a 4 x 8 image
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))  # gives the model a device

        def forward_dense(self, images):
            dense = torch.zeros(len(images), 2, 4, 8)
            dense[:, 0, :, :4] = 1.0
            dense[:, 1, :, 4:] = 1.0
            return dense

    classes = ["red circle", "blue square"]
    masks = torch.zeros(2, 4, 8, dtype=torch.bool)
    masks[0, :, 2:6] = True  # the red circle: columns 2-5, half of them where class 0 wins
    masks[1, :, 4:7] = True  # the blue square: columns 4-6, all where class 1 wins
    data = SimpleNamespace(
        images=torch.zeros(1, 3, 4, 8), objects=[[("red", "circle"), ("blue", "square")]], masks=[masks]
    )
    model, embeddings = nn.Module(), torch.eye(2)
    model.image_encoder = HalfAndHalf()
    # class 0's map peaks first at (0, 0), off the circle; class 1's at (0, 4), on the square
    assert pointing_game(model, data, embeddings, classes) == (0.5, (4 / 8 + 3 / 8) / 2)
    assert dense_zero_shot_accuracy(model, data, embeddings, classes) == ((0.5 + 1.0) / 2, 0.5)
    with pytest.raises(ValueError, match="'green circle' is not among the classes"):
        dense_zero_shot_accuracy(
            model,
            SimpleNamespace(images=data.images, objects=[[("green", "circle")]], masks=[masks[:1]]),
            embeddings,
            classes,
        )


def test_transformer_captioner_reports_cross_attention_per_word():
    torch.manual_seed(0)
    model = TransformerCaptioner(len(CaptionTokenizer()), widths=(8, 16, 32), dim=32, heads=2, image_size=32).eval()
    out = greedy_decode(model, torch.rand(2, 3, 32, 32), max_len=5)
    assert out.attention.shape == (2, out.tokens.shape[1], 16)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, out.tokens.shape[1]))
    assert not model.decoder[-1].cross_attn.keep_attention  # recording is switched off again


def _two_object_image():
    """A 4x4 image whose 2x2 grid of regions holds a red circle top-left and a blue square bottom-right."""
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, :2, :2] = True
    masks[1, 2:, 2:] = True
    return CaptionedImages(
        images=torch.zeros(1, 3, 4, 4, dtype=torch.uint8),
        tokens=torch.zeros(1, 9, dtype=torch.long),
        captions=["a red circle left of a blue square"],
        objects=[[("red", "circle"), ("blue", "square")]],
        boxes=[torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]])],
        masks=[masks],
    )


def test_attention_on_named_objects_hand_computed():
    data = _two_object_image()
    attention = torch.full((1, 9, 4), 0.25)  # regions: top-left, top-right, bottom-left, bottom-right
    attention[0, 2] = torch.tensor([0.5, 0.3, 0.2, 0.0])  # "circle": half on the circle, none on the square
    attention[0, 7] = torch.tensor([0.1, 0.1, 0.1, 0.7])  # "square": 0.7 on the square, 0.1 on the circle
    out = attention_on_named_objects(attention, data.captions, data)
    assert out["words"] == 2 and out["hit_rate"] == 1.0
    assert out["named"] == pytest.approx((0.5 + 0.7) / 2)
    assert out["other"] == pytest.approx((0.0 + 0.1) / 2)
    assert out["area"] == pytest.approx(0.25)
    # a wrong noun is not scored: "square" for the circle is skipped, the second noun still names object 1
    wrong = attention_on_named_objects(attention, ["a red square left of a blue square"], data)
    assert wrong["words"] == 1 and wrong["named"] == pytest.approx(0.7) and wrong["other"] == pytest.approx(0.1)


def test_attention_on_named_objects_rejects_bad_input():
    data = _two_object_image()
    with pytest.raises(TypeError, match="attention"):
        attention_on_named_objects(None, data.captions, data)
    with pytest.raises(ValueError, match="square grid"):
        attention_on_named_objects(torch.full((1, 9, 3), 1 / 3), data.captions, data)
    with pytest.raises(ValueError, match="2 captions"):
        attention_on_named_objects(torch.full((1, 9, 4), 0.25), data.captions * 2, data)
    with pytest.raises(ValueError, match="nothing to score"):
        attention_on_named_objects(torch.full((1, 9, 4), 0.25), ["a red triangle left of a blue circle"], data)
    with pytest.raises(ValueError, match="does not tile"):  # a 3x3 grid of regions on a 4x4 image
        attention_on_named_objects(torch.full((1, 9, 9), 1 / 9), data.captions, data)

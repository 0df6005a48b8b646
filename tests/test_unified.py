"""Florence-2-style unified tasks: location tokens round trip, the sequences by hand, answer-only loss, generation."""

import torch

from cvkit.data import ShapesDataset
from cvkit.vl import TransformerCaptioner
from cvkit.vl.tokenizer import CaptionTokenizer
from cvkit.vl.unified import (
    dequantize,
    parse_locations,
    quantize,
    task_examples,
    unified_dataset,
    unified_generate,
    unified_loss,
    unified_vocab,
)


def test_location_tokens_round_trip_within_half_a_bin():
    x = torch.tensor([0.0, 7.9, 31.0, 64.0])
    q = quantize(x, 64, 32)
    assert q.tolist() == [0, 3, 15, 31]
    assert ((dequantize(q, 64, 32) - x).abs() <= 2.0).all()  # bins of 2 pixels: at most one bin off at the edge
    names, boxes = parse_locations("circle <loc_1> <loc_2> <loc_3> <loc_4> square <loc_0> <loc_0>", 64, 32)
    assert names == ["circle"] and boxes.shape == (1, 4)
    torch.testing.assert_close(boxes[0], torch.tensor([3.0, 5.0, 7.0, 9.0]))


def test_examples_by_hand():
    s = ShapesDataset(n=3, image_size=48, seed=0)[0]
    ex = dict(task_examples(s, bins=16, generator=torch.Generator().manual_seed(0)))
    assert ex["<caption>"] == s.caption
    assert len(ex["<od>"].split()) == 5 * s.num_objects
    grounds = [p for p in ex if p.startswith("<ground>")]
    assert len(grounds) <= 1


def test_loss_is_on_the_answer_only_and_generation_runs():
    ds = ShapesDataset(n=4, image_size=48, seed=0)
    data = unified_dataset(ds, bins=16)
    tok = CaptionTokenizer(unified_vocab(16))
    assert (data.tokens != tok.unk_id).all()
    model = TransformerCaptioner(
        len(tok), widths=(8, 16, 16), dim=16, heads=2, max_len=data.tokens.shape[1], image_size=48
    )
    loss = unified_loss(model, data.images, data.tokens, data.answer_start)
    loss.backward()
    # by hand: the mean negative log-probability of the answer tokens (from <sep>'s successor to <eos>), nothing else
    model.eval()
    logp, _ = model(data.images, data.tokens[:, :-1])
    terms = []
    for i in range(len(data)):
        for pos in range(int(data.answer_start[i]), data.tokens.shape[1]):
            word = int(data.tokens[i, pos])
            if word != tok.pad_id:
                terms.append(-logp[i, pos - 1, word])
    torch.testing.assert_close(
        unified_loss(model, data.images, data.tokens, data.answer_start), torch.stack(terms).mean()
    )
    out = unified_generate(model, data.images[:3], data.prompts[:3], tok, max_new=4)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)

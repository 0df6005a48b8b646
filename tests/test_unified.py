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


def test_score_tasks_by_hand():
    from cvkit.vl.unified import score_tasks

    shapes = ShapesDataset(n=12, image_size=48, seed=0)
    data = unified_dataset(shapes, bins=16, seed=0)
    # the references themselves: every caption and grounding right; detection only loses what 3-pixel bins lose
    perfect = score_tasks(data.answers, data, shapes, bins=16)
    assert perfect["caption_exact"] == 1.0 and perfect["grounding_hits"] == 1.0
    assert perfect["detection_ap50"] > 0.95
    # silence: nothing right
    empty = score_tasks([""] * len(data), data, shapes, bins=16)
    assert {k: v for k, v in empty.items() if k != "grounding_leftmost_hits"} == dict.fromkeys(
        ["caption_exact", "detection_ap50", "detection_ap", "grounding_hits"], 0.0
    )
    assert (
        0.3 < empty["grounding_leftmost_hits"] < 1.0
    )  # the phrase-blind answer is right where the phrase names the left-most object
    # each answer moved to another prompt of its task: wrong captions, boxes of other images
    moved = list(data.answers)
    for task in range(3):
        idx = [i for i in range(len(data)) if int(data.tasks[i]) == task]
        for a, b in zip(idx, idx[1:] + idx[:1]):
            moved[a] = data.answers[b]
    shifted = score_tasks(moved, data, shapes, bins=16)
    assert shifted["caption_exact"] < 0.5 and shifted["detection_ap50"] < 0.5
    # a grounding answer with one box 6 bins to the right: IoU 0 with its reference
    g = next(i for i in range(len(data)) if int(data.tasks[i]) == 2)
    one_off = list(data.answers)
    one_off[g] = " ".join(
        f"<loc_{min(int(w[5:-1]) + 6, 15)}>" if k % 2 == 0 else w for k, w in enumerate(data.answers[g].split())
    )
    grounds = sum(int(t) == 2 for t in data.tasks)
    assert score_tasks(one_off, data, shapes, bins=16)["grounding_hits"] == (grounds - 1) / grounds


def test_score_tasks_refuses_mismatched_inputs():
    import pytest

    from cvkit.vl.unified import score_tasks

    shapes = ShapesDataset(n=3, image_size=48, seed=0)
    data = unified_dataset(shapes, bins=16)
    with pytest.raises(ValueError, match="predictions"):
        score_tasks(data.answers[:-1], data, shapes, bins=16)
    with pytest.raises(ValueError, match="images"):
        score_tasks(data.answers, data, ShapesDataset(n=4, image_size=48, seed=0), bins=16)


def test_score_tasks_counts_inverted_generated_boxes_as_misses():
    # a model can emit x2 < x1: such a box is a false positive and a grounding miss, not a crash
    from cvkit.vl.unified import score_tasks

    shapes = ShapesDataset(n=6, image_size=48, seed=0)
    data = unified_dataset(shapes, bins=16, seed=0)
    answers = list(data.answers)
    g = next(i for i in range(len(data)) if int(data.tasks[i]) == 2)
    answers[g] = "<loc_9> <loc_9> <loc_2> <loc_2>"  # inverted
    od = next(i for i in range(len(data)) if int(data.tasks[i]) == 1)
    answers[od] += " circle <loc_12> <loc_12> <loc_3> <loc_3>"  # one extra, inverted detection
    s = score_tasks(answers, data, shapes, bins=16)
    grounds = sum(int(t) == 2 for t in data.tasks)
    assert s["grounding_hits"] == (grounds - 1) / grounds
    assert s["detection_ap50"] <= score_tasks(data.answers, data, shapes, bins=16)["detection_ap50"]


def test_each_image_is_stored_once_and_pairs_read_the_same_batches():
    shapes = ShapesDataset(n=10, image_size=48, seed=0)
    data = unified_dataset(shapes, bins=16, seed=0)
    assert data.source_images.shape == (10, 3, 48, 48) and len(data) > 20  # 2-3 pairs per image, one copy each
    for k in (0, 5, len(data) - 1):
        torch.testing.assert_close(data.images[k], shapes[int(data.image_index[k])].image, rtol=0, atol=0)
    # the pair dataset gives exactly the batches a TensorDataset of per-pair copies gives, in the same shuffled order
    copies = torch.utils.data.TensorDataset(data.images, data.tokens, data.answer_start)
    batches = [
        list(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(3)))
        for ds in (copies, data.pair_dataset())
    ]
    assert len(batches[0]) == len(batches[1])
    for a, b in zip(*batches):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=0)

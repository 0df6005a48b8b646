"""VQA on shapes: questions answered from the ground truth by hand, the tokenizer covers them, the net's shapes."""

import torch

from cvkit.data import ShapesDataset
from cvkit.vl.tokenizer import CaptionTokenizer
from cvkit.vl.vqa import ANSWERS, QUESTION_VOCAB, VQANet, questions_for, vqa_accuracy, vqa_shapes


def test_questions_by_hand():
    # a red circle, a blue square, a red triangle
    qa = {q: (a, k) for q, a, k in questions_for([0, 1, 2], [0, 2, 0], torch.Generator().manual_seed(0))}
    assert qa["what colour is the circle ?"] == ("red", "colour")
    assert qa["what colour is the square ?"] == ("blue", "colour")
    assert qa["what shape is the blue object ?"] == ("square", "shape")
    assert "what shape is the red object ?" not in qa  # two red objects: ambiguous, not asked
    counts = [(q, a) for q, (a, k) in qa.items() if k == "count"]
    assert len(counts) == 1 and counts[0][1] == "one"
    # two circles: the colour question about "the circle" is not asked
    two = questions_for([0, 0], [1, 2], torch.Generator().manual_seed(0))
    assert not any(q.startswith("what colour is the circle") for q, _, _ in two)


def test_dataset_answers_match_the_ground_truth_and_tokenize_without_unknowns():
    ds = ShapesDataset(n=20, image_size=32, seed=0)
    data = vqa_shapes(ds, seed=0)
    tok = CaptionTokenizer(QUESTION_VOCAB)
    assert (data.questions != tok.unk_id).all()
    for text, answer in zip(data.texts, data.answers.tolist()):
        if text.startswith("is there"):
            assert ANSWERS[answer] in ("yes", "no")
    yes = sum(ANSWERS[a] == "yes" for t, a in zip(data.texts, data.answers.tolist()) if t.startswith("is there"))
    assert 0 < yes < 20


def test_net_and_blind_baseline_shapes():
    ds = ShapesDataset(n=4, image_size=32, seed=0)
    data = vqa_shapes(ds)
    for use_image in (True, False):
        net = VQANet(widths=(8, 16, 16), dim=16, use_image=use_image)
        out = net(data.images, data.questions)
        assert out.shape == (len(data), len(ANSWERS))
        assert (net.last_attention is not None) == use_image
        acc = vqa_accuracy(net, data)
        assert set(acc) <= {"all", "colour", "shape", "count", "exists"} and 0 <= acc["all"] <= 1
    assert net.last_attention is None

"""Every registered model builds, runs, produces the declared shape, has no NaN, and gets gradients everywhere."""

import pytest
import torch

from cvkit.models import create_model, get_spec, list_models


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from _tensors(v)


def test_registry_is_not_empty():
    assert len(list_models()) > 0, "no model registered: cvkit.models must import its model modules"


@pytest.mark.parametrize("name", list_models())
def test_model_smoke(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    model = create_model(name, **spec.smoke_kwargs)
    model.train()
    inputs = spec.inputs(2, torch.Generator().manual_seed(0))
    out = model(*inputs)
    outs = [t for t in _tensors(out) if t.is_floating_point()]
    assert outs, f"{name}: forward returned no floating tensors"
    for t in outs:
        assert torch.isfinite(t).all(), f"{name}: output has NaN/inf"
    if spec.output_shape is not None:
        first = outs[0]
        assert tuple(first.shape) == (2, *spec.output_shape), (
            f"{name}: expected {(2, *spec.output_shape)}, got {tuple(first.shape)}"
        )
    loss = spec.reduce(out) if spec.reduce is not None else sum(t.float().sum() for t in outs)
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None and not any(n.startswith(u) for u in spec.unused_parameters)
    ]
    assert not missing, f"{name}: no gradient reaches {missing[:5]}"
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"{name}: gradient of {n} has NaN/inf"


def test_model_factory_builds_fresh_models():
    from cvkit.models import model_factory

    make = model_factory("conv_encoder", widths=(4, 8))
    a, b = make(), make()
    assert a is not b and type(a).__name__ == "ConvEncoder" and a.feature_dim == 8
    assert not torch.equal(next(a.parameters()), next(b.parameters()))  # independent initialisations
    assert make.__name__ == "make_conv_encoder"
    with pytest.raises(KeyError, match="unknown model"):
        model_factory("no_such_model")


def test_detect_with_pretrained_checks_the_image_before_any_download():
    from cvkit.models.pretrained import detect_with_pretrained

    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        detect_with_pretrained("fasterrcnn_resnet50_fpn", torch.rand(1, 3, 8, 8))

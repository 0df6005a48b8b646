"""The CNN pictures draw what they claim: boxes where the field is, one panel per filter, heatmaps in [0, 1]."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cvkit.models import create_model  # noqa: E402
from cvkit.conv import receptive_fields  # noqa: E402
from cvkit.viz import (  # noqa: E402
    draw_receptive_field,
    overlay_heatmap,
    plot_activations,
    plot_receptive_field_growth,
    show_feature_maps,
    show_filters,
    show_heatmaps,
    show_stage_features,
)
from cvkit.widgets import feature_map_explorer, receptive_field_explorer  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_draw_receptive_field_draws_the_clipped_box():
    model = create_model("vgg_mini")
    table = receptive_fields(model, (1, 28, 28))
    image = torch.rand(1, 28, 28)
    ax = draw_receptive_field(image, table["features.9"], (0, 0))
    solid = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_linestyle() in ("-", "solid")]
    x1, y1, x2, y2 = table["features.9"].box(0, 0, clip=(28, 28))
    assert len(solid) == 1 and solid[0].get_xy() == (x1 - 0.5, y1 - 0.5) and solid[0].get_width() == x2 - x1
    with pytest.raises(ValueError, match="global"):
        draw_receptive_field(image, table["classifier.6"])


def test_overlay_heatmap_range_and_resizing():
    image = torch.rand(3, 16, 16)
    out = overlay_heatmap(image, torch.rand(4, 4), alpha=0.5)
    assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 1
    assert np.allclose(overlay_heatmap(image, torch.rand(16, 16), alpha=0.0), image.permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(image, torch.rand(4, 4), alpha=2)


def test_grids_have_one_panel_per_item():
    fig = show_filters(torch.randn(10, 3, 5, 5), ncols=5)
    assert sum(1 for ax in fig.axes if ax.images) == 10
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)  # RGB filters in colour
    fig = show_feature_maps(torch.randn(1, 20, 7, 7), n=12)
    assert sum(1 for ax in fig.axes if ax.images) == 12
    fig = show_stage_features({"a": torch.rand(1, 8, 14, 14), "b": torch.rand(1, 16, 7, 7)}, n=4)
    assert len(fig.axes) == 8
    fig = show_heatmaps(torch.rand(3, 8, 8), {"saliency": torch.rand(8, 8), "Grad-CAM": torch.rand(2, 2)})
    assert len(fig.axes) == 3
    fig = plot_activations(["relu", "tanh"])
    assert len(fig.axes[1].lines) == 2 + 2  # two derivatives and the two axis lines
    with pytest.raises(ValueError):
        show_filters(torch.randn(3, 3, 3))


def test_growth_plot_and_static_explorers():
    model = create_model("resnet_cifar")
    table = receptive_fields(model, (3, 32, 32))
    fig = plot_receptive_field_growth(table, ["stem", "layer1", "layer2", "layer3"], image_size=32)
    sizes = fig.axes[0].lines[0].get_ydata()
    assert list(sizes) == [table[n].size[0] for n in ("stem", "layer1", "layer2", "layer3")]
    image = torch.rand(3, 32, 32)
    fig = receptive_field_explorer(model, image, ["layer1", "layer2"], static=True)
    assert "layer2" in fig.axes[0].get_title()
    fig = feature_map_explorer(model, image, ["layer1"], n=8, static=True)
    assert sum(1 for ax in fig.axes if ax.images) == 8
    with pytest.raises(ValueError, match="at least one layer"):
        receptive_field_explorer(model, image, [])

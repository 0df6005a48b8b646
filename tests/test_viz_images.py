"""show_images lays out a titled grid where every title sits above its own image and clear of the row above."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cvkit.viz import show_images  # noqa: E402


@pytest.mark.parametrize("ncols, size", [(7, 1.7), (10, 1.25), (4, 2.0)])
def test_titles_do_not_overlap_the_images_of_the_row_above(ncols, size):
    # lecture 12's schedule figure (7 columns, 1.7 in) once drew its second row's titles over its own images
    images = torch.rand(2 * ncols, 3, 32, 32)
    fig = show_images(images, titles=[f"cosine, t={i}" for i in range(2 * ncols)], ncols=ncols, size=size, suptitle="q")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    for i, ax in enumerate(axes):
        title = ax.title.get_window_extent(renderer)
        image = ax.images[0].get_window_extent(renderer)
        assert title.y0 >= image.y1 - 1, (
            f"panel {i}: its title starts at {title.y0:.1f} px, inside its image (top {image.y1:.1f})"
        )
        if i >= ncols:
            above = axes[i - ncols].images[0].get_window_extent(renderer)
            assert title.y1 <= above.y0 + 1, (
                f"panel {i}: its title reaches {title.y1:.1f} px, into the image above ({above.y0:.1f})"
            )
    plt.close(fig)

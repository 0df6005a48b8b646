"""Pictures for the convolution lecture: convolution arithmetic and filtered photos (receptive fields: :mod:`cvkit.viz.receptive_field`)."""

from __future__ import annotations

from typing import Mapping

import torch

from cvkit.conv.ops import conv_output_size
from cvkit.viz.images import to_display


def draw_conv_arithmetic(
    input_size: int = 5,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_index: int = 0,
    ax=None,
):
    """Draw one output pixel's window on the padded input, next to the output grid (after Dumoulin & Visin 2016).

    Blue cells are the input, grey cells the zero padding; orange cells are the input pixels the
    highlighted output pixel (row-major ``output_index``) reads; the output grid is on the right with
    its size from :func:`cvkit.conv.ops.conv_output_size` in the title.

    Args:
        input_size: W1 (square input) in pixels.
        kernel_size, stride, padding, dilation: the layer's hyperparameters.
        output_index: which output pixel to highlight, row-major; wrapped into range.
        ax: two matplotlib axes, or ``None`` for a new figure.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: hyperparameters for which the kernel does not fit (message from ``conv_output_size``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    if ax is None:
        fig, ax = plt.subplots(
            1, 2, figsize=(9, 4.5), gridspec_kw={"width_ratios": [input_size + 2 * padding, max(out, 1)]}
        )
    else:
        fig = ax[0].figure
    index = output_index % (out * out)
    oi, oj = divmod(index, out)
    full = input_size + 2 * padding
    reads = {
        (oi * stride + u * dilation, oj * stride + v * dilation) for u in range(kernel_size) for v in range(kernel_size)
    }
    a = ax[0]
    for r in range(full):
        for c in range(full):
            is_pad = not (padding <= r < padding + input_size and padding <= c < padding + input_size)
            face = "#ff9f43" if (r, c) in reads else ("#e0e0e0" if is_pad else "#74b9ff")
            a.add_patch(Rectangle((c, full - 1 - r), 1, 1, facecolor=face, edgecolor="white", linewidth=1.5))
    a.set_xlim(0, full)
    a.set_ylim(0, full)
    a.set_aspect("equal")
    a.axis("off")
    a.set_title(
        f"input {input_size}x{input_size}, padding {padding}\nkernel {kernel_size}, stride {stride}, dilation {dilation}",
        fontsize=10,
    )
    b = ax[1]
    for r in range(out):
        for c in range(out):
            face = "#ff9f43" if (r, c) == (oi, oj) else "#55efc4"
            b.add_patch(Rectangle((c, out - 1 - r), 1, 1, facecolor=face, edgecolor="white", linewidth=1.5))
    b.set_xlim(0, max(out, 1))
    b.set_ylim(0, max(out, 1))
    b.set_aspect("equal")
    b.axis("off")
    b.set_title(
        f"output {out}x{out}\n⌊({input_size} + 2·{padding} − {dilation}·({kernel_size} − 1) − 1) / {stride}⌋ + 1 = {out}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def show_filtered(image: torch.Tensor, kernels: Mapping[str, torch.Tensor], size: float = 3.0):
    """Convolve a grey photo with named 2-D kernels and show each response next to the photo.

    Args:
        image: (1, H, W) or (H, W) float in [0, 1].
        kernels: ``{"name": (F, F) float kernel}``; responses are min-max scaled for display
            (absolute value for kernels that sum to zero, such as Sobel, so both edge signs show).
        size: inches per panel.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: the image is not one channel.
    """
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    grey = image if image.dim() == 3 else image[None]
    if grey.shape[0] != 1:
        raise ValueError(
            f"expected a one-channel image (1, H, W), got {tuple(image.shape)}; use load_photo(..., grey=True)"
        )
    fig, axes = plt.subplots(1, len(kernels) + 1, figsize=(size * (len(kernels) + 1), size))
    axes[0].imshow(to_display(grey), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input")
    for a, (name, k) in zip(axes[1:], kernels.items()):
        k = k.float()
        response = F.conv2d(grey[None], k[None, None], padding=k.shape[-1] // 2)[0, 0]
        if abs(float(k.sum())) < 1e-6:
            response = response.abs()
        lo, hi = torch.quantile(response, 0.01), torch.quantile(response, 0.99)
        a.imshow(((response - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(name)
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    return fig

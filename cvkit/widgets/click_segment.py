"""Click-to-segment: prompt a segmentation model with points and boxes and see its mask candidates.

Works with anything that has the predictor interface (:class:`cvkit.sam.predictor.PromptablePredictor`):
the small SAM trained in lecture 13 or Meta's SAM through :mod:`cvkit.sam.official`.

* In a live notebook, :meth:`ClickToSegment.show` displays the picture with controls: choose
  foreground point, background point or box corner, then click on the image (clicks reach Python
  through ``ipyevents``, preinstalled on Colab; ``pip install ipyevents`` elsewhere) or place the point
  with the x/y sliders and press "add" (what works without ipyevents). The picture shows the best mask
  on the image; below it, every candidate with its predicted IoU. ipywidgets 7 and 8 both work.
* Headless (papermill, CI; :func:`cvkit.runtime.headless`) it draws one static figure for the
  prompts given in code, so an executed notebook still shows the result and never waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from cvkit.runtime import headless
from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.images import to_display

Mode = Literal["foreground point", "background point", "box corner"]
MODES = ("foreground point", "background point", "box corner")


def draw_prompts(ax, points=None, labels=None, box=None) -> None:
    """Draw points (green star: foreground, red x: background) and a box (dashed) on an axis.

    Args:
        points: (N, 2) xy pixels. labels: (N,) 1/0. box: (4,) xyxy pixels.
    """
    from matplotlib.patches import Rectangle

    if points is not None and len(points):
        pts = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)  # (N, 2)
        lab = torch.ones(len(pts)) if labels is None else torch.as_tensor(labels).reshape(-1)
        fg, bg = pts[lab == 1], pts[lab == 0]
        ax.scatter(fg[:, 0], fg[:, 1], marker="*", s=160, c="lime", edgecolors="black", linewidths=0.8, zorder=3)
        ax.scatter(bg[:, 0], bg[:, 1], marker="X", s=90, c="red", edgecolors="black", linewidths=0.8, zorder=3)
    if box is not None:
        x1, y1, x2, y2 = torch.as_tensor(box, dtype=torch.float32).tolist()
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="yellow", linewidth=2, linestyle="--", zorder=3)
        )


def overlay_binary(image: torch.Tensor, mask: torch.Tensor, colour=PALETTE[0], alpha: float = 0.55) -> np.ndarray:
    """(3, H, W) image in [0, 1] with a (H, W) bool mask painted in ``colour``: (H, W, 3) float array."""
    base = to_display(image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    m = torch.as_tensor(mask).bool().cpu().numpy()
    out = base.copy()
    out[m] = (1 - alpha) * base[m] + alpha * np.asarray(colour)
    return out


def draw_candidates(
    image: torch.Tensor, prediction, points=None, labels=None, box=None, title: str = "", size: float = 2.6
):
    """The image with its prompts, then each mask candidate with its predicted IoU: one row of panels.

    Args:
        image: (3, H, W) float in [0, 1]. prediction: a :class:`cvkit.sam.predictor.Prediction` (or ``None``: prompts only).
        points, labels, box: the prompt (see :func:`draw_prompts`). title: figure title.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    k = 0 if prediction is None else len(prediction.masks)
    fig, axes = plt.subplots(1, 1 + k, figsize=(size * (1 + k), size + 0.4), squeeze=False)
    axes = axes[0]
    axes[0].imshow(to_display(image))
    draw_prompts(axes[0], points, labels, box)
    axes[0].set_title("prompt", fontsize=9)
    for i in range(k):
        axes[i + 1].imshow(overlay_binary(image, prediction.masks[i], PALETTE[i % len(PALETTE)]))
        draw_prompts(axes[i + 1], points, labels, box)
        axes[i + 1].set_title(f"mask {i + 1}: predicted IoU {float(prediction.scores[i]):.2f}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class ClickToSegment:
    """Interactive point/box prompting of a predictor on one image.

    Args:
        predictor: has ``set_image(image)`` and ``predict(points, labels, box, multimask) -> Prediction``.
        image: (3, H, W) float in [0, 1].
        multimask: ask for several candidates (SAM's answer to ambiguous prompts).

    The prompt state (``points``, ``labels``, ``box``) can be changed from code with
    :meth:`add_point`, :meth:`set_box` and :meth:`clear`, and drawn with :meth:`figure`.
    """

    def __init__(self, predictor, image: torch.Tensor, multimask: bool = True) -> None:
        if not hasattr(predictor, "set_image") or not hasattr(predictor, "predict"):
            raise TypeError(
                f"predictor needs set_image() and predict() (see cvkit.sam.predictor), got {type(predictor).__name__}"
            )
        self.predictor = predictor
        self.image = image
        self.multimask = multimask
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []
        self.box: tuple[float, float, float, float] | None = None
        self._corner: tuple[float, float] | None = None
        predictor.set_image(image)

    @property
    def height(self) -> int:
        return int(self.image.shape[1])

    @property
    def width(self) -> int:
        return int(self.image.shape[2])

    def add_point(self, x: float, y: float, label: int = 1) -> ClickToSegment:
        """Add a click at pixel (x, y): label 1 foreground, 0 background.

        Raises:
            ValueError: a label other than 0/1 or a point outside the image.
        """
        if label not in (0, 1):
            raise ValueError(f"label must be 1 (foreground) or 0 (background), got {label}")
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            raise ValueError(f"point ({x}, {y}) is outside the {self.width}x{self.height} image")
        self.points.append((float(x), float(y)))
        self.labels.append(int(label))
        return self

    def set_box(self, box: Sequence[float] | None) -> ClickToSegment:
        """Set (or with ``None`` remove) the box prompt, xyxy pixels (corners in any order)."""
        if box is None:
            self.box = None
        else:
            x1, y1, x2, y2 = (float(v) for v in box)
            self.box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        return self

    def click(self, x: float, y: float, mode: Mode = "foreground point") -> None:
        """What one click does in ``mode``; two clicks in "box corner" mode make a box."""
        if mode == "foreground point":
            self.add_point(x, y, 1)
        elif mode == "background point":
            self.add_point(x, y, 0)
        elif mode == "box corner":
            if self._corner is None:
                self._corner = (x, y)
            else:
                self.set_box((*self._corner, x, y))
                self._corner = None
        else:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")

    def clear(self) -> ClickToSegment:
        """Remove every prompt."""
        self.points, self.labels, self.box, self._corner = [], [], None, None
        return self

    def predict(self):
        """The predictor's answer for the current prompts (``None`` when there is no prompt yet)."""
        if not self.points and self.box is None:
            return None
        return self.predictor.predict(
            points=torch.tensor(self.points) if self.points else None,
            labels=torch.tensor(self.labels) if self.points else None,
            box=torch.tensor(self.box) if self.box is not None else None,
            multimask=self.multimask,
        )

    def figure(self, title: str = ""):
        """Draw the prompts and the mask candidates with their scores (see :func:`draw_candidates`)."""
        return draw_candidates(self.image, self.predict(), self.points or None, self.labels or None, self.box, title)

    def show(self, static: bool | None = None):
        """A live widget in a notebook, or the static figure headless.

        Args:
            static: force the static figure (True) or the widget (False); ``None`` asks
                :func:`cvkit.runtime.headless`.

        Returns:
            the matplotlib Figure (static) or the ipywidgets box (live).
        """
        if static if static is not None else headless():
            return self.figure()
        return self._live()

    def prompt_png(self, scale: int = 1) -> bytes:
        """The image with the best mask candidate and the prompts drawn on it, as a PNG of exactly
        ``(H * scale, W * scale)`` pixels, so a click at PNG pixel (u, v) is image pixel (u / scale, v / scale).
        """
        import io

        import matplotlib.pyplot as plt

        prediction = self.predict()
        picture = to_display(self.image)
        if prediction is not None and len(prediction.masks):
            best = int(torch.as_tensor(prediction.scores).argmax())
            picture = overlay_binary(self.image, prediction.masks[best])
        dpi = 100
        fig = plt.figure(figsize=(self.width * scale / dpi, self.height * scale / dpi), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(picture, interpolation="nearest", extent=(0, self.width, self.height, 0))
        draw_prompts(ax, self.points or None, self.labels or None, self.box)
        if self._corner is not None:
            ax.scatter([self._corner[0]], [self._corner[1]], marker="+", s=120, c="yellow", zorder=3)
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)
        ax.axis("off")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        plt.close(fig)
        return buffer.getvalue()

    def _live(self):
        import ipywidgets as widgets
        from IPython.display import display

        from cvkit.widgets.explorer import figure_png

        clicks = _click_events()
        scale = max(1, round(360 / max(self.height, self.width)))
        mode = widgets.ToggleButtons(options=list(MODES), value="foreground point", description="click adds")
        x = widgets.IntSlider(min=0, max=self.width - 1, value=self.width // 2, description="x")
        y = widgets.IntSlider(min=0, max=self.height - 1, value=self.height // 2, description="y")
        add = widgets.Button(description="add", icon="plus")
        clear = widgets.Button(description="clear", icon="trash")
        picture = widgets.Image(format="png")  # the image itself: click it (with ipyevents)
        candidates = widgets.Image(format="png")  # every mask candidate with its predicted IoU
        picture.add_class("cvkit-click-image")
        candidates.add_class("cvkit-candidates")

        def redraw(*_):
            picture.value = self.prompt_png(scale)
            candidates.value = figure_png(self.figure())

        def on_click(event):
            if "dataX" in event and "dataY" in event:
                px = min(max(event["dataX"] / scale, 0), self.width)
                py = min(max(event["dataY"] / scale, 0), self.height)
                self.click(px, py, mode.value)
                redraw()

        add.on_click(lambda _: (self.click(x.value, y.value, mode.value), redraw()))
        clear.on_click(lambda _: (self.clear(), redraw()))
        if clicks is not None:
            listener = clicks(source=picture, watched_events=["click"], prevent_default_action=True)
            listener.on_dom_event(on_click)
            how = "Click the image"
        else:
            listener = None
            how = (
                "Clicking the image needs <code>pip install ipyevents</code>; until then place a point with the sliders"
            )
        hint = widgets.HTML(f"{how} or set x, y and press <b>add</b>; two box corners make a box.")
        ui = widgets.VBox([hint, mode, widgets.HBox([x, y, add, clear]), picture, candidates])
        ui.add_class("cvkit-click-to-segment")
        ui.listener = listener  # keep the event source alive as long as the widget
        redraw()
        display(ui)
        return ui


def _click_events():
    """ipyevents' ``Event`` class, or ``None`` when ipyevents is not installed (the widget then uses sliders).

    On Colab, third-party widgets need Colab's custom widget manager, switched on here.
    """
    try:
        from ipyevents import Event
    except ImportError:
        return None
    try:
        from google.colab import output  # type: ignore[import-not-found]  # Colab only

        output.enable_custom_widget_manager()
    except ImportError:
        pass
    return Event


def click_to_segment(
    predictor,
    image: torch.Tensor,
    points=None,
    labels=None,
    box=None,
    multimask: bool = True,
    static: bool | None = None,
):
    """Open a :class:`ClickToSegment` on ``image`` with optional starting prompts and show it.

    Args:
        predictor: see :class:`ClickToSegment`. image: (3, H, W) float in [0, 1].
        points: (N, 2) xy pixels; labels: (N,) 1/0 (default all foreground); box: (4,) xyxy pixels.
        static: see :meth:`ClickToSegment.show`.

    Returns:
        the Figure (headless) or the widget, with the :class:`ClickToSegment` attached as its
        ``cvkit_segmenter`` attribute (to add prompts from code afterwards).
    """
    seg = ClickToSegment(predictor, image, multimask)
    if points is not None:
        pts = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)  # (N, 2)
        labs = torch.ones(len(pts), dtype=torch.long) if labels is None else torch.as_tensor(labels).reshape(-1)
        for (px, py), lab in zip(pts.tolist(), labs.tolist()):
            seg.add_point(px, py, int(lab))
    if box is not None:
        seg.set_box(box)
    shown = seg.show(static)
    try:
        shown.cvkit_segmenter = seg
    except AttributeError:
        pass
    return shown

"""Alt text for notebook figures, from each figure's own titles.

A matplotlib figure reaches a notebook as a PNG; its title is drawn into the pixels and lost to
anything that reads the notebook afterwards (a web page, a screen reader). :func:`install` runs
inside the kernel (``cvkit run`` starts every kernel with :data:`KERNEL_LINE`) and makes the
PNG of every figure carry its title, and the size of its smallest text, as output metadata::

    output["metadata"]["image/png"] == {"alt": "Sobel x; Sobel y", "min_font_px": 13.9}

The course website (``cvkit site``) puts the text into the ``alt`` attribute of the
figure's ``<img>``; its tests use ``min_font_px`` (pixels of the PNG) to check that the smallest
text stays readable at the width the page shows the figure. Nothing changes in what a student
sees in Jupyter.
"""

from __future__ import annotations

import sys

# One line for ``IPKernelApp.exec_lines``: cheap (``import cvkit`` imports no subpackage).
KERNEL_LINE = "import cvkit.course.figure_alt as _cvkit_alt; _cvkit_alt.install(); del _cvkit_alt"

MAX_PANELS = 6  # panel titles named in one alt text before "and N more"


def figure_alt_text(fig) -> str:
    """A short description of a matplotlib figure from its titles.

    Order: the figure's suptitle, then the distinct panel titles (at most :data:`MAX_PANELS`,
    then "and N more"); a figure without any title falls back to its axis labels
    (``"accuracy against epoch"``), then to ``"figure with N panels"``.

    Args:
        fig: a ``matplotlib.figure.Figure``.

    Returns:
        str, never empty, one line.
    """
    axes = [ax for ax in fig.get_axes() if ax.get_visible()]
    sup = (
        fig.get_suptitle()
        if hasattr(fig, "get_suptitle")
        else getattr(getattr(fig, "_suptitle", None), "get_text", str)()
    )
    titles: list[str] = []
    for ax in axes:
        for loc in ("center", "left", "right"):
            text = " ".join(ax.get_title(loc).split())
            if text and text not in titles:
                titles.append(text)
    parts = [" ".join(sup.split())] if sup and sup.strip() else []
    if titles:
        named = "; ".join(titles[:MAX_PANELS])
        more = len(titles) - MAX_PANELS
        parts.append(named + (f"; and {more} more" if more > 0 else ""))
    if not parts:
        for ax in axes:
            x, y = ax.get_xlabel().strip(), ax.get_ylabel().strip()
            if x and y:
                parts.append(f"{y} against {x}")
                break
    if not parts:
        return f"figure with {len(axes)} panel{'s' if len(axes) != 1 else ''}"
    return ": ".join(parts)


def smallest_text_px(fig) -> float | None:
    """Height in pixels of the PNG (at ``fig.dpi``) of the smallest text a figure draws, or None without text.

    Counts every visible, non-empty text (titles, labels, tick labels, annotations, legends); tick
    and axis labels of axes switched off (``ax.axis("off")``) are not drawn and not counted.
    """
    from matplotlib.text import Text

    hidden: set[int] = set()
    for ax in fig.get_axes():
        if not ax.get_visible() or not ax.axison:
            hidden.update(id(t) for axis in (ax.xaxis, ax.yaxis) for t in axis.findobj(Text))
        if not ax.get_visible():
            hidden.update(id(t) for t in ax.findobj(Text))
    sizes = [
        t.get_fontsize() for t in fig.findobj(Text) if id(t) not in hidden and t.get_visible() and t.get_text().strip()
    ]
    return round(min(sizes) * fig.dpi / 72, 1) if sizes else None


def _with_alt(printer):
    """Wrap an IPython figure formatter so it returns ``(data, {"alt": ...})``."""
    if getattr(printer, "_cvkit_alt", False):
        return printer

    def printer_with_alt(fig):
        result = printer(fig)
        data, metadata = result if isinstance(result, tuple) else (result, {})
        if data is None:
            return result
        try:
            extra = {"alt": figure_alt_text(fig), "min_font_px": smallest_text_px(fig)}
        except Exception:  # noqa: BLE001 - a description must never break a figure
            return result
        return data, {**(metadata or {}), **extra}

    printer_with_alt._cvkit_alt = True
    return printer_with_alt


def wrap_figure_formatters(shell) -> int:
    """Make the shell's PNG/JPEG formatters for matplotlib figures add alt text; returns how many were wrapped."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return 0
    wrapped = 0
    for mime in ("image/png", "image/jpeg"):
        formatter = shell.display_formatter.formatters.get(mime)
        if formatter is None:
            continue
        try:
            printer = formatter.lookup_by_type(Figure)
        except KeyError:
            continue
        if not getattr(printer, "_cvkit_alt", False):
            formatter.for_type(Figure, _with_alt(printer))
            wrapped += 1
    return wrapped


def install(shell=None) -> bool:
    """Add alt text to every figure this IPython shell displays from now on.

    Wraps the formatters now (``cvkit run`` starts kernels with ``--matplotlib=inline``, which
    registers them before this runs) and again before and after every cell, since matplotlib's
    inline backend registers them afresh when it is activated later (``%matplotlib inline``, a
    first ``import matplotlib.pyplot`` in a kernel started without it). Returns False outside IPython.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False

    def rewrap(*_args) -> None:
        if "matplotlib.figure" in sys.modules:
            wrap_figure_formatters(shell)

    rewrap()  # the kernel started with --matplotlib=inline has its formatters already
    shell.events.register("pre_run_cell", rewrap)
    shell.events.register("post_execute", rewrap)
    return True

"""The Sphinx extension behind the course website (loaded by the ``conf.py`` that :mod:`cvkit.site.build` writes).

* **Alt text**: MyST-NB names each image output after the SHA-256 of its bytes and keeps only
  ``width``/``height`` of the output's metadata. The builder records ``{sha256: alt}`` for every
  figure whose output carries an ``alt`` (see :mod:`cvkit.course.figure_alt`) in the JSON file named by
  the ``cvkit_figure_alt`` setting; here each image node gets its ``alt`` from it.
* **Math offline**: MathJax 3 comes from the ``sphinx-mathjax-offline`` wheel (files only; its own
  extension is not loaded because it does not declare itself safe for parallel builds) and is copied
  into ``_static/mathjax/``: no page loads anything from the network.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # the wheel's top-level folder (a hyphenated name: files only)
MATHJAX_ENTRY = "mathjax/tex-chtml.js"  # relative to _static
# MathJax 3's TeX + CommonHTML bundle and what it loads on demand (extensions, fonts); 3 MB of the wheel's 24.
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "a11y", "ui", "sre")


def mathjax_source() -> Path:
    """Folder holding MathJax 3 (``tex-chtml.js`` and its components).

    Raises:
        FileNotFoundError: ``sphinx-mathjax-offline`` is not installed (``pip install "cvkit[site]"``).
    """
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f'MathJax for offline pages comes from the {MATHJAX_PACKAGE} package: pip install "cvkit[site]"'
        )
    folder = Path(spec.origin).parent / "static" / "mathjax"
    if not (folder / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"{folder} has no tex-chtml.js; reinstall {MATHJAX_PACKAGE}")
    return folder


def _set_alt_text(app, doctree) -> None:
    path = app.config.cvkit_figure_alt
    if not path:
        return
    if not hasattr(app.env, "_cvkit_alt"):
        app.env._cvkit_alt = json.loads(Path(path).read_text())
    alt = app.env._cvkit_alt
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        key = Path(str(image.get("uri", ""))).stem
        if key in alt and not image.get("alt"):
            image["alt"] = alt[key]


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        elif src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def setup_extension(app) -> dict:
    """Register the alt-text transform, the offline MathJax and the ``cvkit_figure_alt`` setting."""
    app.add_config_value("cvkit_figure_alt", "", "env")
    app.config.mathjax_path = MATHJAX_ENTRY
    app.connect("doctree-read", _set_alt_text)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


setup = setup_extension  # the name Sphinx calls

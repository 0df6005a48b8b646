"""``cvkit site``: the course website, built with Sphinx + MyST-NB from notebooks that already ran.

Nothing is executed here. The lecture pages are the executed copies that ``cvkit run`` (or the
main job) wrote, with their outputs and figures, and with the profile and device they ran on
(``metadata.cvkit.run``, written by :func:`cvkit.course.lectures.notebooks.record_run`). The site has:

* ``index``: the course map, taken from the README (one source for both);
* ``notebooks/<name>``: one page per lecture notebook, in course order, with a line saying how
  it ran (profile, device, seconds, status) and its Colab/Kaggle links;
* ``assignments/<a>/<a>``: the student release of each assignment from ``assignments/`` (never
  ``solutions/``; a release containing an nbgrader marker stops the build);
* ``api/``: the API reference, autodoc/autosummary over every public module of cvkit;
* search (Sphinx's own index, served with the pages).

The Sphinx project is written into a staging folder (``<work>/src``) and built with
``python -m sphinx`` in a subprocess; pages load nothing from the network (theme, MathJax and
search are files of the site).

    from cvkit.site.build import build_site
    report = build_site("build/course/notebooks", "build/site")
    print(report.summary())
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from binascii import a2b_base64
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path

from cvkit.course.paths import course_notebooks, course_root

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
# What MyST-NB shows of an output, best first (its HTML priority): an image only when no richer form comes first.
RENDER_PRIORITY = (
    "application/vnd.jupyter.widget-view+json",
    "application/javascript",
    "text/html",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/markdown",
    "text/latex",
    "text/plain",
)
# nbgrader markers: a page holding one would show a solution region or hidden tests.
FORBIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/(?P<repo>[\w.-]+/[\w.-]+)/blob/(?P<branch>[\w.-]+)/(?P<path>[\w./-]+\.ipynb)"
)
_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)\s*")  # [![alt](image)](link): a badge whose image is remote


class SiteError(ValueError):
    """The site cannot be built as asked (no executed notebooks, a leaking release, Sphinx failed)."""


class SiteUnavailable(SiteError):
    """The website's packages (the ``site`` extra) are not installed."""


# import name -> distribution, for the message when one is missing
SITE_PACKAGES = {
    "sphinx": "sphinx",
    "myst_nb": "myst-nb",
    "pydata_sphinx_theme": "pydata-sphinx-theme",
    "sphinx-mathjax-offline": "sphinx-mathjax-offline",
}


def check_site_packages() -> None:
    """Raise :class:`SiteUnavailable` naming what to install when a package of the ``site`` extra is missing."""
    import importlib.util

    missing = [dist for name, dist in SITE_PACKAGES.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise SiteUnavailable(
            f'the course website needs {", ".join(missing)}: pip install -e ".[site]" (ci/install.sh installs it)'
        )


@dataclass
class PageInfo:
    """One notebook page of the site.

    Attributes:
        name: notebook file name, e.g. ``"02_convolution.ipynb"``.
        page: the page's path in the site without ``.html``, e.g. ``"notebooks/02_convolution"``.
        title: the text of the notebook's first Markdown heading (level 1).
        state: ``"executed"`` (outputs from a run), ``"stale"`` (executed, but the notebook's code
            changed since), ``"not run"`` (no executed copy: the page shows the code only) or
            ``"release"`` (an assignment as students get it).
        run: ``metadata.cvkit.run`` of the executed copy (status, profile, device, seconds, ...).
        figures: image outputs the page shows.
        figures_with_title: of those, how many carry alt text taken from the figure's titles.
    """

    name: str
    page: str
    title: str
    state: str
    run: dict = field(default_factory=dict)
    figures: int = 0
    figures_with_title: int = 0


@dataclass
class SiteReport:
    """What :func:`build_site` produced; ``to_dict()`` goes into the main job's ``report.json``."""

    out: str
    seconds: float = 0.0
    html_pages: int = 0
    lectures: list[PageInfo] = field(default_factory=list)
    assignments: list[PageInfo] = field(default_factory=list)
    api_modules: list[str] = field(default_factory=list)
    warnings: int = 0
    log: str = ""

    @property
    def figures(self) -> int:
        """Image outputs on the lecture pages."""
        return sum(p.figures for p in self.lectures)

    @property
    def index(self) -> Path:
        """The home page (open it in a browser)."""
        return Path(self.out) / "index.html"

    def to_dict(self) -> dict:
        """Plain data (JSON-able)."""
        return asdict(self) | {"figures": self.figures, "index": str(self.index)}

    def summary(self) -> str:
        """One line for a terminal."""
        executed = sum(p.state == "executed" for p in self.lectures)
        return (
            f"site: {self.html_pages} pages ({len(self.lectures)} lectures, {executed} with outputs; "
            f"{len(self.assignments)} assignments; "
            f"{len(self.api_modules)} modules in the API reference), {self.figures} figures, {self.seconds:.1f} s, "
            f"{self.warnings} Sphinx warnings; open {self.index}"
        )

    def to_markdown(self, relative_to: str | os.PathLike | None = None) -> str:
        """A section for the main job's ``report.md``, linking to the site."""
        index = self.index
        if relative_to is not None:
            index = Path(os.path.relpath(index, relative_to))
        lines = [
            "# Course website",
            "",
            (
                f"[{index}]({index}): {self.html_pages} pages, {self.figures} figures, "
                f"built in {self.seconds:.1f} s ({self.warnings} Sphinx warnings, log: {self.log})"
            ),
            "",
            "| page | state | profile | device | figures (with title) |",
            "|---|---|---|---|---:|",
        ]
        for p in self.lectures + self.assignments:
            lines.append(
                f"| {p.page} | {p.state} | {p.run.get('profile', '')} | {p.run.get('device', '')} "
                f"| {p.figures} ({p.figures_with_title}) |"
            )
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# notebooks


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def image_outputs(nb: dict) -> list[dict]:
    """The outputs of a notebook that a page shows as an image (MyST-NB's choice of representation).

    Args:
        nb: a notebook as a dict (nbformat 4).

    Returns:
        list of output dicts (``display_data`` / ``execute_result``), in page order.
    """
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            shown = next((m for m in RENDER_PRIORITY if m in data), None)
            if shown in IMAGE_MIMES:
                found.append(out)
    return found


def _image_key(out: dict) -> tuple[str, str] | None:
    """(sha256 name MyST-NB gives the image file, alt text) for a figure output with alt text."""
    data = out.get("data", {})
    mime = next((m for m in RENDER_PRIORITY if m in data), None)
    alt = (out.get("metadata", {}).get(mime) or {}).get("alt") if mime else None
    if mime not in ("image/png", "image/jpeg", "image/gif") or not alt:
        return None
    content = data[mime]
    content = "".join(content) if isinstance(content, list) else content
    return sha256(a2b_base64(content)).hexdigest(), str(alt)


def _code_sources(nb: dict) -> list[str]:
    """Code cell sources, without the cell papermill injects."""
    return [
        _source(c).strip()
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def _title(nb: dict, fallback: str) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def badge_links(nb: dict, relpath: str) -> dict[str, str]:
    """ "Open in Colab" / "Open in Kaggle" URLs of a notebook, from the Colab link in its first cell.

    The repository and branch are read from the notebook's own Colab badge (the one place the
    course writes them); the Kaggle URL imports the same file from GitHub.

    Args:
        nb: the notebook (dict).
        relpath: its path in the repository, e.g. ``"notebooks/02_convolution.ipynb"``.

    Returns:
        ``{"Colab": url, "Kaggle": url}``, or ``{}`` when the notebook has no Colab link.
    """
    head = _source(nb["cells"][0]) if nb.get("cells") else ""
    m = _COLAB.search(head)
    if not m:
        return {}
    github = f"https://github.com/{m['repo']}/blob/{m['branch']}/{relpath}"
    return {
        "Colab": f"https://colab.research.google.com/github/{m['repo']}/blob/{m['branch']}/{relpath}",
        "Kaggle": f"https://kaggle.com/kernels/welcome?src={github}",
    }


def _header_html(links: dict[str, str], note: str) -> str:
    badges = " ".join(
        f'<a class="cvkit-badge cvkit-badge-{k.lower()}" href="{v}">Open in {k}</a>' for k, v in links.items()
    )
    return (
        f'<div class="cvkit-run">\n<span class="cvkit-badges">{badges}</span>\n'
        f'<span class="cvkit-run-note">{note}</span>\n</div>'
    )


def with_header(nb: dict, html: str) -> dict:
    """Put ``html`` under the notebook's title, in place of its badge images (they load from other sites).

    The first cell keeps its title and text; a notebook without a Markdown first cell gets a new one.
    """
    cells = nb.setdefault("cells", [])
    if cells and cells[0].get("cell_type") == "markdown":
        lines = _BADGE.sub("", _source(cells[0])).splitlines()
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
        lines[at:at] = ["", html, ""]
        cells[0]["source"] = "\n".join(lines).replace("\n\n\n", "\n\n")
    else:
        cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": html})
    return nb


def _run_note(run: dict, state: str) -> str:
    if state == "not run":
        return "<b>Not run in this build</b>: the page shows the code without outputs."
    seconds = run.get("seconds")
    took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    when = str(run.get("finished", ""))[:10]
    status = run.get("status", "?")
    note = (
        f"Outputs from the <b>{run.get('profile', '?')}</b> profile on <b>{run.get('device', '?')}</b>{took}, "
        f"{status}{', ' + when if when else ''} (cvkit {run.get('cvkit', '?')})."
    )
    if status != "passed" and run.get("message"):
        note += f" <b>This run failed</b>: {_escape(run['message'][:300])}"
    if state == "stale":
        note += " <b>The notebook has changed since this run</b>: outputs may not match the code."
    return note


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write_if_changed(path: Path, text: str) -> None:
    """Write only new content, so Sphinx re-reads only pages that changed."""
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def stage_lecture(source: Path, relpath: str, executed_dir: Path | None, src: Path, alt: dict[str, str]) -> PageInfo:
    """Write one lecture's page (the executed copy when there is one) into the Sphinx source ``src``.

    ``relpath`` is the notebook's path in the repository (what its Colab and Kaggle badges open), e.g.
    ``notebooks/02_convolution.ipynb``; a project template (``notebooks/projects/``) gets its page beside the lectures.
    """
    nb_source = json.loads(source.read_text())
    executed = executed_dir / source.name if executed_dir is not None else None
    if executed is not None and executed.is_file():
        nb = json.loads(executed.read_text())
        run = nb.get("metadata", {}).get("cvkit", {}).get("run", {})
        state = "executed" if _code_sources(nb) == _code_sources(nb_source) else "stale"
    else:
        nb, run, state = copy.deepcopy(nb_source), {}, "not run"
    info = PageInfo(source.name, f"notebooks/{source.stem}", _title(nb_source, source.stem), state, run)
    images = image_outputs(nb)
    info.figures = len(images)
    for out in images:
        key = _image_key(out)
        if key:
            alt[key[0]] = key[1]
            info.figures_with_title += 1
    nb = with_header(nb, _header_html(badge_links(nb_source, relpath), _run_note(run, state)))
    nb.setdefault("metadata", {}).pop("widgets", None)  # widget state would make MyST-NB load JavaScript from a CDN
    _write_if_changed(src / f"notebooks/{source.name}", json.dumps(nb, indent=1, ensure_ascii=False))
    return info


def release_markers(nb: dict) -> list[str]:
    """nbgrader markers found in a notebook's cells (sources and outputs); empty for a clean release."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        text = _source(cell) + json.dumps(cell.get("outputs", []))
        found += [f"cell {i}: {m!r}" for m in FORBIDDEN_MARKERS if m in text]
    return found


def stage_assignment(release: Path, src: Path, root: Path) -> PageInfo:
    """Write one assignment's student release into ``src``.

    Raises:
        SiteError: the release contains an nbgrader marker (a solution or hidden test would be published).
    """
    nb = json.loads(release.read_text())
    leaks = release_markers(nb)
    if leaks:
        raise SiteError(
            f"{release}: the student release holds nbgrader markers ({', '.join(leaks[:3])}); "
            "run `cvkit release` and check it before publishing"
        )
    relpath = release.relative_to(root).as_posix()
    note = "The student version: write your code where it says <code>YOUR CODE HERE</code>; tests follow each part."
    nb = with_header(nb, _header_html(badge_links(nb, relpath), note))
    nb.setdefault("metadata", {}).pop("widgets", None)
    _write_if_changed(src / relpath, json.dumps(nb, indent=1, ensure_ascii=False))
    return PageInfo(
        release.name, relpath[: -len(".ipynb")], _title(nb, release.stem), "release", figures=len(image_outputs(nb))
    )


def assignment_releases(root: Path) -> list[Path]:
    """The released assignment notebooks ``assignments/<a>/<a>.ipynb``, sorted."""
    return sorted(p / f"{p.name}.ipynb" for p in (root / "assignments").glob("*") if (p / f"{p.name}.ipynb").is_file())


# ---------------------------------------------------------------------------------------------
# home page and section pages


def course_map_markdown(readme: str, repository: str | None) -> str:
    """The home page: the README's title and opening, then its "Course map" section.

    Links to files the site does not hold (``CONTRIBUTING.md``, folders) point to the repository
    on GitHub when it is known, else lose their link.
    """
    lines = readme.splitlines()
    opening: list[str] = []
    for line in lines:
        if line.startswith("## "):
            break
        opening.append(line)
    start = next((i for i, line in enumerate(lines) if line.strip().lower() == "## course map"), None)
    section: list[str] = []
    if start is not None:
        for line in lines[start + 1 :]:
            if line.startswith("## "):
                break
            section.append(line)
    text = "\n".join(opening).rstrip() + "\n\n## Course map\n" + "\n".join(section).rstrip() + "\n"

    def relink(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return m.group(0)
        path = target.split("#")[0]
        if re.fullmatch(r"(notebooks/[^/]+|assignments/[^/]+/[^/]+)\.ipynb", path):
            return m.group(0)  # a page of the site: MyST resolves the link
        if repository:
            return f"[{label}](https://github.com/{repository}/blob/main/{target})"
        return label

    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", relink, text)


def _lectures_index(pages: list[PageInfo]) -> str:
    rows = [
        "# Lectures",
        "",
        "Every lecture notebook in course order, then the project templates, as they ran for this site.",
        "",
        "| lecture | outputs | profile | device | seconds | figures |",
        "|---|---|---|---|---:|---:|",
    ]
    for p in pages:
        seconds = p.run.get("seconds", "")
        rows.append(
            f"| [{p.title}](<{Path(p.page).name}.ipynb>) | {p.state} ({p.run.get('status', '-')}) | "
            f"{p.run.get('profile', '-')} | {p.run.get('device', '-')} | {seconds} | {p.figures} |"
        )
    rows += ["", *_hidden_toctree([Path(p.page).name for p in pages])]
    return "\n".join(rows)


def _hidden_toctree(entries: list[str]) -> list[str]:
    """The lines of a hidden MyST toctree listing ``entries`` (pages reached from the sidebar), then a blank line."""
    return ["```{toctree}", ":hidden:", ":maxdepth: 1", "", *entries, "```", ""]


def _assignments_index(pages: list[PageInfo]) -> str:
    rows = [
        "# Assignments",
        "",
        (
            "The student version of each assignment, as released by `cvkit release`: open it in Colab or Kaggle, "
            "fill in the cells marked `YOUR CODE HERE`, and submit the notebook under its own name."
        ),
        "",
    ]
    rows += [f"- [{p.title}](<{Path(p.page).relative_to('assignments')}.ipynb>)" for p in pages]
    rows += ["", *_hidden_toctree([str(Path(p.page).relative_to("assignments")) for p in pages])]
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# API reference


def public_modules(package_dir: str | os.PathLike | None = None, package: str = "cvkit") -> list[str]:
    """Dotted names of every public module of a package, found on disk (nothing is imported).

    A module is public when no part of its dotted name starts with ``_`` (``__init__.py`` stands
    for its package; ``__main__`` is left out).

    Args:
        package_dir: the package folder (default: the installed cvkit).
        package: its import name.

    Returns:
        sorted list, the package itself first, e.g. ``["cvkit", "cvkit.attribution", ...]``.
    """
    base = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    names = []
    for path in base.rglob("*.py"):
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or "__pycache__" in path.parts:
            continue
        names.append(".".join([package, *parts]))
    return sorted(set(names), key=lambda n: (n != package, n))


def _api_pages(modules: list[str]) -> dict[str, str]:
    """``api/index.md`` (an autosummary table of every module) and one page per top-level name."""
    groups: dict[str, list[str]] = {}
    for name in modules:
        top = ".".join(name.split(".")[:2])
        groups.setdefault(top, []).append(name)
    index = [
        "# API reference",
        "",
        (
            "Generated from cvkit's docstrings: every public module, with its functions and classes. "
            "Shapes, dtypes, units and the errors each function raises are in its docstring."
        ),
        "",
        "```{eval-rst}",
        ".. autosummary::",
        "",
        *[f"   {m}" for m in modules],
        "```",
        "",
        *_hidden_toctree(list(groups)),
    ]
    pages = {"api/index.md": "\n".join(index)}
    for top, names in groups.items():
        body = [f"# {top}", ""]
        for name in names:
            # :ignore-module-all: documents what a module defines, not what its __all__ re-exports (no duplicates)
            body += [
                "```{eval-rst}",
                f".. automodule:: {name}",
                "   :members:",
                "   :show-inheritance:",
                "   :ignore-module-all:",
                "```",
                "",
            ]
        pages[f"api/{top}.md"] = "\n".join(body)
    return pages


# ---------------------------------------------------------------------------------------------
# Sphinx project

CONF = """\
# Written by cvkit.site.build; edit that module, not this file.
project = {title!r}
author = "the cvkit developers"
release = {version!r}
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "cvkit.site.sphinx_ext",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"  # the notebooks ran in `cvkit run`; never again here
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
autosummary_generate = False
autodoc_default_options = {{"members": True, "show-inheritance": True}}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
html_theme = "pydata_sphinx_theme"
html_title = {title!r}
html_static_path = ["_static"]
html_css_files = ["cvkit.css"]
html_js_files = ["cvkit.js"]
html_favicon = "_static/favicon.svg"
html_context = {{"default_mode": "auto"}}
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {{
    "navigation_depth": 2,
    "show_toc_level": 1,
    "header_links_before_dropdown": 4,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "icon_links": {icon_links!r},
}}
# lecture pages give the text column the width (figures); lectures are one click away in the top bar
html_sidebars = {{"index": [], "search": [], "notebooks/[0-9]*": []}}
cvkit_figure_alt = {alt_file!r}
"""

CSS = """\
/* cvkit course site: figures and badges readable at a laptop's width (1366 px). */
.bd-page-width { max-width: 100rem; }
.bd-main .bd-content .bd-article-container { max-width: 62rem; }
div.cell_output img { max-width: 100%; height: auto; }
div.cell_output div.output { overflow-x: auto; }
.cvkit-run { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin: .5rem 0 1.2rem;
  padding: .5rem .8rem; border-left: 4px solid var(--pst-color-primary); background: var(--pst-color-surface); }
.cvkit-badge { display: inline-block; padding: .15rem .55rem; margin-right: .3rem; border-radius: .25rem;
  font-size: .85rem;
  font-weight: 600; text-decoration: none !important; color: #fff !important; }
.cvkit-badge-colab { background: #e37400; }
.cvkit-badge-kaggle { background: #1f7fa9; }
.cvkit-run-note { font-size: .9rem; }
/* a figure narrower on the page than in its file opens at full size on click (cvkit.js) */
img.cvkit-zoomable { cursor: zoom-in; }
.cvkit-zoom { position: fixed; inset: 0; z-index: 2000; display: flex; align-items: center; justify-content: center;
  background: rgba(0, 0, 0, .75); cursor: zoom-out; }
.cvkit-zoom img { max-width: 98vw; max-height: 98vh; background: #fff; }
"""

JS = """\
// cvkit course site: a figure shown smaller than its file opens at full size on click (Escape or click closes).
document.addEventListener("DOMContentLoaded", () => {
  const close = () => document.querySelectorAll(".cvkit-zoom").forEach((el) => el.remove());
  const open = (img) => {
    const overlay = document.createElement("div");
    overlay.className = "cvkit-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", img.alt || "figure");
    const big = document.createElement("img");
    big.src = img.src;
    big.alt = img.alt;
    overlay.appendChild(big);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
  };
  const mark = (img) => {
    if (img.naturalWidth > img.getBoundingClientRect().width + 1) {
      img.classList.add("cvkit-zoomable");
      img.tabIndex = 0;
    }
  };
  document.querySelectorAll("div.cell_output img").forEach((img) => {
    if (img.complete) mark(img); else img.addEventListener("load", () => mark(img));
    img.addEventListener("click", () => img.classList.contains("cvkit-zoomable") && open(img));
    img.addEventListener("keydown", (e) => e.key === "Enter" && img.classList.contains("cvkit-zoomable") && open(img));
  });
  document.addEventListener("keydown", (e) => e.key === "Escape" && close());
});
"""

FAVICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#1f7fa9"/>
<text x="16" y="22" font-family="sans-serif" font-size="16" font-weight="bold" fill="#fff"
 text-anchor="middle">cv</text></svg>
"""


def _write_project(
    src: Path,
    root: Path,
    modules: list[str],
    lectures: list[PageInfo],
    assignments: list[PageInfo],
    alt: dict[str, str],
    repository: str | None,
) -> None:
    from cvkit import __version__

    readme = (root / "README.md").read_text() if (root / "README.md").is_file() else "# cvkit\n"
    home = course_map_markdown(readme, repository)
    home += "\n```{toctree}\n:hidden:\n:maxdepth: 1\n\nnotebooks/index\n"
    home += ("assignments/index\n" if assignments else "") + "api/index\n```\n"
    _write_if_changed(src / "index.md", home)
    _write_if_changed(src / "notebooks" / "index.md", _lectures_index(lectures))
    if assignments:
        _write_if_changed(src / "assignments" / "index.md", _assignments_index(assignments))
    for rel, text in _api_pages(modules).items():
        _write_if_changed(src / rel, text)
    _write_if_changed(src / "_static" / "cvkit.css", CSS)
    _write_if_changed(src / "_static" / "cvkit.js", JS)
    _write_if_changed(src / "_static" / "favicon.svg", FAVICON)
    alt_file = src / "_cvkit" / "figure-alt.json"
    _write_if_changed(alt_file, json.dumps(alt, indent=0, sort_keys=True))
    icons = (
        [{"name": "GitHub", "url": f"https://github.com/{repository}", "icon": "fa-brands fa-github"}]
        if repository
        else []
    )
    title = _title_of_readme(readme)
    _write_if_changed(
        src / "conf.py", CONF.format(title=title, version=__version__, icon_links=icons, alt_file=str(alt_file))
    )


def _title_of_readme(readme: str) -> str:
    first = next((line for line in readme.splitlines() if line.startswith("# ")), "# cvkit")
    return first[2:].split(":")[0].strip() or "cvkit"


def _prune(src: Path, keep: set[Path]) -> None:
    """Remove staged notebooks that are no longer part of the course (renamed or deleted)."""
    for path in list(src.rglob("*.ipynb")):
        if path.resolve() not in keep:
            path.unlink()


def _count_pages(out: Path) -> int:
    return sum(1 for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_"))


def build_site(
    executed: str | os.PathLike | None,
    out: str | os.PathLike = "build/site",
    *,
    root: str | os.PathLike | None = None,
    work: str | os.PathLike | None = None,
    jobs: int = 2,
    require_executed: bool = True,
) -> SiteReport:
    """Build the course website from executed notebooks (no notebook is run).

    Args:
        executed: folder with the executed lecture notebooks (``build/course/notebooks`` after the
            main job, or a ``cvkit run --out`` folder); ``None`` builds pages without outputs.
        out: where the HTML goes (open ``out/index.html``).
        root: the course folder (default: :func:`cvkit.course.paths.course_root`).
        work: the Sphinx source and caches (default: ``<out>-work`` beside ``out``); kept so an
            unchanged page is not read again on the next build.
        jobs: Sphinx processes (``-j``).
        require_executed: raise when ``executed`` holds none of the lecture notebooks.

    Returns:
        SiteReport (pages, figures, seconds, per-page state).

    Raises:
        SiteUnavailable: a package of the ``site`` extra is missing.
        SiteError: no executed notebook found (with ``require_executed``), a release holds an
            nbgrader marker, or Sphinx failed (the message gives its log).
        FileNotFoundError: no course folder.
    """
    tic = time.perf_counter()
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    check_site_packages()
    base = Path(root) if root is not None else course_root()
    out_dir = Path(out).resolve()
    work_dir = Path(work).resolve() if work is not None else out_dir.with_name(out_dir.name + "-work")
    src = work_dir / "src"
    executed_dir = Path(executed).resolve() if executed is not None else None
    sources = course_notebooks(base)  # the lectures, then the project templates
    if not sources:
        raise SiteError(f"no lecture notebooks in {base / 'notebooks'}")
    if require_executed and (executed_dir is None or not any((executed_dir / s.name).is_file() for s in sources)):
        raise SiteError(
            f"no executed lecture notebooks in {executed_dir}: run the main job "
            "(`cvkit`, which writes build/course/notebooks) "
            "or `cvkit run --out DIR` first and pass that folder"
        )
    alt: dict[str, str] = {}
    lectures = [stage_lecture(s, s.relative_to(base).as_posix(), executed_dir, src, alt) for s in sources]
    assignments = [stage_assignment(r, src, base) for r in assignment_releases(base)]
    repository = next((m["repo"] for s in sources for m in [_COLAB.search(s.read_text())] if m), None)
    modules = public_modules()
    _prune(src, {(src / f"{p.page}.ipynb").resolve() for p in lectures + assignments})
    _write_project(src, base, modules, lectures, assignments, alt, repository)

    log = work_dir / "sphinx.log"
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-j",
        str(jobs),
        "-q",
        "-d",
        str(work_dir / "doctrees"),
        str(src),
        str(out_dir),
    ]
    env = dict(os.environ, CVKIT_HEADLESS="1", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(base), check=False)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise SiteError(f"Sphinx failed (exit {proc.returncode}); log: {log}\n{tail}")
    report = SiteReport(
        str(out_dir),
        time.perf_counter() - tic,
        _count_pages(out_dir),
        lectures,
        assignments,
        modules,
        proc.stderr.count("WARNING"),
        str(log),
    )
    (out_dir / "_cvkit-site.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    (out_dir / ".nojekyll").touch()  # GitHub Pages from a branch: serve _static/ and _images/ as they are
    return report


def remove_site(out: str | os.PathLike) -> None:
    """Delete a built site and its work folder (``cvkit site --clean``)."""
    out_dir = Path(out).resolve()
    for folder in (out_dir, out_dir.with_name(out_dir.name + "-work")):
        if folder.is_dir():
            shutil.rmtree(folder)

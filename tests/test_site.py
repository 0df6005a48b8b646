"""The course website (``cvkit site``), built from executed notebooks and read in a real browser.

The site is built from the notebooks tests/test_notebooks.py executed earlier in this session
(the ``executed_notebooks`` fixture of conftest.py), so CI executes the course once. Run alone
(``pytest tests/test_site.py``), this module executes two short lectures itself and builds the
site with the others as "not run" pages. It is served by a real ``python -m http.server`` on
127.0.0.1 and read by Debian's Chromium through Playwright (tests/browser.py).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import select
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cvkit.course.lectures.notebooks import run_notebook
from cvkit.course.paths import course_notebooks, lecture_notebooks
from tests.browser import chromium_page

ROOT = Path(__file__).resolve().parents[1]
LECTURES = course_notebooks(ROOT)  # the lectures, then the project templates: each gets a page
FALLBACK = ("00_what_a_computer_sees.ipynb", "02_convolution.ipynb")  # 15 s + 30 s on 2 cores, 13 figures
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
LAPTOP = {"width": 1366, "height": 768}
MIN_TEXT_PX = 7.0  # smallest text of a figure in CSS px at LAPTOP width (10 pt ticks at 100 dpi are 13.9 px unscaled)
IMAGES_JS = """els => els.filter(i => i.src.includes('/_images/')).map(i => ({
    src: i.src, alt: i.getAttribute('alt') || '', loaded: i.complete && i.naturalWidth > 0,
    natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))"""


def _require_sphinx() -> None:
    from cvkit.site.build import SiteUnavailable, check_site_packages

    try:
        check_site_packages()
    except SiteUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; CI must install it")
        pytest.skip(str(exc))


# ---------------------------------------------------------------------------------------------
# fixtures: executed notebooks -> site -> server -> browser


@pytest.fixture(scope="module")
def site(executed_notebooks, tmp_path_factory):
    """The built site (a SiteReport) and the folder of executed notebooks it came from.

    The executed notebooks are, in order: this session's from tests/test_notebooks.py; a folder named
    by ``CVKIT_SITE_EXECUTED`` (e.g. the main job's build/course/notebooks, to test a full site without
    executing the course again while working on the site); else FALLBACK, executed here.
    """
    _require_sphinx()
    from cvkit.site.build import build_site

    tmp = tmp_path_factory.mktemp("site")
    executed = tmp / "executed"
    executed.mkdir()
    results = {name: r for name, r in executed_notebooks.results.items() if r.output and Path(r.output).is_file()}
    given = os.environ.get("CVKIT_SITE_EXECUTED")
    if results:  # this session's copies only (build/test-notebooks may hold older ones)
        for name, r in results.items():
            (executed / name).symlink_to(r.output)
    elif given:
        for path in sorted(Path(given).glob("*.ipynb")):
            (executed / path.name).symlink_to(path.resolve())
    else:
        for name in FALLBACK:
            result = run_notebook(ROOT / "notebooks" / name, executed, profile="fast", cell_timeout=600)
            assert result.ok, f"{name}: {result.message}"
    report = build_site(executed, tmp / "html", root=ROOT, work=tmp / "work", jobs=2)
    print(report.summary())
    return report, executed


@pytest.fixture(scope="module")
def server(site):
    """``python -m http.server`` on 127.0.0.1 (a free port) serving the site; yields its base URL."""
    report, _ = site
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", report.out],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        port = re.search(r"port (\d+)", line)
        assert port, f"http.server did not start: {line!r}"
        yield f"http://127.0.0.1:{port.group(1)}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    """One Chromium page at a laptop's size; requests leaving 127.0.0.1 are recorded in ``page.remote``."""
    with chromium_page(screenshots=tmp_path_factory.mktemp("screenshots"), **LAPTOP) as page:
        page.remote = []
        page.on(
            "request",
            lambda r: (
                urllib.parse.urlsplit(r.url).hostname not in (None, "127.0.0.1")
                and r.url.startswith("http")
                and page.remote.append(r.url)
            ),
        )
        yield page


def _visit(page, url: str) -> None:
    page.console_errors.clear()
    page.remote.clear()
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"


# ---------------------------------------------------------------------------------------------
# helpers


class _Text(HTMLParser):
    """Visible text and element ids of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.ids: set[str] = set()
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v:
                self.ids.add(v)
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _parse(text: str) -> _Text:
    parser = _Text()
    parser.feed(text)
    return parser


def _lecture_url(base: str, path: Path) -> str:
    return f"{base}notebooks/{path.stem}.html"


def _notebook_figures(path: Path) -> list[dict]:
    """Image outputs of an executed notebook, read straight from its JSON."""
    nb = json.loads(path.read_text())
    return [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if set(o.get("data", {})) & set(IMAGE_MIMES)
    ]


def _image_hash(output: dict) -> str:
    """SHA-256 of an image output's bytes: the name MyST-NB gives its file under _images/."""
    mime = next(m for m in ("image/png", "image/jpeg", "image/gif", "image/svg+xml") if m in output["data"])
    data = output["data"][mime]
    data = "".join(data) if isinstance(data, list) else data
    raw = base64.b64decode(data) if mime != "image/svg+xml" else data.encode()
    return hashlib.sha256(raw).hexdigest()


def _marked_lines(nb: dict, region: str) -> set[str]:
    """Stripped lines between ``### BEGIN <region>`` and ``### END <region>`` in a source notebook."""
    lines, inside = set(), False
    for cell in nb["cells"]:
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for line in src.splitlines():
            s = line.strip()
            if re.fullmatch(rf"#+\s*BEGIN {region}", s):
                inside = True
            elif re.fullmatch(rf"#+\s*END {region}", s):
                inside = False
            elif inside:
                lines.add(s)
    return lines


def _source_lines(path: Path) -> set[str]:
    return {line.strip() for c in json.loads(path.read_text())["cells"] for line in "".join(c["source"]).splitlines()}


def secret_lines() -> dict[str, set[str]]:
    """Per assignment: lines of its hidden tests and solutions (solutions/) that nothing public shows.

    Public: every released assignment, every lecture notebook's source and cvkit's own source (a hidden test
    may import what a release imports, a solution may repeat a lecture's worked code or the reference
    implementation a lecture prints with ``inspect.getsource``; students get the package). Blank lines, comments and
    lines of three characters or fewer (``)``, ``]``) say nothing and are left out.
    """
    public: set[str] = set()
    for path in [*sorted((ROOT / "assignments").glob("*/*.ipynb")), *LECTURES]:
        public |= _source_lines(path)
    for path in (ROOT / "cvkit").rglob("*.py"):
        public |= {line.strip() for line in path.read_text().splitlines()}
    found = {}
    for source in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = json.loads(source.read_text())
        secret = (_marked_lines(nb, "HIDDEN TESTS") | _marked_lines(nb, "SOLUTION")) - public
        found[source.parent.name] = {s for s in secret if len(s) > 3 and not s.startswith("#")}
    return found


def _module_names_on_disk() -> list[str]:
    names = set()
    for path in (ROOT / "cvkit").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(p.startswith("_") for p in parts):
            names.add(".".join(parts))
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# tests without a browser


@pytest.mark.site
@pytest.mark.notebook
def test_site_has_every_page(site):
    report, executed = site
    out = Path(report.out)
    assert (out / "index.html").is_file() and (out / "search.html").is_file() and (out / "searchindex.js").is_file()
    for path in LECTURES:
        assert (out / "notebooks" / f"{path.stem}.html").is_file(), path.name
    for release in sorted((ROOT / "assignments").glob("*/*.ipynb")):
        assert (out / "assignments" / release.parent.name / f"{release.stem}.html").is_file(), release
    states = {p.name: p.state for p in report.lectures}
    assert {n for n, s in states.items() if s == "executed"} == {p.name for p in executed.iterdir()}
    for p in report.lectures:
        if p.state == "executed":
            assert p.run["profile"] == "fast" and p.run["device"], p  # the page says what produced its outputs


@pytest.mark.site
@pytest.mark.notebook
def test_no_page_shows_a_solution_or_hidden_test(site):
    """Every file of the site: no nbgrader marker, no line of a hidden test or solution from solutions/.

    API pages document the grading tools, whose docstrings name the markers ("HIDDEN TESTS"); there
    only a marker written as nbgrader's own line (``### BEGIN HIDDEN TESTS``) would be a leak.
    """
    report, _ = site
    secrets = secret_lines()
    assert sum(map(len, secrets.values())) > 50  # the check has something to find
    problems = []
    for path in sorted(Path(report.out).rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".js", ".json", ".txt"):
            continue
        raw = path.read_text(errors="replace")
        if path.suffix == ".html":
            text = html.unescape("".join(_parse(raw).parts))
        else:
            text = raw
        rel = path.relative_to(report.out).as_posix()
        api = rel.startswith("api/")
        markers = (
            [r"#+\s*BEGIN (SOLUTION|HIDDEN TESTS)", r"#+\s*END (SOLUTION|HIDDEN TESTS)"]
            if api
            else ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"]
        )
        problems += [f"{rel}: {m}" for m in markers if re.search(m, text)]
        if path.suffix == ".html":
            lines = {line.strip() for line in text.splitlines()}
            for assignment, secret in secrets.items():
                problems += [f"{rel}: {assignment} line {line!r}" for line in sorted(secret & lines)]
    assert not problems, "\n".join(problems[:30])


def test_refuses_to_publish_a_release_with_markers(tmp_path):
    from cvkit.site.build import SiteError, stage_assignment

    folder = tmp_path / "assignments" / "a9_leak"
    folder.mkdir(parents=True)
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# a9"},
            {
                "cell_type": "code",
                "metadata": {},
                "source": "x = 1\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "a9_leak.ipynb").write_text(json.dumps(nb))
    with pytest.raises(SiteError, match="nbgrader markers"):
        stage_assignment(folder / "a9_leak.ipynb", tmp_path / "src", tmp_path)
    assert not (tmp_path / "src").exists()


def test_figure_alt_text_from_titles():
    import matplotlib.pyplot as plt

    from cvkit.course.figure_alt import figure_alt_text

    fig, ax = plt.subplots(1, 3)
    fig.suptitle("Sobel filters")
    ax[0].set_title("x")
    ax[1].set_title("y")
    assert figure_alt_text(fig) == "Sobel filters: x; y"
    fig2, ax2 = plt.subplots()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("loss")
    assert figure_alt_text(fig2) == "loss against epoch"
    assert figure_alt_text(plt.figure()) == "figure with 0 panels"


@pytest.mark.site
@pytest.mark.notebook
def test_home_page_is_the_readme_course_map(site):
    report, _ = site
    text = html.unescape("".join(_parse((Path(report.out) / "index.html").read_text()).parts))
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d\d) \| ([^|]+) \|", readme, re.M)
    assert len(rows) >= len({p.name[:2] for p in lecture_notebooks(ROOT)})
    for number, lecture in rows:
        assert lecture.strip() in text, lecture


# ---------------------------------------------------------------------------------------------
# tests in the browser


@pytest.mark.site
@pytest.mark.notebook
def test_pages_load_without_errors_or_broken_links(site, server, browser_page):
    """Home, lecture index, every lecture, the assignments and the API index: no console error, no
    request leaving 127.0.0.1, every internal link answers 200 and its #fragment exists."""
    page = browser_page
    report, _ = site
    urls = [
        server,
        f"{server}notebooks/index.html",
        *[_lecture_url(server, p) for p in LECTURES],
        f"{server}api/index.html",
    ]
    urls += [f"{server}{p.page}.html" for p in report.assignments]
    targets: dict[str, _Text | None] = {}
    problems = []
    for url in urls:
        _visit(page, url)
        problems += [f"{url}: console error {e}" for e in page.console_errors]
        problems += [f"{url}: loads {r} from outside the site" for r in page.remote]
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        for href in hrefs:
            if not href.startswith(server):
                continue
            target, _, fragment = href.partition("#")
            if target not in targets:
                try:
                    with urllib.request.urlopen(target, timeout=10) as r:
                        body = r.read().decode("utf-8", "replace")
                    targets[target] = _parse(body) if target.endswith((".html", "/")) else _Text()
                except urllib.error.HTTPError as exc:
                    targets[target] = None
                    problems.append(f"{url}: link to {href} answers {exc.code}")
            parsed = targets[target]
            html_page = parsed is not None and target.endswith((".html", "/"))
            if html_page and fragment and urllib.parse.unquote(fragment) not in parsed.ids:
                problems.append(f"{url}: link to {href}: no element with id {fragment!r}")
    assert len(targets) > len(urls)
    assert not problems, "\n".join(sorted(set(problems))[:40])


@pytest.mark.site
@pytest.mark.notebook
def test_lecture_pages_show_every_figure_with_alt_text(site, server, browser_page):
    """Each executed lecture's page shows at least the figures its notebook produced, each loaded, with
    the figure's titles as alt text, and its smallest text at least MIN_TEXT_PX high at a laptop's width."""
    page = browser_page
    report, executed = site
    shown_total = 0
    problems, sizes = [], []
    for info in report.lectures:
        if info.state != "executed":
            continue
        outputs = _notebook_figures(executed / info.name)
        by_hash = {_image_hash(o): o for o in outputs}
        _visit(page, f"{server}{info.page}.html")
        images = page.eval_on_selector_all("article img", IMAGES_JS)
        shown_total += len(images)
        if len(images) < len(outputs):
            problems.append(f"{info.name}: {len(outputs)} figures in the notebook, {len(images)} on the page")
        for i in images:
            name = i["src"].rsplit("/", 1)[-1]
            if not i["loaded"]:
                problems.append(f"{info.name}: {name} did not load")
            if not i["alt"].strip() or "_images/" in i["alt"]:
                problems.append(f"{info.name}: {name} has no alt text")
            meta = (by_hash.get(name.split(".")[0], {}).get("metadata", {}).get("image/png")) or {}
            if meta.get("alt") and i["alt"] != meta["alt"]:
                problems.append(f"{info.name}: {name} alt {i['alt']!r}, the figure's titles say {meta['alt']!r}")
            if meta.get("min_font_px") and i["loaded"]:
                on_screen = meta["min_font_px"] * i["shown"] / i["natural"]
                sizes.append((on_screen, info.name, meta.get("alt", name)))
                if on_screen < MIN_TEXT_PX:
                    problems.append(
                        f"{info.name}: smallest text {on_screen:.1f} px on screen in {meta.get('alt', name)!r}"
                    )
    assert shown_total > 0 and sizes
    sizes.sort()
    print(
        f"{shown_total} figures; smallest text on screen at {LAPTOP['width']} px: "
        + ", ".join(f"{s[0]:.1f}" for s in sizes[:10])
    )
    assert not problems, "\n".join(problems[:40])


@pytest.mark.site
@pytest.mark.notebook
def test_api_reference_lists_every_public_module(site, server, browser_page):
    page = browser_page
    report, _ = site
    modules = _module_names_on_disk()
    assert "cvkit.data" in modules and len(modules) > 20
    _visit(page, f"{server}api/index.html")
    listed = set(page.eval_on_selector_all("article table a", "els => els.map(a => a.textContent.trim())"))
    missing = [m for m in modules if m not in listed]
    assert not missing, f"not in the API index: {missing}"
    # each module's page has autodoc's target for it (the module imported and was documented)
    undocumented = []
    for name in modules:
        top = ".".join(name.split(".")[:2])
        path = Path(report.out) / "api" / f"{top}.html"
        if not path.is_file() or f'id="module-{name}"' not in path.read_text():
            undocumented.append(name)
    assert not undocumented, f"no autodoc section: {undocumented}"
    _visit(page, f"{server}api/cvkit.runtime.html")
    assert "pick_device" in page.inner_text("article")
    assert not page.console_errors


@pytest.mark.site
@pytest.mark.notebook
def test_search_finds_a_lecture(site, server, browser_page):
    page = browser_page
    _visit(page, f"{server}search.html?q=convolution")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
    assert any("notebooks/02_convolution.html" in h for h in hrefs), hrefs[:10]
    assert not page.console_errors


@pytest.mark.site
def test_main_job_ends_with_the_website(tmp_path):
    """``run_course`` with the site stage (what ``cvkit`` runs) on a one-notebook course: the site is built
    from that run's executed copy, its page names the profile and device and links to Colab and Kaggle,
    the figure carries its title as alt text, and report.md/report.json link to the site."""
    _require_sphinx()
    from functools import partial

    from cvkit.course.main_job import run_course
    from cvkit.site.command import site_stage

    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    colab = "https://colab.research.google.com/github/someone/tiny/blob/main/notebooks/00_tiny.ipynb"
    (course / "README.md").write_text(
        "# tiny: a one-lecture course\n\nOne notebook.\n\n## Course map\n\n| # | lecture | notebooks |\n|---|---|---|\n"
        "| 00 | Tiny | [00_tiny](notebooks/00_tiny.ipynb) |\n\n## Other\n\nnot on the home page\n"
    )
    cells = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": f"# 00 · Tiny\n\n[![Open In Colab](https://x/badge.svg)]({colab})\n",
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": 'PROFILE = "auto"',
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
            "ax.plot([0, 1], [1, 0])\nax.set_title('a falling line')\nplt.show()",
            "outputs": [],
            "execution_count": None,
        },
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # nbformat 4.5 requires cell ids
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (course / "notebooks" / "00_tiny.ipynb").write_text(json.dumps(nb))

    out, site = tmp_path / "out", tmp_path / "site"
    assert run_course("fast", 1, out, root=course, final_stage=partial(site_stage, site=site))
    data = json.loads((out / "report.json").read_text())
    assert data["site"]["ok"] and data["site"]["figures"] == 1 and data["site"]["lectures"][0]["state"] == "executed"
    assert "(../site/index.html)" in (out / "report.md").read_text()
    page = (site / "notebooks" / "00_tiny.html").read_text()
    assert 'alt="a falling line"' in page
    assert (
        f'href="{colab}"' in page
        and "kaggle.com/kernels/welcome?src=https://github.com/someone/tiny/blob/main/" in page
    )
    assert "<b>fast</b> profile on <b>" in page and "badge.svg" not in page
    home = (site / "index.html").read_text()
    assert "notebooks/00_tiny.html" in home and "not on the home page" not in home

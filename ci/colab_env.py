"""A virtual environment pinned to Google Colab's published runtime, to test the student path against it.

    python ci/colab_env.py build   [--venv DIR] [--python PY]   build (or reuse) the pinned venv, print its path
    python ci/colab_env.py install [--venv DIR]                 run the notebooks' setup-cell install, pointed at this checkout
    python ci/colab_env.py check   [--venv DIR]                 exit 1 when that install would change a pinned package
    python ci/colab_env.py run     [--venv DIR] [NOTEBOOK ...]  execute lecture notebooks with the venv's own ipykernel

``ci/colab/pip-freeze.gpu.2026-08.txt`` is ``pip freeze`` of Colab's GPU runtime as Google publishes it
(googlecolab/backend-info, 2026-08-19). The venv holds the packages in :data:`PINNED` at exactly those
versions (``+cu128`` stripped: the same release from PyPI), and everything they pull in is constrained to the
same file, so the Jupyter stack is Colab's: ipykernel 6.17.1, IPython 7.34, ipywidgets 7.7.1, notebook 6.5.7.
The venv is reused while the freeze file, :data:`PINNED` and the interpreter are unchanged (a stamp file
inside it records them); the default location is ``.venv-colab/`` in the checkout (git-ignored).

The install under test is exactly the notebooks' setup cell (``ci/notebooks.py`` generates it from one
template), with the course URL replaced by this checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / "ci" / "colab" / "pip-freeze.gpu.2026-08.txt"
DEFAULT_VENV = ROOT / ".venv-colab"
KERNEL_NAME = "cvkit-colab"
BUILD_STEPS = "pins, kernelspec, ipyevents nbextension"  # part of the stamp: change it when build() changes
COLAB_PYTHON = "3.13"  # the interpreter of the runtime the freeze file describes (Colab moved to 3.13 in August 2026)

# What a lecture touches, at Colab's versions: the numeric stack, the Jupyter stack the front end talks to,
# and the libraries a notebook may compare against when the runtime has them (diffusers, pycocotools).
PINNED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "matplotlib",
    "scikit-image",
    "scikit-learn",
    "pillow",
    "sympy",
    "tqdm",
    "pycocotools",
    "diffusers",
    "packaging",
    "requests",
    "ipykernel",
    "ipython",
    "ipywidgets",
    "widgetsnbextension",
    "jupyterlab-widgets",
    "ipyevents",
    "notebook",
    "jupyter-client",
    "jupyter-core",
    "jupyter-server",
    "traitlets",
    "tornado",
    "pyzmq",
    "matplotlib-inline",
    "nbclient",
    "nbconvert",
    "nbformat",
    "psutil",
    "pip",
    "setuptools",
)


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def freeze_pins(path: Path = FREEZE) -> dict[str, str]:
    """``{normalized name: version}`` for every ``name==version`` line, local versions (``+cu128``) stripped.

    Lines installed from a URL (``google-colab @ file:///...``) have no version on PyPI and are left out.
    """
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line:
            continue
        name, version = line.split("==", 1)
        pins[normalize(name)] = version.split("+", 1)[0].strip()
    return pins


def pinned(path: Path = FREEZE) -> dict[str, str]:
    """The :data:`PINNED` subset of the freeze file: what must not change in the venv."""
    pins = freeze_pins(path)
    missing = [n for n in PINNED if normalize(n) not in pins]
    if missing:
        raise ValueError(f"{path.name} has no pin for {missing}; update PINNED in {Path(__file__).name}")
    return {normalize(n): pins[normalize(n)] for n in PINNED}


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_env() -> dict[str, str]:
    """This process's environment without ``PYTHONPATH`` and ``VIRTUAL_ENV``, for the venv's own processes.

    A checkout on ``$PYTHONPATH`` (the course runner puts one there in-process) would put its ``cvkit`` and its
    egg-info ahead of the venv's site-packages, for imports and for pip alike.
    """
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def stamp(python: str) -> dict:
    """What the venv was built from; a different stamp means rebuild."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
        env=venv_env(),
    ).stdout.strip()
    digest = hashlib.sha256(FREEZE.read_bytes() + "\n".join(PINNED).encode() + BUILD_STEPS.encode()).hexdigest()[:16]
    return {"python": version, "freeze": digest}


def build(venv: Path = DEFAULT_VENV, python: str | None = None, quiet: bool = True) -> Path:
    """Build the pinned venv at ``venv`` (or reuse it when its stamp matches); returns its path.

    Raises:
        subprocess.CalledProcessError: pip could not install the pins (the output says which).
    """
    python = python or os.environ.get("CVKIT_COLAB_PYTHON") or sys.executable
    want = stamp(python)
    stamp_file = venv / "cvkit-colab-stamp.json"
    if stamp_file.is_file() and venv_python(venv).exists():
        try:
            if json.loads(stamp_file.read_text()) == want:
                return venv
        except ValueError:
            pass
    if venv.exists():
        shutil.rmtree(venv)
    tic = time.perf_counter()
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pins = pinned()
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "colab-constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in transitive_constraints(want["python"]).items()))
        q = ["-q"] if quiet else []
        py = str(venv_python(venv))
        subprocess.run([py, "-m", "pip", "install", *q, f"pip=={pins['pip']}"], check=True, env=venv_env(), cwd=tmp)
        subprocess.run(
            [py, "-m", "pip", "install", *q, "-c", str(constraints), *(f"{n}=={v}" for n, v in pins.items())],
            check=True,
            env=venv_env(),
            cwd=tmp,
        )
        # Colab's kernel, under its own name so that no other python3 kernelspec on the machine is picked up.
        subprocess.run(
            [
                py,
                "-m",
                "ipykernel",
                "install",
                "--sys-prefix",
                "--name",
                KERNEL_NAME,
                "--display-name",
                "Python 3 (Colab pins)",
            ],
            check=True,
            capture_output=True,
            env=venv_env(),
        )
        # The classic Notebook front end (the browser tests' stand-in for Colab's) loads ipyevents' JavaScript from
        # share/jupyter/nbextensions, which its wheel does not fill; Colab loads it through its own widget manager.
        subprocess.run(
            [py, "-m", "notebook.nbextensions", "install", "--py", "--sys-prefix", "ipyevents"],
            check=True,
            capture_output=True,
            env=venv_env(),
        )
    changed = drift(venv)
    if changed:
        raise RuntimeError(f"the venv does not hold Colab's pins: {changed}")
    stamp_file.write_text(json.dumps(want))
    print(f"built {venv} in {time.perf_counter() - tic:.0f} s (python {want['python']})")
    return venv


def transitive_constraints(python_version: str) -> dict[str, str]:
    """Colab's versions for the packages the pins pull in, where this interpreter can install them.

    On Colab's Python (:data:`COLAB_PYTHON`) every package is constrained to the freeze file. On another
    Python some of Colab's versions have no wheel (tifffile 2026.8 needs 3.12+), so only :data:`PINNED` is
    held and the rest follow the pins' own requirements. CUDA libraries and triton always follow torch:
    Colab's torch is the cu128 build from PyTorch's index, PyPI's build of the same release needs others.
    """
    if ".".join(python_version.split(".")[:2]) != COLAB_PYTHON:
        return {}
    return {n: v for n, v in freeze_pins().items() if not n.startswith(("nvidia-", "cuda-", "triton"))}


def installed(venv: Path) -> dict[str, str]:
    """``{normalized name: version}`` of every distribution in the venv."""
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}))"
    out = subprocess.run(
        [str(venv_python(venv)), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=venv_env(),
        cwd=tempfile.gettempdir(),
    ).stdout
    return {normalize(k): v.split("+", 1)[0] for k, v in json.loads(out).items()}


def drift(venv: Path) -> dict[str, tuple[str, str | None]]:
    """Pinned packages whose installed version differs from Colab's: ``{name: (pinned, installed)}``."""
    have = installed(venv)
    return {n: (v, have.get(n)) for n, v in pinned().items() if have.get(n) != v}


def setup_cell_source(target: Path = ROOT, pip_options: tuple[str, ...] = ()) -> str:
    """The notebooks' setup cell, with the course's git URL replaced by ``target`` (this checkout or a wheel
    built from it) as a ``file://`` URL, and ``pip_options`` added to its pip command."""
    sys.path.insert(0, str(ROOT / "ci"))
    import notebooks as nbtools  # ci/notebooks.py: the one template every notebook's setup cell comes from

    return nbtools.setup_cell(source=f"{nbtools.DISTRIBUTION} @ {target.resolve().as_uri()}", pip_options=pip_options)


def clean_copy(dest: Path) -> Path:
    """The files git would commit from this checkout (tracked and new, not ignored), copied into ``dest``.

    What a student's ``git+https`` install clones: building from the working folder itself would let setuptools
    reuse a stale ``build/lib`` (modules deleted from the tree stay in it).
    """
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(venv: Path, out: Path) -> Path:
    """A wheel of this checkout (what pip builds from the git URL on Colab), written into ``out``."""
    source = clean_copy(out / "source")
    subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        env=venv_env(),
        cwd=tempfile.gettempdir(),
    )
    return next(out.glob("cvkit_course-*.whl"))


def run_setup_cell(
    venv: Path, dry_run_report: Path | None = None, target: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the setup cell's code in the venv's Python, with cvkit not installed, as a fresh runtime would.

    ``target`` replaces the course's git URL; by default a clean copy of this checkout (:func:`clean_copy`).

    With ``dry_run_report``, pip resolves but installs nothing and writes its ``--report`` there: the cell's
    one pip command gets ``--dry-run --report FILE`` and nothing else of the cell changes. Point ``target`` at
    a wheel then (:func:`build_wheel`).

    Raises:
        RuntimeError: cvkit is still importable in the venv after ``pip uninstall`` (the cell would do nothing).
    """
    py = str(venv_python(venv))
    env = venv_env()
    probe = "import importlib.util as u; s = u.find_spec('cvkit'); print(s and (s.origin or list(s.submodule_search_locations)))"
    with tempfile.TemporaryDirectory() as empty:
        # pip uninstall takes the first cvkit-course on sys.path: with a checkout on $PYTHONPATH or as the
        # working folder, that is the checkout's egg-info, which pip refuses to touch, and the venv's copy stays.
        gone = subprocess.run(
            [py, "-m", "pip", "uninstall", "-y", "cvkit-course", "cvkit"],
            capture_output=True,
            text=True,
            env=env,
            cwd=empty,
            check=False,
        )
        left = subprocess.run([py, "-c", probe], capture_output=True, text=True, env=env, cwd=empty, check=False)
    if left.stdout.strip() != "None":
        raise RuntimeError(
            f"cvkit is still importable in {venv} after pip uninstall ({left.stdout.strip()}{left.stderr.strip()}); "
            f"pip said: {gone.stdout.strip()} {gone.stderr.strip()[-2000:]}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        # an empty working folder: `import cvkit` must find the installed package, never a source tree
        work = Path(tmp) / "work"
        work.mkdir()
        target = target or clean_copy(Path(tmp) / "clone")
        options = ("--dry-run", "--report", str(dry_run_report)) if dry_run_report is not None else ()
        code = setup_cell_source(target, options)
        return subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=work, check=False)


def changes(report: dict) -> list[str]:
    """Pinned packages that pip's ``--report`` would install at another version, as ``"name old -> new"``."""
    pins = pinned()
    out = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name, version = normalize(meta.get("name", "")), meta.get("version", "")
        if name in pins and version.split("+", 1)[0] != pins[name]:
            out.append(f"{name} {pins[name]} -> {version}")
    return out


def run_notebooks(venv: Path, paths: list[Path], out: Path, timeout: int = 600) -> list[dict]:
    """Execute notebooks with ``jupyter nbconvert --execute`` from the venv and its own kernel.

    Returns one ``{"name", "ok", "seconds", "error"}`` per notebook (in order).
    """
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in venv_env().items() if k not in ("CVKIT_HEADLESS", "MPLBACKEND", "JUPYTER_PATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    results = []
    for path in paths:
        tic = time.perf_counter()
        proc = subprocess.run(
            [
                str(venv / "bin" / "jupyter"),
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                str(path),
                "--output-dir",
                str(out),
                f"--ExecutePreprocessor.kernel_name={KERNEL_NAME}",
                f"--ExecutePreprocessor.timeout={timeout}",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=path.parent,
            check=False,
        )
        seconds = time.perf_counter() - tic
        error = "" if proc.returncode == 0 else proc.stderr[-3000:]
        results.append({"name": path.name, "ok": proc.returncode == 0, "seconds": round(seconds, 1), "error": error})
        print(f"{'ok  ' if proc.returncode == 0 else 'FAIL'} {path.name} {seconds:.1f} s", flush=True)
        if error:
            print(error, flush=True)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("build", "install", "check", "run", "pins"))
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument(
        "--python", default=None, help="interpreter for the venv (default: $CVKIT_COLAB_PYTHON or this one)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "colab-notebooks")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "pins":
        for n, v in pinned().items():
            print(f"{n}=={v}")
        return 0
    venv = build(args.venv, args.python, quiet=True)
    if args.command == "build":
        print(venv)
        return 0
    if args.command == "check":
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            proc = run_setup_cell(venv, dry_run_report=report, target=build_wheel(venv, Path(tmp)))
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr)
                return 1
            data = json.loads(report.read_text())
        wanted = sorted(f"{i['metadata']['name']} {i['metadata']['version']}" for i in data.get("install", []))
        found = changes(data)
        print("the setup cell would install:", ", ".join(wanted))
        print("pinned packages it would change:", ", ".join(found) or "none")
        return 1 if found else 0
    if args.command == "install":
        proc = run_setup_cell(venv)
        print(proc.stdout + proc.stderr)
        return proc.returncode
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    results = run_notebooks(venv, [p.resolve() for p in paths], args.out, args.timeout)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    failed = [r["name"] for r in results if not r["ok"]]
    print(
        f"{len(results) - len(failed)} passed, {len(failed)} failed {failed or ''}; {sum(r['seconds'] for r in results):.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

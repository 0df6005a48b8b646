#!/usr/bin/env bash
# Prepare the folder .gpu/ that one `device` call carries (see run.sh): Python 3.12 wheels of what the GPU machine's
# image lacks (the Jupyter stack papermill needs, pycocotools, and pytest for TESTS=1), at the versions this
# checkout's .venv has, and Fashion-MNIST's four files. Run from the repository root, after ci/install.sh. About 45
# MiB; the limit of what travels is 64 MiB together with the tracked tree (11 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.gpu/" >>.git/info/exclude; }
mkdir -p .gpu/whl .gpu/data
# the image has torch, torchvision, torchmetrics, matplotlib, scipy, scikit-image, psutil, pyyaml, jinja2 (see the
# device tool's KINDS.md); debugpy (ipykernel imports it only if present) and widgetsnbextension (classic
# Notebook's front end) are left out to save 6 MiB
NAMES="papermill nbclient nbformat jupyter_client jupyter_core ipykernel ipython traitlets tornado pyzmq comm
matplotlib-inline prompt_toolkit jedi parso pexpect ptyprocess stack-data executing asttokens
pure_eval wcwidth ipython_pygments_lexers fastjsonschema jsonschema jsonschema-specifications referencing rpds-py
platformdirs tenacity entrypoints ipywidgets jupyterlab_widgets pycocotools pytest pluggy iniconfig"
for name in $NAMES; do
    version=$(.venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 \
        -d .gpu/whl "$name==$version"
done
src=$(.venv/bin/python -c "from cvkit.data import locate_fashion_mnist; print(locate_fashion_mnist(download=False).directory)")
mkdir -p .gpu/data/fashion-mnist && cp "$src"/*-ubyte.gz .gpu/data/fashion-mnist/
du -sh .gpu

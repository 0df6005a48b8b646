#!/usr/bin/env bash
# Install cvkit and everything the course needs into ./.venv. A fresh machine needs only Python >= 3.10.
#
#   bash ci/install.sh            # what the README's first command and CI run
#
# - torch and torchvision come together from the package registry, unpinned: pinning torch to a
#   local CPU-only wheel breaks `import torchvision` (no CPU build of torchvision exists on PyPI).
#   The CUDA builds (about 4.8 GB) run fine on a CPU-only machine.
# - Fashion-MNIST for offline use comes from Debian's dataset-fashion-mnist package when apt is
#   available; elsewhere torchvision downloads it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

# The torchvision trap: a venv that already held the CPU-only torch keeps it, and torchvision then
# fails with "operator torchvision::nms does not exist". Reinstall both from the registry if so.
if ! .venv/bin/python -c "import torch, torchvision.ops; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)" 2>/dev/null; then
  echo "torchvision cannot run with the installed torch; reinstalling torch and torchvision together"
  .venv/bin/python -m pip install --quiet --upgrade --force-reinstall torch torchvision
  .venv/bin/python -c "import torch, torchvision.ops; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)"
fi

FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$FMNIST" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="skip"; fi
  fi
  if [ "$SUDO" = "skip" ]; then
    echo "note: not root; install Fashion-MNIST for offline use with: sudo apt-get install dataset-fashion-mnist"
  else
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; } \
      || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST will be downloaded on first use"
  fi
fi

.venv/bin/cvkit doctor

#!/usr/bin/env bash
# Install cvkit and everything the course needs into ./.venv. A fresh machine needs only Python >= 3.10.
#
#   bash ci/install.sh            # what the README's first command and CI run
#
# - torch and torchvision come together from the package registry, unpinned: pinning torch to a
#   local CPU-only wheel breaks `import torchvision` (no CPU build of torchvision exists on PyPI).
#   The CUDA builds (about 4.8 GB) run fine on a CPU-only machine.
# - Debian packages where apt is available (as root): dataset-fashion-mnist (offline Fashion-MNIST; elsewhere
#   torchvision downloads it on first use), chromium (browser tests), bubblewrap (sandboxed grading).
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

# Debian packages: Fashion-MNIST for offline use, Chromium for the browser tests (Playwright drives it; its own
# browser download cannot work offline), bubblewrap to sandbox each submission at autograding.
APT_PACKAGES=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || APT_PACKAGES+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || APT_PACKAGES+=(chromium)
command -v bwrap >/dev/null 2>&1 || APT_PACKAGES+=(bubblewrap)
if [ ${#APT_PACKAGES[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="skip"; fi
  fi
  if [ "$SUDO" = "skip" ]; then
    echo "note: not root; for offline data, browser tests and sandboxed grading run: sudo apt-get install ${APT_PACKAGES[*]}"
  else
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null; } \
      || echo "note: could not install ${APT_PACKAGES[*]}; Fashion-MNIST will be downloaded on first use, browser tests and sandboxing need them"
  fi
fi

.venv/bin/cvkit doctor

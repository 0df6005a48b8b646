"""Jupyter kernels that talk over Unix sockets in a private folder instead of TCP ports.

jupyter_client picks free TCP ports, releases them and lets the kernel bind them; two kernels
started at the same moment (``cvkit run -j``, ``cvkit autograde -j``) can race for a port, and
every kernel warns that its TCP traffic is unencrypted. With the ``ipc`` transport each kernel's
sockets are files in a folder only this run uses, so neither happens. Windows has no Unix
sockets there, so it keeps TCP.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def private_kernel_sockets() -> Iterator[dict[str, str]]:
    """Settings for ``KernelManager`` that put the kernel's sockets in a fresh private folder.

    Yields:
        ``{"transport": "ipc", "ip": "<folder>/k"}`` on POSIX (apply them to the
        ``KernelManager`` config class); ``{}`` elsewhere. The folder is removed on exit. Its
        path is short (under the system temp folder) because socket names are limited to about
        100 bytes.
    """
    if os.name != "posix":
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="cvkit-kernel-"))
    try:
        yield {"transport": "ipc", "ip": str(folder / "k")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Find the uv the owner installed and lock with it, for the copy and update hooks (stdlib only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def find_uv() -> str | None:
    """uv installed beside copier (`pip install copier uv`) first, else on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    uv = shutil.which("uv")
    if uv is not None and f"{os.sep}shims{os.sep}" in uv and shutil.which("pyenv"):
        # A pyenv shim run inside the project would look for uv in the Python its
        # .python-version names, where uv is usually not installed: resolve it here.
        found = subprocess.run(["pyenv", "which", "uv"], cwd=Path.home(), capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return found.stdout.strip()
    return uv


def lock(uv: str, project: Path) -> subprocess.CompletedProcess[str] | None:
    """Run `uv lock` in `project`, its output captured; None when it timed out."""
    try:
        return subprocess.run([uv, "lock", "--quiet"], cwd=project, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None

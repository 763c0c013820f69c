"""Run once after `copier update` has merged the template's changes: keep uv.lock true.

An update may change pyproject.toml (a new dev tool, a bumped pin), and the
service's CI installs with `UV_LOCKED`, which fails on a stale lock. copier runs
tasks before it merges the owner's edits back in (and in its two scratch
copies), so this runs as an "after" migration instead: once, in the project,
on the merged pyproject.toml. `uv lock` keeps every pin it can and is a no-op
when the lock already matches, so running it again changes nothing.

Best effort, like the copy hook: the update itself has already been applied,
so a problem here is a message that says what to run, never a failed update.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from uv_tool import find_uv, lock

CONFLICT_MARKER = re.compile(r"^(<<<<<<<|=======|>>>>>>>)( |$)", re.MULTILINE)
STALE_LOCK = "uv.lock no longer matches pyproject.toml"


def refresh_lock(project: Path) -> str:
    """Bring uv.lock in line with pyproject.toml; return what happened, for the owner."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return "no pyproject.toml: nothing to lock"
    if CONFLICT_MARKER.search(pyproject.read_text(encoding="utf-8")):
        return f"pyproject.toml has conflict markers: resolve them, then run `uv lock` ({STALE_LOCK} until then)"
    uv = find_uv()
    if uv is None:
        return f"uv not found: run `uv lock` and commit uv.lock with the update ({STALE_LOCK} until then)"
    before = (project / "uv.lock").read_bytes() if (project / "uv.lock").is_file() else b""
    done = lock(uv, project)
    if done is None:
        return f"`uv lock` timed out: run it again and commit uv.lock with the update ({STALE_LOCK} until then)"
    if done.returncode != 0:
        return f"`uv lock` failed: fix pyproject.toml and run it again\n{done.stderr.strip()}"
    if (project / "uv.lock").read_bytes() == before:
        return "uv.lock already matches pyproject.toml"
    return "uv.lock refreshed for the updated pyproject.toml: review it and commit it with the update"


def main() -> int:
    print(f"After update: {refresh_lock(Path.cwd())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

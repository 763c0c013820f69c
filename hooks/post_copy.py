"""Run once after `copier copy`: put the new service under git and lock its dependencies.

`copier update` needs the project in a git repository, and the service's CI
installs from uv.lock (`UV_LOCKED`). Both steps are best-effort: without git
or uv the copy still succeeds and the message says what to run. Stdlib only:
copier runs this with its own interpreter. Safe to run again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from uv_tool import find_uv, lock


def lock_dependencies(project: Path) -> None:
    if (project / "uv.lock").exists():
        return
    uv = find_uv()
    if uv is None:
        print("uv not found: run `uv lock` and commit uv.lock before pushing (CI installs from it)", file=sys.stderr)
        return
    done = lock(uv, project)
    if done is None or done.returncode != 0:
        print("`uv lock` failed: run it again and commit uv.lock before pushing", file=sys.stderr)
        if done is not None:
            print(done.stderr.strip(), file=sys.stderr)


def initialise_git(project: Path) -> None:
    if shutil.which("git") is None:
        print("git not found: run `git init` before `copier update`", file=sys.stderr)
        return
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], cwd=project, check=True)
    print(f"Initialised a git repository in {project}", file=sys.stderr)


def main() -> int:
    project = Path.cwd()
    initialise_git(project)
    lock_dependencies(project)
    return 0


if __name__ == "__main__":
    sys.exit(main())

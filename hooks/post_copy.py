"""Run once after `copier copy`: put the new service under git.

`copier update` needs the project in a git repository. Stdlib only: copier
runs this with its own interpreter. Safe to run again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    project = Path.cwd()
    if shutil.which("git") is None:
        print("git not found: run `git init` before `copier update`", file=sys.stderr)
        return 0
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return 0
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], cwd=project, check=True)
    print(f"Initialised a git repository in {project}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throwaway git repositories of this template, tagged as a user's copy would see them.

copier renders a tag of a git repository and `copier update` moves a service
from one tag to another. These helpers build such repositories without
touching this one: a snapshot of the work tree (uncommitted changes included,
which is what the suite tests), or a clone that keeps the real history so that
earlier commits of main can be tagged and rendered.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import judges

CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)  # only at a line start


def git(cwd: Path, *args: str) -> str:
    done = judges.run(["git", *args], cwd)
    judges.assert_passes(done, f"git {args[0]}")
    return done.stdout


def copier(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = judges.run([sys.executable, "-m", "copier", *args], cwd)
    judges.assert_passes(done, f"copier {args[0]}")
    return done


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "--message", message)


def copy_work_tree(destination: Path) -> None:
    """Every file of this work tree that git would commit, as it is on disk now."""
    listed = git(judges.REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = judges.REPO_ROOT / name
        if source.is_file():  # tracked files deleted in the work tree are listed too
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)


def snapshot_repo(repo: Path, tag: str) -> Path:
    """The work tree as the only commit of a new repository, tagged `tag`."""
    repo.mkdir(parents=True)
    copy_work_tree(repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_all(repo, f"Template {tag}")
    git(repo, "tag", tag)
    return repo


def history_repo(repo: Path, baselines: dict[str, str], head_tag: str) -> Path:
    """A clone of this repository's history with `baselines` (commit -> tag) tagged, and
    the work tree committed on top as `head_tag`.

    The clone takes no tags from here (CI clones may have none, a developer's
    may have different ones): only the tags given exist in it.
    """
    git(judges.REPO_ROOT.parent, "clone", "--quiet", "--no-tags", "--no-local", str(judges.REPO_ROOT), str(repo))
    for commit, tag in baselines.items():
        git(repo, "tag", tag, commit)
    git(repo, "checkout", "--quiet", "-B", "main")
    git(repo, "rm", "-r", "--quiet", "--cached", ".")
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    copy_work_tree(repo)
    commit_all(repo, f"Template {head_tag}: the work tree under test")
    git(repo, "tag", head_tag)
    return repo


# ---------------------------------------------------------------- what copier left in a service
def answers(project: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def project_files(root: Path) -> dict[str, Path]:
    """Every file of a service by its relative name, git's own files aside."""
    return {
        str(path.relative_to(root)): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def conflicted_files(project: Path) -> list[str]:
    """Files an update left with conflict markers, and its .rej files."""
    return [
        name
        for name, path in project_files(project).items()
        if path.suffix == ".rej" or CONFLICT_MARKER.search(path.read_text(errors="replace"))
    ]

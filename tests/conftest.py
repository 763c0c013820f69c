"""Suite-wide setup: which template is rendered, a git identity for the commits tests make,
and the directory the xdist workers share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from judges import REPO_ROOT
from once import run_dir

# The cost table at the end of every run; pytester tests it.
pytest_plugins = ["cost_summary", "pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # pytest-copie renders --template, "." by default: pin it to this repository
    # (absolute, so copier records a path a later `copier update` can follow).
    config.option.template = str(REPO_ROOT)
    # copier, pytest-copie and the update tests commit; a fresh machine has no identity.
    configured = subprocess.run(
        ["git", "config", "user.email"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not configured:
        for role in ("AUTHOR", "COMMITTER"):
            os.environ.setdefault(f"GIT_{role}_NAME", "Template Tests")
            os.environ.setdefault(f"GIT_{role}_EMAIL", "template-tests@example.com")


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The directory all xdist workers of this run share: where once() builds."""
    return run_dir(tmp_path_factory, worker_id)

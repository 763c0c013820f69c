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


# Cheap gates first, so a broken render fails in the first minute: clean output, then ruff,
# then the outside judges; mypy, the services' own suites and the modules that build from
# history last, in collection order. Each gate stays a test. Replayed through xdist's load
# scheduling with the durations of a full run, the order changes no wall time (610 s vs 611 s).
ORDER = {
    "test_ruff_finds_nothing": 1,
    "test_code_is_ruff_formatted": 1,
    "test_cfn_lint_accepts_templates": 2,
    "test_sam_validate_lint_passes": 2,
    "test_actionlint_accepts_workflows": 2,
    "test_zizmor_finds_nothing": 2,
    "test_checkov_finds_nothing": 2,
    "test_mypy_strict_passes_as_make_typecheck_runs_it": 3,
    "test_generated_test_suite_passes": 3,
}
SLOW_MODULES = ("test_update_history.py", "test_template_sync.py", "test_update.py", "test_bootstrap.py")


def cost_rank(item: pytest.Item) -> int:
    if item.path.name == "test_render_matrix.py":
        return ORDER.get(item.originalname if isinstance(item, pytest.Function) else item.name, 0)
    return 3 if item.path.name in SLOW_MODULES else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=cost_rank)  # stable: within a rank, collection order

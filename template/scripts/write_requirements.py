"""Write src/requirements.txt, what `sam build` installs, from pyproject.toml.

Only the runtime dependencies go in: the Lambda runtime already has boto3,
and dev tools must never reach the deployment package. A function that needs
more (MigrateFunction: the migration tool) gets its own file, the runtime
dependencies plus its dependency group.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "src" / "requirements.txt"
# Dependency group -> the requirements file of the function that installs it as well.
GROUP_REQUIREMENTS = {"migrate": ROOT / "src" / "requirements-migrate.txt"}
HEADER = (
    "# Generated from pyproject.toml [project].dependencies by `make requirements`;\n"
    "# tests/unit/test_requirements.py fails when the two drift.\n"
)


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def runtime_dependencies() -> list[str]:
    return sorted(str(dependency) for dependency in _pyproject()["project"].get("dependencies", []))


def render(group: str | None = None) -> str:
    dependencies = runtime_dependencies()
    if group is not None:
        dependencies = sorted(dependencies + [str(d) for d in _pyproject()["dependency-groups"][group]])
    return HEADER + "".join(f"{dependency}\n" for dependency in dependencies)


def files() -> dict[Path, str]:
    """Every requirements file this project needs, and what it must hold."""
    groups = _pyproject().get("dependency-groups", {})
    wanted = {REQUIREMENTS: render()}
    wanted.update({path: render(group) for group, path in GROUP_REQUIREMENTS.items() if group in groups})
    return wanted


if __name__ == "__main__":
    for path, text in files().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")

"""Write src/requirements.txt, what `sam build` installs, from pyproject.toml.

Only the runtime dependencies go in: the Lambda runtime already has boto3,
and dev tools must never reach the deployment package.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "src" / "requirements.txt"
HEADER = (
    "# Generated from pyproject.toml [project].dependencies by `make requirements`;\n"
    "# tests/unit/test_requirements.py fails when the two drift.\n"
)


def runtime_dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        project = tomllib.load(stream)["project"]
    return sorted(str(dependency) for dependency in project.get("dependencies", []))


def render() -> str:
    return HEADER + "".join(f"{dependency}\n" for dependency in runtime_dependencies())


if __name__ == "__main__":
    REQUIREMENTS.write_text(render(), encoding="utf-8")
    print(f"wrote {REQUIREMENTS.relative_to(ROOT)}")

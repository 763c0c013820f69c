"""make invoke: the handler's response alone on stdout, logs on stderr, exit code 1 when it raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def invoke(event_file: Path) -> subprocess.CompletedProcess[str]:
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


@pytest.mark.parametrize("name", ["valid", "duplicate", "poison", "malformed"])
def test_every_sample_event_runs_locally_with_only_the_response_on_stdout(name: str) -> None:
    result = invoke(ROOT / "events" / f"{name}.json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert '"level":"INFO"' in result.stderr, "every sample event leaves a log line"


def test_a_handler_that_raises_exits_non_zero_with_the_traceback_on_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    result = invoke(broken)
    assert (result.returncode, result.stdout) == (1, "")
    assert "Traceback" in result.stderr


def test_an_unreadable_event_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(tmp_path / "missing.json")
    assert (result.returncode, result.stdout) == (2, "")
    assert "cannot read" in result.stderr

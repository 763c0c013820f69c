"""scripts/recover_stack.sh, which the deploy workflow runs before `sam deploy`.

AWS is not reachable from here: an `aws` stand-in on PATH answers describe-stacks as
CloudFormation would and records every call, so the script's decisions are what is tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
STACK = "svc-staging"
ROLE = "arn:aws:iam::123456789012:role/cfn-exec-svc-staging"

FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "${CALLS}"
if [[ "$1 $2" == "cloudformation describe-stacks" ]]; then
  if [[ -n "${DESCRIBE_ERROR}" ]]; then echo "${DESCRIBE_ERROR}" >&2; exit 254; fi
  echo "${STACK_STATUS}"
fi
"""


def recover(
    tmp_path: Path, status: str = "", describe_error: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS, encoding="utf-8")
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "STACK_STATUS": status,
        "DESCRIBE_ERROR": describe_error,
    }
    bash = shutil.which("bash")
    assert bash is not None, "the deploy workflow runs the script with bash"
    result = subprocess.run(  # noqa: S603 - our own script, with a stand-in aws on PATH
        [bash, str(ROOT / "scripts" / "recover_stack.sh"), STACK, ROLE],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    return result, calls.read_text(encoding="utf-8").splitlines()


def test_a_stack_whose_first_deploy_rolled_back_is_deleted_with_the_execution_role(tmp_path: Path) -> None:
    result, calls = recover(tmp_path, status="ROLLBACK_COMPLETE")
    assert result.returncode == 0, result.stderr
    assert calls[1:] == [
        f"cloudformation delete-stack --stack-name {STACK} --role-arn {ROLE}",
        f"cloudformation wait stack-delete-complete --stack-name {STACK}",
    ]


@pytest.mark.parametrize(
    "status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"]
)
def test_a_stack_in_any_other_state_is_left_alone(tmp_path: Path, status: str) -> None:
    result, calls = recover(tmp_path, status=status)
    assert result.returncode == 0, result.stderr
    assert [call.split()[1] for call in calls] == ["describe-stacks"]


def test_a_stack_that_does_not_exist_yet_is_left_to_the_deploy(tmp_path: Path) -> None:
    missing = (
        "An error occurred (ValidationError) when calling the DescribeStacks operation: "
        f"Stack with id {STACK} does not exist"
    )
    result, calls = recover(tmp_path, describe_error=missing)
    assert result.returncode == 0, result.stderr
    assert len(calls) == 1


def test_any_other_describe_failure_stops_the_deploy(tmp_path: Path) -> None:
    denied = "An error occurred (AccessDenied) when calling the DescribeStacks operation: not authorized"
    result, calls = recover(tmp_path, describe_error=denied)
    assert result.returncode != 0
    assert "AccessDenied" in result.stderr
    assert len(calls) == 1

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

# After continue-update-rollback, the stack reads ROLLBACK_RESULT and the waiter succeeds only
# when that is UPDATE_ROLLBACK_COMPLETE (the waiter fails on UPDATE_ROLLBACK_FAILED).
FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "${CALLS}"
case "$1 $2" in
  "cloudformation describe-stacks")
    if [[ -n "${DESCRIBE_ERROR}" ]]; then echo "${DESCRIBE_ERROR}" >&2; exit 254; fi
    if [[ -n "${DESCRIBE_WARNING}" ]]; then echo "${DESCRIBE_WARNING}" >&2; fi
    if grep -q continue-update-rollback "${CALLS}"; then echo "${ROLLBACK_RESULT}"; else echo "${STACK_STATUS}"; fi
    ;;
  "cloudformation wait")
    if [[ "$3" == stack-rollback-complete && "${ROLLBACK_RESULT}" != UPDATE_ROLLBACK_COMPLETE ]]; then exit 255; fi
    ;;
esac
"""


def recover(
    tmp_path: Path,
    status: str = "",
    describe_error: str = "",
    rollback_result: str = "UPDATE_ROLLBACK_COMPLETE",
    describe_warning: str = "",
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
        "DESCRIBE_WARNING": describe_warning,
        "ROLLBACK_RESULT": rollback_result,
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


@pytest.mark.parametrize(
    ("status", "recovery"),
    [
        pytest.param(
            "ROLLBACK_COMPLETE",
            [
                f"cloudformation delete-stack --stack-name {STACK} --role-arn {ROLE}",
                f"cloudformation wait stack-delete-complete --stack-name {STACK}",
            ],
            id="a-first-deploy-that-rolled-back-is-deleted",
        ),
        pytest.param(
            "UPDATE_ROLLBACK_FAILED",
            [
                f"cloudformation continue-update-rollback --stack-name {STACK} --role-arn {ROLE}",
                f"cloudformation wait stack-rollback-complete --stack-name {STACK}",
            ],
            id="a-failed-rollback-is-continued",
        ),
    ],
)
def test_a_stuck_stack_is_recovered_with_the_execution_role(tmp_path: Path, status: str, recovery: list[str]) -> None:
    result, calls = recover(tmp_path, status=status)
    assert result.returncode == 0, result.stderr
    assert calls[1:] == recovery


def test_a_warning_of_the_cli_does_not_hide_a_rolled_back_first_deploy(tmp_path: Path) -> None:
    warning = "urllib3 NotOpenSSLWarning: urllib3 v2 only supports OpenSSL 1.1.1+"
    result, calls = recover(tmp_path, status="ROLLBACK_COMPLETE", describe_warning=warning)
    assert result.returncode == 0, result.stderr
    assert f"cloudformation delete-stack --stack-name {STACK} --role-arn {ROLE}" in calls


def test_a_rollback_that_fails_again_stops_the_deploy_with_the_command_that_skips_the_resource(
    tmp_path: Path,
) -> None:
    result, _ = recover(tmp_path, status="UPDATE_ROLLBACK_FAILED", rollback_result="UPDATE_ROLLBACK_FAILED")
    assert result.returncode != 0
    assert "is UPDATE_ROLLBACK_FAILED again" in result.stderr
    skip = f"aws cloudformation continue-update-rollback --stack-name {STACK} --role-arn {ROLE} --resources-to-skip"
    assert skip in result.stderr


def test_a_first_deploy_whose_cleanup_failed_stops_the_deploy_with_the_delete_command(tmp_path: Path) -> None:
    result, calls = recover(tmp_path, status="ROLLBACK_FAILED")
    assert result.returncode != 0
    assert f"aws cloudformation delete-stack --stack-name {STACK} --role-arn {ROLE}" in result.stderr
    assert [call.split()[1] for call in calls] == ["describe-stacks"], "a person decides what to delete"


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"])
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

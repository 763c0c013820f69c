"""End-to-end tests run against a deployed stack: STACK_NAME=<stack> make e2e.

Skipped unless STACK_NAME is set; they need AWS credentials allowed to use
the stack's resources (the staging deploy role, or your own).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import boto3
import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("STACK_NAME"):
        return
    skip = pytest.mark.skip(reason="set STACK_NAME to run end-to-end tests against a deployed stack")
    for item in items:
        if "e2e" in item.nodeid.split("/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def outputs() -> dict[str, str]:
    [stack] = boto3.client("cloudformation").describe_stacks(StackName=os.environ["STACK_NAME"])["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def eventually[T](probe: Callable[[], T | None], timeout_seconds: float = 60, interval_seconds: float = 2) -> T:
    """Poll until ``probe`` returns a value: deployed systems are eventually consistent."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout_seconds} s")
        time.sleep(interval_seconds)


def unique(prefix: str) -> str:
    return f"{prefix}-e2e-{int(time.time() * 1000)}"

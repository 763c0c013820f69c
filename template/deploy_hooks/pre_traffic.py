"""CodeDeploy's PreTraffic hook: probe the version being deployed before it takes traffic.

CodeDeploy invokes this function once per deployment, after the new version is
published and before any of the alias ``live`` moves to it. Each probe in
probes.json is an event the service answers without side effects, and the part
of the answer a healthy version gives. A function error, an unexpected answer or
a failed invoke reports ``Failed``: CodeDeploy stops, the alias never moves, and
CloudFormation rolls the stack back. The result is always reported, because an
unreported hook holds the deployment until CodeDeploy gives up an hour later.

Where the service has a schema (``MIGRATE_FUNCTION``, the migrate function's
version published with this deployment), the hook applies its migrations first:
a failed migration fails the deployment before any probe, and before any traffic.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# A probe answers in milliseconds; waiting longer only delays a failed deployment.
PROBE_TIMEOUT_SECONDS = int(os.environ["PROBE_TIMEOUT_SECONDS"])
# One attempt: a probe that timed out or was throttled is a failed probe, not one to repeat.
lambda_client = boto3.client(
    "lambda",
    config=Config(connect_timeout=5, read_timeout=PROBE_TIMEOUT_SECONDS, retries={"total_max_attempts": 1}),
)
codedeploy = boto3.client("codedeploy", config=Config(retries={"mode": "standard", "max_attempts": 5}))
# A migration may take minutes; it runs once, and a failed one is for a person to look at, not to repeat.
MIGRATE_TIMEOUT_SECONDS = int(os.environ.get("MIGRATE_TIMEOUT_SECONDS", "300"))
migrate_client = boto3.client(
    "lambda",
    config=Config(connect_timeout=5, read_timeout=MIGRATE_TIMEOUT_SECONDS + 10, retries={"total_max_attempts": 1}),
)


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    event: dict[str, Any]
    expect: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What Lambda returned: the function's error type, if it failed, and its payload."""

    function_error: str | None
    payload: Any


Invoke = Callable[[Probe], Answer]

PROBES = [Probe(**probe) for probe in json.loads(Path(__file__).with_name("probes.json").read_text(encoding="utf-8"))]


def differences(expected: Any, actual: Any, where: str = "answer") -> list[str]:
    """Where ``actual`` departs from ``expected``; keys that ``expected`` does not name are ignored."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where} is {json.dumps(actual)[:200]}, not an object"]
        return [
            difference
            for key, value in expected.items()
            for difference in (
                differences(value, actual[key], f"{where}.{key}") if key in actual else [f"{where}.{key} is missing"]
            )
        ]
    if expected != actual:
        return [f"{where} is {json.dumps(actual)[:200]}, expected {json.dumps(expected)}"]
    return []


def problems_with(probes: list[Probe], invoke: Invoke) -> list[str]:
    """Every way the new version failed the probes; empty when it answered each one as expected."""
    problems = []
    for probe in probes:
        try:
            answer = invoke(probe)
        except Exception as error:
            # Throttled, denied, timed out: the probe failed, and the hook still reports.
            problems.append(f"{probe.name}: the new version could not be invoked: {error}")
            continue
        if answer.function_error:
            problems.append(f"{probe.name}: the new version failed ({answer.function_error}): {answer.payload}")
        else:
            problems += [f"{probe.name}: {difference}" for difference in differences(probe.expect, answer.payload)]
    return problems


def invoke_version(version_arn: str) -> Invoke:
    def invoke(probe: Probe) -> Answer:
        response = lambda_client.invoke(
            FunctionName=version_arn, InvocationType="RequestResponse", Payload=json.dumps(probe.event).encode()
        )
        body = response["Payload"].read()
        return Answer(response.get("FunctionError"), json.loads(body) if body else None)

    return invoke


def migration_problems(migrate_version_arn: str) -> list[str]:
    """Apply the schema migrations of the version being deployed; what went wrong, if anything."""
    try:
        response = migrate_client.invoke(
            FunctionName=migrate_version_arn, InvocationType="RequestResponse", Payload=b"{}"
        )
    except Exception as error:
        return [f"migrations: the migrate function could not be invoked: {error}"]
    body = response["Payload"].read().decode("utf-8", errors="replace")
    if response.get("FunctionError"):
        return [f"migrations failed ({response['FunctionError']}): {body[:500]}"]
    logger.info("Migrations applied by %s: %s", migrate_version_arn, body[:500])
    return []


def lambda_handler(event: dict[str, Any], context: object) -> None:
    version_arn = os.environ.get("NEW_VERSION", "")
    migrate_version_arn = os.environ.get("MIGRATE_FUNCTION", "")
    problems = migration_problems(migrate_version_arn) if migrate_version_arn else []
    # After a failed migration the new version would meet a schema it was not written for: no probe.
    if not problems and version_arn:
        logger.info("Probing %s", version_arn)
        problems = problems_with(PROBES, invoke_version(version_arn))
    elif not problems:
        problems = ["NEW_VERSION is not set: there is no version to probe"]
    for problem in problems:
        logger.error("Probe failed: %s", problem)
    status: Literal["Failed", "Succeeded"] = "Failed" if problems else "Succeeded"
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    logger.info("Reported %s to CodeDeploy after %d probes", status, len(PROBES))

"""The pre-traffic hook: its probes against the real handler, and what it reports to CodeDeploy.

The handler runs in-process against emulated AWS, as in the other integration
tests. Lambda's Invoke and CodeDeploy's PutLifecycleEventHookExecutionStatus
cannot run here (moto's invoke needs Docker; moto has no lifecycle hooks), so
those two calls go through botocore's Stubber, which checks every request
against the services' own API models.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from cfn_template import Resolver, resources_of_type
from emulated_aws import LOCAL_ACCOUNT_ID, LOCAL_REGION, LOCAL_STACK_NAME, LocalContext

NEW_VERSION = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{LOCAL_STACK_NAME}:7"
HOOK_EVENT = {"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "hook-execution-1"}


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The hook module as Lambda starts it, with the environment template.yaml gives it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", LOCAL_REGION)
    monkeypatch.setenv("NEW_VERSION", NEW_VERSION)
    monkeypatch.setenv("PROBE_TIMEOUT_SECONDS", "15")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    sys.modules.pop("pre_traffic", None)
    yield importlib.import_module("pre_traffic")
    sys.modules.pop("pre_traffic", None)


def lambda_answers(stub: Stubber, *payloads: Any, function_error: str | None = None) -> None:
    """Queue what Lambda's Invoke returns, one payload per probe, in order."""
    for payload in payloads:
        body = json.dumps(payload).encode()
        response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
        if function_error:
            response["FunctionError"] = function_error
        stub.add_response(
            "invoke",
            response,
            {"FunctionName": NEW_VERSION, "InvocationType": "RequestResponse", "Payload": ANY},
        )


def expect_report(stub: Stubber, status: str) -> None:
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": HOOK_EVENT["LifecycleEventHookExecutionId"]},
        {
            "deploymentId": HOOK_EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": HOOK_EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        },
    )


def run_hook(hook: ModuleType, answer: Any, status: str, function_error: str | None = None) -> None:
    with Stubber(hook.lambda_client) as lambda_stub, Stubber(hook.codedeploy) as codedeploy_stub:
        lambda_answers(lambda_stub, *[answer(probe) for probe in hook.PROBES], function_error=function_error)
        expect_report(codedeploy_stub, status)
        hook.lambda_handler(HOOK_EVENT, LocalContext())
        lambda_stub.assert_no_pending_responses()
        codedeploy_stub.assert_no_pending_responses()


def nothing_stored(aws: Resolver) -> dict[str, int]:
    """How many items each table holds and how many messages each queue: all zero when nothing was written."""
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    counts = {
        logical_id: dynamodb.scan(TableName=aws.physical_ids[logical_id], Select="COUNT")["Count"]
        for logical_id in resources_of_type(aws.template, "AWS::DynamoDB::Table")
    }
    for logical_id in resources_of_type(aws.template, "AWS::SQS::Queue"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=aws.physical_ids[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        counts[logical_id] = int(attributes["ApproximateNumberOfMessages"])
    if "DATABASE_HOST" in os.environ:
        # PostgreSQL: the service's tables, in the test database conftest.py migrated.
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
            for table in ("orders", "idempotency_records"):
                row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
                counts[table] = 0 if row is None else int(row[0])
    return counts


def test_every_probe_gets_the_expected_answer_from_the_handler_and_writes_nothing(
    aws: Resolver, handler: ModuleType, context: LocalContext, hook: ModuleType
) -> None:
    def invoke_in_process(probe: Any) -> Any:
        try:
            # Lambda hands the function a JSON document and returns its JSON answer.
            payload = handler.lambda_handler(json.loads(json.dumps(probe.event)), context)
        except Exception as error:
            return hook.Answer("Unhandled", {"errorType": type(error).__name__, "errorMessage": str(error)})
        return hook.Answer(None, json.loads(json.dumps(payload)))

    assert hook.problems_with(hook.PROBES, invoke_in_process) == []
    assert set(nothing_stored(aws).values()) == {0}


def test_a_version_that_answers_every_probe_as_expected_lets_traffic_shift(hook: ModuleType) -> None:
    run_hook(hook, lambda probe: probe.expect, "Succeeded")


def test_a_version_that_raises_fails_the_deployment(hook: ModuleType) -> None:
    crash = {"errorType": "ImportModuleError", "errorMessage": "No module named 'yaml'"}
    run_hook(hook, lambda probe: crash, "Failed", function_error="Unhandled")


def test_a_version_that_answers_otherwise_fails_the_deployment(hook: ModuleType) -> None:
    run_hook(hook, lambda probe: {"statusCode": 500, "batchItemFailures": [{"itemIdentifier": "x"}]}, "Failed")


def test_a_version_that_cannot_be_invoked_fails_the_deployment(hook: ModuleType) -> None:
    with Stubber(hook.lambda_client) as lambda_stub, Stubber(hook.codedeploy) as codedeploy_stub:
        for _ in hook.PROBES:
            lambda_stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        expect_report(codedeploy_stub, "Failed")
        hook.lambda_handler(HOOK_EVENT, LocalContext())
        codedeploy_stub.assert_no_pending_responses()


def test_the_hook_reports_failed_when_it_does_not_know_the_version(
    hook: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEW_VERSION")
    with Stubber(hook.lambda_client), Stubber(hook.codedeploy) as codedeploy_stub:
        expect_report(codedeploy_stub, "Failed")
        hook.lambda_handler(HOOK_EVENT, LocalContext())
        codedeploy_stub.assert_no_pending_responses()


def test_a_failed_probe_says_which_probe_and_what_came_back(hook: ModuleType) -> None:
    [probe, *_] = hook.PROBES
    problems = hook.problems_with([probe], lambda _: hook.Answer(None, {"statusCode": 500}))
    assert problems
    assert all(problem.startswith(f"{probe.name}: answer.") for problem in problems)

"""Safe deployments: the new version is probed before it takes traffic, and checking staging fires no alarm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cfn_template import resources_of_type, the_function

ROOT = Path(__file__).resolve().parent.parent.parent
PROBES = json.loads((ROOT / "deploy_hooks" / "probes.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def hook(template: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    hook_id = function["DeploymentPreference"]["Hooks"]["PreTraffic"]["Ref"]
    assert hook_id != the_function(template)[0], "a hook that deploys with the function cannot judge it"
    hook: dict[str, Any] = template["Resources"][hook_id]["Properties"]
    return hook


def hook_statements(template: dict[str, Any], hook: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"][hook["Role"]["Fn::GetAtt"][0]]["Properties"]
    return [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def test_codedeploy_probes_the_new_version_before_it_takes_traffic(hook: dict[str, Any]) -> None:
    # AWSCodeDeployRoleForLambda may invoke only functions named CodeDeployHook_*.
    assert hook["FunctionName"] == {"Fn::Sub": "CodeDeployHook_${AWS::StackName}"}
    assert hook["Environment"]["Variables"]["NEW_VERSION"] == {"Ref": "Function.Version"}
    assert "DeploymentPreference" not in hook, "a hook must take effect at once, not shift gradually itself"
    assert "AutoPublishAlias" not in hook
    assert PROBES, "deploy_hooks/probes.json holds the events the new version must answer"


def test_the_hook_may_only_invoke_this_function_and_report_to_codedeploy(
    template: dict[str, Any], hook: dict[str, Any]
) -> None:
    grants = sorted(
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for statement in hook_statements(template, hook)
        for action in statement["Action"]
    )
    log_group = {"Fn::GetAtt": [hook["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
    expected = [
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
        ("lambda:InvokeFunction", {"Fn::Sub": "${Function.Arn}:*"}),
        ("codedeploy:PutLifecycleEventHookExecutionStatus", "*"),
    ]
    if "MIGRATE_FUNCTION" in hook["Environment"]["Variables"]:
        # Versions of the migrate function, which the hook runs before its probes.
        expected.append(("lambda:InvokeFunction", {"Fn::Sub": "${MigrateFunction.Arn}:*"}))
    assert grants == sorted((action, json.dumps(resource, sort_keys=True)) for action, resource in expected)
    role = template["Resources"][hook["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert role["RoleName"] == {"Fn::Sub": "${AWS::StackName}-pre-traffic"}
    assert "PermissionsBoundary" in role
    assert "ManagedPolicyArns" not in role


def test_the_hook_keeps_its_logs_and_has_time_to_report_after_every_probe(
    template: dict[str, Any], hook: dict[str, Any]
) -> None:
    log_group = template["Resources"][hook["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/CodeDeployHook_${AWS::StackName}"}
    assert log_group["RetentionInDays"] > 0
    probe_timeout = int(hook["Environment"]["Variables"]["PROBE_TIMEOUT_SECONDS"])
    # Migrations, where there are any, run first and may take their whole timeout.
    migrate_timeout = int(hook["Environment"]["Variables"].get("MIGRATE_TIMEOUT_SECONDS", 0))
    # An unreported hook holds the deployment for an hour: the last probe must end in time.
    assert hook["Timeout"] > migrate_timeout + len(PROBES) * probe_timeout


def test_the_staging_smoke_test_leaves_the_dead_letter_queues_alone(template: dict[str, Any]) -> None:
    # A message in a dead-letter queue sets off its depth alarm: the smoke test must never
    # put one there, nor take one out that an incident left behind.
    queues = resources_of_type(template, "AWS::SQS::Queue").values()
    dead_letter_queues = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in queues
        if "RedrivePolicy" in queue["Properties"]
    }
    outputs = [
        name
        for name, output in template["Outputs"].items()
        if output["Value"] in [{"Ref": queue} for queue in dead_letter_queues]
    ]
    smoke_test = (ROOT / "tests" / "e2e" / "test_deployed.py").read_text(encoding="utf-8")
    assert [name for name in outputs if name in smoke_test] == []

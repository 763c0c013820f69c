"""The production readiness checklist, read from template.yaml so it keeps holding as the service changes.

Each test names the checklist item it protects. A failure here means an edit
removed a safeguard: restore it, or change the test with a reason in review.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cfn_template import deployment_steps, resources_of_type

ROOT = Path(__file__).resolve().parent.parent.parent
# Resource types that accept tags; every one must carry the cost-allocation tag.
TAGGABLE = {
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::EC2::VPCEndpoint",
}
# CodeDeploy fills it with the version being deployed.
NEW_VERSION = {"Fn::GetAtt": ["Function", "Version.Version"]}
# AWS offers no resource-level permissions for these actions.
ACTIONS_THAT_REQUIRE_STAR = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# Nor for this one, which Lambda calls with the role of a function in a VPC (VpcConfig), and only then.
VPC_ACTIONS_THAT_REQUIRE_STAR = {"ec2:DescribeNetworkInterfaces"}


def role_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    return [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def tag_value(tags: Any, key: str) -> Any:
    if isinstance(tags, dict):
        return tags.get(key)
    return next((tag["Value"] for tag in tags or [] if tag["Key"] == key), None)


def test_the_function_has_one_clear_responsibility(template: dict[str, Any]) -> None:
    functions = set(resources_of_type(template, "AWS::Serverless::Function"))
    assert len(functions - deployment_steps(template)) == 1, "one function serves the trigger; hooks only probe it"


def test_timeout_and_memory_are_configured_intentionally(function: dict[str, Any]) -> None:
    assert isinstance(function["Timeout"], int)
    assert 1 <= function["Timeout"] <= 900
    assert isinstance(function["MemorySize"], int)
    assert 128 <= function["MemorySize"] <= 10240


def test_logs_are_structured_json_with_a_retention(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    log_group = template["Resources"][function["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["RetentionInDays"] > 0


def test_tracing_is_active_without_the_xray_sdk_in_the_package(function: dict[str, Any]) -> None:
    assert function["Tracing"] == "Active"
    shipped = (ROOT / "src" / "requirements.txt").read_text(encoding="utf-8").lower()
    assert "aws-xray-sdk" not in shipped


def test_recursive_loops_are_terminated(function: dict[str, Any]) -> None:
    assert function["RecursiveLoop"] == "Terminate"


def metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads: its own, or each one of its metric math."""
    if "MetricName" in alarm:
        return [alarm]
    return [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]


def test_deploys_go_through_an_alias_and_roll_back_on_the_new_versions_alarms(
    function: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    assert function["AutoPublishAlias"]
    preference = function["DeploymentPreference"]
    assert preference["Type"]
    watched = [alarms[reference["Ref"]] for reference in preference["Alarms"]]
    assert "Errors" in {metric["MetricName"] for alarm in watched for metric in metrics_of(alarm)}
    for alarm in watched:
        for metric in metrics_of(alarm):
            versions = [dimension["Value"] for dimension in metric["Dimensions"]]
            assert NEW_VERSION in versions, "a rollback alarm must watch the new version, not the whole function"


def test_the_rollback_alarm_counts_the_new_versions_failures_and_not_one_bad_request(
    function: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    assert {"Ref": "NewVersionErrorsAlarm"} in function["DeploymentPreference"]["Alarms"]
    alarm = alarms["NewVersionErrorsAlarm"]
    through_the_alias = {"Fn::Sub": "${Function}:live"}
    for metric in metrics_of(alarm):
        dimensions = {dimension["Name"]: dimension["Value"] for dimension in metric["Dimensions"]}
        assert dimensions["ExecutedVersion"] == NEW_VERSION
        assert dimensions["Resource"] == through_the_alias
    assert {metric["MetricName"] for metric in metrics_of(alarm)} == {"Errors", "Invocations"}
    # One bad request or message is one error in one minute: it must take more than that.
    assert alarm["DatapointsToAlarm"] >= 2
    [expression] = [query["Expression"] for query in alarm["Metrics"] if "Expression" in query]
    minimum = re.search(r"IF\(errors >= (\d+),", expression)
    assert minimum, f"a minute counts only from a minimum number of errors: {expression}"
    assert int(minimum.group(1)) >= 2
    assert "AlarmActions" not in alarm, "CodeDeploy acts on it; a failed deployment is the signal"


def test_the_function_uses_its_own_least_privilege_role(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert "Policies" not in function, "SAM policy templates would add a second, broader role policy"
    role = template["Resources"][function["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role, "AWS managed policies grant actions on every resource"
    for statement in role_statements(template, function):
        actions = statement["Action"]
        assert all("*" not in action for action in actions), f"{statement['Sid']}: name each action"
        if statement["Resource"] == "*":
            allowed = ACTIONS_THAT_REQUIRE_STAR | (VPC_ACTIONS_THAT_REQUIRE_STAR if "VpcConfig" in function else set())
            assert set(actions) <= allowed, f"{statement['Sid']}: name the resource"


def test_the_reviewed_policy_is_the_deployed_policy(template: dict[str, Any], function: dict[str, Any]) -> None:
    reviewed = json.loads((ROOT / "policies" / "function-policy.json").read_text(encoding="utf-8"))
    assert reviewed["Statement"] == role_statements(template, function)


def test_secrets_are_not_in_environment_variables(function: dict[str, Any]) -> None:
    names = function["Environment"]["Variables"]
    assert not [name for name in names if re.search(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL", name)]


def test_errors_throttles_and_duration_alarm_to_the_alarm_topic(
    function: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    notifying = [alarm for alarm in alarms.values() if alarm.get("AlarmActions") == [{"Ref": "AlarmTopic"}]]
    on_function = {alarm["MetricName"] for alarm in notifying if alarm.get("Namespace") == "AWS/Lambda"}
    assert on_function >= {"Errors", "Throttles", "Duration"}
    [duration] = [alarm for alarm in notifying if alarm.get("MetricName") == "Duration"]
    assert duration["Threshold"] < function["Timeout"] * 1000, "alarm before the timeout kills invocations"


def test_reserved_concurrency_is_watched_when_it_is_reserved(
    function: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    reserved = function.get("ReservedConcurrentExecutions")
    watching = [alarm for alarm in alarms.values() if alarm.get("MetricName") == "ConcurrentExecutions"]
    if reserved:
        assert [alarm["Threshold"] <= reserved for alarm in watching] == [True]
    else:
        assert watching == []


def test_the_alarm_topic_uses_a_key_cloudwatch_and_budgets_can_use(template: dict[str, Any]) -> None:
    # The topic the alarms notify; the service may own other topics.
    topic = template["Resources"]["AlarmTopic"]
    key_reference = topic["Properties"]["KmsMasterKeyId"]
    assert key_reference != "alias/aws/sns", "alarms are dropped silently on the AWS managed key"
    key = template["Resources"][key_reference["Ref"]]["Properties"]
    principals = set()
    for statement in key["KeyPolicy"]["Statement"]:
        if "kms:GenerateDataKey*" in statement["Action"]:
            principals.update(statement["Principal"].get("Service", []))
    assert principals >= {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    assert key["EnableKeyRotation"] is True


def test_each_stages_budget_counts_only_its_service_and_stage(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    [budget] = resources_of_type(template, "AWS::Budgets::Budget").values()
    data = budget["Properties"]["Budget"]
    assert "CostFilters" not in data, "CostFilters is deprecated: use FilterExpression and Metrics"
    tag_filters = {
        condition["Tags"]["Key"]: condition["Tags"]["Values"] for condition in data["FilterExpression"]["And"]
    }
    assert tag_filters == {"service": [function["Tags"]["service"]], "stage": [function["Tags"]["stage"]]}
    assert data["Metrics"] == ["UnblendedCost"]
    subscribers = [
        subscriber["Address"]
        for notification in budget["Properties"]["NotificationsWithSubscribers"]
        for subscriber in notification["Subscribers"]
    ]
    assert subscribers
    assert all(address == {"Ref": "AlarmTopic"} for address in subscribers)


def test_the_budget_can_be_changed_after_it_is_created(template: dict[str, Any]) -> None:
    [budget] = resources_of_type(template, "AWS::Budgets::Budget").values()
    # Its name and notifications are create-only: a change replaces the budget, and a
    # replacement under the same fixed name fails as a duplicate.
    assert "BudgetName" not in budget["Properties"]["Budget"]


def test_tables_are_retained_recoverable_and_encrypted(template: dict[str, Any]) -> None:
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    for logical_id, table in tables.items():
        assert table["DeletionPolicy"] in {"Retain", "RetainExceptOnCreate"}, logical_id
        assert table["UpdateReplacePolicy"] == "Retain", logical_id
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert properties["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert properties["BillingMode"] == "PAY_PER_REQUEST", logical_id


def test_idempotency_records_expire(template: dict[str, Any], function: dict[str, Any]) -> None:
    if "IdempotencyTable" not in template["Resources"]:
        # The records live in the database, claimed in the order's own transaction (test_database.py).
        assert "IDEMPOTENCY_TABLE_NAME" not in function["Environment"]["Variables"]
        return
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_every_taggable_resource_carries_both_cost_tags(template: dict[str, Any], function: dict[str, Any]) -> None:
    # Each stage's budget counts what carries service AND stage.
    expected = {"service": function["Tags"]["service"], "stage": {"Ref": "Stage"}}
    untagged = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in TAGGABLE
        and {key: tag_value(resource["Properties"].get("Tags"), key) for key in expected} != expected
    ]
    assert untagged == []

"""The bootstrap stack gives a push to main no path to account admin, in every combination.

Reads the rendered bootstrap/template.yaml (and the service's template.yaml) as CloudFormation
and checks the policies as IAM evaluates them: wildcards in actions and resources, conditions,
explicit denies. The rules hold for whatever statements a new source adds:

- a role gains permissions only under the stage's permissions boundary, and keeps it;
- the boundary administers nothing (IAM, KMS key policies, Organizations, STS);
- no statement may call every API in the account;
- deploy roles cannot import (adopt) existing resources; KMS keys, HTTP APIs and event source
  mappings are reached only when they belong to the stage;
- the pipeline can recover its own stack, and only its own.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

import judges
from cfn_template import load_template
from test_render_matrix import MATRIX, Combination, Service
from test_render_matrix import render as _render  # noqa: F401 - the render matrix's fixture, requested by name

ACCOUNT = "123456789012"
GRANTING_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:PutRolePermissionsBoundary",
)
BOUNDARY_EDITS = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
STAGES = {"staging": "staging", "prod": "production"}  # stage -> GitHub environment
# Which Lambda actions take the condition key lambda:FunctionArn: only these three (Lambda developer
# guide, "Resources and conditions for Lambda actions", and the Service Authorization Reference for
# Lambda). A condition on the key in a statement of any other action never matches.
LAMBDA_ACTIONS_WITH_FUNCTION_ARN_KEY = frozenset(
    {"lambda:CreateEventSourceMapping", "lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"}
)
LAMBDA_ACTIONS_WITHOUT_FUNCTION_ARN_KEY = (
    "lambda:GetEventSourceMapping",
    "lambda:ListEventSourceMappings",
    "lambda:ListTags",
    "lambda:TagResource",
    "lambda:UntagResource",
)
# What CloudFormation's AWS::KMS::Key handler calls on an existing key (create, read, update, delete
# handlers of its registry schema, as cfn-lint bundles it), plus the alias operations of AWS::KMS::Alias.
KEY_MANAGEMENT_ACTIONS = (
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# AWS limits (IAM quotas): a managed policy, and all inline policies of a role, without whitespace.
MANAGED_POLICY_LIMIT = 6144
INLINE_POLICIES_LIMIT = 10240


@pytest.fixture(params=[pytest.param(c, id=c.id) for c in MATRIX])
def service(request: pytest.FixtureRequest) -> Service:
    """Each combination of the render matrix, rendered once per run and shared with its gates."""
    render: Callable[[Combination], Service] = request.getfixturevalue("_render")
    return render(request.param)


# ---------------------------------------------------------------- reading CloudFormation
# The rendered service's own reader (template/scripts/cfn_template.py, on pytest's pythonpath):
# the suite reads a template exactly as the service's readiness tests do.
load = load_template


@dataclass(frozen=True)
class Stack:
    """What the bootstrap names for one stage, and how its CloudFormation values resolve."""

    service: str
    stage: str
    region: str

    @property
    def name(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def boundary_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:policy/boundary-{self.name}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}"


class Resolver:
    """Turns !Sub, !Ref and !GetAtt of a template into the strings AWS would see."""

    def __init__(self, template: dict[str, Any], stack: Stack, partition: str = "aws") -> None:
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.stack = stack
        self.pseudo = {
            "AWS::Partition": partition,
            "AWS::Region": stack.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack.name,
            "AWS::URLSuffix": "amazonaws.com",
            "Stage": stack.stage,
            # Parameters whose values have a shape the boundary relies on (AllowedPattern).
            "DbProxyResourceId": "prx-0123456789abcdef0",
        }

    def generated(self, name: str) -> str:
        """A name CloudFormation or SAM generates: the stack name, the logical id, a suffix."""
        return f"{self.stack.name}-{name}-1A2B3C4D"

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        function, _, qualifier = name.partition(".")
        if qualifier in ("Version", "Alias") and function in self.resources:  # SAM: the version or alias ARN
            return self.stack.arn(
                "lambda", f"function:{self.ref(function)}:{'7' if qualifier == 'Version' else 'live'}"
            )
        if name not in self.resources:  # created by the SAM transform
            return self.generated(name)
        resource = self.resources[name]
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{self.pseudo['AWS::Partition']}:iam::{ACCOUNT}:policy/{self(properties['ManagedPolicyName'])}"
        if kind == "AWS::Serverless::HttpApi":
            return "a1b2c3d4e5"  # generated by API Gateway
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return str(self(properties.get("FunctionName", self.generated(name))))
        if kind == "AWS::SNS::Topic":
            return self.stack.arn("sns", self(properties.get("TopicName", self.generated(name))))
        if kind == "AWS::SecretsManager::Secret":  # Secrets Manager appends six random characters
            secret_name = self(properties.get("Name", self.generated(name)))
            return self.stack.arn("secretsmanager", f"secret:{secret_name}-AbCdEf")
        return self.generated(name)

    def get_att(self, name: str, attribute: str) -> str:
        if name not in self.resources:
            return self.generated(name)
        resource = self.resources[name]
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function") and attribute == "Arn":
            return self.stack.arn("lambda", f"function:{self.ref(name)}")
        if resource["Type"] == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{self.pseudo['AWS::Partition']}:iam::{ACCOUNT}:role/{self(properties['RoleName'])}"
        if resource["Type"] == "AWS::S3::Bucket" and attribute == "Arn":
            # A service's own bucket is named in its template; otherwise, the bootstrap's artifacts.
            if "BucketName" in properties:
                return f"arn:{self.pseudo['AWS::Partition']}:s3:::{self(properties['BucketName'])}"
            return "arn:aws:s3:::artifact-bucket"
        if resource["Type"] == "AWS::DynamoDB::Table" and attribute == "Arn":
            return self.stack.arn("dynamodb", f"table/{self(properties['TableName'])}")
        if resource["Type"] == "AWS::SQS::Queue" and attribute == "Arn":
            return self.stack.arn("sqs", self(properties["QueueName"]))
        if resource["Type"] == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return self.stack.arn("dynamodb", f"table/{self(properties['TableName'])}/stream/2026-01-01T00:00:00.000")
        if resource["Type"] == "AWS::Kinesis::Stream" and attribute == "Arn":
            return self.stack.arn("kinesis", f"stream/{self(properties['Name'])}")
        if resource["Type"] == "AWS::Logs::LogGroup" and attribute == "Arn":
            return self.stack.arn("logs", f"log-group:{self(properties['LogGroupName'])}:*")
        return f"{name}.{attribute}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            return self.get_att(*value["Fn::GetAtt"])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                return self.get_att(*name.split(".", 1)) if "." in name else self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {key: self(item) for key, item in value.items()}


# ---------------------------------------------------------------- reading IAM
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, dict[str, Any]]

    def covers_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in self.not_actions)
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in self.actions)

    def covers_resource(self, arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in self.resources)

    def covers(self, action: str, arn: str) -> bool:
        return self.covers_action(action) and self.covers_resource(arn)

    def value(self, operator: str, key: str) -> list[str]:
        """The values a condition operator compares `key` with, or [] without that test."""
        return [str(v) for v in as_list(self.condition.get(operator, {}).get(key, []))]


def statements(document: dict[str, Any]) -> list[Statement]:
    return [
        Statement(
            sid=str(raw.get("Sid", "")),
            effect=raw["Effect"],
            actions=tuple(as_list(raw.get("Action", []))),
            not_actions=tuple(as_list(raw.get("NotAction", []))),
            resources=tuple(as_list(raw.get("Resource", []))),
            condition=raw.get("Condition", {}),
        )
        for raw in as_list(document["Statement"])
    ]


@dataclass(frozen=True)
class Policy:
    """One principal's statements (a role's inline policies, or a managed policy)."""

    name: str
    statements: list[Statement]

    def allowing(self, action: str, arn: str | None = None) -> list[Statement]:
        return [
            s
            for s in self.statements
            if s.effect == "Allow" and s.covers_action(action) and (arn is None or s.covers_resource(arn))
        ]

    def denies_always(self, action: str, arn: str) -> bool:
        return any(s.effect == "Deny" and not s.condition and s.covers(action, arn) for s in self.statements)


@dataclass(frozen=True)
class Bootstrap:
    template: dict[str, Any]
    stack: Stack
    execution: Policy
    deploy: Policy
    boundary: Policy


def named(template: dict[str, Any], kind: str, key: str, name: str) -> tuple[str, dict[str, Any]]:
    found = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind and resource.get("Properties", {}).get(key) == name
    ]
    assert len(found) == 1, f"bootstrap/template.yaml has no single {kind} with {key} {name}"
    return found[0]


def role_policy(template: dict[str, Any], resolve: Resolver, role_name: str) -> Policy:
    _, role = named(template, "AWS::IAM::Role", "RoleName", role_name)
    documents = [resolve(p["PolicyDocument"]) for p in role["Properties"].get("Policies", [])]
    return Policy(role_name, [s for document in documents for s in statements(document)])


def bootstraps(service: Service) -> Iterator[Bootstrap]:
    template = load(service.project / "bootstrap" / "template.yaml")
    for stage in STAGES:
        stack = Stack(service.answers["service_name"], stage, service.answers["aws_region"])
        resolve = Resolver(template, stack)
        boundaries = [
            resource
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::IAM::ManagedPolicy"
            and resource["Properties"].get("ManagedPolicyName") == f"boundary-{stack.name}"
        ]
        boundary = boundaries[0] if boundaries else {"Properties": {"PolicyDocument": {"Statement": []}}}
        yield Bootstrap(
            template,
            stack,
            execution=role_policy(template, resolve, f"cfn-exec-{stack.name}"),
            deploy=role_policy(template, resolve, f"github-deploy-{stack.name}"),
            boundary=Policy(f"boundary-{stack.name}", statements(resolve(boundary["Properties"]["PolicyDocument"]))),
        )


def bootstrap_policies(service: Service) -> Iterator[tuple[Bootstrap, Policy]]:
    for stage in bootstraps(service):
        yield stage, stage.execution
        yield stage, stage.deploy


def minified_size(document: Any) -> int:
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"))))


# ---------------------------------------------------------------- 1. the permissions boundary
def test_no_statement_creates_or_changes_a_role_without_the_boundary(service: Service) -> None:
    for stage, policy in bootstrap_policies(service):
        for action in GRANTING_ROLE_ACTIONS:
            for statement in policy.allowing(action):
                required = statement.value("StringEquals", "iam:PermissionsBoundary") or statement.value(
                    "ArnEquals", "iam:PermissionsBoundary"
                )
                assert required == [stage.stack.boundary_arn], (
                    f"{policy.name} statement {statement.sid!r} allows {action} without requiring the "
                    f"permissions boundary {stage.stack.boundary_arn} (condition: {statement.condition})"
                )
        if policy is stage.execution:
            function_role = stage.stack.role_arn(f"{stage.stack.name}-function")
            assert policy.allowing("iam:CreateRole", function_role), "the execution role can no longer create roles"
            named(stage.template, "AWS::IAM::ManagedPolicy", "ManagedPolicyName", f"boundary-{stage.stack.name}")


def test_roles_keep_the_boundary_and_nobody_edits_it(service: Service) -> None:
    for stage in bootstraps(service):
        role = stage.stack.role_arn(f"{stage.stack.name}-function")
        assert stage.execution.denies_always("iam:DeleteRolePermissionsBoundary", role), "a role can lose its boundary"
        for action in BOUNDARY_EDITS:
            assert stage.execution.denies_always(action, stage.stack.boundary_arn), f"{action} on the boundary"
            for policy in (stage.deploy, stage.boundary):
                assert not policy.allowing(action, stage.stack.boundary_arn), f"{policy.name} allows {action}"


def test_the_boundary_administers_nothing(service: Service) -> None:
    for stage in bootstraps(service):
        boundary = stage.boundary
        for action in (
            "iam:CreateRole",
            "iam:PassRole",
            "iam:PutRolePolicy",
            "organizations:LeaveOrganization",
            "sts:AssumeRole",
            "kms:PutKeyPolicy",
            "kms:CreateGrant",
            "kms:ScheduleKeyDeletion",
        ):
            assert boundary.denies_always(action, "*"), f"the boundary does not deny {action}"
        for statement in boundary.statements:
            if statement.effect == "Allow":
                assert "*" not in statement.actions, f"{statement.sid} allows every action"
                assert not any(a.lower().startswith(("iam:", "organizations:", "sts:")) for a in statement.actions)


def test_every_role_the_service_creates_carries_the_stage_boundary(service: Service) -> None:
    template = load(service.project / "template.yaml")
    for stage in bootstraps(service):
        resolve = Resolver(template, stage.stack)
        for logical_id, resource in template["Resources"].items():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Role":
                assert resolve(properties.get("PermissionsBoundary")) == stage.stack.boundary_arn, logical_id
            if resource["Type"] == "AWS::Serverless::Function":
                # Without an explicit role SAM generates one, with managed policies on "*".
                assert "Role" in properties or "PermissionsBoundary" in properties, logical_id


def test_the_boundary_allows_what_the_service_roles_are_given(service: Service) -> None:
    template = load(service.project / "template.yaml")
    for stage in bootstraps(service):
        resolve = Resolver(template, stage.stack)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            role_arn = stage.stack.role_arn(resolve(resource["Properties"]["RoleName"]))
            for document in resource["Properties"].get("Policies", []):
                for granted in statements(resolve(document["PolicyDocument"])):
                    for action in granted.actions:
                        for arn in granted.resources:
                            allowed = [
                                s
                                for s in stage.boundary.allowing(action)
                                if any(fnmatch.fnmatchcase(arn, p) for p in s.resources)
                                and s.value("ArnEquals", "aws:PrincipalArn") in ([], [role_arn])
                            ]
                            assert allowed, f"{logical_id} is given {action} on {arn}, which the boundary refuses"
                            assert not stage.boundary.denies_always(action, arn), f"{logical_id}: {action} denied"


# Permissions a resource type's handler lists (registry schemas, as cfn-lint bundles them) that
# CloudFormation calls only when a resource sets the property named here: the execution role is not
# given them, and the test fails once the template sets the property.
HANDLER_PERMISSIONS_OF_UNUSED_PROPERTIES: dict[str, dict[str, tuple[str, ...]]] = {
    "AWS::DynamoDB::Table": {
        # Without a key id, SSE uses the AWS managed key, whose key policy lets the account use it
        # through DynamoDB (DynamoDB developer guide, encryption at rest).
        "SSESpecification.KMSMasterKeyId": (
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:RevokeGrant",
        ),
        "KinesisStreamSpecification": ("kinesis:DescribeStream", "kinesis:PutRecords"),
        "ImportSourceSpecification": ("s3:GetObjectMetadata", "s3:ListBucket"),
        "ContributorInsightsSpecification": ("iam:CreateServiceLinkedRole",),
    },
    # Without a key, a bus encrypts with an AWS owned key; without a Policy, it has no resource
    # policy to put (EventBridge user guide, "Data encryption in EventBridge"; the bus's registry schema).
    "AWS::Events::EventBus": {
        "KmsKeyIdentifier": (
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ),
        "Policy": ("events:PutPermission",),
    },
    "AWS::Lambda::EventSourceMapping": {"KmsKeyArn": ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey")},
    "AWS::Lambda::Function": {
        "VpcConfig": (
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
        ),
        "FileSystemConfigs": ("elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets"),
        "KmsKeyArn": ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"),
    },
    "AWS::Logs::LogGroup": {"DataProtectionPolicy": ("firehose:TagDeliveryStream",)},
    # The S3 source's bucket keeps no metadata table (S3 Tables); its replication role is the only role it would pass.
    "AWS::S3::Bucket": {
        "MetadataTableConfiguration": (
            "s3tables:CreateNamespace",
            "s3tables:CreateTable",
            "s3tables:CreateTableBucket",
            "s3tables:GetTable",
            "s3tables:GetTableMetadataLocation",
            "s3tables:PutTableBucketPolicy",
            "s3tables:PutTableEncryption",
            "s3tables:PutTablePolicy",
            "s3tables:UpdateTableMetadataLocation",
        ),
        "ReplicationConfiguration": ("iam:PassRole",),
    },
    # A gateway endpoint joins no VPC Lattice service network and serves its own region only.
    "AWS::EC2::VPCEndpoint": {
        "ServiceNetworkArn": (
            "vpc-lattice:CreateServiceNetworkVpcEndpointAssociation",
            "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation",
        ),
        "ServiceRegion": ("vpce:AllowMultiRegion",),
    },
    # The function URL's webhook secret lives in the stack's region only.
    "AWS::SecretsManager::Secret": {
        "ReplicaRegions": ("secretsmanager:RemoveRegionsFromReplication", "secretsmanager:ReplicateSecretToRegions"),
    },
    # Without a RoleARN, Application Auto Scaling uses its service-linked role: nothing is passed.
    "AWS::ApplicationAutoScaling::ScalableTarget": {
        "RoleARN": ("iam:PassRole",),
        "ScheduledActions": (
            "application-autoscaling:DeleteScheduledAction",
            "application-autoscaling:PutScheduledAction",
        ),
    },
}
# Listed by a schema but no IAM action: API Gateway authorizes by HTTP verb (tags are POST and
# DELETE on /tags/*), and S3 names no action after a REST operation (Service Authorization Reference).
HANDLER_PERMISSIONS_THAT_ARE_NO_IAM_ACTION = frozenset(
    {"apigateway:TagResource", "apigateway:UntagResource", "s3:REST.PUT.OBJECT"}
)
# Called only to take a role's boundary off, which the execution role must never do.
HANDLER_PERMISSIONS_REFUSED = frozenset({"iam:DeleteRolePermissionsBoundary"})


# The one service-linked role a stack may have created for it: provisioned concurrency's auto scaling
# (Application Auto Scaling user guide, "Service-linked roles for Application Auto Scaling").
AUTO_SCALING_SERVICE = "lambda.application-autoscaling.amazonaws.com"
AUTO_SCALING_SERVICE_LINKED_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{AUTO_SCALING_SERVICE}/"
    "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency"
)


# Where a statement on another resource (lambda:* on the function, say) would also match the action,
# the check is made on the resource the handler really calls: a key it is creating (CreateKey's
# dependent actions must be granted on "*"), a mapping by its generated id, the account's billing view.
def representative_resource(stack: Stack, kind: str, permission: str) -> str | None:
    if kind == "AWS::KMS::Key" and permission in {"kms:CreateKey", "kms:PutKeyPolicy", "kms:TagResource"}:
        return "*"
    if kind == "AWS::Lambda::EventSourceMapping" and permission.startswith("lambda:"):
        return stack.arn("lambda", "event-source-mapping:0f4b1c2e-0000-4000-8000-000000000000")
    if kind == "AWS::SNS::Subscription" and permission in {
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
    }:
        return "*"  # take no resource type (Service Authorization Reference, Amazon SNS)
    if permission.startswith("billing:"):
        return f"arn:aws:billing::{ACCOUNT}:billingview/primary"
    if permission == "iam:CreateServiceLinkedRole":
        return AUTO_SCALING_SERVICE_LINKED_ROLE
    if kind.startswith("AWS::ApplicationAutoScaling::") and permission == "cloudwatch:GetMetricData":
        return "*"  # takes no resource ARN
    if kind.startswith("AWS::ApplicationAutoScaling::") and permission.startswith("cloudwatch:"):
        return target_tracking_alarm(stack)
    if kind == "AWS::ApplicationAutoScaling::ScalableTarget" and not permission.startswith(
        ("application-autoscaling:Describe", "lambda:", "iam:")
    ):
        return stack.arn("application-autoscaling", "scalable-target/0ec9a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")
    return None


# Application Auto Scaling names a target tracking policy's alarms after the target's resource id
# (function:<name>:<alias>) and checks that the caller may manage them itself (Application Auto
# Scaling user guide, "Permissions validation for Application Auto Scaling API calls on target resources").
def target_tracking_alarm(stack: Stack, high: bool = True) -> str:
    side = "AlarmHigh" if high else "AlarmLow"
    return stack.arn(
        "cloudwatch", f"alarm:TargetTracking-function:{stack.name}:live-{side}-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    )


SCALING_WRITES = (
    "application-autoscaling:DeleteScalingPolicy",
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:RegisterScalableTarget",
)


def test_the_execution_role_grants_what_each_resource_handler_calls(service: Service) -> None:
    result = judges.registry_handlers(service.project, "template.yaml", service.answers["aws_region"])
    judges.assert_passes(result, "registry_handlers.py")
    needs: dict[str, dict[str, Any]] = json.loads(result.stdout)
    waived: dict[str, set[str]] = {}
    for kind, by_property in HANDLER_PERMISSIONS_OF_UNUSED_PROPERTIES.items():
        for prop, permissions in by_property.items():
            if prop in needs.get(kind, {}).get("properties", []):
                continue  # the template sets it now: its permissions must be granted
            waived.setdefault(kind, set()).update(permissions)
    # The stack's KMS keys are managed through their own key policies (checked above); creating one
    # is the execution role's own call, with the dependent actions CreateKey needs.
    waived.setdefault("AWS::KMS::Key", set()).update(
        set(KEY_MANAGEMENT_ACTIONS) - {"kms:PutKeyPolicy", "kms:TagResource"}
    )
    for stage in bootstraps(service):
        missing = sorted(
            {
                f"{kind} {handler}: {permission}"
                for kind, need in needs.items()
                for handler, permissions in need["handlers"].items()
                for permission in permissions
                if permission not in waived.get(kind, set())
                and permission not in HANDLER_PERMISSIONS_THAT_ARE_NO_IAM_ACTION | HANDLER_PERMISSIONS_REFUSED
                and not stage.execution.allowing(permission, representative_resource(stage.stack, kind, permission))
            }
        )
        assert not missing, f"{stage.execution.name} lacks what CloudFormation calls:\n" + "\n".join(missing)


def test_only_provisioned_concurrency_may_create_a_service_linked_role_and_only_its_own(service: Service) -> None:
    provisioned = service.answers.get("cold_start") == "provisioned"
    for stage in bootstraps(service):
        creating = stage.execution.allowing("iam:CreateServiceLinkedRole")
        scaling = stage.execution.allowing("application-autoscaling:RegisterScalableTarget")
        if not provisioned:
            assert not creating, f"{stage.execution.name} may create service-linked roles it has no use for"
            assert not scaling, f"{stage.execution.name} may register scalable targets it has no use for"
            continue
        assert stage.execution.allowing("iam:CreateServiceLinkedRole", AUTO_SCALING_SERVICE_LINKED_ROLE)
        for statement in creating:
            assert statement.resources == (AUTO_SCALING_SERVICE_LINKED_ROLE,), statement.resources
            assert statement.value("StringEquals", "iam:AWSServiceName") == [AUTO_SCALING_SERVICE], statement.sid
        for statement in scaling:
            own_account = f"arn:aws:application-autoscaling:{stage.stack.region}:{ACCOUNT}:scalable-target/*"
            assert statement.resources == (own_account,), f"{statement.sid} registers targets on {statement.resources}"
        # Target ids are generated: the condition keys these actions take keep them to Lambda's
        # provisioned concurrency (Service Authorization Reference, Application Auto Scaling).
        for action in SCALING_WRITES:
            granting = stage.execution.allowing(action)
            assert granting, f"{stage.execution.name} may not {action}"
            for statement in granting:
                assert statement.value("StringEquals", "application-autoscaling:service-namespace") == ["lambda"], (
                    f"{statement.sid} lets {action} reach another service's scalable targets"
                )
                assert statement.value("StringEquals", "application-autoscaling:scalable-dimension") == [
                    "lambda:function:ProvisionedConcurrency"
                ], f"{statement.sid} lets {action} scale something other than provisioned concurrency"
        # The stack's own roles never scale anything: the service-linked role does.
        assert not stage.boundary.allowing("application-autoscaling:RegisterScalableTarget")
        assert not stage.boundary.allowing("lambda:PutProvisionedConcurrencyConfig")


def test_the_execution_role_manages_the_target_tracking_alarms_of_its_own_alias_only(service: Service) -> None:
    actions = ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms")
    for stage in bootstraps(service):
        if service.answers.get("cold_start") != "provisioned":
            for action in actions:
                assert not stage.execution.allowing(action, target_tracking_alarm(stage.stack)), "no auto scaling here"
            continue
        for action in actions:
            for alarm in (target_tracking_alarm(stage.stack), target_tracking_alarm(stage.stack, high=False)):
                assert stage.execution.allowing(action, alarm), f"{stage.execution.name} may not {action} {alarm}"
        other_stage = Stack(
            stage.stack.service, "prod" if stage.stack.stage == "staging" else "staging", stage.stack.region
        )
        for alarm in (
            target_tracking_alarm(other_stage),
            target_tracking_alarm(Stack("other", stage.stack.stage, stage.stack.region)),
        ):
            for action in actions:
                assert not stage.execution.allowing(action, alarm), f"{stage.execution.name} may {action} {alarm}"
        # Exactly the three calls on those alarms: no cloudwatch:* on names Application Auto Scaling chooses.
        [statement] = [
            s
            for s in stage.execution.statements
            if s.effect == "Allow"
            and any(s.covers_action(action) for action in actions)
            and s.covers_resource(target_tracking_alarm(stage.stack))
        ]
        assert sorted(statement.actions) == sorted(actions), statement.actions


VPC_FUNCTION_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)


def test_the_boundary_reaches_no_database_or_network_interface_no_combination_uses(service: Service) -> None:
    in_vpc = service.answers["database"] == "postgres"
    for stage in bootstraps(service):
        for action in ("rds-db:connect", "ec2:DescribeNetworkInterfaces", *VPC_FUNCTION_ACTIONS):
            assert bool(stage.boundary.allowing(action)) == in_vpc, f"database={service.answers['database']}: {action}"


def test_a_postgres_stages_roles_reach_only_database_users_and_network_interfaces_of_its_account(
    service: Service,
) -> None:
    if service.answers["database"] != "postgres":
        pytest.skip("only a postgres service connects to a database and runs in a VPC")
    other_account = "210987654321"
    for stage in bootstraps(service):
        dbuser = stage.stack.arn("rds-db", "dbuser:prx-0123456789abcdef0/order_service")
        assert stage.boundary.allowing("rds-db:connect", dbuser)
        assert not stage.boundary.allowing("rds-db:connect", dbuser.replace(ACCOUNT, other_account))
        # IAM authentication straight to a cluster (cluster-...) would skip the proxy's pool.
        assert not stage.boundary.allowing("rds-db:connect", stage.stack.arn("rds-db", "dbuser:cluster-ABC/app"))
        for action in VPC_FUNCTION_ACTIONS:
            interface = stage.stack.arn("ec2", "network-interface/eni-0123456789abcdef0")
            assert stage.boundary.allowing(action, interface), action
            assert not stage.boundary.allowing(action, interface.replace(ACCOUNT, other_account)), action
        # The only EC2 action on every resource: Lambda's guide says it works on nothing narrower.
        assert [s.resources for s in stage.boundary.allowing("ec2:DescribeNetworkInterfaces")] == [("*",)]


def test_a_postgres_stage_may_change_only_the_gateway_endpoint_it_tagged(service: Service) -> None:
    if service.answers["database"] != "postgres":
        pytest.skip("only a postgres service may create a VPC endpoint")
    for stage in bootstraps(service):
        endpoint = stage.stack.arn("ec2", "vpc-endpoint/vpce-0123456789abcdef0")
        for action in ("ec2:DeleteVpcEndpoints", "ec2:ModifyVpcEndpoint", "ec2:DeleteTags"):
            [grant] = stage.execution.allowing(action, endpoint)
            assert grant.condition["StringEquals"] == {
                "aws:ResourceTag/service": service.answers["service_name"],
                "aws:ResourceTag/stage": stage.stack.stage,
            }, action
        creating = stage.execution.allowing("ec2:CreateVpcEndpoint", endpoint)
        assert [s.condition["StringEquals"] for s in creating] == [
            {"aws:RequestTag/service": service.answers["service_name"], "aws:RequestTag/stage": stage.stack.stage}
        ]
        # Lambda's own check of a VPC function's configuration, with the caller's permissions.
        for action in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"):
            assert stage.execution.allowing(action, "*"), action


def test_the_boundary_lets_codedeploy_and_the_pre_traffic_hook_work(service: Service) -> None:
    for stage in bootstraps(service):
        stack, boundary = stage.stack, stage.boundary
        function = stack.arn("lambda", f"function:{stack.name}")
        hook = stack.arn("lambda", f"function:CodeDeployHook_{stack.name}")
        needed = [
            ("lambda:UpdateAlias", f"{function}:live"),
            ("lambda:GetAlias", f"{function}:live"),
            ("lambda:InvokeFunction", f"{function}:7"),
            ("lambda:InvokeFunction", hook),
            ("cloudwatch:DescribeAlarms", "*"),
            (
                "codedeploy:PutLifecycleEventHookExecutionStatus",
                stack.arn(
                    "codedeploy", f"deploymentgroup:{stack.name}-ServerlessDeploymentApplication-1A2B/Group-3C4D"
                ),
            ),
            ("logs:PutLogEvents", stack.arn("logs", f"log-group:/aws/lambda/CodeDeployHook_{stack.name}:log-stream:x")),
        ]
        for action, arn in needed:
            assert boundary.allowing(action, arn), f"the boundary refuses {action} on {arn}"


# ---------------------------------------------------------------- 2. no call to every API
def test_no_statement_may_call_every_api_in_the_account(service: Service) -> None:
    for _, policy in bootstrap_policies(service):
        for statement in policy.allowing("execute-api:Invoke"):
            for resource in statement.resources:
                api_id = resource.split(":", 5)[-1].split("/", 1)[0] if resource.count(":") >= 5 else "*"
                assert "*" not in api_id, f"{policy.name} {statement.sid!r} may invoke any API: {resource}"
    has_smoke_role = service.answers["event_source"] == "api" and not service.answers.get("jwt_issuer")
    for stage in bootstraps(service):
        smoke_role = stage.stack.role_arn(f"{stage.stack.name}-smoke-test")
        invoking = stage.boundary.allowing("execute-api:Invoke")
        # Only an IAM-authorized API has a smoke-test role; elsewhere a role of that name would be
        # one a pushed template creates to call every IAM-authorized API in the account.
        assert bool(invoking) == has_smoke_role, f"the boundary allows execute-api:Invoke: {invoking}"
        for statement in invoking:
            assert statement.value("ArnEquals", "aws:PrincipalArn") == [smoke_role], (
                f"the boundary lets any role of the stack call APIs ({statement.sid})"
            )


def test_the_api_smoke_test_signs_as_a_role_limited_to_its_own_api(service: Service) -> None:
    if service.answers["event_source"] != "api" or service.answers.get("jwt_issuer"):
        pytest.skip("only an IAM-authorized HTTP API has a smoke-test role")
    template = load(service.project / "template.yaml")
    role = template["Resources"]["SmokeTestRole"]["Properties"]
    assert "SmokeTestRoleArn" in template["Outputs"]
    for stage in bootstraps(service):
        resolve = Resolver(template, stage.stack)
        assert resolve(role["RoleName"]) == f"{stage.stack.name}-smoke-test"
        deploy_role = stage.stack.role_arn(f"github-deploy-{stage.stack.name}")
        trust = statements(resolve(role["AssumeRolePolicyDocument"]))
        assert [s.effect for s in trust] == ["Allow"]
        assert resolve(role["AssumeRolePolicyDocument"])["Statement"][0]["Principal"] == {"AWS": deploy_role}
        granted = [s for p in role["Policies"] for s in statements(resolve(p["PolicyDocument"]))]
        assert [(s.actions, s.resources) for s in granted] == [
            (("execute-api:Invoke",), (stage.stack.arn("execute-api", "a1b2c3d4e5/*"),))
        ]
        smoke_role = stage.stack.role_arn(f"{stage.stack.name}-smoke-test")
        if stage.stack.stage == "staging":
            assert stage.deploy.allowing("sts:AssumeRole", smoke_role)
        for statement in stage.deploy.allowing("sts:AssumeRole"):
            assert statement.resources == (smoke_role,), f"the deploy role may assume {statement.resources}"


def test_the_sqs_smoke_test_may_read_what_proves_an_order_was_processed(service: Service) -> None:
    if service.answers["event_source"] not in ("sqs", "kinesis", "dynamodb_stream"):
        pytest.skip("only the SQS and stream smoke tests read what the function stored")
    for stage in bootstraps(service):
        stack, deploy = stage.stack, stage.deploy
        if service.answers["database"] == "postgres":
            # The database is inside the VPC: the function's own log line is the proof it reads.
            logs = stack.arn("logs", f"log-group:/aws/lambda/{stack.name}:*")
            reading = deploy.allowing("logs:FilterLogEvents", logs)
            assert bool(reading) == (stack.stage == "staging"), f"{deploy.name} and {logs}"
            assert not deploy.allowing("dynamodb:GetItem"), f"{deploy.name} reads a table a postgres service lacks"
            continue
        idempotency = stack.arn("dynamodb", f"table/{stack.name}-idempotency")
        reading = deploy.allowing("dynamodb:GetItem", idempotency)
        if stack.stage != "staging":
            assert not reading, f"{deploy.name} reads {idempotency}"
            continue
        assert reading, f"{deploy.name} cannot read {idempotency} for the smoke test"
        if service.answers["database"] == "none":
            for statement in deploy.allowing("dynamodb:GetItem"):
                assert statement.resources == (idempotency,), f"{statement.sid} reads {statement.resources}"


def test_the_sns_smoke_test_publishes_only_to_its_topic_through_its_key(service: Service) -> None:
    if service.answers["event_source"] != "sns":
        pytest.skip("only the SNS smoke test publishes")
    for stage in bootstraps(service):
        stack, deploy = stage.stack, stage.deploy
        topic = stack.arn("sns", f"{stack.name}-orders")
        publishing = deploy.allowing("sns:Publish")
        if stack.stage != "staging":
            assert not publishing, f"{deploy.name} may publish: {publishing}"
            continue
        assert [statement.resources for statement in publishing] == [(topic,)]
        [encrypting] = deploy.allowing("kms:GenerateDataKey")
        assert encrypting.value("StringEquals", "kms:ViaService") == [f"sns.{stack.region}.amazonaws.com"]
        assert encrypting.value("ForAnyValue:StringEquals", "kms:ResourceAliases") == [f"alias/{stack.name}-orders"]


def test_the_execution_role_subscribes_only_the_stages_function_to_a_topic_it_does_not_own(
    service: Service,
) -> None:
    if service.answers["event_source"] != "sns":
        pytest.skip("only an SNS service subscribes to a topic it may not own")
    for stage in bootstraps(service):
        stack = stage.stack
        foreign_topic = stack.arn("sns", "someone-elses-orders")
        for statement in stage.execution.allowing("sns:Subscribe", foreign_topic):
            assert statement.value("StringEquals", "sns:Protocol") == ["lambda"], statement.sid
            endpoints = statement.value("ArnLike", "sns:Endpoint")
            assert endpoints == [stack.arn("lambda", f"function:{stack.name}:*")], statement.sid
        assert stage.execution.allowing("sns:Subscribe", foreign_topic), "OrdersTopicArn could not be subscribed to"
        assert not stage.execution.allowing("sns:Publish", foreign_topic), "it may publish to a topic it does not own"


def test_the_eventbridge_smoke_test_puts_only_on_its_stages_own_bus(service: Service) -> None:
    """Staging and prod share one account: an event on a shared bus would reach production's rule too."""
    if service.answers["event_source"] != "eventbridge":
        pytest.skip("only the EventBridge smoke test puts an event")
    source = service.answers.get("eventbridge_source", f"{service.answers['service_name']}.orders")
    for stage in bootstraps(service):
        stack = stage.stack
        own_bus = stack.arn("events", f"event-bus/{stack.name}-orders")
        putting = stage.deploy.allowing("events:PutEvents", own_bus)
        assert bool(putting) == (stack.stage == "staging"), f"{stage.deploy.name} and {own_bus}"
        other = f"{stack.service}-{'prod' if stack.stage == 'staging' else 'staging'}-orders"
        for bus in ("default", other, "orders"):
            assert not stage.deploy.allowing("events:PutEvents", stack.arn("events", f"event-bus/{bus}")), bus
        for statement in stage.deploy.allowing("events:PutEvents"):
            assert statement.resources == (own_bus,), statement.sid
            assert statement.value("StringEquals", "events:source") == [source], statement.sid
            assert statement.value("StringEquals", "events:detail-type") == ["OrderPlaced"], statement.sid


def test_the_execution_role_manages_the_stages_own_bus_and_rules_and_no_other(service: Service) -> None:
    if service.answers["event_source"] != "eventbridge":
        pytest.skip("only the EventBridge source has a rule")
    for stage in bootstraps(service):
        stack = stage.stack
        other_stack = f"{stack.service}-{'prod' if stack.stage == 'staging' else 'staging'}"
        own = f"{stack.name}-order-placed"
        other = f"{other_stack}-order-placed"
        for action in ("events:CreateEventBus", "events:DeleteEventBus", "events:TagResource"):
            assert stage.execution.allowing(action, stack.arn("events", f"event-bus/{stack.name}-orders")), action
            for bus in ("default", f"{other_stack}-orders", "orders"):
                assert not stage.execution.allowing(action, stack.arn("events", f"event-bus/{bus}")), (action, bus)
        for action in ("events:PutRule", "events:PutTargets", "events:DeleteRule", "events:TagResource"):
            for rule in (f"rule/{own}", f"rule/{stack.name}-orders/{own}", f"rule/orders/{own}"):
                assert stage.execution.allowing(action, stack.arn("events", rule)), f"{action} on {rule}"
            for rule in (f"rule/{other}", f"rule/{other_stack}-orders/{other}", "rule/orders/someone-elses-rule"):
                assert not stage.execution.allowing(action, stack.arn("events", rule)), f"{action} on {rule}"
        assert not stage.boundary.allowing("events:PutEvents", stack.arn("events", "event-bus/default"))


def test_the_s3_stage_manages_its_own_bucket_and_its_smoke_test_touches_only_incoming_and_processed(
    service: Service,
) -> None:
    if service.answers["event_source"] != "s3":
        pytest.skip("only an s3 service has an orders bucket")
    for stage in bootstraps(service):
        stack, deploy, execution = stage.stack, stage.deploy, stage.execution
        bucket = f"arn:aws:s3:::{stack.name}-{ACCOUNT}"
        other_stage = f"arn:aws:s3:::{stack.service}-{'prod' if stack.stage == 'staging' else 'staging'}-{ACCOUNT}"
        for action in ("s3:CreateBucket", "s3:PutBucketNotification", "s3:PutBucketPolicy", "s3:DeleteBucket"):
            assert execution.allowing(action, bucket), f"{execution.name} cannot {action} {bucket}"
            assert not execution.allowing(action, other_stage), f"{execution.name} may {action} {other_stage}"
        # CloudFormation manages the bucket, never an order document in it.
        assert not execution.allowing("s3:GetObject", f"{bucket}/incoming/ord-1.json")
        upload, outcome = f"{bucket}/incoming/e2e/ord-1.json", f"{bucket}/processed/e2e/ord-1.json"
        smoke = stack.stage == "staging"
        assert bool(deploy.allowing("s3:PutObject", upload)) == smoke, f"{deploy.name} and {upload}"
        assert bool(deploy.allowing("s3:GetObject", outcome)) == smoke, f"{deploy.name} and {outcome}"
        assert not deploy.allowing("s3:PutObject", f"{bucket}/processed/e2e/ord-1.json"), "it may forge an outcome"
        assert not deploy.allowing("s3:GetObject", f"{bucket}/rejected/ord-1.json")
        assert not deploy.allowing("s3:DeleteObject", upload)


def test_the_kinesis_stage_manages_its_own_stream_and_its_smoke_test_only_puts_on_it(service: Service) -> None:
    if service.answers["event_source"] != "kinesis":
        pytest.skip("only a kinesis service has an orders stream")
    existing = service.answers.get("kinesis_stream_arn")
    for stage in bootstraps(service):
        stack, deploy, execution = stage.stack, stage.deploy, stage.execution
        if existing:
            # The owner's stream: the stack reads it through the function's role and never manages it.
            for action in ("kinesis:CreateStream", "kinesis:DeleteStream", "kinesis:AddTagsToStream"):
                assert not execution.allowing(action, existing), f"{execution.name} may {action} {existing}"
            assert bool(deploy.allowing("kinesis:PutRecord", existing)) == (stack.stage == "staging")
            continue
        stream = stack.arn("kinesis", f"stream/{stack.name}-orders")
        other = "prod" if stack.stage == "staging" else "staging"
        other_stage = stack.arn("kinesis", f"stream/{stack.service}-{other}-orders")
        for action in ("kinesis:CreateStream", "kinesis:StartStreamEncryption", "kinesis:DeleteStream"):
            assert execution.allowing(action, stream), f"{execution.name} cannot {action} {stream}"
            assert not execution.allowing(action, other_stage), f"{execution.name} may {action} {other_stage}"
        # CloudFormation manages the stream, never the records on it; only the smoke test puts one.
        for action in ("kinesis:PutRecord", "kinesis:GetRecords"):
            assert not execution.allowing(action, stream), f"{execution.name} may {action}"
        assert bool(deploy.allowing("kinesis:PutRecord", stream)) == (stack.stage == "staging")
        assert not deploy.allowing("kinesis:PutRecord", other_stage)


# ---------------------------------------------------------------- 3. no import, stage-scoped ids
def test_deploy_roles_cannot_import_existing_resources(service: Service) -> None:
    for stage in bootstraps(service):
        denies = [
            s
            for s in stage.deploy.statements
            if s.effect == "Deny"
            and s.covers("cloudformation:CreateChangeSet", stage.stack.arn("cloudformation", "stack/x/1"))
            and s.resources == ("*",)
            and s.value("ForAnyValue:StringLike", "cloudformation:ImportResourceTypes") == ["*"]
        ]
        assert denies, f"{stage.deploy.name} may create IMPORT change sets"


def test_keys_apis_and_mappings_are_reached_only_when_they_belong_to_the_stage(service: Service) -> None:
    for stage in bootstraps(service):
        stack, execution = stage.stack, stage.execution
        own = {"service": stack.service, "stage": stack.stage}
        for statement in execution.allowing("kms:CreateKey"):
            for key, value in own.items():
                assert statement.value("StringEquals", f"aws:RequestTag/{key}") == [value], (
                    f"{statement.sid} creates keys without the tag {key}={value}"
                )
        mapping = stack.arn("lambda", "event-source-mapping:a1b2c3d4-5678-90ab-cdef-11111EXAMPLE")
        for action in (
            "lambda:CreateEventSourceMapping",
            "lambda:UpdateEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
        ):
            allowing = execution.allowing(action, mapping)
            assert allowing, f"the execution role cannot {action}"
            for statement in allowing:
                functions = statement.value("ArnLike", "lambda:FunctionArn") + statement.value(
                    "ArnEquals", "lambda:FunctionArn"
                )
                own_function = stack.arn("lambda", f"function:{stack.name}")
                assert functions and all(f in (own_function, f"{own_function}:*") for f in functions), statement.sid
        api = f"arn:aws:apigateway:{stack.region}::/apis/a1b2c3d4e5"
        for action in ("apigateway:PATCH", "apigateway:DELETE", "apigateway:PUT"):
            for statement in execution.allowing(action, api):
                assert statement.value("StringEquals", "aws:ResourceTag/stage") == [stack.stage], statement.sid
        # Whatever another stage or service owns is denied outright, retagging it included.
        # An sns stack may subscribe to a producer's topic tagged with the producer's service: its
        # fence lets exactly that through (the Allow statements scope it to the stage's function).
        subscribing = {"sns:GetTopicAttributes", "sns:Subscribe"} if service.answers["event_source"] == "sns" else set()
        for key, value in own.items():
            fences = [
                s
                for s in execution.statements
                if s.effect == "Deny"
                and (s.actions == ("*",) or (bool(s.not_actions) and set(s.not_actions) <= subscribing))
                and s.value("StringNotEquals", f"aws:ResourceTag/{key}") == [value]
                and s.value("Null", f"aws:ResourceTag/{key}") == ["false"]
            ]
            assert fences, f"nothing keeps {execution.name} off resources of another {key}"


def test_the_execution_role_manages_only_keys_whose_policy_names_it(service: Service) -> None:
    template = load(service.project / "template.yaml")
    keys = {i: r for i, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"}
    for stage in bootstraps(service):
        stack, execution = stage.stack, stage.execution
        # Any key in the account, tagged with this stage or not: IAM must grant no management of it.
        # (Request tags also let TagResource tag an untagged key of the account: documented, and harmless
        # here, since no role of the stage uses or manages a key by its tags.)
        key_arn = stack.arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab")
        for action in (*KEY_MANAGEMENT_ACTIONS, "kms:CreateGrant", "kms:Decrypt", "kms:Encrypt"):
            for statement in execution.allowing(action, key_arn):
                requested = [statement.value("StringEquals", f"aws:RequestTag/{k}") for k in ("service", "stage")]
                assert requested == [[stack.service], [stack.stage]] and "kms:CreateKey" in statement.actions, (
                    f"{statement.sid} lets the execution role {action} on a key it did not create"
                )
        # The stack's keys are managed through their own key policies instead.
        resolve = Resolver(template, stack)
        for logical_id, key in keys.items():
            policy = resolve(key["Properties"]["KeyPolicy"])
            execution_role = stack.role_arn(f"cfn-exec-{stack.name}")
            named_role = [
                s
                for raw, s in zip(as_list(policy["Statement"]), statements(policy), strict=True)
                if s.effect == "Allow" and raw.get("Principal", {}).get("AWS") == execution_role
            ]
            for action in KEY_MANAGEMENT_ACTIONS:
                assert any(s.covers_action(action) for s in named_role), (
                    f"{logical_id}'s key policy does not let the execution role {action}"
                )


def test_no_lambda_action_is_conditioned_on_a_key_it_does_not_take(service: Service) -> None:
    for stage in bootstraps(service):
        stack = stage.stack
        mapping = stack.arn("lambda", "event-source-mapping:a1b2c3d4-5678-90ab-cdef-11111EXAMPLE")
        for statement in stage.execution.statements:
            if statement.effect != "Allow" or not any(
                "lambda:FunctionArn" in keys for keys in statement.condition.values()
            ):
                continue
            for action in statement.actions:
                assert action in LAMBDA_ACTIONS_WITH_FUNCTION_ARN_KEY, (
                    f"{statement.sid} conditions {action} on lambda:FunctionArn, which {action} does not take: "
                    "the statement never allows it"
                )
        # CloudFormation reads a mapping on every create, update and delete (its registry schema).
        for action in LAMBDA_ACTIONS_WITHOUT_FUNCTION_ARN_KEY:
            unconditioned = [s for s in stage.execution.allowing(action, mapping) if not s.condition]
            assert unconditioned, f"the execution role cannot {action} its mappings"


def test_the_service_tags_every_resource_the_fence_relies_on(service: Service) -> None:
    template = load(service.project / "template.yaml")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::KMS::Key", "AWS::Serverless::HttpApi", "AWS::EC2::VPCEndpoint"):
            tags = resource["Properties"]["Tags"]
            pairs = {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else tags
            assert pairs.get("stage") == {"Ref": "Stage"}, f"{logical_id} is not tagged with its stage"
            assert pairs.get("service") == service.answers["service_name"], logical_id
    # SAM does not tag event source mappings: the stack tags (samconfig.toml) reach them.
    config = tomllib.loads((service.project / "samconfig.toml").read_text(encoding="utf-8"))
    for stage in STAGES:
        tags = config[stage]["deploy"]["parameters"]["tags"]
        assert f'stage="{stage}"' in tags and f'service="{service.answers["service_name"]}"' in tags


# ---------------------------------------------------------------- 4. recovery
def test_the_pipeline_can_recover_its_own_stack_and_no_other(service: Service) -> None:
    for stage in bootstraps(service):
        stack = stage.stack
        own = stack.arn("cloudformation", f"stack/{stack.name}/0a1b2c3d")
        others = [
            stack.arn("cloudformation", f"stack/{stack.service}-{s}/0a1b2c3d") for s in STAGES if s != stack.stage
        ]
        execution_role = stack.role_arn(f"cfn-exec-{stack.name}")
        for action in ("cloudformation:DeleteStack", "cloudformation:ContinueUpdateRollback"):
            allowed = stage.deploy.allowing(action, own)
            assert allowed, f"{stage.deploy.name} cannot {action} its stack"
            for statement in stage.deploy.allowing(action):
                assert statement.value("ArnEquals", "cloudformation:RoleArn") == [execution_role], statement.sid
        for action in (
            "cloudformation:DeleteStack",
            "cloudformation:ContinueUpdateRollback",
            "cloudformation:CancelUpdateStack",
        ):
            assert stage.deploy.allowing(action, own), f"{stage.deploy.name} cannot {action}"
            for other in others:
                assert not stage.deploy.allowing(action, other), f"{stage.deploy.name} may {action} {other}"


def test_the_deploy_workflow_deletes_a_rolled_back_first_deploy_before_deploying(service: Service) -> None:
    workflow = yaml.safe_load((service.project / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8"))
    for job, stage in (("staging", "staging"), ("production", "prod")):
        runs = [step.get("run", "") for step in workflow["jobs"][job]["steps"]]
        recover = [i for i, run in enumerate(runs) if "scripts/recover_stack.sh" in run]
        deploy = [i for i, run in enumerate(runs) if "sam deploy" in run]
        assert recover and deploy and recover[0] < deploy[0], f"{job}: no recovery before sam deploy"
        assert f'"$SERVICE_NAME-{stage}" "$CFN_EXECUTION_ROLE_ARN"' in runs[recover[0]]
    script = (service.project / "scripts" / "recover_stack.sh").read_text(encoding="utf-8")
    assert "ROLLBACK_COMPLETE)" in script and "--role-arn" in script and "wait stack-delete-complete" in script
    assert "UPDATE_ROLLBACK_FAILED)" in script and "continue-update-rollback" in script


# CodeDeploy fails a lifecycle hook that has not reported within one hour (CodeDeploy user guide,
# AppSpec "hooks" section for a Lambda deployment); traffic shifting then takes up to 10 minutes.
CODEDEPLOY_HOOK_WAIT_MINUTES = 60
LONGEST_TRAFFIC_SHIFT_MINUTES = 10


def test_a_deploy_job_outlasts_codedeploys_wait_for_a_silent_hook(service: Service) -> None:
    workflow = yaml.safe_load((service.project / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8"))
    for job in ("staging", "production"):
        minutes = workflow["jobs"][job]["timeout-minutes"]
        # A job killed mid-deploy leaves the stack UPDATE_IN_PROGRESS and the next deploy failing.
        assert minutes > CODEDEPLOY_HOOK_WAIT_MINUTES + LONGEST_TRAFFIC_SHIFT_MINUTES, f"{job}: {minutes} minutes"


# ---------------------------------------------------------------- 5. tags
def test_stack_tags_and_role_tags_can_be_written(service: Service) -> None:
    for stage in bootstraps(service):
        stack = stage.stack
        own = stack.arn("cloudformation", f"stack/{stack.name}/0a1b2c3d")
        tagging = stage.deploy.allowing("cloudformation:TagResource", own)
        assert tagging, f"{stage.deploy.name} cannot tag its stack (samconfig.toml tags)"
        for statement in stage.deploy.allowing("cloudformation:TagResource"):
            actions = statement.value("StringEquals", "cloudformation:CreateAction")
            assert {"CreateChangeSet", "ExecuteChangeSet"} <= set(actions), statement.sid
        role = stack.role_arn(f"{stack.name}-function")
        for action in ("iam:TagRole", "iam:ListRoleTags", "iam:UntagRole"):
            assert stage.execution.allowing(action, role), f"the execution role cannot {action}"


# ---------------------------------------------------------------- the hook and the smoke role
def test_the_execution_role_covers_the_pre_traffic_hook_and_the_smoke_test_role(service: Service) -> None:
    for stage in bootstraps(service):
        stack, execution = stage.stack, stage.execution
        hook = stack.arn("lambda", f"function:CodeDeployHook_{stack.name}")
        for action in ("lambda:CreateFunction", "lambda:UpdateFunctionCode", "lambda:DeleteFunction"):
            assert execution.allowing(action, hook), f"{action} on the PreTraffic hook"
        hook_logs = stack.arn("logs", f"log-group:/aws/lambda/CodeDeployHook_{stack.name}")
        assert execution.allowing("logs:CreateLogGroup", hook_logs)
        assert execution.allowing("logs:PutRetentionPolicy", hook_logs)
        for role_name in (f"{stack.name}-pre-traffic", f"{stack.name}-smoke-test"):
            role = stack.role_arn(role_name)
            for action in (*GRANTING_ROLE_ACTIONS[:2], "iam:DeleteRole", "iam:TagRole"):
                assert execution.allowing(action, role), f"{action} on {role_name}"
        passing = execution.allowing("iam:PassRole", stack.role_arn(f"{stack.name}-pre-traffic"))
        assert any("lambda.amazonaws.com" in s.value("StringEquals", "iam:PassedToService") for s in passing)


# ---------------------------------------------------------------- IAM's size limits
def test_policies_fit_within_iam_size_limits(service: Service) -> None:
    template = load(service.project / "bootstrap" / "template.yaml")
    for stage in STAGES:
        # The longest partition the template can meet.
        stack = Stack(service.answers["service_name"], stage, service.answers["aws_region"])
        resolve = Resolver(template, stack, partition="aws-us-gov")
        _, boundary = named(template, "AWS::IAM::ManagedPolicy", "ManagedPolicyName", f"boundary-{stack.name}")
        size = minified_size(resolve(boundary["Properties"]["PolicyDocument"]))
        assert size <= MANAGED_POLICY_LIMIT, f"boundary-{stack.name} is {size} characters"
        for role_name in (f"cfn-exec-{stack.name}", f"github-deploy-{stack.name}"):
            _, role = named(template, "AWS::IAM::Role", "RoleName", role_name)
            size = sum(
                minified_size(resolve(p["PolicyDocument"])) + len(p["PolicyName"])
                for p in role["Properties"]["Policies"]
            )
            assert size <= INLINE_POLICIES_LIMIT, f"{role_name}'s inline policies are {size} characters"

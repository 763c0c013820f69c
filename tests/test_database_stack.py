"""The optional staging database stack (database/template.yaml) of a postgres service.

Judged like every template (cfn-lint, checkov, `sam validate --lint`), then read as
CloudFormation for what a reviewer checks by hand: TLS and IAM authentication required at
the proxy, nothing reachable from outside the function's security group, both secrets
rotated, the proxy's role limited to its one secret, a snapshot when the cluster goes, and
outputs that are exactly the service stack's database parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import judges
from cfn_template import load_template
from once import once
from service_env import service_venv
from test_bootstrap import ACCOUNT, Policy, Resolver, Stack, as_list, statements
from test_render_matrix import EVENT_SOURCES, MATRIX, Combination, Service
from test_render_matrix import render as _render  # noqa: F401 - the render matrix's fixture, requested by name

# Every postgres combination of the render matrix (the same renders its gates use), else one per source.
POSTGRES = [c for c in MATRIX if c.answers.get("database") == "postgres"] or [
    Combination(f"{source}-postgres", {"event_source": source, "database": "postgres"}) for source in EVENT_SOURCES
]
TEMPLATE = "database/template.yaml"
# The service stack's database parameters (issue 8's contract), each one an output here.
SERVICE_PARAMETERS = {
    "DbProxyName",
    "DbProxyEndpoint",
    "DbProxyResourceId",
    "DbProxyIdleClientTimeout",
    "DatabaseName",
    "DatabaseUser",
    "SubnetIds",
    "SecurityGroupIds",
}
# CloudFormation's limit on Code.ZipFile (AWS::Lambda::Function Code, "ZipFile": up to 4096 characters).
ZIP_FILE_LIMIT = 4096
Completed = subprocess.CompletedProcess[str]


@pytest.fixture(params=[pytest.param(c, id=c.id) for c in POSTGRES])
def service(request: pytest.FixtureRequest) -> Service:
    render: Callable[[Combination], Service] = request.getfixturevalue("_render")
    return render(request.param)


# What the stack's judges and its users function read besides database/: sam reads samconfig.toml
# where it runs, cfn-lint and checkov their configuration files if the service has any.
JUDGED_ROOT_FILES = (
    "samconfig.toml",
    ".cfnlintrc",
    ".cfnlintrc.yaml",
    ".cfnlintrc.json",
    ".checkov.yml",
    ".checkov.yaml",
)


def stack_digest(service: Service, *more: str) -> str:
    """The database stack's files and everything else its judges read: equal digests, one verdict.

    The stack is the same for every event source (its files name the service and region
    only), so the judges and the real-server tests below run once per distinct stack, and
    every combination with that stack shares their outcome.
    """
    digest = hashlib.sha256("\0".join([str(service.answers["aws_region"]), *more]).encode())
    root = service.project
    files = sorted(root.glob("database/**/*")) + [root / name for name in JUDGED_ROOT_FILES]
    for path in (path for path in files if path.is_file()):
        data = path.read_bytes()
        digest.update(f"\0{path.relative_to(root)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:16]


@pytest.fixture
def judged_once(shared: Path) -> Callable[..., None]:
    """Run `check` once per distinct stack (stack_digest) and name; a failure fails every sharer."""

    def run(service: Service, name: str, check: Callable[[], None], *more: str) -> None:
        once(shared, f"gate-database-{name}-{stack_digest(service, *more)}", lambda _: check() or {})

    return run


def stack_of(service: Service) -> dict[str, Any]:
    return load_template(service.project / TEMPLATE)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in template["Resources"].items() if r["Type"] == kind}


def only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template, kind)
    assert len(found) == 1, f"{TEMPLATE} has {len(found)} {kind}, not one"
    return next(iter(found.items()))


def ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


# ---------------------------------------------------------------- the judges
def test_only_postgres_services_get_the_database_stack(service: Service, request: pytest.FixtureRequest) -> None:
    render: Callable[[Combination], Service] = request.getfixturevalue("_render")
    # The render matrix's own combination: rendered once per run, whichever module asks first.
    other = render(next(c for c in MATRIX if c.id == f"{service.answers['event_source']}-dynamodb"))
    assert (service.project / TEMPLATE).is_file() and (service.project / "database" / "README.md").is_file()
    assert not (other.project / "database").exists(), "a dynamodb service renders the database stack"


def test_cfn_lint_accepts_the_database_stack(service: Service, judged_once: Callable[..., None]) -> None:
    def check() -> None:
        result = judges.cfn_lint(service.project, [TEMPLATE], service.answers["aws_region"])
        judges.assert_passes(result, "cfn-lint")

    judged_once(service, "cfn-lint", check)


def test_sam_validate_lint_accepts_the_database_stack(service: Service, judged_once: Callable[..., None]) -> None:
    # A plain CloudFormation template (no Transform): SAM validates and lints it all the same.
    def check() -> None:
        result = judges.sam_validate(service.project, TEMPLATE, service.answers["aws_region"])
        judges.assert_passes(result, "sam validate --lint")

    judged_once(service, "sam-validate", check)


def test_checkov_finds_nothing_in_the_database_stack(service: Service, judged_once: Callable[..., None]) -> None:
    # --skip-download: otherwise checkov calls a remote API first.
    command = [judges.CHECKOV, "--skip-download", "--quiet", "--compact", "--framework", "cloudformation"]

    def check() -> None:
        judges.assert_passes(judges.run([*command, "--file", TEMPLATE], service.project), "checkov")

    judged_once(service, "checkov", check)
    template = stack_of(service)
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, f"{logical_id} skips {skip['id']} without a reason"


# ---------------------------------------------------------------- what a reviewer checks
def test_the_proxy_requires_tls_and_iam_tokens_for_every_user(service: Service) -> None:
    _, proxy = only(stack_of(service), "AWS::RDS::DBProxy")
    properties = proxy["Properties"]
    assert properties["EngineFamily"] == "POSTGRESQL"
    assert properties["RequireTLS"] is True
    assert properties["Auth"], "the proxy holds no secret to log in to the database with"
    for auth in properties["Auth"]:
        assert auth["IAMAuth"] == "REQUIRED", f"a client may log in with the password of {auth['SecretArn']}"
    assert ref(properties["IdleClientTimeout"]) == "IdleClientTimeout"
    template = stack_of(service)
    assert template["Parameters"]["IdleClientTimeout"]["Default"] == 1800  # the service's DbProxyIdleClientTimeout


def test_the_database_is_reachable_only_from_the_proxy_and_the_proxy_only_from_the_function(service: Service) -> None:
    template = stack_of(service)
    _, cluster = only(template, "AWS::RDS::DBCluster")
    _, writer = only(template, "AWS::RDS::DBInstance")
    _, proxy = only(template, "AWS::RDS::DBProxy")
    assert writer["Properties"]["PubliclyAccessible"] is False
    database_groups = [ref(g) for g in cluster["Properties"]["VpcSecurityGroupIds"]]
    proxy_groups = [ref(g) for g in proxy["Properties"]["VpcSecurityGroupIds"]]
    assert len(database_groups) == 1 and len(proxy_groups) == 1
    function_group = template["Outputs"]["SecurityGroupIds"]["Value"]["Ref"]
    # Every way in: inline rules and separate ingress resources.
    ingress: dict[str, list[dict[str, Any]]] = {}
    for logical_id, group in of_type(template, "AWS::EC2::SecurityGroup").items():
        ingress[logical_id] = list(group["Properties"].get("SecurityGroupIngress", []))
    for rule in of_type(template, "AWS::EC2::SecurityGroupIngress").values():
        ingress[ref(rule["Properties"]["GroupId"]) or ""].append(rule["Properties"])
    expected = {database_groups[0]: proxy_groups[0], proxy_groups[0]: function_group}
    # And the database sends nothing out (a group without egress rules would allow all).
    egress = template["Resources"][database_groups[0]]["Properties"]["SecurityGroupEgress"]
    assert [rule["CidrIp"] for rule in egress] == ["127.0.0.1/32"], egress
    for group, rules in ingress.items():
        if group not in expected:
            assert not rules, f"{group} accepts connections: {rules}"
            continue
        assert rules, f"nothing reaches {group}"
        for rule in rules:
            assert "CidrIp" not in rule and "CidrIpv6" not in rule, f"{group} accepts an address range: {rule}"
            assert ref(rule["SourceSecurityGroupId"]) == expected[group], f"{group} accepts {rule}"
            assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 5432, 5432), rule


def test_storage_and_secrets_are_encrypted_and_both_passwords_rotate(service: Service) -> None:
    template = stack_of(service)
    cluster_id, cluster = only(template, "AWS::RDS::DBCluster")
    properties = cluster["Properties"]
    assert properties["StorageEncrypted"] is True and "KmsKeyId" in properties
    # The master password: RDS keeps it in Secrets Manager and rotates it; nobody chooses it.
    assert properties["ManageMasterUserPassword"] is True and "MasterUserPassword" not in properties
    # The proxy's secret rotates on a schedule, through a function that Secrets Manager may invoke.
    _, proxy = only(template, "AWS::RDS::DBProxy")
    secret_ids = {ref(a["SecretArn"]) for a in proxy["Properties"]["Auth"]}
    for secret_id in secret_ids:
        secret = template["Resources"][secret_id]["Properties"]
        assert "KmsKeyId" in secret and secret["GenerateSecretString"]["ExcludePunctuation"] is True
        schedules = [
            s["Properties"]
            for s in of_type(template, "AWS::SecretsManager::RotationSchedule").values()
            if ref(s["Properties"]["SecretId"]) == secret_id
        ]
        assert len(schedules) == 1, f"{secret_id} never rotates"
        rotator = schedules[0]["RotationLambdaARN"]["Fn::GetAtt"][0]
        permissions = [
            p["Properties"]
            for p in of_type(template, "AWS::Lambda::Permission").values()
            if p["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
            and p["Properties"]["FunctionName"] == {"Fn::GetAtt": [rotator, "Arn"]}
        ]
        assert permissions and ref(permissions[0]["SourceArn"]) == secret_id, f"Secrets Manager cannot invoke {rotator}"
    assert cluster_id


def test_the_proxy_role_reads_only_its_secret_and_decrypts_only_through_secrets_manager(service: Service) -> None:
    template = stack_of(service)
    stack = Stack(service.answers["service_name"], "staging-database", service.answers["aws_region"])
    resolve = Resolver(template, stack)
    _, proxy = only(template, "AWS::RDS::DBProxy")
    role_id = proxy["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    trusted = [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
    assert trusted == [{"Service": "rds.amazonaws.com"}]
    policy = Policy(role_id, [s for p in role["Policies"] for s in statements(resolve(p["PolicyDocument"]))])
    secrets = [resolve(a["SecretArn"]) for a in proxy["Properties"]["Auth"]]
    other_secret = stack.arn("secretsmanager", "secret:someone-elses-AbCdEf")
    for statement in policy.statements:
        assert statement.effect == "Allow" and "*" not in statement.resources, statement.sid
        assert set(statement.actions) <= {"secretsmanager:GetSecretValue", "kms:Decrypt"}, statement.sid
    reading = policy.allowing("secretsmanager:GetSecretValue")
    assert [r for s in reading for r in s.resources] == secrets
    assert not any(s.covers_resource(other_secret) for s in reading)
    for statement in policy.allowing("kms:Decrypt"):
        service_via = f"secretsmanager.{stack.region}.amazonaws.com"
        assert statement.value("StringEquals", "kms:ViaService") == [service_via], statement.sid


def test_deleting_the_stack_keeps_a_snapshot_and_the_key_that_encrypts_it(service: Service) -> None:
    template = stack_of(service)
    _, cluster = only(template, "AWS::RDS::DBCluster")
    assert (cluster.get("DeletionPolicy"), cluster.get("UpdateReplacePolicy")) == ("Snapshot", "Snapshot")
    assert ref(cluster["Properties"]["DeletionProtection"]) == "DeletionProtection"
    assert template["Parameters"]["DeletionProtection"]["Default"] == "true"
    assert cluster["Properties"]["BackupRetentionPeriod"] == {"Ref": "BackupRetentionDays"}
    key_id = cluster["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    assert (key.get("DeletionPolicy"), key.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_the_cluster_is_serverless_v2_postgresql_16_and_may_pause(service: Service) -> None:
    template = stack_of(service)
    _, cluster = only(template, "AWS::RDS::DBCluster")
    _, writer = only(template, "AWS::RDS::DBInstance")
    properties = cluster["Properties"]
    assert properties["Engine"] == "aurora-postgresql" and str(properties["EngineVersion"]).startswith("16.")
    assert writer["Properties"]["DBInstanceClass"] == "db.serverless"
    scaling = properties["ServerlessV2ScalingConfiguration"]
    assert ref(scaling["MinCapacity"]) == "MinCapacity" and template["Parameters"]["MinCapacity"]["Default"] == 0
    assert ref(scaling["SecondsUntilAutoPause"]) == "SecondsUntilAutoPause"


def test_the_target_group_leaves_headroom_and_waits_for_the_application_user(service: Service) -> None:
    template = stack_of(service)
    _, group = only(template, "AWS::RDS::DBProxyTargetGroup")
    pool = group["Properties"]["ConnectionPoolConfigurationInfo"]
    assert ref(pool["MaxConnectionsPercent"]) == "MaxConnectionsPercent"
    assert template["Parameters"]["MaxConnectionsPercent"]["Default"] < 100
    # A paused writer resumes in about 15 s (AWS Database Blog, scaling to 0 ACUs); a borrow waits that out.
    assert pool["ConnectionBorrowTimeout"] >= 15
    user_id, _ = only(template, "Custom::DatabaseUser")
    assert user_id in as_list(group.get("DependsOn", [])), "the proxy may check a login before the user exists"


# ---------------------------------------------------------------- the service stack's parameters
def test_outputs_are_exactly_the_service_stacks_database_parameters(service: Service) -> None:
    template = stack_of(service)
    assert set(template["Outputs"]) == SERVICE_PARAMETERS
    # Once the service template takes them, each output names one of its parameters.
    service_parameters = set(load_template(service.project / "template.yaml").get("Parameters", {}))
    if service_parameters & SERVICE_PARAMETERS:
        assert service_parameters >= SERVICE_PARAMETERS, SERVICE_PARAMETERS - service_parameters
    # The proxy resource id is the last field of the proxy's ARN.
    value = template["Outputs"]["DbProxyResourceId"]["Value"]
    index, (separator, _) = value["Fn::Select"][0], value["Fn::Select"][1]["Fn::Split"]
    arn = f"arn:aws:rds:{service.answers['aws_region']}:{ACCOUNT}:db-proxy:prx-0123456789abcdef0"
    assert arn.split(separator)[int(index)] == "prx-0123456789abcdef0"


# ---------------------------------------------------------------- the application user
def users_code(service: Service) -> str:
    _, function = only(stack_of(service), "AWS::Lambda::Function")
    return str(function["Properties"]["Code"]["ZipFile"])


def test_the_users_function_fits_cloudformations_inline_code_limit(service: Service) -> None:
    code = users_code(service)
    assert len(code) <= ZIP_FILE_LIMIT, f"Code.ZipFile is {len(code)} characters"
    compile(code, "index.py", "exec")


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Server:
    socket: Path  # the superuser logs in here without a password
    port: str

    def psql(self, sql: str, user: str = "postgres", password: str = "", database: str = "postgres") -> Completed:
        # Every other login goes over TCP, where the server asks for the password (scram-sha-256).
        host = str(self.socket) if user == "postgres" else "127.0.0.1"
        env = {**os.environ, "PGHOST": host, "PGPORT": self.port, "PGUSER": user, "PGDATABASE": database}
        env["PGPASSWORD"] = password
        command = [PG_BIN / "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
        return judges.run(command, self.socket, env)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    """A throwaway server of Debian's binaries, run as the postgres user (it refuses root)."""
    if not (PG_BIN / "initdb").is_file() or not shutil.which("runuser"):
        pytest.skip("no PostgreSQL 15 binaries: install Debian's postgresql package")
    directory = Path("/tmp") / f"database-stack-{uuid.uuid4().hex[:8]}"  # the postgres user cannot enter root's tmp
    directory.mkdir()
    shutil.chown(directory, "postgres")
    data, port = directory / "data", str(54000 + os.getpid() % 1000)

    def as_postgres(*command: str | Path) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True)

    as_postgres(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
    as_postgres(PG_BIN / "pg_ctl", "-D", data, "-o", options, "-w", "-l", directory / "log", "start")
    try:
        yield Server(directory, port)
    finally:
        as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


def users_statements(service: Service) -> Callable[[str, str, str], list[str]]:
    """The function's own statements() (pure), loaded without boto3, which the harness lacks."""
    namespace: dict[str, Any] = {}
    no_clients = types.SimpleNamespace(client=lambda *_: None)
    with mock.patch.dict(sys.modules, {"boto3": no_clients}), mock.patch.dict(os.environ, {"DATABASE_NAME": "-"}):
        exec(compile(users_code(service), "index.py", "exec"), namespace)
    return namespace["statements"]  # type: ignore[no-any-return]


def test_the_users_functions_statements_create_a_user_that_can_run_migrations(
    service: Service, request: pytest.FixtureRequest, judged_once: Callable[..., None]
) -> None:
    # The server is started only by the worker that runs the check: the others share its outcome.
    judged_once(service, "users-statements", lambda: users_statements_create_a_migrating_user(service, request))


def users_statements_create_a_migrating_user(service: Service, request: pytest.FixtureRequest) -> None:
    postgres: Server = request.getfixturevalue("postgres")
    statements_for = users_statements(service)
    suffix = uuid.uuid4().hex[:8]
    master, database, user = f"dbadmin_{suffix}", f"orders_{suffix}", f"orders_app_{suffix}"
    # As on Aurora: the master user is no superuser, but may create roles and owns the database.
    for sql in (
        f"CREATE ROLE {master} LOGIN CREATEROLE PASSWORD 'admin0password'",
        f"CREATE DATABASE {database} OWNER {master}",
    ):
        judges.assert_passes(postgres.psql(sql), sql)
    try:
        for password in ("first0password", "second0password"):  # created, then rotated
            for sql in statements_for(user, password, database):
                judges.assert_passes(postgres.psql(sql, master, "admin0password", database), f"as {master}: {sql}")
            # What the service's migrations do: tables in public, role defaults for the timeouts.
            migrate = "CREATE TABLE orders (id text PRIMARY KEY); ALTER ROLE CURRENT_USER SET lock_timeout = '2s'"
            judges.assert_passes(
                postgres.psql(migrate, user, password, database), "a migration as the application user"
            )
            judges.assert_passes(postgres.psql("DROP TABLE orders", user, password, database), "the migration undone")
        refused = postgres.psql("SELECT 1", user, "first0password", database)
        assert refused.returncode != 0, "the password from before the rotation still logs in"
    finally:
        drop(postgres, database, user, master)


def drop(postgres: Server, database: str, *roles: str) -> None:
    """Leave the test's server as it found it: the test's database, then its roles."""
    for sql in (f"DROP DATABASE IF EXISTS {database}", *(f"DROP ROLE IF EXISTS {role}" for role in roles)):
        postgres.psql(sql)


# Runs in the service's own venv (boto3, moto): Secrets Manager emulated by moto, the Data API's
# part played by the real server, which runs each statement as the master user.
ROTATION_DRIVER = """
import contextlib, http.server, io, json, os, subprocess, sys, threading
import boto3
from moto import mock_aws

code, user, first, database, master, master_password, port = sys.argv[1:8]
responses = []


class CloudFormation(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        responses.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), CloudFormation)
threading.Thread(target=server.serve_forever, daemon=True).start()


def as_master(sql):
    login = {"PGHOST": "127.0.0.1", "PGPORT": port, "PGUSER": master, "PGDATABASE": database}
    env = {**os.environ, **login, "PGPASSWORD": master_password}
    command = [os.environ["PSQL"], "-X", "-v", "ON_ERROR_STOP=1", "-c", sql]
    subprocess.run(command, env=env, check=True, capture_output=True)


def refused(sql):
    raise subprocess.CalledProcessError(1, ["psql", "-c", sql])


with mock_aws():
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="app-user", SecretString=json.dumps({"username": user, "password": first}))["ARN"]
    os.environ.update(CLUSTER_ARN="arn:aws:rds:us-east-1:123456789012:cluster:c", ADMIN_SECRET_ARN="admin",
                      APP_SECRET_ARN=arn, DATABASE_NAME=database)
    namespace = {"__name__": "index"}
    exec(compile(open(code).read(), "index.py", "exec"), namespace)
    context = type("Context", (), {"log_group_name": "/aws/lambda/users"})()
    stack = {"ResponseURL": f"http://127.0.0.1:{server.server_port}/", "StackId": "stack", "RequestId": "1",
             "LogicalResourceId": "AppUser"}
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):
        namespace["run"] = as_master
        namespace["handler"]({**stack, "RequestType": "Create"}, context)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            namespace["handler"]({"SecretId": arn, "ClientRequestToken": "5" * 32, "Step": step}, context)
        namespace["run"] = refused
        namespace["handler"]({**stack, "RequestType": "Update"}, context)
        namespace["handler"]({**stack, "RequestType": "Delete"}, context)
    current = json.loads(secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    print(json.dumps({"responses": responses, "current": current, "logs": logs.getvalue()}))
"""


def test_the_users_function_creates_the_user_then_rotates_its_password(
    service: Service, request: pytest.FixtureRequest, tmp_path: Path, judged_once: Callable[..., None]
) -> None:
    # Driven in the service's venv (boto3, moto): what it imports from there is part of what it reads.
    python_version = str(service.answers["python_version"])
    venv = service_venv(service.project, python_version)

    def check() -> None:
        users_function_rotates(service, request.getfixturevalue("postgres"), tmp_path)

    judged_once(service, "users-rotation", check, python_version, *runtime_distributions(venv))


# Type-only distributions: a service's venv differs from another's in these by the boto3 services
# its code calls, and nothing imports them at run time.
TYPE_ONLY_DISTRIBUTIONS = ("boto3_stubs-", "botocore_stubs-", "mypy_boto3_", "types_")


def runtime_distributions(venv: Path) -> list[str]:
    """The distributions (name and version) installed in `venv` that code can import at run time."""
    return sorted(
        path.name
        for path in venv.glob("lib/python*/site-packages/*.dist-info")
        if not path.name.startswith(TYPE_ONLY_DISTRIBUTIONS)
    )


def users_function_rotates(service: Service, postgres: Server, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    master, database, user, first = f"dbadmin_{suffix}", f"orders_{suffix}", f"orders_app_{suffix}", "first0password"
    for sql in (
        f"CREATE ROLE {master} LOGIN CREATEROLE PASSWORD 'admin0password'",
        f"CREATE DATABASE {database} OWNER {master}",
    ):
        judges.assert_passes(postgres.psql(sql), sql)
    (tmp_path / "index.py").write_text(users_code(service), encoding="utf-8")
    (tmp_path / "driver.py").write_text(ROTATION_DRIVER, encoding="utf-8")
    venv = service_venv(service.project, str(service.answers["python_version"]))
    fake_aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env = judges.clean_env({**fake_aws, "PSQL": str(PG_BIN / "psql")})
    arguments = [tmp_path / "index.py", user, first, database, master, "admin0password", postgres.port]
    try:
        result = judges.run([venv / "bin" / "python", tmp_path / "driver.py", *arguments], tmp_path, env)
        judges.assert_passes(result, "the users function, driven as CloudFormation and Secrets Manager drive it")
        outcome = json.loads(result.stdout)
        statuses = [r["Status"] for r in outcome["responses"]]
        assert statuses == ["SUCCESS", "FAILED", "SUCCESS"], statuses  # create, update refused, delete
        rotated = outcome["current"]["password"]
        assert outcome["current"]["username"] == user and rotated != first and rotated.isalnum() and len(rotated) == 32
        assert postgres.psql("SELECT 1", user, rotated, database).returncode == 0, (
            "the rotated password does not log in"
        )
        assert postgres.psql("SELECT 1", user, first, database).returncode != 0, "the first password still logs in"
        # A failure is reported by its type only: a database error may quote the statement.
        assert "CalledProcessError" in outcome["logs"] and rotated not in outcome["logs"] + json.dumps(
            outcome["responses"]
        )
    finally:
        drop(postgres, database, user, master)

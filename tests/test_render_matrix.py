"""Every combination the template renders passes every judge, out of the box.

Each combination is rendered once per run and shared by all its tests, on
whichever xdist worker they run (see once.py). Each gate is its own test, so a
report names the combination and the judge that refused it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_copie.plugin import Copie

import judges
from cfn_template import load_template
from cost_summary import note_suite_run
from once import locked, once
from service_env import service_tool_env, service_venv, tool_cache


@dataclass(frozen=True)
class Combination:
    id: str
    answers: dict[str, Any]


# The questions whose every choice is a folder of slots (template/_slots/README.md).
SLOTTED_QUESTIONS = {"event_source": "sources", "database": "databases"}
COPIER_YML = judges.REPO_ROOT / "copier.yml"
SLOTS = judges.REPO_ROOT / "template" / "_slots"


def slotted_choices(copier_yml: Path = COPIER_YML) -> dict[str, list[str]]:
    """Each slotted question's choices (the values), in copier.yml's order."""
    questions = yaml.safe_load(copier_yml.read_text())
    offered: dict[str, list[str]] = {}
    for question in SLOTTED_QUESTIONS:
        choices = questions[question]["choices"]
        offered[question] = [str(value) for value in (choices.values() if isinstance(choices, dict) else choices)]
    return offered


def missing_slots(answers: dict[str, Any], slots: Path = SLOTS) -> list[str]:
    """Why copier could not render these answers: each slotted choice without its folder."""
    return [
        f"copier.yml offers {question}={answers[question]} but template/_slots/{folder}/{answers[question]}/ "
        f"does not exist: add the folder (template/_slots/README.md says what goes in it) or remove the choice"
        for question, folder in SLOTTED_QUESTIONS.items()
        if question in answers and not (slots / folder / str(answers[question])).is_dir()
    ]


def every_source_and_database(copier_yml: Path = COPIER_YML) -> list[Combination]:
    """Every event_source choice x every database choice that copier.yml offers."""
    offered = slotted_choices(copier_yml)
    return [
        Combination(f"{source}-{database}", {"event_source": source, "database": database})
        for source in offered["event_source"]
        for database in offered["database"]
    ]


CHOICES = slotted_choices()
EVENT_SOURCES, DATABASES = CHOICES["event_source"], CHOICES["database"]
# Answers that change more than a slot, on a few combinations each.
VARIANTS = [
    Combination("sqs-dynamodb-py3.12", {"event_source": "sqs", "database": "dynamodb", "python_version": "3.12"}),
    Combination(
        "api-none-non-defaults",
        {
            "event_source": "api",
            "database": "none",
            "architecture": "x86_64",
            "reserved_concurrency": 5,
            "alarm_email": "oncall@example.com",
            "jwt_issuer": "https://example.auth0.com/",
            "jwt_audience": "orders-api",
            "deployment_strategy": "linear",
        },
    ),
    Combination("api-dynamodb-snapstart", {"event_source": "api", "database": "dynamodb", "cold_start": "snapstart"}),
    Combination("api-none-provisioned", {"event_source": "api", "database": "none", "cold_start": "provisioned"}),
    Combination("api-postgres-snapstart", {"event_source": "api", "database": "postgres", "cold_start": "snapstart"}),
    Combination(
        "function_url-none-aws-iam",
        {"event_source": "function_url", "database": "none", "function_url_auth": "AWS_IAM"},
    ),
    # The owner's stream, in another account, encrypted with a customer-managed key.
    Combination(
        "kinesis-dynamodb-existing-stream",
        {
            "event_source": "kinesis",
            "database": "dynamodb",
            "kinesis_stream_arn": "arn:aws:kinesis:us-east-1:210987654321:stream/orders",
            "kinesis_stream_key_arn": "arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
    ),
]
MATRIX = [*every_source_and_database(), *VARIANTS]


@dataclass(frozen=True)
class Service:
    """A rendered combination: where it is and what was answered."""

    id: str
    project: Path
    answers: dict[str, Any]

    @property
    def package(self) -> str:
        return str(self.answers["package_name"])

    def files(self) -> Iterator[Path]:
        return (p for p in sorted(self.project.rglob("*")) if ".git" not in p.relative_to(self.project).parts)


@pytest.fixture(scope="session")
def render(copie_session: Copie, shared: Path) -> Callable[[Combination], Service]:
    """Render each combination once per run (shared by the xdist workers)."""

    def build(combination: Combination, directory: Path) -> dict[str, Any]:
        # pytest-copie's renderer, in a directory every worker can see.
        directory.mkdir()
        copie = Copie(copie_session.default_template_dir, directory, copie_session.config_file)
        result = copie.copy(extra_answers=combination.answers)
        if result.exit_code != 0:
            raise RuntimeError(f"copier could not render {combination.id}: {result.exception}") from result.exception
        return {"project": str(result.project_dir), "answers": result.answers}

    def rendered(combination: Combination) -> Service:
        if missing := missing_slots(combination.answers):
            pytest.fail(f"{combination.id} cannot render: " + "; ".join(missing), pytrace=False)
        done = once(shared, f"render-{combination.id}", lambda d: build(combination, d))
        return Service(combination.id, Path(done["project"]), done["answers"])

    return rendered


@pytest.fixture(params=[pytest.param(c, id=c.id) for c in MATRIX])
def service(request: pytest.FixtureRequest, render: Callable[[Combination], Service]) -> Service:
    return render(request.param)


def run_tool(service: Service, *command: str) -> subprocess.CompletedProcess[str]:
    """Run one of the service's own tools (its venv's ruff, mypy, pytest) in its directory."""
    venv = service_venv(service.project, str(service.answers["python_version"]))
    return judges.run(
        [str(venv / "bin" / "python"), *command],
        service.project,
        service_tool_env(venv, service.id),
    )


def make_command(project: Path, target: str, tool: str) -> list[str]:
    """The arguments the service's Makefile passes to `tool` in `target`."""
    assert (project / "Makefile").is_file(), "the service has no Makefile"
    if shutil.which("make"):
        dry_run = subprocess.run(
            ["make", "--dry-run", "--no-print-directory", target],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        judges.assert_passes(dry_run, f"make --dry-run {target}")
        lines = dry_run.stdout.splitlines()
    else:  # no make on the machine: read the recipe, which must then be literal
        recipe = re.search(rf"^{re.escape(target)}:[^=\n]*\n((?:\t.*\n?)+)", (project / "Makefile").read_text(), re.M)
        assert recipe, f"the Makefile has no `{target}` target"
        lines = [line.strip().lstrip("@-") for line in recipe.group(1).splitlines()]
    for line in lines:
        words = shlex.split(line)
        for i, word in enumerate(words):
            if Path(word).name == tool:
                return words[i + 1 :]
    raise AssertionError(f"`make {target}` does not run {tool}: {lines}")


# ---------------------------------------------------------------- the matrix itself
def test_the_matrix_is_every_source_with_every_database_copier_yml_offers(tmp_path: Path) -> None:
    copier_yml = tmp_path / "copier.yml"
    copier_yml.write_text(
        "event_source:\n  type: str\n  choices:\n    A queue: sqs\n    An API: api\n    A stream: kinesis\n"
        "database:\n  type: str\n  choices:\n    - none\n    - dynamodb\n"
    )
    assert [c.id for c in every_source_and_database(copier_yml)] == [
        "sqs-none",
        "sqs-dynamodb",
        "api-none",
        "api-dynamodb",
        "kinesis-none",
        "kinesis-dynamodb",
    ]


def test_a_choice_without_its_slot_folder_is_named() -> None:
    assert missing_slots({"event_source": "kafka", "database": "none"}) == [
        "copier.yml offers event_source=kafka but template/_slots/sources/kafka/ does not exist: "
        "add the folder (template/_slots/README.md says what goes in it) or remove the choice"
    ]
    # Every choice copier.yml offers today has its folder.
    assert [problem for c in MATRIX for problem in missing_slots(c.answers)] == []


# ---------------------------------------------------------------- the service's own gates
def test_ruff_finds_nothing(service: Service) -> None:
    judges.assert_passes(run_tool(service, "-m", "ruff", "check", "."), "ruff check")


def test_code_is_ruff_formatted(service: Service) -> None:
    judges.assert_passes(run_tool(service, "-m", "ruff", "format", "--check", "--diff", "."), "ruff format --check")


def seed_mypy_cache(shared: Path, service: Service, arguments: list[str]) -> None:
    """Start a combination's empty mypy cache from one of another combination with its venv
    (whose own seed started from the first venv's of its Python).

    Most of mypy's work is the third-party stubs (boto3's, Powertools, moto),
    the same for every combination with the same venv: checked cold,
    sqs-dynamodb took 18.2 s CPU, and sqs-none from a copy of its cache 1.6 s.
    mypy revalidates every entry against the files it checks (size, then
    hash), so the service's own modules are checked again and the verdict is
    the same as a cold run's; only a fresh clone (CI) starts empty.
    """
    python_version = str(service.answers["python_version"])
    venv = service_venv(service.project, python_version)
    cache = tool_cache(service.id, "mypy")
    if cache.is_dir():
        return

    def run_mypy(directory: Path) -> dict[str, Any]:
        # The first combination's own run, into a cache of the run; its verdict is the gate's to give.
        env = service_tool_env(venv, service.id) | {"MYPY_CACHE_DIR": str(directory)}
        judges.run([str(venv / "bin" / "python"), "-m", "mypy", *arguments], service.project, env)
        return {"cache": str(directory)}

    def fill(directory: Path) -> dict[str, Any]:
        # A venv's seed starts from the first one of its Python: the packages most venvs share
        # (boto3's and botocore's stubs, Powertools, moto) are the same files at another path,
        # which mypy accepts by hash. Measured: schedule-dynamodb from sns-none's cache 8.7 s
        # CPU, cold 19.5 s.
        base = Path(once(shared, f"mypy-seed-py{python_version}", run_mypy)["cache"])
        if base.is_dir():
            shutil.copytree(base, directory, dirs_exist_ok=True)
        return run_mypy(directory)

    seed = Path(once(shared, f"mypy-seed-{venv.name}", fill)["cache"])
    with locked(cache.parent / "mypy-seed.lock"):
        if not cache.is_dir() and seed.is_dir():
            shutil.copytree(seed, cache.with_name("mypy.seeding"), dirs_exist_ok=True)
            cache.with_name("mypy.seeding").rename(cache)


def test_mypy_strict_passes_as_make_typecheck_runs_it(service: Service, shared: Path) -> None:
    arguments = make_command(service.project, "typecheck", "mypy")
    assert "--strict" in arguments or "strict = true" in (service.project / "pyproject.toml").read_text()
    seed_mypy_cache(shared, service, arguments)
    judges.assert_passes(run_tool(service, "-m", "mypy", *arguments), "mypy")


def test_generated_test_suite_passes(service: Service) -> None:
    # The service's own pytest config (pythonpath, markers); e2e tests skip without a stack.
    done = run_tool(service, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    note_suite_run(done.stdout)
    judges.assert_passes(done, "the service's tests")


# ---------------------------------------------------------------- outside judges
def templates_of(service: Service) -> list[str]:
    return [t for t in ("template.yaml", "bootstrap/template.yaml") if (service.project / t).is_file()]


def test_cfn_lint_accepts_templates(service: Service) -> None:
    templates = templates_of(service)
    assert "template.yaml" in templates, "the service has no template.yaml"
    judges.assert_passes(judges.cfn_lint(service.project, templates, service.answers["aws_region"]), "cfn-lint")


def test_sam_validate_lint_passes(service: Service) -> None:
    result = judges.sam_validate(service.project, "template.yaml", service.answers["aws_region"])
    judges.assert_passes(result, "sam validate --lint")


def test_checkov_finds_nothing(service: Service) -> None:
    judges.assert_passes(judges.checkov(service.project), "checkov")


def workflows_of(service: Service) -> list[str]:
    workflows = sorted(
        str(p.relative_to(service.project)) for p in (service.project / ".github/workflows").glob("*.y*ml")
    )
    assert workflows, "the service has no GitHub workflows"
    return workflows


def judged_once(
    shared: Path, service: Service, name: str, judge: Callable[[], subprocess.CompletedProcess[str]]
) -> None:
    """Run a judge of the workflows once per distinct .github/ tree, all it reads.

    The workflows depend on few answers (the Python version, the JWT audience),
    so most combinations render the same bytes: one verdict serves them all
    (actionlint costs about 10 s a combination). A refusal fails every
    combination with those files, with the judge's output.
    """
    digest = hashlib.sha256()
    for path in sorted((service.project / ".github").rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(service.project)}\0{path.stat().st_size}\0".encode() + path.read_bytes())

    def run(_: Path) -> dict[str, Any]:
        judges.assert_passes(judge(), f"{name} (the same .github/ as {service.id})")
        return {}

    once(shared, f"gate-{name}-{digest.hexdigest()[:16]}", run)


def test_actionlint_accepts_workflows(service: Service, shared: Path) -> None:
    workflows = workflows_of(service)
    judged_once(shared, service, "actionlint", lambda: judges.actionlint(service.project, workflows))


def test_zizmor_finds_nothing(service: Service, shared: Path) -> None:
    workflows_of(service)
    judged_once(shared, service, "zizmor", lambda: judges.zizmor(service.project))


# ---------------------------------------------------------------- clean output
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}")  # ${{ }} is GitHub Actions' own syntax


def text_files(service: Service, suffixes: tuple[str, ...] | None = None) -> Iterator[tuple[Path, str]]:
    for path in service.files():
        if path.is_file() and (suffixes is None or path.suffix in suffixes):
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def test_no_template_syntax_left_in_output(service: Service) -> None:
    leftovers = [
        f"{path.relative_to(service.project)}:{number}: {line.strip()}"
        for path, text in text_files(service)
        for number, line in enumerate(text.splitlines(), 1)
        if LEFTOVER_JINJA.search(line)
    ]
    assert not leftovers, "Jinja left in the rendered files:\n" + "\n".join(leftovers)


def test_no_template_file_names_or_slots_in_output(service: Service) -> None:
    names = [str(p.relative_to(service.project)) for p in service.files()]
    leftovers = [n for n in names if n.endswith(".jinja") or "_slots" in Path(n).parts or "{" in n]
    assert not leftovers, f"template files or partials in the output: {leftovers}"


def third_blank_lines(text: str) -> Iterator[int]:
    """Line numbers where a run of blank lines reaches three."""
    run = 0
    for number, line in enumerate(text.splitlines(), 1):
        run = run + 1 if not line.strip() else 0
        if run == 3:
            yield number


def test_no_runs_of_blank_lines_in_code_and_config(service: Service) -> None:
    runs = [
        f"{path.relative_to(service.project)}:{number}"
        for path, text in text_files(service, (".py", ".yaml", ".yml", ".toml"))
        for number in third_blank_lines(text)
    ]
    assert not runs, f"3 or more blank lines in a row (Jinja whitespace) at: {runs}"


def test_store_module_exists_only_with_a_database(service: Service) -> None:
    store = service.project / "src" / service.package / "store.py"
    assert (service.project / "src" / service.package / "handler.py").is_file()
    assert store.is_file() == (service.answers["database"] != "none"), (
        f"database={service.answers['database']} but store.py {'exists' if store.exists() else 'is missing'}"
    )


# What an owner tunes in template.yaml, and what git apply (copier update) matches an edit by:
# the line and three lines either side.
TUNED = re.compile(r"^\s+(Threshold|EvaluationPeriods|DatapointsToAlarm): ")
CONTEXT_LINES = 3


def test_every_tuned_alarm_setting_is_unique_with_its_context(service: Service) -> None:
    """An owner's threshold edit can only be merged into its own alarm by a later `copier update`.

    copier re-applies the owner's diff to the new template with `git apply`,
    which puts a change wherever its context matches first: in alarms that end
    alike, a Throttles threshold landed on the Errors alarm (found by
    tests/test_update_history.py). With the tuned settings next to the alarm's
    name, every such window occurs once.
    """
    lines = (service.project / "template.yaml").read_text().splitlines()
    windows = [tuple(lines[max(0, i - CONTEXT_LINES) : i + CONTEXT_LINES + 1]) for i in range(len(lines))]
    ambiguous = [
        f"line {i + 1}: {line.strip()}"
        for i, line in enumerate(lines)
        if TUNED.match(line) and windows.count(windows[i]) > 1
    ]
    assert not ambiguous, f"settings copier update could merge into the wrong resource: {ambiguous}"


# Modules only some answers need: the question, and the answers that render each one.
# A question not asked of a combination (cold_start of a queue worker) counts as "none".
# A path with a slash is from the project's root, a bare name a module of the package.
OPTIONAL_MODULES = {
    "http_api.py": ("event_source", {"api"}),
    "http_errors.py": ("event_source", {"api", "function_url"}),
    "http_request.py": ("event_source", {"api", "function_url"}),
    "http_response.py": ("event_source", {"api", "function_url"}),
    "webhook_signature.py": ("function_url_auth", {"NONE"}),
    "scripts/send_webhook.py": ("function_url_auth", {"NONE"}),
    "tests/integration/test_send_webhook.py": ("function_url_auth", {"NONE"}),
    "dead_letters.py": ("event_source", {"sqs"}),
    "sqs_batch.py": ("event_source", {"sqs"}),
    "scheduled_run.py": ("event_source", {"schedule"}),
    "sns_notification.py": ("event_source", {"sns"}),
    "order_placed_event.py": ("event_source", {"eventbridge"}),
    "failures.py": ("event_source", {"sns", "eventbridge", "schedule", "s3", "kinesis", "dynamodb_stream"}),
    "scripts/redrive.py": ("event_source", {"sns", "eventbridge", "schedule", "s3", "kinesis", "dynamodb_stream"}),
    "tests/integration/test_failure_queue.py": ("event_source", {"sns", "eventbridge", "schedule", "s3"}),
    "tests/readiness/test_async_contract.py": ("event_source", {"sns", "eventbridge", "schedule", "s3"}),
    "s3_objects.py": ("event_source", {"s3"}),
    "events/documents.json": ("event_source", {"s3"}),
    "stream_batch.py": ("event_source", {"kinesis", "dynamodb_stream"}),
    "dynamodb_stream_records.py": ("event_source", {"dynamodb_stream"}),
    "kinesis_records.py": ("event_source", {"kinesis"}),
    "restore_hooks.py": ("cold_start", {"snapstart"}),
    "database.py": ("database", {"postgres"}),
    "migrate.py": ("database", {"postgres"}),
    "database/template.yaml": ("database", {"postgres"}),
    "database/README.md": ("database", {"postgres"}),
    "tests/database_server.py": ("database", {"postgres"}),
    "tests/unit/test_database_server.py": ("database", {"postgres"}),
    "tests/integration/test_database_server.py": ("database", {"postgres"}),
    "tests/readiness/test_database.py": ("database", {"postgres"}),
    "tests/integration/conftest.py": ("database", {"postgres"}),
    "tests/integration/test_migrate.py": ("database", {"postgres"}),
    "src/requirements-migrate.txt": ("database", {"postgres"}),
}


def test_optional_modules_exist_only_with_the_answers_that_use_them(service: Service) -> None:
    package = service.project / "src" / service.package
    for module, (question, answers) in OPTIONAL_MODULES.items():
        answer = service.answers.get(question, "none")
        path = service.project / module if "/" in module else package / module
        assert path.is_file() == (answer in answers), f"{question}={answer}: {module}"


# The least-privilege bar's one exception to "name the resource": actions the Service
# Authorization Reference lists with no resource type, which IAM accepts only on "*".
ACTIONS_WITHOUT_A_RESOURCE = frozenset(
    {"xray:PutTelemetryRecords", "xray:PutTraceSegments", "codedeploy:PutLifecycleEventHookExecutionStatus"}
)
# Lambda looks up a VPC function's network interfaces with its role, and DescribeNetworkInterfaces
# works only on "*" (Lambda developer guide, "Configuring VPC access"). Only postgres services are
# in a VPC; the other network-interface actions take the account's EC2 ARNs.
VPC_ACTIONS_WITHOUT_A_RESOURCE = frozenset({"ec2:DescribeNetworkInterfaces"})
# Lambda's DynamoDB stream poller lists streams with the function's role (the managed
# AWSLambdaDynamoDBExecutionRole, AWS's example policy); ListStreams takes no resource.
STREAM_ACTIONS_WITHOUT_A_RESOURCE = {"dynamodb_stream": frozenset({"dynamodb:ListStreams"})}


def test_only_actions_without_a_resource_are_granted_on_every_resource(service: Service) -> None:
    template = load_template(service.project / "template.yaml")
    on_every_resource = {
        (logical_id, action)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow" and statement["Resource"] == "*"
        for action in statement["Action"]
    }
    in_vpc = service.answers["database"] == "postgres"
    allowed = ACTIONS_WITHOUT_A_RESOURCE | (VPC_ACTIONS_WITHOUT_A_RESOURCE if in_vpc else frozenset())
    allowed |= STREAM_ACTIONS_WITHOUT_A_RESOURCE.get(service.answers["event_source"], frozenset())
    assert {action for _, action in on_every_resource} <= allowed, sorted(on_every_resource)
    if in_vpc:
        # Each role of a function in the VPC: the service's and its migrations'.
        assert {logical_id for logical_id, action in on_every_resource if action in VPC_ACTIONS_WITHOUT_A_RESOURCE} == {
            "FunctionRole",
            "MigrateFunctionRole",
        }


FUNCTION_URLS = [c for c in MATRIX if c.answers["event_source"] == "function_url"]


@pytest.mark.parametrize("combination", [pytest.param(c, id=c.id) for c in FUNCTION_URLS])
def test_the_function_url_and_its_permissions_are_on_the_alias_as_the_sam_translator_renders_them(
    combination: Combination, render: Callable[[Combination], Service]
) -> None:
    """Since October 2025 a public URL needs both lambda:InvokeFunctionUrl and lambda:InvokeFunction
    (with lambda:InvokedViaFunctionUrl) in the resource policy, or every request is a 403; SAM
    (1.101.0+) renders both, on the alias when the function has AutoPublishAlias."""
    service = render(combination)
    result = judges.registry_handlers(service.project, "template.yaml", service.answers["aws_region"], "--expanded")
    judges.assert_passes(result, "the SAM transform")
    resources = json.loads(result.stdout)["Resources"]
    [alias_id] = [
        logical_id
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias" and r["Properties"]["FunctionName"] == {"Ref": "Function"}
    ]
    [url] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Url"]
    assert url["TargetFunctionArn"] == {"Ref": alias_id}
    assert url["InvokeMode"] == "BUFFERED"
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    public = [p for p in permissions if p.get("Principal") == "*"]
    if service.answers.get("function_url_auth", "NONE") == "NONE":
        assert url["AuthType"] == "NONE"
        by_action = {p["Action"]: p for p in public}
        assert by_action.keys() == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}, public
        assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
        assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
        for permission in by_action.values():
            assert permission["FunctionName"] == {"Ref": alias_id}
    else:
        assert url["AuthType"] == "AWS_IAM"
        assert public == [], "an AWS_IAM URL grants nothing to everyone"

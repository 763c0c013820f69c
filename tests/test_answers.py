"""Questions: bad answers are refused up front, defaults follow earlier answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from test_render_matrix import MATRIX, Combination, render  # noqa: F401 - the matrix's renders, shared by the run

QUESTIONS: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parent.parent / "copier.yml").read_text("utf-8"))
URL = {"event_source": "function_url"}

# (answers, the question the refusal must name, what it must say is allowed)
REFUSED = [
    pytest.param({"service_name": "Bad Name!"}, "service_name", "kebab-case", id="service_name-not-kebab"),
    pytest.param({"service_name": "a" * 41}, "service_name", "40 characters", id="service_name-41-chars"),
    # S3's bucket naming rules (S3 user guide, "General purpose bucket naming rules").
    pytest.param({"service_name": "sthree-orders"}, "service_name", '"sthree-"', id="service_name-sthree-prefix"),
    pytest.param(
        {"service_name": "amzn-s3-demo-orders"}, "service_name", "amzn-s3-demo-", id="service_name-amzn-s3-demo-prefix"
    ),
    pytest.param({"event_source": "ftp"}, "event_source", "'sqs', 'api'", id="event_source-ftp"),
    pytest.param({"database": "mysql"}, "database", "'none', 'dynamodb'", id="database-mysql"),
    pytest.param({"event_source": "api", "timeout_seconds": 30}, "timeout_seconds", "1 to 29", id="timeout-30-for-api"),
    pytest.param({"aws_region": "mars"}, "aws_region", "us-east-1", id="aws_region-mars"),
    pytest.param({"alarm_email": "not-an-email"}, "alarm_email", "e-mail address", id="alarm_email-not-email"),
    pytest.param({"reserved_concurrency": -1}, "reserved_concurrency", "1000", id="reserved_concurrency-negative"),
    pytest.param(
        {"event_source": "api", "jwt_issuer": "http://insecure"}, "jwt_issuer", "https://", id="jwt_issuer-http"
    ),
    pytest.param(
        {"event_source": "api", "cold_start": "snapstart", "aws_region": "ap-southeast-6"},
        "cold_start",
        "every commercial region except",
        id="snapstart-in-new-zealand",
    ),
    pytest.param(
        {"event_source": "api", "cold_start": "snapstart", "aws_region": "us-gov-west-1"},
        "cold_start",
        "every commercial region except",
        id="snapstart-in-govcloud",
    ),
    pytest.param(
        {"event_source": "api", "cold_start": "warm"}, "cold_start", "'none', 'snapstart'", id="cold_start-warm"
    ),
    pytest.param(
        {"event_source": "api", "cold_start": "provisioned", "reserved_concurrency": 3, "provisioned_concurrency": 4},
        "provisioned_concurrency",
        "at most reserved_concurrency",
        id="provisioned-above-reserved",
    ),
    pytest.param(
        {"event_source": "schedule", "schedule_expression": "at(2026-01-01T00:00:00)"},
        "schedule_expression",
        "cron(minutes hours day-of-month month day-of-week year) or rate(N minutes|hours|days)",
        id="schedule-at-runs-once",
    ),
    pytest.param(
        {"event_source": "schedule", "schedule_expression": "cron(0 2 ? * MON *)"},
        "schedule_expression",
        "at least daily",
        id="schedule-weekly-cron",
    ),
    pytest.param(
        {"event_source": "schedule", "database": "dynamodb", "schedule_expression": "rate(2 days)"},
        "schedule_expression",
        "must be daily with database=dynamodb",
        id="schedule-every-other-day-with-a-report",
    ),
    pytest.param(
        {"event_source": "schedule", "database": "postgres", "schedule_timezone": "Europe/London"},
        "schedule_timezone",
        "must be UTC with database=postgres",
        id="schedule-london-with-a-report",
    ),
    pytest.param(
        {"event_source": "schedule", "schedule_timezone": "CET+1"},
        "schedule_timezone",
        "IANA time zone name like Europe/Berlin",
        id="schedule-timezone-not-iana",
    ),
    # A function URL has no throttling: the reservation is the only cap, so it cannot be 0.
    pytest.param({**URL, "reserved_concurrency": 0}, "reserved_concurrency", "event_source=function_url", id="url-0"),
    pytest.param({**URL, "function_url_auth": "AWS_JWT"}, "function_url_auth", "'NONE', 'AWS_IAM'", id="url-auth-jwt"),
]


def written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir()]


def with_defaults(answers: dict[str, Any], keys: set[str]) -> dict[str, Any] | None:
    """`answers` with copier.yml's default for each of `keys` left unanswered, or None where one is an expression."""
    filled = dict(answers)
    for key in keys - set(answers):
        default = QUESTIONS.get(key, {}).get("default") if isinstance(QUESTIONS.get(key), dict) else None
        if default is None or "{" in str(default):
            return None
        filled[key] = default
    return filled


def matrix_twin(answers: dict[str, Any]) -> Combination | None:
    """The combination of the matrix whose answers, with copier.yml's defaults, are exactly these, if any."""
    for combination in MATRIX:
        keys = set(answers) | set(combination.answers)
        ours, theirs = with_defaults(answers, keys), with_defaults(combination.answers, keys)
        if ours is not None and ours == theirs:
            return combination
    return None


Rendered = tuple[dict[str, Any], Path]  # the answers copier recorded (private ones aside), the project


@pytest.fixture
def render_answers(copie: Any, request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], Rendered]:
    """Render a service with these answers (copier's defaults for the rest), which must succeed.

    Answers the matrix renders anyway (tests/test_render_matrix.py) are its render, made
    once per run by the same renderer with the same answers: a render costs about 3 s of CPU.
    """

    def render_with(answers: dict[str, Any]) -> Rendered:
        if combination := matrix_twin(answers):
            service = request.getfixturevalue("render")(combination)
            return dict(service.answers), service.project
        result = copie.copy(extra_answers=answers)
        assert result.exit_code == 0, result.exception
        return result.answers, result.project_dir

    return render_with


def test_a_matrix_twin_has_the_same_answers_once_defaults_are_filled_in() -> None:
    twin = matrix_twin({"event_source": "api", "cold_start": "snapstart", "python_version": "3.13"})
    assert twin is not None and twin.id == "api-dynamodb-snapstart"
    assert matrix_twin({"event_source": "sqs"}) == next(c for c in MATRIX if c.id == "sqs-dynamodb")
    assert matrix_twin({"event_source": "api", "cold_start": "snapstart", "python_version": "3.12"}) is None
    assert matrix_twin({"project_name": "Billing Events API"}) is None, "an expression's default is never assumed"


@pytest.mark.parametrize(("answers", "question", "allowed"), REFUSED)
def test_bad_answer_is_refused_naming_question_and_what_is_allowed(
    copie: Any, answers: dict[str, Any], question: str, allowed: str
) -> None:
    result = copie.copy(extra_answers=answers)

    assert result.exit_code == -1, f"{answers} was accepted"
    message = str(result.exception)
    assert question in message, message
    assert allowed in message, message
    assert written_files(copie.test_dir) == [], "a refused answer still wrote files"


def test_names_derive_from_the_project_name(copie: Any) -> None:
    result = copie.copy(extra_answers={"project_name": "Billing Events API"})

    assert result.exit_code == 0, result.exception
    assert result.answers["service_name"] == "billing-events-api"
    assert result.answers["package_name"] == "billing_events_api"
    assert (result.project_dir / "src" / "billing_events_api" / "handler.py").is_file()


@pytest.mark.parametrize(("event_source", "timeout"), [("api", 10), ("sqs", 30)])
def test_timeout_defaults_to_what_the_event_source_allows(
    render_answers: Callable[[dict[str, Any]], Rendered], event_source: str, timeout: int
) -> None:
    answers, _ = render_answers({"event_source": event_source})

    assert answers["timeout_seconds"] == timeout


def test_a_queue_worker_is_not_asked_how_to_avoid_cold_starts(
    render_answers: Callable[[dict[str, Any]], Rendered],
) -> None:
    """A queue absorbs a cold start; no caller waits on it."""
    answers, project = render_answers({"event_source": "sqs"})

    assert "cold_start" not in answers
    template = (project / "template.yaml").read_text()
    assert "SnapStart" not in template
    assert "ProvisionedConcurrency" not in template


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
@pytest.mark.parametrize("python_version", ["3.12", "3.13"])
def test_snapstart_is_accepted_on_every_runtime_and_architecture_aws_supports(
    render_answers: Callable[[dict[str, Any]], Rendered], python_version: str, architecture: str
) -> None:
    answers = {"event_source": "api", "cold_start": "snapstart", "python_version": python_version}
    _, project = render_answers({**answers, "architecture": architecture})

    assert "ApplyOn: PublishedVersions" in (project / "template.yaml").read_text()


def cold_start_validator() -> str:
    questions = yaml.safe_load((Path(__file__).resolve().parent.parent / "copier.yml").read_text(encoding="utf-8"))
    return str(questions["cold_start"]["validator"])


@pytest.mark.parametrize(
    ("python_version", "refused"), [("3.11", True), ("3.12", False), ("3.13", False), ("3.14", False), ("3.20", False)]
)
def test_snapstart_refuses_runtimes_older_than_3_12_and_no_later_one(python_version: str, refused: bool) -> None:
    """A runtime added to python_version's choices later is compared as a version, not looked up in a list."""
    answers = {"cold_start": "snapstart", "python_version": python_version, "aws_region": "us-east-1"}
    message = jinja2.Environment().from_string(cold_start_validator()).render(answers).strip()
    assert bool(message) == refused, message
    if refused:
        assert "python_version 3.12 or later" in message


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("aws.orders", id="aws-prefix"),
        pytest.param("AWS.Orders", id="aws-prefix-any-case"),
        pytest.param("o" * 257, id="257-chars"),
        pytest.param("orders service", id="space"),
        pytest.param("", id="empty"),
    ],
)
def test_an_eventbridge_source_putevents_would_refuse_is_refused(copie: Any, source: str) -> None:
    """The rule would match nothing a producer can send: refused before anything is written."""
    result = copie.copy(extra_answers={"event_source": "eventbridge", "database": "none", "eventbridge_source": source})

    assert result.exit_code == -1, f"{source!r} was accepted"
    assert "eventbridge_source must be 1 to 256" in str(result.exception)
    assert written_files(copie.test_dir) == []


def test_an_eventbridge_source_is_asked_with_a_default_from_the_service_and_only_for_eventbridge(
    render_answers: Callable[[dict[str, Any]], Rendered],
) -> None:
    answers, project = render_answers({"event_source": "eventbridge", "database": "none", "service_name": "billing"})
    assert answers["eventbridge_source"] == "billing.orders"
    assert "billing.orders" in (project / "template.yaml").read_text()

    _, queue_worker = render_answers({"event_source": "sqs", "database": "none"})
    assert "eventbridge_source" not in (queue_worker / ".copier-answers.yml").read_text()


def rendered(expression: str, answers: dict[str, Any]) -> str:
    """A copier.yml expression rendered with copier's own filters (jinja2-ansible-filters)."""
    environment = jinja2.Environment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])
    return environment.from_string(expression).render(answers).strip()


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("cron(15 0 * * ? *)", ""),
        ("cron(0 */4 * * ? *)", ""),
        ("cron(30 1,13 ? * * *)", ""),
        ("rate(1 day)", ""),
        ("rate(6 hours)", ""),
        ("rate(5 minutes)", ""),
        ("rate(6 days)", ""),
        ("rate(7 days)", "at least every 6 days"),
        ("rate(1 days)", "singular unit for 1"),
        ("rate(2 hour)", "singular unit for 1"),
        ("rate(0 minutes)", "cron(minutes hours"),
        ("cron(15 0 * * * *)", 'one of day-of-month or day-of-week must be "?"'),
        ("cron(0 2 1 * ? *)", "at least daily"),
        ("cron(0 2 ? * MON-FRI *)", "at least daily"),
        ("cron(0 2 * JAN ? *)", "at least daily"),
        ("cron(0 2 * * ? 2027)", "at least daily"),
        ("cron(0 2 * * ?)", "cron(minutes hours"),
        ("cron(0 2am * * ? *)", "minutes and hours must be numbers"),
        ("0 2 * * *", "cron(minutes hours"),
    ],
)
def test_a_schedule_scheduler_or_the_missed_run_alarm_cannot_take_is_refused(expression: str, refusal: str) -> None:
    """Scheduler's cron has six fields and a "?"; the missed-run alarm can watch at most 7 days."""
    validator = str(QUESTIONS["schedule_expression"]["validator"])
    message = rendered(validator, {"schedule_expression": expression, "database": "none"})
    assert (refusal in message) if refusal else not message, message


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("cron(15 0 * * ? *)", 86400),
        ("cron(0 * * * ? *)", 3600),
        ("rate(1 day)", 86400),
        ("rate(6 hours)", 6 * 3600),
        ("rate(5 minutes)", 300),
    ],
)
def test_the_missed_run_alarm_watches_the_schedules_interval(expression: str, interval: int) -> None:
    default = str(QUESTIONS["schedule_interval_seconds"]["default"])
    assert rendered(default, {"event_source": "schedule", "schedule_expression": expression}) == str(interval)


@pytest.mark.parametrize(
    ("timezone", "refused"),
    [
        ("UTC", False),
        ("Europe/Berlin", False),
        ("America/Argentina/Buenos_Aires", False),
        ("Etc/GMT+5", False),
        ("europe/berlin", True),
        ("Berlin", True),
        ("CET+1", True),
        ("Europe/Berlin;rm", True),
        ("", True),
    ],
)
def test_the_schedule_timezone_must_be_an_iana_name(timezone: str, refused: bool) -> None:
    validator = str(QUESTIONS["schedule_timezone"]["validator"])
    message = rendered(validator, {"schedule_timezone": timezone, "database": "none"})
    assert bool(message) == refused, message


@pytest.mark.parametrize("database", ["dynamodb", "postgres"])
@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("cron(15 0 * * ? *)", False),
        ("cron(30 23 ? * * *)", False),
        ("rate(1 day)", False),
        ("rate(2 days)", True),
        ("rate(6 days)", True),
        ("rate(1 hour)", True),
        ("rate(5 minutes)", True),
        ("cron(0 * * * ? *)", True),
        ("cron(0 */4 * * ? *)", True),
        ("cron(30 1,13 ? * * *)", True),
        ("cron(0-30 2 * * ? *)", True),
    ],
)
def test_a_daily_report_is_scheduled_once_a_day(database: str, expression: str, refused: bool) -> None:
    """Each run reports the day before it: rate(2 days) would skip a day, an hourly run reread one 24 times."""
    validator = str(QUESTIONS["schedule_expression"]["validator"])
    message = rendered(validator, {"schedule_expression": expression, "database": database})
    assert bool(message) == refused, message
    if refused:
        assert f"must be daily with database={database}" in message, message
        assert "rate(1 day)" in message, message


@pytest.mark.parametrize("database", ["dynamodb", "postgres"])
@pytest.mark.parametrize(("timezone", "refused"), [("UTC", False), ("Europe/London", True), ("Etc/GMT+5", True)])
def test_a_daily_report_runs_on_a_utc_schedule(database: str, timezone: str, refused: bool) -> None:
    """In a zone with daylight saving one UTC day a year is never reported and another twice."""
    validator = str(QUESTIONS["schedule_timezone"]["validator"])
    message = rendered(validator, {"schedule_timezone": timezone, "database": database})
    assert bool(message) == refused, message
    if refused:
        assert f"must be UTC with database={database}" in message, message
        assert "daylight saving" in message, message


def test_a_function_url_is_reserved_by_default_and_its_auth_asked_only_for_it(copie: Any) -> None:
    """Nothing else caps a public URL; the auth question means nothing to another source."""
    webhook = copie.copy(extra_answers={"event_source": "function_url"})
    assert webhook.exit_code == 0, webhook.exception
    assert (webhook.answers["reserved_concurrency"], webhook.answers["function_url_auth"]) == (10, "NONE")
    assert webhook.answers["timeout_seconds"] == 10
    queue = copie.copy(extra_answers={"event_source": "sqs"})
    assert queue.exit_code == 0, queue.exception
    assert "function_url_auth" not in queue.answers
    assert queue.answers["reserved_concurrency"] == 0


# ---------------------------------------------------------------- kinesis, dynamodb_stream
KINESIS_EXAMPLE = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
DYNAMODB_STREAM_EXAMPLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"


# An existing stream is named by its ARN; a refusal shows an ARN of the right kind.
@pytest.mark.parametrize(
    ("question", "stream_arn", "refused", "example"),
    [
        ("kinesis_stream_arn", "", False, KINESIS_EXAMPLE),
        ("kinesis_stream_arn", KINESIS_EXAMPLE, False, KINESIS_EXAMPLE),
        (
            "kinesis_stream_arn",
            "arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/orders.v2_x-1",
            False,
            KINESIS_EXAMPLE,
        ),
        ("kinesis_stream_arn", "orders", True, KINESIS_EXAMPLE),
        ("kinesis_stream_arn", f"{KINESIS_EXAMPLE}/consumer/lambda:1700000000", True, KINESIS_EXAMPLE),
        ("kinesis_stream_arn", "arn:aws:sqs:us-east-1:123456789012:orders", True, KINESIS_EXAMPLE),
        ("kinesis_stream_arn", "arn:aws:kinesis:us-east-1:1234:stream/orders", True, KINESIS_EXAMPLE),
        ("dynamodb_stream_arn", "", False, DYNAMODB_STREAM_EXAMPLE),
        ("dynamodb_stream_arn", DYNAMODB_STREAM_EXAMPLE, False, DYNAMODB_STREAM_EXAMPLE),
        ("dynamodb_stream_arn", "arn:aws:dynamodb:us-east-1:123456789012:table/orders", True, DYNAMODB_STREAM_EXAMPLE),
        ("dynamodb_stream_arn", KINESIS_EXAMPLE, True, DYNAMODB_STREAM_EXAMPLE),
        ("dynamodb_stream_arn", "orders", True, DYNAMODB_STREAM_EXAMPLE),
    ],
)
def test_an_existing_stream_is_named_by_its_arn(question: str, stream_arn: str, refused: bool, example: str) -> None:
    message = rendered(str(QUESTIONS[question]["validator"]), {question: stream_arn})
    assert bool(message) == refused, message
    if refused:
        assert example in message, message


@pytest.mark.parametrize(
    ("stream_arn", "key_arn", "allowed"),
    [
        ("", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "only for an existing"),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/orders", "alias/orders", "a key id, not an alias"),
    ],
)
def test_a_stream_key_is_a_key_arn_of_an_existing_stream(stream_arn: str, key_arn: str, allowed: str) -> None:
    validator = str(QUESTIONS["kinesis_stream_key_arn"]["validator"])
    message = rendered(validator, {"kinesis_stream_arn": stream_arn, "kinesis_stream_key_arn": key_arn})
    assert allowed in message, message


def test_a_kinesis_consumer_with_postgres_gets_a_time_reserve_per_record(copie: Any) -> None:
    result = copie.copy(extra_answers={"event_source": "kinesis", "database": "postgres", "timeout_seconds": 20})
    assert result.exit_code == -1
    assert "timeout_seconds must be at least 24 for event_source=kinesis" in str(result.exception)


def test_kinesis_questions_are_asked_only_for_kinesis(copie: Any) -> None:
    queue_worker = copie.copy(extra_answers={"event_source": "sqs", "database": "none"})
    assert queue_worker.exit_code == 0, queue_worker.exception
    assert "kinesis_stream_arn" not in (queue_worker.project_dir / ".copier-answers.yml").read_text()
    consumer = copie.copy(extra_answers={"event_source": "kinesis", "database": "none"})
    assert consumer.exit_code == 0, consumer.exception
    assert consumer.answers["kinesis_stream_arn"] == ""

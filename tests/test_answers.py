"""Questions: bad answers are refused up front, defaults follow earlier answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

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
]


def written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir()]


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
def test_timeout_defaults_to_what_the_event_source_allows(copie: Any, event_source: str, timeout: int) -> None:
    result = copie.copy(extra_answers={"event_source": event_source})

    assert result.exit_code == 0, result.exception
    assert result.answers["timeout_seconds"] == timeout


def test_a_queue_worker_is_not_asked_how_to_avoid_cold_starts(copie: Any) -> None:
    """A queue absorbs a cold start; no caller waits on it."""
    result = copie.copy(extra_answers={"event_source": "sqs"})

    assert result.exit_code == 0, result.exception
    assert "cold_start" not in result.answers
    template = (result.project_dir / "template.yaml").read_text()
    assert "SnapStart" not in template
    assert "ProvisionedConcurrency" not in template


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
@pytest.mark.parametrize("python_version", ["3.12", "3.13"])
def test_snapstart_is_accepted_on_every_runtime_and_architecture_aws_supports(
    copie: Any, python_version: str, architecture: str
) -> None:
    answers = {"event_source": "api", "cold_start": "snapstart", "python_version": python_version}
    result = copie.copy(extra_answers={**answers, "architecture": architecture})

    assert result.exit_code == 0, result.exception
    assert "ApplyOn: PublishedVersions" in (result.project_dir / "template.yaml").read_text()


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


def test_an_eventbridge_source_is_asked_with_a_default_from_the_service_and_only_for_eventbridge(copie: Any) -> None:
    result = copie.copy(extra_answers={"event_source": "eventbridge", "database": "none", "service_name": "billing"})
    assert result.exit_code == 0, result.exception
    assert result.answers["eventbridge_source"] == "billing.orders"
    assert "billing.orders" in (result.project_dir / "template.yaml").read_text()

    queue_worker = copie.copy(extra_answers={"event_source": "sqs", "database": "none"})
    assert queue_worker.exit_code == 0, queue_worker.exception
    assert "eventbridge_source" not in (queue_worker.project_dir / ".copier-answers.yml").read_text()


def schedule_questions() -> dict[str, Any]:
    questions: dict[str, Any] = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "copier.yml").read_text(encoding="utf-8")
    )
    return questions


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
    validator = str(schedule_questions()["schedule_expression"]["validator"])
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
    default = str(schedule_questions()["schedule_interval_seconds"]["default"])
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
    validator = str(schedule_questions()["schedule_timezone"]["validator"])
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
    validator = str(schedule_questions()["schedule_expression"]["validator"])
    message = rendered(validator, {"schedule_expression": expression, "database": database})
    assert bool(message) == refused, message
    if refused:
        assert f"must be daily with database={database}" in message, message
        assert "rate(1 day)" in message, message


@pytest.mark.parametrize("database", ["dynamodb", "postgres"])
@pytest.mark.parametrize(("timezone", "refused"), [("UTC", False), ("Europe/London", True), ("Etc/GMT+5", True)])
def test_a_daily_report_runs_on_a_utc_schedule(database: str, timezone: str, refused: bool) -> None:
    """In a zone with daylight saving one UTC day a year is never reported and another twice."""
    validator = str(schedule_questions()["schedule_timezone"]["validator"])
    message = rendered(validator, {"schedule_timezone": timezone, "database": database})
    assert bool(message) == refused, message
    if refused:
        assert f"must be UTC with database={database}" in message, message
        assert "daylight saving" in message, message


# ---------------------------------------------------------------- kinesis
@pytest.mark.parametrize(
    ("stream_arn", "refused"),
    [
        ("", False),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/orders", False),
        ("arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/orders.v2_x-1", False),
        ("orders", True),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/lambda:1700000000", True),
        ("arn:aws:sqs:us-east-1:123456789012:orders", True),
        ("arn:aws:kinesis:us-east-1:1234:stream/orders", True),
    ],
)
def test_an_existing_kinesis_stream_is_named_by_its_data_stream_arn(stream_arn: str, refused: bool) -> None:
    validator = str(schedule_questions()["kinesis_stream_arn"]["validator"])
    message = rendered(validator, {"kinesis_stream_arn": stream_arn})
    assert bool(message) == refused, message
    if refused:
        assert "arn:aws:kinesis:us-east-1:123456789012:stream/orders" in message, message


@pytest.mark.parametrize(
    ("stream_arn", "key_arn", "allowed"),
    [
        ("", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "only for an existing"),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/orders", "alias/orders", "a key id, not an alias"),
    ],
)
def test_a_stream_key_is_a_key_arn_of_an_existing_stream(stream_arn: str, key_arn: str, allowed: str) -> None:
    validator = str(schedule_questions()["kinesis_stream_key_arn"]["validator"])
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


# ---------------------------------------------------------------- dynamodb_stream
@pytest.mark.parametrize(
    ("stream_arn", "refused"),
    [
        ("", False),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000", False),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders", True),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/orders", True),
        ("orders", True),
    ],
)
def test_an_upstream_table_is_named_by_its_stream_arn(stream_arn: str, refused: bool) -> None:
    validator = str(schedule_questions()["dynamodb_stream_arn"]["validator"])
    message = rendered(validator, {"dynamodb_stream_arn": stream_arn})
    assert bool(message) == refused, message
    if refused:
        assert "table/orders/stream/2026-01-01T00:00:00.000" in message, message

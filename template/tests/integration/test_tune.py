"""make tune on the owner's own event files: what it measures, what it reads, what it refuses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cfn_template import load_template, the_function
from tune import LAMBDA_MIN_MB, MB, main, memory_for

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def owner_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    """make tune on a file of the owner's: two events in one run, as `make invoke` takes them."""
    orders = tmp_path_factory.mktemp("events") / "orders.json"
    samples = [ROOT / "events" / "valid.json", ROOT / "events" / "poison.json"]
    events = [json.loads(sample.read_text(encoding="utf-8")) for sample in samples]
    orders.write_text(json.dumps(events), encoding="utf-8")
    report = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(report):
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        exit_code = main([str(orders)])
    return exit_code, report.getvalue()


def test_an_event_file_the_owner_passes_is_measured_invocation_by_invocation(owner_run: tuple[int, str]) -> None:
    exit_code, report = owner_run
    assert exit_code == 0
    rows = re.findall(r"^\S*orders\.json +(\d+) +[\d.]+ ms +[\d.]+ ms +[\d.]+ MB +[\d.]+ MB$", report, re.MULTILINE)
    assert rows == ["1", "2"], report
    assert "events/valid.json" not in report, "only the files passed are measured"


def test_the_report_names_the_current_memory_size_from_template_yaml(owner_run: tuple[int, str]) -> None:
    memory_size = the_function(load_template())[1]["MemorySize"]
    assert f"Current MemorySize (template.yaml): {memory_size} MB" in owner_run[1]


def test_the_suggestion_follows_from_the_measured_peak_and_the_headroom(owner_run: tuple[int, str]) -> None:
    report = owner_run[1]
    peak = re.search(r"^Estimated peak: .* = ([\d.]+) MB\.$", report, re.MULTILINE)
    for_memory = re.search(r"^  memory: ([\d.]+) MB \+ 50% headroom -> (\d+) MB$", report, re.MULTILINE)
    suggested = re.search(r"^Suggested MemorySize: (\d+) MB$", report, re.MULTILINE)
    assert peak, report
    assert for_memory, report
    assert suggested, report
    assert for_memory.group(1) == peak.group(1)
    # The peak is printed to a tenth of a MB: the suggestion is within that rounding of peak + headroom.
    printed = float(peak.group(1))
    assert memory_for(int((printed - 0.05) * MB)) <= int(for_memory.group(2)) <= memory_for(int((printed + 0.05) * MB))
    assert int(suggested.group(1)) >= max(LAMBDA_MIN_MB, int(for_memory.group(2)))


@pytest.mark.parametrize(("name", "content"), [("missing.json", None), ("broken.json", "{"), ("empty.json", "[]")])
def test_an_unreadable_event_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None
) -> None:
    event_file = tmp_path / name
    if content is not None:
        event_file.write_text(content, encoding="utf-8")
    # Refused before anything runs, even after a readable file.
    assert main([str(ROOT / "events" / "valid.json"), str(event_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"cannot read {event_file}" in captured.err


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("arguments", "environment", "passed"),
    [
        ([], {}, ""),
        (["EVENT=events/a.json events/b.json"], {}, " events/a.json events/b.json"),
        ([], {"EVENT": "events/big.json"}, " events/big.json"),
    ],
    ids=["sample-events", "event-on-the-command-line", "event-in-the-environment"],
)
def test_make_tune_passes_the_event_files_given_and_otherwise_none(
    arguments: list[str], environment: dict[str, str], passed: str
) -> None:
    dry_run = subprocess.run(  # noqa: S603 - make's dry run: prints the command, runs nothing
        ["make", "--no-print-directory", "-n", "tune", *arguments],  # noqa: S607 - make from PATH, as the owner runs it
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**{name: value for name, value in os.environ.items() if name != "EVENT"}, **environment},
        check=True,
    )
    assert dry_run.stdout.strip().endswith(f"python scripts/tune.py{passed}"), dry_run.stdout

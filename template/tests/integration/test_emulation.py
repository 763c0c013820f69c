"""What every emulated test pays once per process rather than once per test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from cfn_template import load_template
from emulated_aws import emulated_service


def test_emulated_runs_share_one_boto3_session_and_hand_the_callers_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    callers = boto3.DEFAULT_SESSION
    with emulated_service():
        first = boto3.DEFAULT_SESSION
    with emulated_service():
        second = boto3.DEFAULT_SESSION
    assert first is not None
    assert first is second, "a fresh session per run parses every service model again"
    assert boto3.DEFAULT_SESSION is callers


def test_the_template_is_parsed_once_per_version_and_each_caller_gets_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n", encoding="utf-8")
    parses = 0
    parse = yaml.load

    def counted_parse(*args: Any, **kwargs: Any) -> Any:
        nonlocal parses
        parses += 1
        return parse(*args, **kwargs)

    monkeypatch.setattr(yaml, "load", counted_parse)
    first = load_template(template)
    first["Resources"].clear()
    assert load_template(template)["Resources"] == {"Queue": {"Type": "AWS::SQS::Queue"}}
    assert parses == 1

    template.write_text("Resources:\n  Table:\n    Type: AWS::DynamoDB::Table\n", encoding="utf-8")
    stat = template.stat()
    os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert set(load_template(template)["Resources"]) == {"Table"}, "an edited template is read again"
    assert parses == 2

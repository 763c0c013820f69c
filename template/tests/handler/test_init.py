"""What the handler builds at init is built once and reused by every warm invocation."""

from __future__ import annotations

from types import ModuleType

import boto3
import pytest

from emulated_aws import LocalContext
from tests.sample_events import load_event


def test_the_idempotency_layer_reuses_the_handlers_dynamodb_client(handler: ModuleType) -> None:
    """One client, one connection pool: a second client would double init time and connections."""
    assert handler.persistence.client is handler.dynamodb


def test_an_in_progress_claim_expires_with_the_invocation_that_made_it(handler: ModuleType) -> None:
    """Without the context, a crashed invocation would hold its claim for the whole idempotency window."""
    context = LocalContext()
    handler.lambda_handler(load_event("valid"), context)
    assert handler.idempotency.lambda_context is context


def test_warm_invocations_create_no_clients(handler: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_new_clients(*_: object, **__: object) -> None:
        raise AssertionError("an AWS client was created during an invocation: create it at module scope")

    monkeypatch.setattr(boto3, "client", no_new_clients)
    monkeypatch.setattr(boto3, "resource", no_new_clients)
    for _ in range(2):
        handler.lambda_handler(load_event("valid"), LocalContext())

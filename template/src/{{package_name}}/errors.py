"""The two ways a request can fail, and what the caller should do about it.

A PermanentError will fail the same way on every retry (bad input, a broken
business rule): it is reported, never retried. A TransientError comes from a
dependency that may recover (throttling, a timeout): it is retried.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: where it is (``items[0].quantity``) and what is wrong."""

    field: str
    message: str


class PermanentError(Exception):
    """Retrying cannot help: the input or the business rule must change."""


class MalformedEventError(PermanentError):
    """The event cannot be read at all (not JSON, a required header missing)."""


class InvalidOrderError(PermanentError):
    """The order is readable but breaks the schema or a business rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))


class OrderConflictError(PermanentError):
    """Another order (other content, or another caller's) already holds this id.

    The message is the same either way: it never tells whose the order is or what it holds.
    """

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order id {order_id!r} is taken by another order; send this one under a new order_id")


class TransientError(Exception):
    """A dependency failed in a way that may pass: retry later."""


class IdempotencyKeyReusedError(PermanentError):
    """The key was already used with a different payload; its first result is not this one's."""


class DuplicateInProgressError(TransientError):
    """Another delivery of the same key is being recorded right now: retry after it ends."""

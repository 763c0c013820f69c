"""Keep every AWS call inside the invocation, so a hung dependency costs a retry, not a timeout.

botocore's timeouts bound one attempt; nothing bounds the calls a request
makes one after another. ``InvocationDeadline.guard`` hooks a client's
``before-send`` event (fired for every attempt, retries included) and refuses
an attempt the invocation could not wait for with DeadlineExceededError, a
TransientError, so the work is retried later instead of being cut off by the
timeout. Powertools' idempotency layer sends through the same client, so its
calls are bounded too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.config import Config

from .errors import TransientError

if TYPE_CHECKING:
    from botocore.client import BaseClient

Client = TypeVar("Client", bound="BaseClient")

# botocore's standard retry mode sleeps rand(0, 1) s before a second attempt. (Its opt-in
# AWS_NEW_RETRIES_2026 mode may wait longer when a service sends x-amz-retry-after; the
# check before each attempt still keeps the invocation inside its time.)
BACKOFF_BEFORE_RETRY_S = 1.0
# Below this a retry would leave each attempt too short to be useful: one attempt gets it all.
MIN_RETRIED_CALL_S = 2.0
# A refused call still has to be logged, counted and answered before the invocation ends.
FINISH_MARGIN_S = 0.25


class DeadlineExceededError(TransientError):
    """Too little of the invocation is left to wait for one more AWS call."""


class RemainingTime(Protocol):
    """The part of Lambda's context this module reads."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    """How long one AWS call may wait: per attempt (connect + read) and in all."""

    connect_s: float
    read_s: float
    attempts: int

    @property
    def attempt_s(self) -> float:
        return self.connect_s + self.read_s

    @property
    def call_s(self) -> float:
        return self.attempts * self.attempt_s + BACKOFF_BEFORE_RETRY_S * (self.attempts - 1)

    def config(self) -> Config:
        return Config(
            connect_timeout=self.connect_s,
            read_timeout=self.read_s,
            # botocore's "max_attempts" counts retries after the first attempt; "total_max_attempts" counts them all.
            retries={"mode": "standard", "total_max_attempts": self.attempts},
        )


def call_timeouts(call_budget_s: float) -> CallTimeouts:
    """Timeouts and retries whose worst case, backoff included, is ``call_budget_s``.

    A connection within a region opens in milliseconds, so connect gets a third
    of an attempt and the read two thirds.
    """
    attempts = 2 if call_budget_s >= MIN_RETRIED_CALL_S else 1
    attempt_s = (call_budget_s - BACKOFF_BEFORE_RETRY_S * (attempts - 1)) / attempts
    return CallTimeouts(connect_s=attempt_s / 3, read_s=attempt_s * 2 / 3, attempts=attempts)


class InvocationDeadline:
    """The end of the current invocation, and the guard that keeps AWS calls inside it."""

    def __init__(self, timeouts: CallTimeouts | None = None) -> None:
        # Without timeouts it only tells the time left; guard() needs them.
        self._timeouts = timeouts
        self._ends_at: float | None = None

    @property
    def timeouts(self) -> CallTimeouts:
        if self._timeouts is None:
            raise TypeError("this InvocationDeadline was made without CallTimeouts: it cannot guard a client")
        return self._timeouts

    @contextmanager
    def within(self, context: RemainingTime) -> Iterator[None]:
        """Bound the AWS calls made inside this block by the invocation's remaining time."""
        self._ends_at = time.monotonic() + context.get_remaining_time_in_millis() / 1000
        try:
            yield
        finally:
            self._ends_at = None

    def remaining_s(self) -> float:
        """Seconds left in the invocation; unbounded outside one (at init, in a script)."""
        return float("inf") if self._ends_at is None else self._ends_at - time.monotonic()

    def guard(self, client: Client) -> Client:
        """Refuse, on this client, every attempt that could outlast the invocation."""
        client.meta.events.register("before-send", self._refuse_late_attempt)
        return client

    def _refuse_late_attempt(self, **_: Any) -> None:
        remaining_s = self.remaining_s()
        if remaining_s < self.timeouts.attempt_s + FINISH_MARGIN_S:
            raise DeadlineExceededError(
                f"{remaining_s:.2f} s left in this invocation, less than one AWS attempt may take "
                f"({self.timeouts.attempt_s:.2f} s); not calling"
            )

"""Which AWS failures a retry can cure.

Throttling, a 5xx or a dropped connection may pass; AccessDenied, a missing
table or bad credentials are deployment bugs that must fail loudly instead of
being answered as "try again later".
"""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from .errors import TransientError

RETRYABLE_ERROR_CODES = frozenset(
    {
        "InternalServerError",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ThrottlingException",
        "TransactionConflictException",
    }
)


def is_retryable(error: BaseException | None) -> bool:
    # TransientError includes a call refused because the invocation ran short of time.
    if isinstance(error, TransientError):
        return True
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in RETRYABLE_ERROR_CODES
    return isinstance(error, ConnectionError | HTTPClientError)

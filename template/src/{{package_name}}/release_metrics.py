"""Failures counted by the version that caused them, for the rollback alarms of a deployment.

Lambda's Errors misses what the handler answers or reports itself (a message returned to
the queue, a 503): these counts carry the executed version, so an alarm can watch only
the version being deployed while the old one still serves most of the traffic.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit


def count_for_this_version(metrics: Metrics, name: str) -> None:
    """Add 1 to ``name`` with the service's dimensions and ``ExecutedVersion``, published at once."""
    # Lambda sets it: the version this code was published as ($LATEST outside a published version).
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    with single_metric(
        name=name, unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions
    ) as metric:
        metric.add_dimension(name="ExecutedVersion", value=version)

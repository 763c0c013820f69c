"""The CloudWatch metrics a handler wrote to stdout in Embedded Metric Format, as CloudWatch reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class EmittedMetric:
    namespace: str
    name: str
    dimensions: dict[str, str]
    value: float


def emitted_metrics(stdout: str) -> list[EmittedMetric]:
    metrics: list[EmittedMetric] = []
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = {name: str(document[name]) for name in dimension_set}
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        metrics.append(EmittedMetric(directive["Namespace"], metric["Name"], dimensions, value))
    return metrics

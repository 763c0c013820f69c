"""The service's one logger and one metrics set, shared by every module that logs or counts.

Powertools instances with one service name share their state (keys, dimensions, the
buffered metrics), so the handler flushes what any module added.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
# An invocation of replays, reads or refusals records no business metric; that is
# expected, not worth a warning.
warnings.filterwarnings("ignore", "No application metrics to publish")

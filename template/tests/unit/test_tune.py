"""make tune's suggestion: the peak plus headroom, CPU share for the slowest invocation, within Lambda's bounds."""

from __future__ import annotations

import math

import pytest

from tune import HEADROOM, LAMBDA_MAX_MB, LAMBDA_MIN_MB, MB, ONE_VCPU_MB, cpu_share, memory_for, suggest

TIMEOUT_S = 30


def test_the_suggestion_is_the_measured_peak_plus_the_headroom() -> None:
    peak = 300 * MB
    suggestion = suggest(peak, slowest_cpu_ms=10, timeout_s=TIMEOUT_S)
    assert suggestion.memory_mb == suggestion.for_memory_mb == math.ceil(300 * (1 + HEADROOM))


def test_a_part_of_a_megabyte_rounds_up() -> None:
    assert memory_for(int(200.1 * MB)) > 200.1 * (1 + HEADROOM)


def test_a_small_footprint_gets_lambdas_minimum() -> None:
    assert suggest(40 * MB, slowest_cpu_ms=10, timeout_s=TIMEOUT_S).memory_mb == LAMBDA_MIN_MB


def test_a_cpu_bound_invocation_gets_the_cpu_share_that_keeps_it_under_the_duration_alarm() -> None:
    # 12 s of CPU on a full core must finish within 80% of 30 s = 24 s: half a vCPU.
    suggestion = suggest(100 * MB, slowest_cpu_ms=12_000, timeout_s=TIMEOUT_S)
    assert suggestion.memory_mb == suggestion.for_cpu_mb == math.ceil(ONE_VCPU_MB / 2)
    assert 12_000 / cpu_share(suggestion.memory_mb) <= 0.8 * TIMEOUT_S * 1000


def test_more_than_one_vcpu_never_speeds_up_a_single_thread() -> None:
    assert suggest(100 * MB, slowest_cpu_ms=60_000, timeout_s=TIMEOUT_S).for_cpu_mb == ONE_VCPU_MB
    assert cpu_share(4 * ONE_VCPU_MB) == 1.0


@pytest.mark.parametrize("peak_mb", [7000, 20000])
def test_the_suggestion_stays_within_lambdas_maximum(peak_mb: int) -> None:
    assert suggest(peak_mb * MB, slowest_cpu_ms=10, timeout_s=TIMEOUT_S).memory_mb == LAMBDA_MAX_MB

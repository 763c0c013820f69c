"""Readiness item 5, memory tested with realistic payloads: MemorySize holds the sample events' peak with headroom.

`make tune` prints the same measurement with its reasoning; run it on larger payloads of your own.
"""

from __future__ import annotations

from typing import Any

import pytest

from tune import HEADROOM, MB, SAMPLE_EVENTS, measure, memory_for, percent, read_events, sample_event_files


def test_memory_size_holds_the_sample_events_peak_with_headroom(
    function: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # Every sample event in one run: their order ids differ, so none changes another's path,
    # and one emulated stack instead of one per file keeps this test fast.
    events = [event for file_events in read_events(sample_event_files()).values() for event in file_events]
    footprint = measure({SAMPLE_EVENTS: events}, timed=False)
    needed = memory_for(footprint.peak)
    assert function["MemorySize"] >= needed, (
        f"MemorySize {function['MemorySize']} MB is below the sample events' estimated peak of "
        f"{footprint.peak / MB:.1f} MB plus {percent(HEADROOM)} headroom ({needed} MB): run `make tune`"
    )

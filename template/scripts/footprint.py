"""Resident memory of this process, and the handler's import footprint measured alone.

    python scripts/footprint.py src order_service.handler

imports the module with only the standard library loaded before it and prints
{"rss_peak": bytes, "cpu_ms": ms} for scripts/tune.py. Linux reads /proc; elsewhere
the peak comes from getrusage and cannot be reset.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import resource
import sys
import time
from pathlib import Path


def _status_bytes(field: str) -> int | None:
    """A field of /proc/self/status in bytes; None where there is no /proc."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def peak_rss() -> int:
    """The peak resident set since the process started, or since the last reset_peak_rss()."""
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    maximum = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maximum if sys.platform == "darwin" else maximum * 1024


def current_rss() -> int:
    current = _status_bytes("VmRSS")
    return current if current is not None else peak_rss()


def reset_peak_rss() -> None:
    """Start the peak over from the current RSS (Linux only: elsewhere it only ever grows)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def main(argv: list[str]) -> int:
    source_root, module = argv
    sys.path.insert(0, source_root)
    importlib.import_module(module)
    json.dump({"rss_peak": peak_rss(), "cpu_ms": time.process_time() * 1000}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

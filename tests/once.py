"""Work done once per test run, whichever xdist worker asks for it first.

xdist workers are separate processes with separate sessions, so a
session-scoped fixture runs once per worker. Rendering a combination or
building a venv is shared instead: the first worker does it under a file lock
and records the outcome (or the failure) as JSON; the others read the record.

Each build this process did is also noted in BUILDS, with its wall and CPU
seconds, for the cost summary (cost_summary.py) to attribute to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# (key, wall seconds, CPU seconds) of every build this process did, oldest first;
# cost_summary.py takes them off the list into the report of the test that waited for them.
BUILDS: list[tuple[str, float, float]] = []


# CPU seconds spent for this process by processes it does not wait for itself: the forks of a
# judge server (judges.JudgeServer), reported with each answer.
FOREIGN_CPU = 0.0


def cpu_seconds() -> float:
    """User + system CPU of this process, of the children it has waited for, and FOREIGN_CPU."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + FOREIGN_CPU


_NESTED: list[list[float]] = []  # per open timed() block: wall and CPU of the builds inside it


@contextlib.contextmanager
def timed(key: str) -> Iterator[None]:
    """Note the block's wall and CPU seconds in BUILDS as the build `key`.

    A build done inside another (a venv inside a gate, today's render inside
    an update scenario) is its own entry and left out of the outer one's.
    """
    wall, cpu = time.perf_counter(), cpu_seconds()
    _NESTED.append([0.0, 0.0])
    try:
        yield
    finally:
        inner_wall, inner_cpu = _NESTED.pop()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        if _NESTED:
            _NESTED[-1][0] += wall
            _NESTED[-1][1] += cpu
        BUILDS.append((key, wall - inner_wall, cpu - inner_cpu))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A directory shared by all workers of this run (the parent of their basetemps)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def once(directory: Path, key: str, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """`build(directory / key)` once per run; every caller gets its JSON-able result.

    A build that raised fails every test that asks for it, with the original
    traceback, without being tried again.
    """
    record = directory / f"{key}.json"
    with locked(directory / f"{key}.lock"):
        if not record.exists():
            built: dict[str, Any]
            with timed(key):
                try:
                    built = {"result": build(directory / key)}
                except Exception:  # recorded for every test that needs it
                    built = {"error": traceback.format_exc()}
            built["seconds"] = {"wall": round(BUILDS[-1][1], 2), "cpu": round(BUILDS[-1][2], 2)}
            record.write_text(json.dumps(built))
        outcome = json.loads(record.read_text())
    if "error" in outcome:
        pytest.fail(f"{key} failed (built once for the whole run):\n{outcome['error']}", pytrace=False)
    return dict(outcome["result"])

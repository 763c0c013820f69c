"""Size the function's memory from its own footprint on real payloads, locally.

    python scripts/tune.py                       # every sample event in events/
    python scripts/tune.py events/big.json ...   # your own event files

Each file runs as `make invoke` runs it (one event, or a list invoked in order)
against freshly emulated resources and a freshly imported handler. The numbers,
and what they include:

- import: the peak RSS of a child process that imports the handler from src/ with
  the function's environment, and nothing else: no emulator, no test runner. It
  holds Python, boto3, Powertools and the service's modules; Lambda's runtime
  client (bootstrap and its HTTP loop) is not in it.
- per invocation: what it adds over the process right after the import, the larger
  of the peak RSS growth and the peak of Python allocations (tracemalloc, in a run
  of its own so its bookkeeping inflates neither RSS nor duration). The AWS calls
  are answered in-process by moto, so this includes the emulator's side of each
  call: it errs high. Duration and CPU time are from the untraced run.

The estimated peak is the import plus the largest invocation; the suggestion adds
HEADROOM to it, and enough CPU share for the slowest invocation to stay clear of
the duration alarm. Exit 0 with the report on stdout, 1 when the handler raised,
2 when an event file cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfn_template import load_template, the_function
from emulated_aws import LocalContext, emulated_service
from footprint import current_rss, peak_rss, reset_peak_rss
from invoke import HANDLER_MODULE, SOURCE_ROOT, read_event_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVENTS = ROOT / "events"
FOOTPRINT_SCRIPT = Path(__file__).resolve().parent / "footprint.py"
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "tune-pycache"
MB = 1024 * 1024
# Over the local estimate: Lambda's runtime client, payloads larger than the ones
# measured, and heap fragmentation over thousands of warm invocations.
HEADROOM = 0.5
# Lambda's bounds, and the memory that buys one full vCPU (CPU is allocated in proportion).
LAMBDA_MIN_MB = 128
LAMBDA_MAX_MB = 10240
ONE_VCPU_MB = 1769
# The duration alarm fires at 80% of the timeout: the slowest invocation should stay below it.
DURATION_ALARM_SHARE = 0.8


@dataclass(frozen=True)
class Invocation:
    event_file: Path
    number: int
    wall_ms: float
    cpu_ms: float
    rss_added: int
    python_peak: int

    @property
    def added(self) -> int:
        """Bytes this invocation needed beyond the imported handler."""
        return max(self.rss_added, self.python_peak)


@dataclass(frozen=True)
class ImportFootprint:
    rss_peak: int
    cpu_ms: float


@dataclass(frozen=True)
class Footprint:
    imported: ImportFootprint
    invocations: list[Invocation]

    @property
    def largest(self) -> Invocation:
        return max(self.invocations, key=lambda invocation: invocation.added)

    @property
    def slowest(self) -> Invocation:
        return max(self.invocations, key=lambda invocation: invocation.cpu_ms)

    @property
    def peak(self) -> int:
        return self.imported.rss_peak + self.largest.added


@dataclass(frozen=True)
class Suggestion:
    memory_mb: int
    for_memory_mb: int
    for_cpu_mb: int


def memory_for(peak: int) -> int:
    """MemorySize in MB that holds a peak of this many bytes with HEADROOM (Lambda counts whole MB)."""
    return math.ceil(peak * (1 + HEADROOM) / MB)


def cpu_share(memory_mb: int) -> float:
    """The vCPU share Lambda gives a function of this memory; one thread cannot use more than one."""
    return min(memory_mb / ONE_VCPU_MB, 1.0)


def suggest(peak: int, slowest_cpu_ms: float, timeout_s: int) -> Suggestion:
    for_memory = memory_for(peak)
    # CPU time measured on one full core stretches by 1 / cpu_share below one vCPU.
    budget_ms = DURATION_ALARM_SHARE * timeout_s * 1000
    for_cpu = min(math.ceil(slowest_cpu_ms * ONE_VCPU_MB / budget_ms), ONE_VCPU_MB)
    return Suggestion(min(max(LAMBDA_MIN_MB, for_memory, for_cpu), LAMBDA_MAX_MB), for_memory, for_cpu)


def start_import_alone() -> subprocess.Popen[str]:
    """Import the handler alone in a child process, with the environment set now (the function's).

    With bytecode, as the deployed package has it (`make build` compiles it): compiling every
    module instead costs about 4x the CPU and a few MB more at the peak. It is cached in a
    directory of its own, whatever PYTHONDONTWRITEBYTECODE says for the rest.
    """
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.Popen(  # noqa: S603 - our own script, run by the same interpreter
        [
            sys.executable,
            "-X",
            f"pycache_prefix={BYTECODE_CACHE}",
            str(FOOTPRINT_SCRIPT),
            str(SOURCE_ROOT),
            HANDLER_MODULE,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )


def import_footprint(child: subprocess.Popen[str]) -> ImportFootprint:
    output, _ = child.communicate(timeout=120)
    if child.returncode != 0:
        raise RuntimeError(f"importing {HANDLER_MODULE} alone failed (exit {child.returncode}); see above")
    measured = json.loads(output)
    return ImportFootprint(rss_peak=measured["rss_peak"], cpu_ms=measured["cpu_ms"])


@contextlib.contextmanager
def fresh_handler() -> Iterator[Any]:
    """The handler imported anew against freshly emulated resources, its logs and metrics discarded."""
    with (
        emulated_service(),
        open(os.devnull, "w", encoding="utf-8") as discard,
        contextlib.redirect_stdout(discard),
    ):
        sys.path.insert(0, str(SOURCE_ROOT))
        sys.modules.pop(HANDLER_MODULE, None)
        handler = importlib.import_module(HANDLER_MODULE)
        # Powertools keeps the first Logger's handler for the service: point it here, then back.
        previous = handler.logger.registered_handler.setStream(discard)
        try:
            yield handler
        finally:
            handler.logger.registered_handler.setStream(previous)
            sys.modules.pop(HANDLER_MODULE, None)
            sys.path.remove(str(SOURCE_ROOT))


def run(handler: Any, events: Sequence[Any], *, traced: bool) -> list[tuple[float, float, int, int]]:
    """Per invocation: wall ms, CPU ms, RSS bytes added over the freshly imported handler, and
    with traced the peak of Python allocations made since the import (0 without)."""
    measured = []
    gc.collect()
    imported = current_rss()
    if traced:
        tracemalloc.start()
    try:
        for event in events:
            reset_peak_rss()
            tracemalloc.reset_peak()
            wall, cpu = time.perf_counter(), time.process_time()
            handler.lambda_handler(event, LocalContext())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            python_peak = tracemalloc.get_traced_memory()[1]
            measured.append((wall * 1000, cpu * 1000, max(peak_rss() - imported, 0), python_peak))
    finally:
        tracemalloc.stop()
    return measured


# The import footprint depends on the code, not the events: measured once per process.
_imported: list[ImportFootprint] = []


def measure(event_files: dict[Path, list[Any]], *, timed: bool = True) -> Footprint:
    """Run each file's events against a freshly imported handler while the import is measured alone.

    timed runs them twice: once traced for Python allocations, once for duration and RSS, so that
    tracemalloc's bookkeeping slows and inflates nothing it reports. Without it, one traced run
    gives every number, its RSS slightly high and its durations slower.
    """
    child = None
    invocations = []
    try:
        for event_file, events in event_files.items():
            with fresh_handler() as handler:
                if not _imported and child is None:
                    child = start_import_alone()
                # The traced run goes first and pays the first call's lazy loading, as a cold start does.
                traced = run(handler, events, traced=True)
            if timed:
                with fresh_handler() as handler:
                    first = run(handler, events, traced=False)
            else:
                first = traced
            for number, (timed_run, traced_run) in enumerate(zip(first, traced, strict=True), 1):
                rss_added = max(timed_run[2], traced_run[2])
                invocations.append(Invocation(event_file, number, timed_run[0], timed_run[1], rss_added, traced_run[3]))
    except BaseException:
        # The handler raised: its traceback is the one to read, not the child's broken pipe.
        if child is not None:
            child.kill()
            child.communicate()
        raise
    if child is not None:
        _imported.append(import_footprint(child))
    return Footprint(_imported[0], invocations)


def read_events(paths: Sequence[Path]) -> dict[Path, list[Any]]:
    """Each file's events, as `make invoke` reads them; OSError or ValueError names the file."""
    event_files = {}
    for path in paths:
        events, _ = read_event_file(path)
        if not events:
            raise ValueError(f"cannot read {path}: it holds an empty list, no event to measure")
        event_files[path] = events
    return event_files


def sample_event_files() -> list[Path]:
    return sorted(SAMPLE_EVENTS.glob("*.json"))


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def report(footprint: Footprint, memory_size: int, timeout_s: int) -> str:
    suggestion = suggest(footprint.peak, footprint.slowest.cpu_ms, timeout_s)
    largest, slowest = footprint.largest, footprint.slowest
    lines = [
        f"{'event file':<28} {'#':>3} {'wall':>9} {'CPU':>9} {'RSS added':>10} {'Python peak':>12}",
        *(
            f"{_shown(invocation.event_file):<28} {invocation.number:>3} {invocation.wall_ms:>6.1f} ms "
            f"{invocation.cpu_ms:>6.1f} ms {_mb(invocation.rss_added):>10} {_mb(invocation.python_peak):>12}"
            for invocation in footprint.invocations
        ),
        "",
        f"Import alone (child process, handler from src/, no emulator, no test runner): "
        f"{_mb(footprint.imported.rss_peak)} peak RSS, {footprint.imported.cpu_ms:.0f} ms CPU.",
        f"Estimated peak: {_mb(footprint.imported.rss_peak)} import + {_mb(largest.added)} "
        f"({_shown(largest.event_file)} #{largest.number}, the larger of RSS added and Python peak) "
        f"= {_mb(footprint.peak)}.",
        "  It errs high on the invocation (moto answers the AWS calls in the same process) and leaves out",
        "  Lambda's runtime client: compare with Max Memory Used in the REPORT lines of a deployed stage.",
        "",
        f"Suggested MemorySize: {suggestion.memory_mb} MB",
        f"  memory: {_mb(footprint.peak)} + {percent(HEADROOM)} headroom -> {suggestion.for_memory_mb} MB",
        f"  CPU: Lambda allocates CPU in proportion to memory, one vCPU at {ONE_VCPU_MB:,} MB. The slowest",
        f"  invocation ({_shown(slowest.event_file)} #{slowest.number}) took {slowest.cpu_ms:.1f} ms CPU on a full "
        f"core here, about {slowest.cpu_ms / cpu_share(suggestion.memory_mb):.0f} ms at {suggestion.memory_mb} MB",
        f"  and {slowest.cpu_ms / cpu_share(memory_size):.0f} ms at {memory_size} MB. Staying under "
        f"{percent(DURATION_ALARM_SHARE)} of the {timeout_s} s timeout takes {suggestion.for_cpu_mb} MB of CPU share.",
        f"  Lambda's minimum is {LAMBDA_MIN_MB} MB.",
        "",
    ]
    if memory_size >= suggestion.for_memory_mb:
        verdict = f"{memory_size / (footprint.peak / MB):.1f} times the estimated peak: enough memory"
    else:
        verdict = f"is below the estimated peak plus {percent(HEADROOM)} headroom: raise it"
    lines += [
        f"Current MemorySize (template.yaml): {memory_size} MB, {verdict}.",
        "Below one vCPU, more memory buys proportionally more CPU, so a CPU-bound invocation costs about",
        "the same at any size and finishes sooner at the larger one. Measure duration and cost on a",
        "deployed stage with AWS Lambda Power Tuning before you change MemorySize (README, Memory).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("event_files", type=Path, nargs="*", help="JSON files of events (default: events/*.json)")
    arguments = parser.parse_args(argv)
    try:
        event_files = read_events(arguments.event_files or sample_event_files())
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        footprint = measure(event_files)
    except Exception:
        traceback.print_exc()
        return 1
    function = the_function(load_template())[1]
    print(report(footprint, function["MemorySize"], function["Timeout"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the run cost, per combination and per gate, printed at its end.

Each test's report carries its wall seconds (setup + call + teardown, as
pytest measures them) and the CPU seconds its process and the tools it waited
for spent (on a machine shared with other work, CPU is the figure to compare).
Shared builds done by once() or service_venv during a test (a render, an update
scenario, a venv) travel in the same report: they are taken out of the test
that happened to wait for them and shown on their own, in the row of their
combination or among the shared builds. Reports reach the xdist controller
serialized, custom attributes included, so the summary sees the whole run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field

import pytest

import once

# Test function -> column. The rest of a combination's tests are its cheap checks.
GATES = {
    "test_ruff_finds_nothing": "ruff",
    "test_code_is_ruff_formatted": "format",
    "test_updated_service_passes_ruff": "ruff",
    "test_mypy_strict_passes_as_make_typecheck_runs_it": "mypy",
    "test_updated_service_passes_mypy_strict": "mypy",
    "test_generated_test_suite_passes": "pytest",
    "test_updated_service_passes_its_own_tests": "pytest",
    "test_cfn_lint_accepts_templates": "cfn-lint",
    "test_sam_validate_lint_passes": "sam",
    "test_checkov_finds_nothing": "checkov",
    "test_actionlint_accepts_workflows": "actionlint",
    "test_zizmor_finds_nothing": "zizmor",
}
BUILD, CHECKS = "build", "checks"
COLUMNS = [BUILD, *dict.fromkeys(GATES.values()), CHECKS]
# Modules whose parameter is a combination (or a baseline-combination update scenario).
PER_COMBINATION = {"test_render_matrix.py": "", "test_update_history.py": "update "}
NODE = re.compile(r"^(?:.*/)?(?P<module>[^/:]+\.py)::(?P<test>[^\[]+)(?:\[(?P<param>.+)\])?$")
RENDER_BUILD = re.compile(r"^render-(?P<combination>.+)$")
# history-<baseline>-<combination>, and its render from the baseline: history-baseline-<baseline>-<combination>.
SCENARIO_BUILD = re.compile(r"^history-(?:baseline-)?(?P<scenario>v\d[^-]*-.+)$")
# Gates run once for all the rows whose files they read are the same: the test's own time.
SHARED_GATE = re.compile(r"^(history-)?gate-")


# The counts of a pytest summary line ("212 passed, 3 skipped in 30.12s").
SUMMARY_LINE = re.compile(r"^=*\s*(?P<counts>\d+ \w+(?:, \d+ \w+)*) in [\d.]+s")
# A service's own suite this process ran during the current test: its summary counts, oldest first.
SUITE_RUNS: list[dict[str, int]] = []


def note_suite_run(output: str) -> dict[str, int]:
    """Note the counts of a service's own pytest run (its output) for the table's `suite` column."""
    lines = [m for line in reversed(output.splitlines()) if (m := SUMMARY_LINE.match(line.strip()))]
    counts = {kind: int(n) for n, kind in (part.split() for part in lines[0]["counts"].split(", "))} if lines else {}
    SUITE_RUNS.append(counts)
    return counts


# Shared builds of one kind, listed as one entry with their count.
SHARED_KINDS = [
    ("venv-", "venvs"),
    ("mypy-seed-", "mypy seeds"),
    ("history-fresh-", "today's renders (update oracle)"),
    ("update-copy", "round-trip copies (test_update)"),
    ("update-update", "round-trip updates (test_update)"),
    ("judge-server-", "judge servers (one per judge and worker)"),
]
COMBINATION, SCENARIO, MODULE = range(3)  # the row kinds, in the table's order


def place(nodeid: str) -> tuple[int, str, str]:
    """(kind, row, column) of a test: its combination and gate, else its module and "checks"."""
    match = NODE.match(nodeid)
    if not match:
        return MODULE, nodeid, CHECKS
    module, test, param = match["module"], match["test"], match["param"]
    if module in PER_COMBINATION and param:
        kind = SCENARIO if PER_COMBINATION[module] else COMBINATION
        return kind, PER_COMBINATION[module] + param, GATES.get(test, CHECKS)
    return MODULE, module.removesuffix(".py"), CHECKS


def build_row(key: str) -> tuple[int, str] | None:
    """The row a shared build belongs to, or None for builds several rows share."""
    if match := RENDER_BUILD.match(key):
        return COMBINATION, match["combination"]
    if match := SCENARIO_BUILD.match(key):
        return SCENARIO, "update " + match["scenario"]
    return None


@dataclass
class Cost:
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def _cells() -> defaultdict[str, Cost]:
    return defaultdict(Cost)


@dataclass
class Ledger:
    """Seconds per (row kind, row) and column, and per shared build."""

    rows: defaultdict[tuple[int, str], defaultdict[str, Cost]] = field(default_factory=lambda: defaultdict(_cells))
    shared: defaultdict[str, Cost] = field(default_factory=_cells)
    suites: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)  # the row's service suite counts

    def record(
        self,
        nodeid: str,
        wall: float,
        cpu: float,
        builds: list[tuple[str, float, float]],
        suites: list[dict[str, int]] | None = None,
    ) -> None:
        kind, row, column = place(nodeid)
        for counts in suites or []:
            self.suites[kind, row] = counts
        for key, build_wall, build_cpu in builds:
            if SHARED_GATE.match(key):  # the gate itself, run once for every row with the same files
                continue
            wall, cpu = wall - build_wall, cpu - build_cpu
            if (owner := build_row(key)) is not None:
                self.rows[owner][BUILD].add(build_wall, build_cpu)
            else:
                self.shared[key].add(build_wall, build_cpu)
        # A test that waited for a build another worker did pays the wait: wall, not CPU.
        self.rows[kind, row][column].add(max(wall, 0.0), max(cpu, 0.0))

    def table(self) -> list[str]:
        """Combinations, update scenarios and other modules as rows; build and gates as columns."""
        columns = [c for c in COLUMNS if any(c in cells for cells in self.rows.values())]
        headers = [*columns, "wall", "cpu", *(["suite"] if self.suites else [])]
        suite = ["" for _ in headers[len(columns) + 2 :]]
        width = max(len("total wall"), *(len(row) for _, row in self.rows)) + 1

        def line(label: str, values: list[str]) -> str:
            return label.ljust(width) + "".join(
                value.rjust(max(len(h), 5) + 2) for h, value in zip(headers, values, strict=True)
            )

        lines = [line("", headers)]
        per_column = {column: Cost() for column in columns}
        for kind, row in sorted(self.rows):
            cells = self.rows[kind, row]
            for column, cost in cells.items():
                per_column[column].add(cost.wall, cost.cpu)
            wall, cpu = sum(c.wall for c in cells.values()), sum(c.cpu for c in cells.values())
            values = [f"{cells[c].wall:.1f}" if c in cells else "" for c in columns]
            counts = self.suites.get((kind, row))
            ran = [f"{counts.get('passed', 0)}/{counts.get('skipped', 0)}" if counts else ""] if self.suites else []
            lines.append(line(row, [*values, f"{wall:.1f}", f"{cpu:.1f}", *ran]))
        wall, cpu = sum(c.wall for c in per_column.values()), sum(c.cpu for c in per_column.values())
        lines.append(line("total wall", [*(f"{per_column[c].wall:.1f}" for c in columns), f"{wall:.1f}", "", *suite]))
        lines.append(line("total cpu", [*(f"{per_column[c].cpu:.1f}" for c in columns), "", f"{cpu:.1f}", *suite]))
        if self.suites:
            lines.append("suite: the tests the service's own suite passed/skipped (its pytest summary line)")
        if self.shared:
            kinds: defaultdict[str, list[Cost]] = defaultdict(list)
            for key, cost in self.shared.items():
                kinds[next((kind for prefix, kind in SHARED_KINDS if key.startswith(prefix)), key)].append(cost)
            builds = ", ".join(
                f"{kind}{f' x{len(costs)}' if len(costs) > 1 else ''} "
                f"{sum(c.wall for c in costs):.1f} ({sum(c.cpu for c in costs):.1f})"
                for kind, costs in sorted(kinds.items())
            )
            lines.append(f"shared builds, wall (cpu) s: {builds}")
        return lines


# ---------------------------------------------------------------- hooks
_STARTED = pytest.StashKey[tuple[float, int]]()


def _mark(item: pytest.Item) -> None:
    item.stash[_STARTED] = (once.cpu_seconds(), len(once.BUILDS))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _mark(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note the phase's CPU seconds and the builds done in it on its report."""
    report = yield
    started_cpu, first_build = item.stash.get(_STARTED, (once.cpu_seconds(), len(once.BUILDS)))
    builds = once.BUILDS[first_build:]
    del once.BUILDS[first_build:]
    suites = SUITE_RUNS[:]
    del SUITE_RUNS[:]
    # xdist serializes a report's fields to the controller, unknown ones included.
    report.suite_cost = {  # type: ignore[attr-defined]
        "cpu": once.cpu_seconds() - started_cpu,
        "builds": [list(b) for b in builds],
        "suites": suites,
    }
    _mark(item)  # the next phase starts now
    return report


class CostSummary:
    """The controller's (or a single process's) ledger of every report, printed at the end."""

    def __init__(self) -> None:
        self.ledger = Ledger()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cost = getattr(report, "suite_cost", None)
        if cost is not None:
            builds = [(str(key), float(wall), float(cpu)) for key, wall, cpu in cost["builds"]]
            suites = [{str(k): int(v) for k, v in counts.items()} for counts in cost.get("suites", [])]
            self.ledger.record(report.nodeid, float(report.duration), float(cost["cpu"]), builds, suites)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.ledger.rows:
            return
        terminalreporter.write_sep("=", "cost per combination and gate: seconds wall (setup+call+teardown)")
        for line in self.ledger.table():
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # xdist workers report to the controller, which prints
        config.pluginmanager.register(CostSummary(), "cost-summary")

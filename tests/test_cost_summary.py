"""The cost table printed at the end of a run (cost_summary.py), through xdist as run.sh runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent

# A miniature matrix under the real module name, so the plugin files it as combinations:
# a render that sleeps (wall, no CPU), a venv shared by both and built inside the first
# render, and gates that burn CPU in a child process, as the real gates run their tools.
MINIATURE = """
import subprocess
import sys
import time

import pytest

from once import once, timed

BURN = "import time\\nend = time.process_time() + {seconds}\\nwhile time.process_time() < end: pass"


def burn(seconds):
    subprocess.run([sys.executable, "-c", BURN.format(seconds=seconds)], check=True)


@pytest.fixture(scope="session")
def shared(tmp_path_factory, worker_id):
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def venv(shared):
    return once(shared, "venv-service-test", lambda _: burn(0.2) or {})


def render(shared):
    venv(shared)  # built inside the first render: its seconds are the venv's, not the render's
    time.sleep(3)
    return {}


@pytest.fixture(params=["sqs-none", "api-none"])
def service(request, shared):
    once(shared, f"render-{request.param}", lambda _: render(shared))
    venv(shared)
    return request.param


def test_ruff_finds_nothing(service):
    burn(0.3)


def test_mypy_strict_passes_as_make_typecheck_runs_it(service):
    pass


def test_generated_test_suite_passes(service):
    from cost_summary import note_suite_run

    note_suite_run("..s.\\n===== 212 passed, 3 skipped, 1 deselected in 30.12s =====\\n")


def test_no_template_syntax_left_in_output(service):
    with timed("history-gate-mypy-0123"):  # a gate shared by identical trees stays the test's own
        burn(0.2)
"""


def cells(output: list[str], row: str) -> dict[str, float | str]:
    [header] = [line for line in output if line.split() and line.split()[:2] == ["build", "ruff"]]
    [values] = [line for line in output if line.startswith(f"{row} ")]
    # Right-aligned columns: a value ends where its header ends.
    ends = {name: header.index(name) + len(name) for name in header.split()}
    found: dict[str, float | str] = {}
    for name, end in ends.items():
        start = max((e for e in ends.values() if e < end), default=len(row))
        text = values[start:end].strip()
        if text:
            found[name] = text if name == "suite" else float(text)
    return found


@pytest.mark.parametrize("workers", ["0", "1"], ids=["one process", "xdist"])
def test_summary_puts_each_gate_and_build_in_its_combinations_row(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    pytester.makepyfile(test_render_matrix=MINIATURE)
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("-p", "cost_summary", "-p", "xdist", "-n", workers)
    result.assert_outcomes(passed=8)
    output = result.outlines
    assert any("cost per combination and gate" in line for line in output), output

    for combination in ("sqs-none", "api-none"):
        row = cells(output, combination)
        # The render slept: its wall seconds are the build's, not those of the test that waited for it.
        assert row["build"] >= 3, row
        assert row["ruff"] < row["build"], row
        # The gate's CPU is its child process's, summed with the other gates into the row's CPU.
        assert row["cpu"] >= 0.5, row
        assert row["cpu"] < row["wall"], "sleeping is wall time, not CPU"
        assert row["checks"] >= 0.2, "a gate shared by identical trees counts where it ran"
        assert set(row) == {"build", "ruff", "mypy", "pytest", "checks", "wall", "cpu", "suite"}
        assert row["suite"] == "212/3", "the service suite's passed/skipped, from its summary line"
    assert cells(output, "total wall")["build"] >= 6
    assert cells(output, "total cpu")["build"] < 0.15, "the venv's CPU was charged to the render it ran in"
    [shared] = [line for line in output if line.startswith("shared builds")]
    assert shared.startswith("shared builds, wall (cpu) s: venvs ") and "render" not in shared, shared


def test_cheap_gates_are_collected_before_mypy_and_the_services_suites() -> None:
    """A broken render fails on ruff or a judge in the first minute, not after every suite ran."""
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "tests/test_render_matrix.py"],
        cwd=TESTS_DIR.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    gates = [line.split("::")[1].split("[")[0] for line in collected if "::" in line]

    def span(test: str) -> tuple[int, int]:
        at = [i for i, name in enumerate(gates) if name == test]
        return at[0], at[-1]

    cheap = ["test_no_template_syntax_left_in_output", "test_ruff_finds_nothing", "test_code_is_ruff_formatted"]
    judges = ["test_cfn_lint_accepts_templates", "test_checkov_finds_nothing", "test_actionlint_accepts_workflows"]
    costly = ["test_mypy_strict_passes_as_make_typecheck_runs_it", "test_generated_test_suite_passes"]
    assert max(span(t)[1] for t in cheap) < min(span(t)[0] for t in judges), gates
    assert max(span(t)[1] for t in judges) < min(span(t)[0] for t in costly), gates


def test_an_update_scenarios_builds_are_charged_to_its_row() -> None:
    from cost_summary import SCENARIO, build_row

    for key in ("history-v0.1.0-sqs-none", "history-baseline-v0.1.0-sqs-none"):
        assert build_row(key) == (SCENARIO, "update v0.1.0-sqs-none"), key
    assert build_row("history-fresh-sqs-none") is None, "today's render is shared by the combination's scenarios"

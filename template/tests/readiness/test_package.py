"""The deployment package: `sam build` runs the Makefile's build-<LogicalId> target of each
function, which installs wheels for the function's runtime and CPU and ships the bytecode
Lambda cannot write for itself (without it every cold start compiles every module)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cfn_template import resources_of_type

ROOT = Path(__file__).resolve().parent.parent.parent
WHEEL_ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
UNCHECKED_HASH = 0b01  # .pyc header flags (PEP 552): hash-based, source never checked


def make(target: str, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    # Only what this test passes: an outer `make test` or an exported BUILD_PYTHON must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "BUILD_PYTHON"}}
    command = ["make", "--no-print-directory", "--makefile", str(ROOT / "Makefile"), target, *arguments]
    return subprocess.run(  # noqa: S603 - make from PATH, as sam build runs it, on our own Makefile
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def build_commands(target: str) -> list[list[str]]:
    """The commands `make build-<LogicalId>` would run, each split into its words."""
    dry_run = make(target, ROOT, "--dry-run", "ARTIFACTS_DIR=/artifacts")
    assert dry_run.returncode == 0, dry_run.stderr
    return [shlex.split(line) for line in dry_run.stdout.replace("\\\n", " ").splitlines()]


def option_values(words: list[str], option: str) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == option]


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::Function")


def test_sam_builds_every_function_with_its_makefile_target(functions: dict[str, dict[str, Any]]) -> None:
    for logical_id, function in functions.items():
        metadata = function.get("Metadata", {})
        # python_pip, sam's default for Python, ships no .pyc.
        assert metadata.get("BuildMethod") == "makefile", f"{logical_id} is built without its bytecode"
        assert metadata.get("ContextPath") == ".", f"{logical_id}: sam must read this repository's Makefile"
        compiles = [words for words in build_commands(f"build-{logical_id}") if "compileall" in words]
        assert compiles, f"make build-{logical_id} compiles nothing"
        for words in compiles:
            assert option_values(words, "--invalidation-mode") == ["unchecked-hash"]
            # compileall keeps a current timestamp .pyc unless forced.
            assert "-f" in words
            assert words[-1] == "/artifacts"


def test_the_package_is_built_for_the_functions_runtime_and_architecture(
    functions: dict[str, dict[str, Any]],
) -> None:
    """Bytecode of another Python is ignored (compiled at each cold start); a wheel for another CPU fails."""
    for logical_id, function in functions.items():
        properties = function["Properties"]
        version = properties["Runtime"].removeprefix("python")
        (architecture,) = properties["Architectures"]
        commands = build_commands(f"build-{logical_id}")
        for words in commands:
            if "compileall" in words or "pip" in words:
                assert Path(words[0]).name == f"python{version}", f"{logical_id}: {shlex.join(words)}"
        for words in (words for words in commands if "pip" in words):
            assert option_values(words, "--python-version") == [version]
            platforms = option_values(words, "--platform")
            assert platforms, "without --platform pip picks wheels for the machine that builds"
            assert all(p.endswith(f"_{WHEEL_ARCHITECTURES[architecture]}") for p in platforms), platforms
            assert "--only-binary=:all:" in words, "a source build would compile for the building machine"


def test_the_build_target_ships_unchecked_hash_bytecode(tmp_path: Path) -> None:
    """The hook's target needs no network: it runs for real, with the Python of this venv (the runtime's)."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "deploy_hooks", code, ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    built = make("build-PreTrafficHook", code, f"ARTIFACTS_DIR={artifacts}", f"BUILD_PYTHON={sys.executable}")
    assert built.returncode == 0, built.stderr
    (bytecode,) = (artifacts / "__pycache__").glob("pre_traffic.*.pyc")
    header = bytecode.read_bytes()[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH

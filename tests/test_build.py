"""`make build` and `sam build` ship what Lambda loads fastest.

Lambda cannot write `__pycache__`, so a package without bytecode compiles every
module it imports at each cold start (+56% init). The real SAM CLI builds a
copy of a few combinations, covering both architectures and both Python
versions, once per run (once.py): one through `make build`, exactly as the
owner and the pipeline run it, the others through the judge's SAM. The tests then import each function's
handler from the built package, in a child of the runtime's Python, and check
that every module of the package came from an unchecked-hash `.pyc` (the kind
Lambda never stats nor rewrites), and that compiled wheels are for the
function's CPU, whatever CPU built them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import judges
from cfn_template import load_template, resources_of_type
from once import once
from service_env import find_python, service_venv, uv_executable
from test_render_matrix import (
    MATRIX,
    Service,
    render,  # noqa: F401 - the fixture that renders each combination once per run
)

BUILT = ("sqs-dynamodb", "sqs-dynamodb-py3.12", "api-none-non-defaults")
# Built with `make build` itself (SAM from PyPI, once per machine); the others with the judge's SAM.
MAKE_BUILT = "sqs-dynamodb"
# The service has no compiled dependency yet (PostgreSQL's psycopg will be one): the copy that is
# built gets this small one, so the architecture check has an extension module to look at.
COMPILED_DEPENDENCY = "markupsafe==3.0.2"
# e_machine of an ELF header (offset 18, little-endian): what each Lambda architecture loads.
ELF_MACHINES = {"arm64": 183, "x86_64": 62}
UNCHECKED_HASH = 0b01  # PEP 552 flags: bit 0 hash-based, bit 1 check_source


@dataclass(frozen=True)
class Built:
    service: Service
    build_dir: Path

    def artifacts(self, logical_id: str) -> Path:
        return self.build_dir / logical_id


def sam_build(service: Service, directory: Path) -> dict[str, Any]:
    """The real `sam build` in a copy of the rendered service (so no other gate sees .aws-sam)."""
    shutil.copytree(service.project, directory, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
    requirements = directory / "src" / "requirements.txt"
    requirements.write_text(requirements.read_text() + COMPILED_DEPENDENCY + "\n")
    python = find_python(str(service.answers["python_version"]))
    env = judges.clean_env(
        {
            # The build target runs python3.X from PATH, as on an owner's machine or in CI.
            "PATH": f"{python.parent}:{os.environ['PATH']}",
            "SAM_CLI_TELEMETRY": "0",
            "AWS_DEFAULT_REGION": str(service.answers["aws_region"]),
        }
    )
    # make build runs SAM as the owner and the pipeline do, through `uv tool run`, which puts its
    # own environment (a python3.X without pip) first on PATH before the build target runs.
    command = ["make", "build", f"UV={uv_executable()}"] if service.id == MAKE_BUILT else [judges.SAM, "build"]
    judges.assert_passes(judges.run(command, directory, env, timeout=900), " ".join(map(str, command[:2])))
    return {"build_dir": str(directory / ".aws-sam" / "build")}


@pytest.fixture(params=BUILT)
def built(request: pytest.FixtureRequest, shared: Path) -> Built:
    rendered: Callable[[Any], Service] = request.getfixturevalue("render")
    service = rendered(next(c for c in MATRIX if c.id == request.param))
    done = once(shared, f"sam-build-{service.id}", lambda d: sam_build(service, d))
    return Built(service, Path(done["build_dir"]))


def functions_of(built: Built) -> dict[str, dict[str, Any]]:
    template = load_template(built.build_dir / "template.yaml")
    return {
        logical_id: function["Properties"]
        for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items()
    }


# Imports the handler the way Lambda does: the package first on the path, the runtime's boto3
# after it (here from the service's venv), and reports where each code object came from.
IMPORT_HANDLER = """
import sys
sys.path[:0] = [{package!r}]
sys.path.append({runtime_site!r})
import {module}
"""


def code_objects_loaded_from(built: Built, logical_id: str, properties: dict[str, Any]) -> dict[str, str]:
    """Each file of the package that the handler's import executed -> the file its code came from."""
    package = built.artifacts(logical_id)
    version = str(built.service.answers["python_version"])
    runtime_site = next((service_venv(built.service.project, version) / "lib").glob("python*/site-packages"))
    variables = properties.get("Environment", {}).get("Variables", {})
    env = {
        "PATH": "/usr/bin:/bin",
        # Lambda's own variables and fake credentials: clients are created at init, never called.
        "AWS_REGION": str(built.service.answers["aws_region"]),
        "AWS_DEFAULT_REGION": str(built.service.answers["aws_region"]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "PYTHONDONTWRITEBYTECODE": "1",
        # Refs and Subs resolve at deploy time; init only needs the settings to be there.
        **{
            name: value if isinstance(value, str) else f"resolved-at-deploy-{name}" for name, value in variables.items()
        },
    }
    module = str(properties["Handler"]).rsplit(".", 1)[0]
    code = IMPORT_HANDLER.format(package=str(package), runtime_site=str(runtime_site), module=module)
    child = judges.run([find_python(version), "-B", "-s", "-S", "-v", "-c", code], package, env)
    judges.assert_passes(child, f"importing {module} from the built package")
    # -v prints "# code object from '<file>'" for every module it executes: the .pyc it trusted,
    # or the .py it had to compile.
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", child.stderr, re.MULTILINE)
    in_package = [Path(path) for path in loaded if Path(path).is_relative_to(package)]
    assert in_package, f"importing {module} executed no file of the package:\n{child.stderr[-2000:]}"
    return {str(path.relative_to(package)): path.suffix for path in in_package}


@pytest.mark.parametrize("logical_id", ["Function", "PreTrafficHook"])
def test_every_module_the_handler_imports_comes_from_bytecode_in_the_package(built: Built, logical_id: str) -> None:
    """A module compiled at import means the package shipped no usable .pyc for the runtime's Python."""
    loaded = code_objects_loaded_from(built, logical_id, functions_of(built)[logical_id])
    compiled_at_import = sorted(path for path, suffix in loaded.items() if suffix != ".pyc")
    assert not compiled_at_import, f"{len(compiled_at_import)} of {len(loaded)} modules compiled at import"
    assert any(path.startswith("__pycache__/") or "/__pycache__/" in path for path in loaded)


@pytest.mark.parametrize("logical_id", ["Function", "PreTrafficHook"])
def test_the_shipped_bytecode_is_unchecked_hash_for_the_runtimes_python(built: Built, logical_id: str) -> None:
    """Timestamp .pyc go stale in a zip; checked-hash ones cost a read and a hash of every source."""
    version = str(built.service.answers["python_version"])
    magic = judges.run(
        [find_python(version), "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"], Path("/")
    ).stdout.strip()
    headers = {
        str(pyc.relative_to(built.artifacts(logical_id))): pyc.read_bytes()[:8]
        for pyc in built.artifacts(logical_id).rglob("*.pyc")
    }
    sources = list(built.artifacts(logical_id).rglob("*.py"))
    assert len(headers) == len(sources), f"{len(sources)} sources, {len(headers)} .pyc"
    wrong = {
        path: (header[:4].hex(), int.from_bytes(header[4:8], "little"))
        for path, header in headers.items()
        if header[:4].hex() != magic or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH
    }
    assert not wrong, f"expected magic {magic} and flags 0b01, found {dict(list(wrong.items())[:5])}"


def test_compiled_wheels_are_for_the_functions_architecture(built: Built) -> None:
    """An x86_64 extension on arm64 (or the reverse) fails the first import in Lambda, not here."""
    architecture = functions_of(built)["Function"]["Architectures"][0]
    assert architecture == built.service.answers["architecture"]
    extensions = [path for path in built.artifacts("Function").rglob("*.so*") if path.is_file()]
    assert extensions, f"{COMPILED_DEPENDENCY} was added to the requirements: its extension is missing"
    machines = {str(path.name): int.from_bytes(path.read_bytes()[18:20], "little") for path in extensions}
    assert set(machines.values()) == {ELF_MACHINES[architecture]}, machines

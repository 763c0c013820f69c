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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import judges
from cfn_template import load_template, resources_of_type
from once import once
from service_env import find_python, service_venv, uv_executable
from test_render_matrix import (
    MATRIX,
    Combination,
    Service,
    render,  # noqa: F401 - the fixture that renders each combination once per run
)

# psycopg's compiled wheel on both architectures: the matrix's postgres service is arm64, this one x86_64.
POSTGRES_X86_64 = Combination(
    "sqs-postgres-x86_64", {"event_source": "sqs", "database": "postgres", "architecture": "x86_64"}
)
COMBINATIONS = [*MATRIX, POSTGRES_X86_64]
BUILT = ("sqs-dynamodb", "sqs-dynamodb-py3.12", "api-none-non-defaults", "sqs-postgres", POSTGRES_X86_64.id)
POSTGRES_BUILT = ("sqs-postgres", POSTGRES_X86_64.id)
# psycopg-binary bundles libpq, OpenSSL and friends (about 10 MB unpacked): the zipped package must
# stay under this, the size that keeps a cold start's code download small (issue 8's budget).
ZIPPED_PACKAGE_BUDGET_BYTES = 10_000_000
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


def built_once(request: pytest.FixtureRequest, shared: Path, combination_id: str) -> Built:
    rendered: Callable[[Any], Service] = request.getfixturevalue("render")
    service = rendered(next(c for c in COMBINATIONS if c.id == combination_id))
    done = once(shared, f"sam-build-{service.id}", lambda d: sam_build(service, d))
    return Built(service, Path(done["build_dir"]))


@pytest.fixture(params=BUILT)
def built(request: pytest.FixtureRequest, shared: Path) -> Built:
    return built_once(request, shared, request.param)


@pytest.fixture(params=POSTGRES_BUILT)
def postgres_built(request: pytest.FixtureRequest, shared: Path) -> Built:
    return built_once(request, shared, request.param)


def parameters_of(built: Built) -> dict[str, Any]:
    return dict(load_template(built.build_dir / "template.yaml").get("Parameters", {}))


def deploy_value(name: str, value: Any, parameters: dict[str, Any]) -> str:
    if isinstance(value, str):
        return value
    reference = value.get("Ref") if isinstance(value, dict) else None
    if reference in parameters and "Default" in parameters[reference]:
        return str(parameters[reference]["Default"])
    return f"resolved-at-deploy-{name}"


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
    if built.service.answers["database"] == "postgres":  # init connects: to the suite's server
        variables = variables | database_settings()
    env = {
        "PATH": "/usr/bin:/bin",
        # Lambda's own variables and fake credentials: clients are created at init, never called.
        "AWS_REGION": str(built.service.answers["aws_region"]),
        "AWS_DEFAULT_REGION": str(built.service.answers["aws_region"]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "PYTHONDONTWRITEBYTECODE": "1",
        # Refs and Subs resolve at deploy time; init only needs the settings to be there, and a
        # Ref to a parameter gets the parameter's default (a number init parses, e.g.).
        **{name: deploy_value(name, value, parameters_of(built)) for name, value in variables.items()},
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


def database_settings() -> dict[str, str]:
    """The function's DATABASE_* settings for the suite's PostgreSQL (DATABASE_URL, from tests/run.sh)."""
    url = os.environ.get("DATABASE_URL")
    assert url, "DATABASE_URL is not set: run the suite through `bash tests/run.sh`, which starts its PostgreSQL"
    parts = urlsplit(url)
    return {
        "DATABASE_HOST": str(parts.hostname),
        "DATABASE_PORT": str(parts.port or 5432),
        "DATABASE_NAME": parts.path.lstrip("/") or "postgres",
        "DATABASE_USER": unquote(parts.username or ""),
        "DATABASE_AUTH": "password",
        "PGPASSWORD": unquote(parts.password or ""),
        "DATABASE_SSLMODE": parse_qs(parts.query).get("sslmode", ["prefer"])[0],
        "DATABASE_IDLE_TIMEOUT_SECONDS": "1800",  # RDS Proxy's default IdleClientTimeout
    }


def psycopg_extension(built: Built) -> Path:
    found = sorted(built.artifacts("Function").glob("psycopg_binary/_psycopg*.so"))
    assert found, "the package has no psycopg_binary/_psycopg*.so: psycopg[binary] was not installed"
    return found[0]


def test_psycopgs_extension_is_for_the_functions_architecture(postgres_built: Built) -> None:
    """sam build on an x86_64 host must ship the aarch64 wheel for arm64, and the reverse."""
    architecture = functions_of(postgres_built)["Function"]["Architectures"][0]
    header = psycopg_extension(postgres_built).read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINES[architecture], architecture


@pytest.mark.parametrize("postgres_built", [POSTGRES_X86_64.id], indirect=True)
def test_psycopg_loads_its_bundled_libpq_under_the_runtimes_python(postgres_built: Built) -> None:
    """The binary wheel's libpq, not the machine's: Lambda's runtime has none."""
    if os.uname().machine != "x86_64":
        pytest.skip(f"an {os.uname().machine} host cannot load the x86_64 build's extension")
    version = str(postgres_built.service.answers["python_version"])
    code = "import psycopg; print(psycopg.pq.__impl__, psycopg.pq.version())"
    child = judges.run(
        [find_python(version), "-B", "-s", "-S", "-c", f"import sys; sys.path[:0] = ['.']; {code}"],
        postgres_built.artifacts("Function"),
        {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    judges.assert_passes(child, "importing psycopg from the built package")
    implementation, libpq = child.stdout.split()
    assert implementation == "binary"
    assert int(libpq) >= 160000, f"libpq {libpq}: older than the server production runs"


def zipped_size(directory: Path, archive: Path) -> int:
    """The package as sam deploy uploads it: every file, deflated."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                package.write(path, path.relative_to(directory))
    return archive.stat().st_size


def test_the_postgres_package_stays_under_its_zipped_budget(
    postgres_built: Built, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    size = zipped_size(postgres_built.artifacts("Function"), tmp_path / "Function.zip")
    architecture = functions_of(postgres_built)["Function"]["Architectures"][0]
    record_property(f"zipped_package_bytes_{architecture}", size)
    assert size < ZIPPED_PACKAGE_BUDGET_BYTES, f"{architecture}: {size / 1e6:.1f} MB zipped"

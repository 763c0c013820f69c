#!/usr/bin/env python3
"""Cold-start benchmark for the services this template renders.

Run from anywhere (stdlib only, Python 3.11+; the interpreter measured is a
python3.13 unless ``--python`` says otherwise):

    python benchmarks/cold_start.py [--runs 20] [--callgrind] [--json out.json]

What is measured, and why
-------------------------
A Lambda cold start is dominated by the *init* phase: importing the handler
module, which builds its module-scope objects (Powertools Logger/Metrics,
boto3 clients, idempotency layer). That is the cost this template controls, so
that is what is timed: ``import <package>.handler`` in a fresh process,
``time.perf_counter()`` around the import inside the child (plus the whole
process wall time seen by the parent, which adds interpreter start-up).

1. Every combination of ``event_source`` x ``database`` that ``copier.yml``
   offers (``--sources`` and ``--databases`` pick some) is rendered from the template *working tree*
   (``copier copy --vcs-ref HEAD``), so uncommitted edits are measured. A
   postgres handler connects during init, so those combinations need a
   server: ``DATABASE_URL`` (``tests/run.sh`` exports the suite's, TLS
   required); without it they are skipped, with a line saying so.
2. Each is built into a deployment package by the rendered Makefile's
   ``build-Function`` target, the one ``sam build`` runs (``BuildMethod:
   makefile``): ``src/requirements.txt`` installed with pip, ``src/<package>``
   copied, all compiled as unchecked-hash bytecode. Only the wheels' Python
   and CPU are overridden to this interpreter's and this machine's, so that
   compiled wheels would load here; what is measured is what ships.
   boto3/botocore are not in the package (the Lambda runtime provides them):
   they are installed, at the version pinned in the rendered ``pyproject.toml``,
   in a separate *runtime* directory placed after the package on the path,
   like Lambda's ``/var/runtime``.
3. Lambda's file system is read-only, so Python there can never write
   ``__pycache__``: a package shipped without bytecode recompiles every module
   at each cold start, and a timestamp ``.pyc`` can go stale in a zip. The
   build target therefore compiles the package with ``compileall
   --invalidation-mode unchecked-hash`` (the ``.pyc`` is trusted without a
   stat of the source), the runtime directory is compiled the same way, and
   both are made read-only; the children also run
   with ``PYTHONDONTWRITEBYTECODE=1`` because root ignores permission bits.
   A warm-up run per variant checks that every imported module came from a
   ``.pyc``, and the package trees are checked to be unchanged afterwards.
4. The children run in a bare virtual environment (no site-packages, no
   ``.pth`` files), with ``-s -X frozen_modules=on``, a clean environment
   holding only Lambda's variables (function name, memory, region,
   ``LAMBDA_TASK_ROOT``, ``AWS_EXECUTION_ENV``, fake credentials, no AWS
   config files) and the function's own variables read from the rendered
   ``template.yaml``. Nothing touches the network: boto3 clients connect
   lazily.
5. Floors, measured in the same loop: the *bare* handler (``def
   lambda_handler(event, context): return {}``: the interpreter's own cost)
   and the *boto3 floor*: ``import boto3`` and the very clients the handler
   creates, with the same ``botocore`` ``Config`` (both read from the rendered
   handler's source), which any Python function talking to those services
   pays. The budget is on what the template adds on top:
   ``median(handler init) / median(boto3 floor init) <= 1.3`` per combination.
   A postgres combination has a second floor, the *psycopg floor*: the boto3
   floor plus ``import psycopg`` and one connection to the local server with
   the function's DATABASE_* settings (TLS when the server offers it,
   ``prepare_threshold=None``, autocommit), which any Python function on
   PostgreSQL pays at init. Its budget is on that floor (1.3x); the ratio to
   the boto3 floor is reported beside it.
6. All variants are run round-robin, in a shuffled order each round, so
   machine noise (wall time drifts ~30% on shared machines) hits them alike.
   Next to the budget's ratio of medians, the *paired ratio* (median of the
   per-round handler/floor ratios) is printed: it cancels load swings between
   rounds, which can move a ratio of medians by 0.1-0.2 on a busy machine.
   ``--callgrind`` adds one run per variant under valgrind's callgrind and
   reports the instructions executed by the whole process, which repeat
   exactly from run to run (``PYTHONHASHSEED=0`` everywhere for that).
7. The package size is the deflate-zipped package directory (what sam
   uploads; the runtime directory excluded), with the ``.pyc`` files we
   recommend shipping; the budget is 5 MB (5,000,000 bytes), 10 MB for
   postgres (psycopg-binary bundles libpq and OpenSSL, about 10 MB unpacked).
8. ``copier copy`` of the template with default answers is timed against a
   one-question, one-file template (copier's own floor), interleaved.
9. When a combination misses the init budget (or with ``--importtime``),
   ``python -X importtime`` shows the modules it imports beyond the boto3
   floor, costliest first.

The exit status is 1 when a budget is missed (wall-time ratio, instruction
ratio when counted, zip size). Wall-clock numbers compare variants *within
one run*, not across machines; the callgrind counts are the ones to compare
across commits, and the steadier gate on a shared CI machine. Callgrind counts
CPU instructions only: the file-system work of importing more modules (stat,
open, read of each .pyc) and cache misses show in wall time, not in the
counts, so an import-heavy handler's wall ratio can sit above its
instruction ratio.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import glob
import json
import os
import platform
import random
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The questions whose choices are the rows of the table, and the folder of slots of each choice.
SLOTTED_QUESTIONS = {"event_source": "sources", "database": "databases"}
INIT_RATIO_BUDGET = 1.3
PACKAGE_BUDGET_BYTES = 5_000_000
# psycopg-binary bundles libpq, OpenSSL, krb5 and friends (about 10 MB unpacked).
POSTGRES_PACKAGE_BUDGET_BYTES = 10_000_000
MB = 1_000_000
STAGE = "staging"
KNOWN_COPIER_PATHS = ("/opt/dev/bin/copier",)
FAKE_ACCOUNT_ID = "123456789012"
BARE_HANDLER_SOURCE = "def lambda_handler(event, context):\n    return {}\n"
CHILD_FLAGS = ("-s", "-X", "frozen_modules=on")


# ---------------------------------------------------------------- data


@dataclass
class Combination:
    """One rendered service, built into a deployment package."""

    event_source: str
    database: str
    project_dir: Path
    handler_module: str = ""
    runtime: str = ""
    package_dir: Path = Path()
    runtime_dir: Path = Path()
    boto3_version: str = ""
    botocore_version: str = ""
    zipped_bytes: int = 0
    zipped_source_only_bytes: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    floor_name: str = ""
    psycopg_floor_name: str = ""  # postgres only: the boto3 floor + psycopg + one connection

    @property
    def name(self) -> str:
        return f"{self.event_source} x {self.database}"

    @property
    def package_budget_bytes(self) -> int:
        return POSTGRES_PACKAGE_BUDGET_BYTES if self.database == "postgres" else PACKAGE_BUDGET_BYTES

    @property
    def slug(self) -> str:
        return f"{self.event_source}-{self.database}"


@dataclass
class Variant:
    """A module whose import is timed in a fresh process."""

    name: str
    kind: str  # "handler", "boto3-floor", "psycopg-floor" or "bare"
    module: str
    python_path: list[Path]
    environment: dict[str, str]
    init_seconds: list[float] = field(default_factory=list)
    process_seconds: list[float] = field(default_factory=list)
    instructions: int | None = None

    def child_environment(self) -> dict[str, str]:
        return {**self.environment, "PYTHONPATH": os.pathsep.join(str(p) for p in self.python_path)}


@dataclass
class RenderTiming:
    template_seconds: list[float] = field(default_factory=list)
    one_file_seconds: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"[cold_start] {message}", file=sys.stderr, flush=True)


def run(command: Sequence[str | Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output when it fails."""
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
        )
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def make_read_only(path: Path) -> None:
    """chmod -R a-w: what Lambda's file system is (root still bypasses it)."""
    for entry in [path, *path.rglob("*")]:
        if entry.is_symlink():
            continue
        mode = entry.stat().st_mode
        entry.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(path: Path) -> None:
    """rm -rf that also works, for a non-root user, on the read-only trees this script makes."""
    if not path.exists():
        return
    for entry in [path, *path.rglob("*")]:
        if entry.is_dir() and not entry.is_symlink():
            entry.chmod(0o755)
    shutil.rmtree(path)


def tree_snapshot(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# ---------------------------------------------------------------- tools


def find_copier(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else [shutil.which("copier"), *KNOWN_COPIER_PATHS]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise SystemExit("copier not found: pass --copier PATH")


def real_interpreter(command: str) -> Path | None:
    """The real executable behind a command (resolves pyenv shims), or None if it does not run."""
    try:
        result = subprocess.run(
            [command, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return None
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return Path(result.stdout.strip())


def find_python(explicit: str | None) -> Path:
    """--python, else a python3.13 (Lambda's runtime for the template's default), else this interpreter."""
    if explicit:
        found = real_interpreter(explicit)
        if found is None:
            raise SystemExit(f"--python {explicit} does not run")
        return found
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = ["python3.13", *sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True)]
    for candidate in candidates:
        found = real_interpreter(candidate)
        if found is not None:
            return found
    return Path(sys.executable)


def python_version(python: Path) -> str:
    return run([python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"]).stdout.strip()


def create_bare_venv(python: Path, directory: Path) -> Path:
    """A venv with no site-packages: the children see only the package and the runtime dir."""
    run([python, "-m", "venv", "--without-pip", directory])
    return directory / "bin" / "python"


def install_requirements(python: Path, target: Path, requirements: Sequence[str]) -> None:
    """pip install --target, as sam build does (uv when present: same result, faster, offline mirror)."""
    target.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    if uv:
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        run([uv, "pip", "install", "--quiet", "--python", python, "--target", target, *requirements], env=env)
    else:
        run([python, "-m", "pip", "install", "--quiet", "--no-compile", "--target", target, *requirements])


def compile_unchecked_hash(python: Path, directory: Path) -> None:
    """Bytecode Lambda can use from a read-only tree: never stat-checked, never rewritten.

    -f because compileall skips a file whose timestamp .pyc is current, whatever the mode asked.
    """
    run([python, "-m", "compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash", directory])


# ---------------------------------------------------------------- render and read the rendered service


def git_identity_environment() -> dict[str, str]:
    """copier --vcs-ref HEAD commits a dirty tree in a temp clone: it needs an identity."""
    env = dict(os.environ)
    for key, value in (
        ("GIT_AUTHOR_NAME", "cold-start benchmark"),
        ("GIT_AUTHOR_EMAIL", "benchmark@example.com"),
        ("GIT_COMMITTER_NAME", "cold-start benchmark"),
        ("GIT_COMMITTER_EMAIL", "benchmark@example.com"),
    ):
        env.setdefault(key, value)
    return env


def offered_choices(copier: Path) -> dict[str, list[str]]:
    """event_source's and database's choices in copier.yml, each checked to have its slot folder.

    Read with copier's own YAML loader (its interpreter has PyYAML), so this
    script stays stdlib-only and reads copier.yml exactly as copier does.
    """
    first_line = copier.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    if not first_line.startswith("#!"):
        raise SystemExit(f"cannot read copier.yml's choices: {copier} has no #! line naming its Python")
    reader = (
        "import json, sys, yaml\n"
        "questions = yaml.safe_load(open(sys.argv[1]))\n"
        "choices = {q: questions[q]['choices'] for q in sys.argv[2:]}\n"
        "print(json.dumps({q: list(c.values()) if isinstance(c, dict) else c for q, c in choices.items()}))\n"
    )
    interpreter = first_line[2:].split()
    done = run([*interpreter, "-c", reader, REPO_ROOT / "copier.yml", *SLOTTED_QUESTIONS])
    offered: dict[str, list[str]] = {q: [str(v) for v in values] for q, values in json.loads(done.stdout).items()}
    for question, folder in SLOTTED_QUESTIONS.items():
        for value in offered[question]:
            if not (REPO_ROOT / "template" / "_slots" / folder / value).is_dir():
                raise SystemExit(
                    f"copier.yml offers {question}={value} but template/_slots/{folder}/{value}/ does not exist: "
                    "add the folder or remove the choice"
                )
    return offered


def render(copier: Path, template: Path, destination: Path, answers: dict[str, str]) -> None:
    data = [arg for key, value in answers.items() for arg in ("-d", f"{key}={value}")]
    run(
        [copier, "copy", "--quiet", "--trust", "--defaults", "--vcs-ref", "HEAD", *data, template, destination],
        env=git_identity_environment(),
    )


def template_property(template_yaml: str, name: str) -> str:
    match = re.search(rf"^\s+{name}:\s*(\S+)\s*$", template_yaml, re.MULTILINE)
    if not match:
        raise ValueError(f"{name} not found in template.yaml")
    return match.group(1)


def function_environment(template_yaml: str) -> dict[str, str]:
    """Environment.Variables of the function, as raw YAML scalars (``!Ref X`` kept as text)."""
    lines = template_yaml.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "Variables:" and index > 0 and lines[index - 1].strip() == "Environment:":
            indent = len(line) - len(line.lstrip())
            variables: dict[str, str] = {}
            for entry in lines[index + 1 :]:
                if entry.strip() and len(entry) - len(entry.lstrip()) <= indent:
                    break
                if ":" in entry and not entry.strip().startswith("#"):
                    key, value = entry.strip().split(":", 1)
                    variables[key.strip()] = value.strip().strip('"').strip("'")
            return variables
    return {}


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def resolve_variable(name: str, value: str, function_name: str, region: str) -> str:
    """A deployed-looking value for a template expression (resource names are only read at init)."""
    if not value.startswith("!"):
        return value
    reference = value.split()[-1].split(".")[0]
    if reference == "Stage":
        return STAGE
    if name.endswith("_URL"):
        return f"https://sqs.{region}.amazonaws.com/{FAKE_ACCOUNT_ID}/{function_name}-{kebab(reference)}"
    if name.endswith("_ARN") and reference.endswith("Secret"):
        # Read only on the first verified request, never at init.
        return f"arn:aws:secretsmanager:{region}:{FAKE_ACCOUNT_ID}:secret:{function_name}-{kebab(reference)}-AbCdEf"
    if name.endswith("_ARN"):
        return f"arn:aws:lambda:{region}:{FAKE_ACCOUNT_ID}:function:{function_name}-{kebab(reference)}"
    return f"{function_name}-{kebab(reference)}"


def answer(project_dir: Path, key: str, default: str) -> str:
    text = (project_dir / ".copier-answers.yml").read_text()
    match = re.search(rf"^{key}:\s*'?([^'\n]*)'?\s*$", text, re.MULTILINE)
    return match.group(1) if match else default


def lambda_environment(combination: Combination, template_yaml: str) -> dict[str, str]:
    """What Lambda sets for this function, plus its own variables; nothing from this shell."""
    region = answer(combination.project_dir, "aws_region", "us-east-1")
    service = answer(combination.project_dir, "service_name", "service")
    function_name = f"{service}-{STAGE}"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": str(combination.package_dir.parent / "home"),
        "LAMBDA_TASK_ROOT": str(combination.package_dir),
        "LAMBDA_RUNTIME_DIR": str(combination.runtime_dir),
        "_HANDLER": template_property(template_yaml, "Handler"),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{combination.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": template_property(template_yaml, "MemorySize"),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[1]0123456789abcdef",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "ASIAFAKEBENCHMARKKEY",
        "AWS_SECRET_ACCESS_KEY": "fake-secret-for-the-cold-start-benchmark",
        "AWS_SESSION_TOKEN": "fake-session-token",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        # Lambda has no ~/.aws files; never read this machine's.
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
    for name, value in function_environment(template_yaml).items():
        env[name] = resolve_variable(name, value, function_name, region)
    if combination.database == "postgres":  # init connects: to the local server, by password
        env.update(database_environment(os.environ["DATABASE_URL"]))
    return env


def database_environment(url: str) -> dict[str, str]:
    """The function's DATABASE_* settings (and libpq's PGPASSWORD) for the server at `url`."""
    parts = urllib.parse.urlsplit(url)
    return {
        "DATABASE_HOST": parts.hostname or "localhost",
        "DATABASE_PORT": str(parts.port or 5432),
        "DATABASE_NAME": parts.path.lstrip("/") or "postgres",
        "DATABASE_USER": urllib.parse.unquote(parts.username or ""),
        "DATABASE_AUTH": "password",
        "DATABASE_SSLMODE": urllib.parse.parse_qs(parts.query).get("sslmode", ["prefer"])[0],
        "DATABASE_IDLE_TIMEOUT_SECONDS": "1800",  # RDS Proxy's default IdleClientTimeout
        "PGPASSWORD": urllib.parse.unquote(parts.password or ""),
    }


def pinned_boto3_version(project_dir: Path) -> str:
    """boto3 as pinned in the rendered pyproject's dev group (what the tests run against)."""
    pyproject = tomllib.loads((project_dir / "pyproject.toml").read_text())
    groups = pyproject.get("dependency-groups", {})
    for requirement in groups.get("dev", []):
        match = re.fullmatch(r"boto3\s*==\s*([\w.]+)", str(requirement).strip())
        if match:
            return match.group(1)
    raise ValueError(f"no boto3==X in [dependency-groups].dev of {project_dir / 'pyproject.toml'}")


@dataclass(frozen=True)
class ClientFloor:
    """The boto3 clients a handler creates at module scope, and their Config."""

    services: tuple[str, ...]
    config_source: str  # e.g. "Config(connect_timeout=2, ...)" or "" for none
    psycopg: bool = False  # also import psycopg and open one connection, as a postgres init must

    @property
    def name(self) -> str:
        clients = f"boto3 floor ({'+'.join(self.services) or 'no client'})"
        return f"psycopg floor ({clients} + psycopg + 1 connection)" if self.psycopg else clients

    def module_source(self) -> str:
        lines = ["import boto3", "from botocore.config import Config", ""]
        lines.append(f"config = {self.config_source or 'None'}")
        lines += [f'{service} = boto3.client("{service}", config=config)' for service in self.services]
        if self.psycopg:
            lines += ["", "import os", "", "import psycopg", "", PSYCOPG_FLOOR_CONNECTION]
        return "\n".join(lines) + "\n"


# What any PostgreSQL function pays at init besides its clients: the driver and one connection,
# with the settings RDS Proxy wants (no prepared statements, autocommit) and TLS when the server
# offers it (libpq reads PGPASSWORD).
PSYCOPG_FLOOR_CONNECTION = """connection = psycopg.connect(
    host=os.environ["DATABASE_HOST"],
    port=int(os.environ["DATABASE_PORT"]),
    dbname=os.environ["DATABASE_NAME"],
    user=os.environ["DATABASE_USER"],
    sslmode=os.environ["DATABASE_SSLMODE"],
    connect_timeout=5,
    autocommit=True,
    prepare_threshold=None,
)"""


def client_floor_of(handler_source: str, allow_no_client: bool = False) -> ClientFloor:
    """Read ``boto3.client("x", config=...)`` calls and the ``Config(...)`` they use from the handler."""
    tree = ast.parse(handler_source)
    configs: dict[str, str] = {}
    services: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "Config"
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    configs[target.id] = ast.unparse(node.value)
    config_source = ""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "boto3"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            services.append(str(node.args[0].value))
            for keyword in node.keywords:
                if keyword.arg == "config":
                    value = keyword.value
                    config_source = configs.get(value.id, "") if isinstance(value, ast.Name) else ast.unparse(value)
                    # A Config built by the service's own code (timeouts.config()) cannot run in the floor
                    # module; its values change no import or client-creation cost, so a default one stands in.
                    if not config_source.startswith("Config("):
                        config_source = "Config()"
    if not services and not allow_no_client:
        raise ValueError("the handler creates no boto3 client at module scope: nothing to compare against")
    return ClientFloor(tuple(services), config_source)


# ---------------------------------------------------------------- build


def build_runtime(python: Path, boto3_version: str, directory: Path) -> Path:
    """boto3 + botocore where Lambda keeps them (/var/runtime): after the package, read-only, compiled."""
    if not directory.exists():
        install_requirements(python, directory, [f"boto3=={boto3_version}"])
        compile_unchecked_hash(python, directory)
        make_read_only(directory)
    return directory


def installed_version(directory: Path, distribution: str) -> str:
    for metadata in directory.glob(f"{distribution}-*.dist-info"):
        return metadata.name.removesuffix(".dist-info").split("-", 1)[1]
    return "?"


def zip_size(directory: Path, include_bytecode: bool) -> int:
    """Size of the deflate zip sam would upload for this directory."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "package.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(directory.rglob("*")):
                if path.is_file() and (include_bytecode or "__pycache__" not in path.parts):
                    bundle.write(path, path.relative_to(directory))
        return archive.stat().st_size


def run_build_target(python: Path, project_dir: Path, code_uri: Path, package: Path) -> None:
    """The Makefile target sam build runs, in a copy of CodeUri as sam does, for this Python and CPU."""
    scratch = package.parent / "scratch"
    shutil.copytree(code_uri, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    package.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    version = python_version(python).rsplit(".", 1)[0]
    run(
        [
            "make",
            "--no-print-directory",
            "--directory",
            scratch,
            "--makefile",
            project_dir / "Makefile",
            "build-Function",
            f"ARTIFACTS_DIR={package}",
            f"BUILD_PYTHON={python}",
            f"LAMBDA_PYTHON={version}",
            f"LAMBDA_WHEEL_ARCH={platform.machine()}",
        ],
        env=env,
    )
    remove_tree(scratch)


def build_package(python: Path, combination: Combination, work: Path) -> None:
    """What sam build ships, built for the host architecture, then frozen."""
    template_yaml = (combination.project_dir / "template.yaml").read_text()
    code_uri = combination.project_dir / template_property(template_yaml, "CodeUri")
    combination.handler_module = template_property(template_yaml, "Handler").rsplit(".", 1)[0]
    combination.runtime = template_property(template_yaml, "Runtime")
    package = work / combination.slug / "package"
    run_build_target(python, combination.project_dir, code_uri, package)
    for shipped in ("boto3", "botocore"):
        if (package / shipped).exists():
            log(f"note: {combination.name} ships its own {shipped} (it shadows the runtime's)")
    combination.package_dir = package
    combination.zipped_bytes = zip_size(package, include_bytecode=True)
    combination.zipped_source_only_bytes = zip_size(package, include_bytecode=False)
    make_read_only(package)
    (package.parent / "home").mkdir(exist_ok=True)
    combination.boto3_version = pinned_boto3_version(combination.project_dir)
    combination.runtime_dir = build_runtime(
        python, combination.boto3_version, work / f"runtime-boto3-{combination.boto3_version}"
    )
    combination.botocore_version = installed_version(combination.runtime_dir, "botocore")
    combination.environment = lambda_environment(combination, template_yaml)


def build_floor_modules(python: Path, combinations: list[Combination], directory: Path) -> dict[str, ClientFloor]:
    """One boto3-floor module per distinct (clients, Config), plus the bare handler, compiled and frozen."""
    directory.mkdir(parents=True)
    (directory / "bare_handler.py").write_text(BARE_HANDLER_SOURCE)
    floors: dict[str, ClientFloor] = {}
    modules: dict[ClientFloor, str] = {}
    for combination in combinations:
        handler_file = combination.package_dir / Path(*combination.handler_module.split(".")).with_suffix(".py")
        postgres = combination.database == "postgres"
        floor = client_floor_of(handler_file.read_text(), allow_no_client=postgres)
        with_psycopg = [floor, dataclasses.replace(floor, psycopg=True)] if postgres else [floor]
        for each in with_psycopg:
            if each not in modules:
                modules[each] = f"{'psycopg' if each.psycopg else 'boto3'}_floor_{len(modules) + 1}"
                (directory / f"{modules[each]}.py").write_text(each.module_source())
            floors[modules[each]] = each
        combination.floor_name = floor.name
        combination.psycopg_floor_name = with_psycopg[-1].name if postgres else ""
    compile_unchecked_hash(python, directory)
    make_read_only(directory)
    return floors


def make_variants(combinations: list[Combination], floors: dict[str, ClientFloor], floor_dir: Path) -> list[Variant]:
    variants = [
        Variant(c.name, "handler", c.handler_module, [c.package_dir, c.runtime_dir], c.environment)
        for c in combinations
    ]
    first = combinations[0]
    for module, floor in floors.items():
        if floor.psycopg:  # psycopg from a postgres package, with its DATABASE_* settings
            owner = next(c for c in combinations if c.psycopg_floor_name == floor.name)
            path = [floor_dir, owner.package_dir, owner.runtime_dir]
            variants.append(Variant(floor.name, "psycopg-floor", module, path, owner.environment))
            continue
        owner = next(c for c in combinations if c.floor_name == floor.name)
        variants.append(Variant(floor.name, "boto3-floor", module, [floor_dir, owner.runtime_dir], owner.environment))
    variants.append(Variant("bare handler", "bare", "bare_handler", [floor_dir, first.runtime_dir], first.environment))
    return variants


# ---------------------------------------------------------------- measure init


def timed_import_code(module: str) -> str:
    return f"import time\nt0 = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t0)\n"


# Run once per variant before timing: every module must have come from a .pyc (no compile at cold start).
BYTECODE_CHECK_CODE = """
import os, sys
missing = sorted(
    name for name, module in list(sys.modules.items())
    if (spec := getattr(module, "__spec__", None)) is not None
    and str(spec.origin).endswith(".py")
    and not (spec.cached and os.path.exists(spec.cached))
)
print("compiled-at-import:", ",".join(missing))
"""


def run_child(python: Path, variant: Variant, code: str) -> tuple[str, float]:
    """Run code in a fresh Lambda-like process; return its stdout and the process wall time."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(python), *CHILD_FLAGS, "-c", code], capture_output=True, text=True, env=variant.child_environment()
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"importing {variant.module} ({variant.name}) failed:\n{result.stderr}")
    return result.stdout, elapsed


def check_bytecode_is_used(python: Path, variant: Variant) -> None:
    stdout, _ = run_child(python, variant, f"import {variant.module}\n{BYTECODE_CHECK_CODE}")
    line = next(line for line in stdout.splitlines() if line.startswith("compiled-at-import:"))
    missing = [name for name in line.split(":", 1)[1].strip().split(",") if name]
    if missing:
        raise RuntimeError(f"{variant.name}: modules without a usable .pyc: {missing[:10]}")


def measure_init(python: Path, variants: list[Variant], runs: int, seed: int) -> None:
    """runs x (every variant once, in a shuffled order): noise is shared, not biased."""
    order = list(variants)
    shuffler = random.Random(seed)
    for round_number in range(1, runs + 1):
        shuffler.shuffle(order)
        for variant in order:
            stdout, elapsed = run_child(python, variant, timed_import_code(variant.module))
            variant.init_seconds.append(float(stdout.strip().splitlines()[-1]))
            variant.process_seconds.append(elapsed)
        if round_number % 5 == 0 or round_number == runs:
            log(f"init: round {round_number}/{runs}")


def callgrind_instructions(python: Path, variant: Variant, code: str | None = None) -> int:
    """Instructions executed by the whole process (start-up + import, or `code`): exact, unlike wall time."""
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--dump-instr=no",
            str(python),
            *CHILD_FLAGS,
            "-c",
            code if code is not None else f"import {variant.module}",
        ],
        capture_output=True,
        text=True,
        env=variant.child_environment(),
    )
    match = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"callgrind failed for {variant.name}:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def measure_instructions(python: Path, variants: list[Variant]) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)")
    # A postgres init connects within a timeout of a few seconds, and under callgrind (about 50x slower)
    # the TLS handshake and the SCRAM exchange can outlast it on a busy machine: those run one at a time.
    connecting = [v for v in variants if v.kind == "psycopg-floor" or "DATABASE_HOST" in v.environment]
    others = [v for v in variants if v not in connecting]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(lambda v: callgrind_instructions(python, v), others))
    counts += [callgrind_instructions(python, v) for v in connecting]
    for variant, count in zip(others + connecting, counts, strict=True):
        variant.instructions = count


# ---------------------------------------------------------------- SnapStart restore path


def measure_restore_path(
    copier: Path, python: Path, child_python: Path, work: Path, runs: int, callgrind: bool
) -> None:
    """With cold_start=snapstart, what the after-restore hooks cost (printed).

    Lambda restores a snapshot taken after init, then runs the registered hooks
    before the first request; "Restore Duration" includes them, and they are the
    only part of a restore the service's code decides. Measured in the built
    package: a fresh Lambda-like process imports the handler (the init that was
    snapshotted), then runs the hooks as the runtime does after a restore. Their
    instructions are the whole process with the hooks minus the same process
    without them (PYTHONHASHSEED=0: both counts repeat exactly).
    """
    combination = Combination("api", "dynamodb", work / "rendered" / "api-dynamodb-snapstart")
    log(f"render + build {combination.name} with cold_start=snapstart")
    answers = {"event_source": "api", "database": "dynamodb", "cold_start": "snapstart"}
    render(copier, REPO_ROOT, combination.project_dir, answers)
    build_package(python, combination, work / "build-snapstart")
    # Lambda's Python runtimes include the hooks' registry, as they include boto3: beside the package.
    pyproject = tomllib.loads((combination.project_dir / "pyproject.toml").read_text())
    [registry] = [r for r in pyproject["dependency-groups"]["dev"] if r.startswith("snapshot-restore-py==")]
    registry_dir = work / "build-snapstart" / "snapshot-restore-py"
    install_requirements(python, registry_dir, [registry])
    compile_unchecked_hash(python, registry_dir)
    make_read_only(registry_dir)
    path = [combination.package_dir, combination.runtime_dir, registry_dir]
    variant = Variant(
        f"{combination.name} snapstart", "restore", combination.handler_module, path, combination.environment
    )
    check_bytecode_is_used(child_python, variant)

    def code(run_hooks: bool) -> str:
        hooks = "for hook, args, kwargs in hooks:\n    hook(*args, **kwargs)\n" if run_hooks else ""
        return (
            f"import time\nimport {variant.module}\nfrom snapshot_restore_py import get_after_restore\n"
            f"hooks = list(get_after_restore())\nt0 = time.perf_counter()\n{hooks}"
            "print(len(hooks), time.perf_counter() - t0)\n"
        )

    seconds: list[float] = []
    hook_count = 0
    for _ in range(runs):
        stdout, _elapsed = run_child(child_python, variant, code(run_hooks=True))
        count, elapsed = stdout.split()[-2:]
        hook_count = int(count)
        seconds.append(float(elapsed))
    line = (
        f"\nSnapStart restore path ({combination.name}, cold_start=snapstart): {hook_count} after-restore hook(s),"
        f" {median(seconds) * 1e6:.0f} us median (p90 {p90(seconds) * 1e6:.0f} us, {runs} fresh processes)"
    )
    if callgrind:
        counts = [callgrind_instructions(child_python, variant, code(run_hooks)) for run_hooks in (False, True)]
        line += f", {counts[1] - counts[0]:,} instructions (of {counts[0] / 1e6:,.0f} M for the init before them)"
    print(line + ". Lambda adds its own snapshot restore and runtime load (Restore Duration), not measurable here.")


# ---------------------------------------------------------------- import-time breakdown


@dataclass
class ImportCost:
    module: str
    depth: int
    self_us: float
    cumulative_us: float


def import_costs(python: Path, variant: Variant, runs: int = 5) -> dict[str, ImportCost]:
    """-X importtime, median per module over a few runs."""
    samples: dict[str, list[tuple[int, int, int]]] = {}
    for _ in range(runs):
        result = subprocess.run(
            [str(python), *CHILD_FLAGS, "-X", "importtime", "-c", f"import {variant.module}"],
            capture_output=True,
            text=True,
            env=variant.child_environment(),
        )
        for line in result.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if match:
                self_us, cumulative_us, indent, module = match.groups()
                depth = (len(indent) - 1) // 2
                samples.setdefault(module, []).append((depth, int(self_us), int(cumulative_us)))
    return {
        module: ImportCost(
            module,
            values[0][0],
            median([v[1] for v in values]),
            median([v[2] for v in values]),
        )
        for module, values in samples.items()
    }


def module_body_ms(costs: dict[str, ImportCost], module: str) -> float:
    return costs[module].self_us / 1000 if module in costs else float("nan")


def print_import_breakdown(python: Path, handler: Variant, floor: Variant, top: int = 15) -> None:
    handler_costs = import_costs(python, handler)
    floor_costs = import_costs(python, floor)
    floor_modules = set(floor_costs)
    # The handler module's own row is everything (cumulative) plus its body (self): shown apart.
    above = [cost for module, cost in handler_costs.items() if module not in floor_modules | {handler.module}]
    above.sort(key=lambda cost: cost.cumulative_us, reverse=True)
    print(f"\n#### {handler.name}: imports beyond the {floor.name} (`python -X importtime`, median of 5)\n")
    print("| module | cumulative ms | self ms | depth |")
    print("| --- | ---: | ---: | ---: |")
    for cost in above[:top]:
        print(f"| `{cost.module}` | {cost.cumulative_us / 1000:.1f} | {cost.self_us / 1000:.1f} | {cost.depth} |")
    by_top_level: dict[str, float] = {}
    for cost in above:
        top_level = cost.module.split(".")[0]
        by_top_level[top_level] = by_top_level.get(top_level, 0.0) + cost.self_us
    ranked = sorted(by_top_level.items(), key=lambda item: item[1], reverse=True)[:8]
    total = sum(by_top_level.values())
    print(
        f"\nModule bodies (self time: imports aside, what runs at module scope, clients included):"
        f" `{handler.module}` {module_body_ms(handler_costs, handler.module):.0f} ms,"
        f" `{floor.module}` {module_body_ms(floor_costs, floor.module):.0f} ms."
    )
    print(
        f"Self time of those {len(above)} modules: {total / 1000:.0f} ms; by top-level package: "
        + ", ".join(f"`{name}` {us / 1000:.0f} ms" for name, us in ranked)
    )


# ---------------------------------------------------------------- render time


def make_one_file_template(directory: Path) -> Path:
    """copier's own floor: one question, one file, in git like the real template."""
    directory.mkdir(parents=True)
    (directory / "copier.yml").write_text("name:\n  type: str\n  default: world\n")
    (directory / "hello.txt.jinja").write_text("Hello {{ name }}\n")
    env = git_identity_environment()
    run(["git", "init", "--quiet", "--initial-branch=main", directory], env=env)
    run(["git", "-C", directory, "add", "-A"], env=env)
    run(["git", "-C", directory, "commit", "--quiet", "-m", "one-file template"], env=env)
    return directory


def measure_render_time(copier: Path, runs: int, work: Path, seed: int) -> RenderTiming:
    one_file = make_one_file_template(work / "one-file-template")
    timing = RenderTiming()
    shuffler = random.Random(seed)
    for index in range(runs):
        pair = [("template", REPO_ROOT), ("one-file", one_file)]
        shuffler.shuffle(pair)
        for label, template in pair:
            destination = work / f"render-{label}-{index}"
            started = time.perf_counter()
            render(copier, template, destination, {})
            elapsed = time.perf_counter() - started
            (timing.template_seconds if label == "template" else timing.one_file_seconds).append(elapsed)
            remove_tree(destination)
    return timing


# ---------------------------------------------------------------- report


@dataclass
class Summary:
    """One table row: a combination against its floors and budgets."""

    combination: str
    floor: str
    zipped_bytes: int
    init_median_ms: float
    init_p90_ms: float
    floor_median_ms: float
    floor_p90_ms: float
    bare_init_median_ms: float
    bare_process_median_ms: float
    process_median_ms: float
    ratio: float
    paired_ratio: float
    instructions: int | None
    instructions_ratio: float | None
    package_budget_bytes: int = PACKAGE_BUDGET_BYTES
    # postgres: against the floor that also imports psycopg and opens one connection (the budget's)
    psycopg_floor: str = ""
    psycopg_floor_median_ms: float | None = None
    psycopg_ratio: float | None = None
    psycopg_paired_ratio: float | None = None
    psycopg_instructions_ratio: float | None = None

    @property
    def budget_ratio(self) -> float:
        """The ratio the budget is on: against the psycopg floor for postgres, the boto3 floor otherwise."""
        return self.psycopg_ratio if self.psycopg_ratio is not None else self.ratio

    @property
    def budget_instructions_ratio(self) -> float | None:
        return self.psycopg_instructions_ratio if self.psycopg_floor else self.instructions_ratio

    def misses(self) -> list[str]:
        """Budgets missed: the wall-time ratio, the exact instruction ratio when counted, the zip size."""
        missed = []
        floor = "psycopg floor" if self.psycopg_floor else "boto3 floor"
        if self.zipped_bytes > self.package_budget_bytes:
            missed.append(
                f"{self.combination}: package {self.zipped_bytes / MB:.2f} MB > {self.package_budget_bytes / MB:.0f} MB"
            )
        if self.budget_ratio > INIT_RATIO_BUDGET:
            missed.append(f"{self.combination}: init ratio {self.budget_ratio:.2f}x ({floor}) > {INIT_RATIO_BUDGET}x")
        instructions_ratio = self.budget_instructions_ratio
        if instructions_ratio is not None and instructions_ratio > INIT_RATIO_BUDGET:
            missed.append(
                f"{self.combination}: instruction ratio {instructions_ratio:.2f}x ({floor}) > {INIT_RATIO_BUDGET}x"
            )
        return missed


def paired_ratio(handler: Variant, floor: Variant) -> float:
    """Median of the per-round ratios: each pair ran seconds apart, so a load swing between rounds cancels."""
    return median([h / f for h, f in zip(handler.init_seconds, floor.init_seconds, strict=True)])


def summarize(combinations: list[Combination], variants: list[Variant]) -> list[Summary]:
    by_name = {v.name: v for v in variants}
    bare = next(v for v in variants if v.kind == "bare")
    summaries = []
    for combination in combinations:
        handler, floor = by_name[combination.name], by_name[combination.floor_name]
        instructions_ratio = None
        if handler.instructions is not None and floor.instructions is not None:
            instructions_ratio = handler.instructions / floor.instructions
        psycopg: dict[str, Any] = {}
        if combination.psycopg_floor_name:
            psycopg_floor = by_name[combination.psycopg_floor_name]
            psycopg = {
                "psycopg_floor": psycopg_floor.name,
                "psycopg_floor_median_ms": median(psycopg_floor.init_seconds) * 1000,
                "psycopg_ratio": median(handler.init_seconds) / median(psycopg_floor.init_seconds),
                "psycopg_paired_ratio": paired_ratio(handler, psycopg_floor),
            }
            if handler.instructions is not None and psycopg_floor.instructions is not None:
                psycopg["psycopg_instructions_ratio"] = handler.instructions / psycopg_floor.instructions
        summaries.append(
            Summary(
                combination=combination.name,
                floor=floor.name,
                zipped_bytes=combination.zipped_bytes,
                init_median_ms=median(handler.init_seconds) * 1000,
                init_p90_ms=p90(handler.init_seconds) * 1000,
                floor_median_ms=median(floor.init_seconds) * 1000,
                floor_p90_ms=p90(floor.init_seconds) * 1000,
                bare_init_median_ms=median(bare.init_seconds) * 1000,
                bare_process_median_ms=median(bare.process_seconds) * 1000,
                process_median_ms=median(handler.process_seconds) * 1000,
                ratio=median(handler.init_seconds) / median(floor.init_seconds),
                paired_ratio=paired_ratio(handler, floor),
                instructions=handler.instructions,
                instructions_ratio=instructions_ratio,
                package_budget_bytes=combination.package_budget_bytes,
                **psycopg,
            )
        )
    return summaries


def machine_info(python: Path, copier: Path) -> dict[str, str]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": f"{python_version(python)} ({python})",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "nproc": str(os.cpu_count()),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "copier": run([copier, "--version"]).stdout.strip(),
    }


def failed_mark(ok: bool) -> str:
    return "" if ok else " ✗"


def print_table(summaries: list[Summary], runs: int) -> None:
    counted = all(s.instructions is not None for s in summaries)
    columns = [
        ("combination", "---"),
        ("package zipped MB", "---:"),
        ("init median ms (p90)", "---:"),
        ("floor (boto3) ms (p90)", "---:"),
        ("bare ms (init / process)", "---:"),
        ("ratio", "---:"),
        ("paired ratio", "---:"),
        ("process ms", "---:"),
    ]
    postgres = any(s.psycopg_floor for s in summaries)
    if postgres:
        columns += [("floor (psycopg) ms", "---:"), ("psycopg ratio (paired)", "---:")]
    if counted:
        columns += [("instructions (M)", "---:"), ("instr. ratio", "---:")]
        if postgres:
            columns += [("instr. ratio (psycopg)", "---:")]
    print(f"\n### Cold start: init = `import <package>.handler`, {runs} interleaved runs per variant\n")
    print("| " + " | ".join(name for name, _ in columns) + " |")
    print("| " + " | ".join(align for _, align in columns) + " |")
    for s in summaries:
        # The budget's mark goes on the ratio it is on: the psycopg floor's for postgres.
        gated = not s.psycopg_floor
        cells = [
            s.combination,
            f"{s.zipped_bytes / MB:.2f}{failed_mark(s.zipped_bytes <= s.package_budget_bytes)}",
            f"{s.init_median_ms:.0f} ({s.init_p90_ms:.0f})",
            f"{s.floor_median_ms:.0f} ({s.floor_p90_ms:.0f})",
            f"{s.bare_init_median_ms:.1f} / {s.bare_process_median_ms:.0f}",
            f"{s.ratio:.2f}x{failed_mark(not gated or s.ratio <= INIT_RATIO_BUDGET)}",
            f"{s.paired_ratio:.2f}x",
            f"{s.process_median_ms:.0f}",
        ]
        if postgres:
            if s.psycopg_ratio is not None and s.psycopg_floor_median_ms is not None:
                cells += [
                    f"{s.psycopg_floor_median_ms:.0f}",
                    f"{s.psycopg_ratio:.2f}x{failed_mark(s.psycopg_ratio <= INIT_RATIO_BUDGET)}"
                    f" ({s.psycopg_paired_ratio:.2f}x)",
                ]
            else:
                cells += ["-", "-"]
        if counted and s.instructions is not None and s.instructions_ratio is not None:
            cells += [
                f"{s.instructions / 1e6:,.0f}",
                f"{s.instructions_ratio:.2f}x{failed_mark(not gated or s.instructions_ratio <= INIT_RATIO_BUDGET)}",
            ]
            if postgres:
                ratio = s.psycopg_instructions_ratio
                cells += [f"{ratio:.2f}x{failed_mark(ratio <= INIT_RATIO_BUDGET)}" if ratio is not None else "-"]
        print("| " + " | ".join(cells) + " |")


def print_report(
    combinations: list[Combination],
    variants: list[Variant],
    summaries: list[Summary],
    render_timing: RenderTiming | None,
    machine: dict[str, str],
    runs: int,
) -> None:
    print_table(summaries, runs)
    print("\nFloors (same loop):")
    for variant in variants:
        if variant.kind == "handler":
            continue
        line = (
            f"- {variant.name}: init {median(variant.init_seconds) * 1000:.1f} ms"
            f" (p90 {p90(variant.init_seconds) * 1000:.1f}), process {median(variant.process_seconds) * 1000:.0f} ms"
        )
        if variant.instructions is not None:
            line += f", {variant.instructions / 1e6:,.0f} M instructions"
        print(line)
    print(
        f"\nBudgets: median init <= {INIT_RATIO_BUDGET}x the boto3 floor's (and, when counted, instructions <="
        f" {INIT_RATIO_BUDGET}x); zipped package <= 5 MB ({PACKAGE_BUDGET_BYTES:,} bytes). postgres: the init"
        f" budget is on the psycopg floor (the boto3 floor + `import psycopg` + one connection to the local"
        f" server, TLS when it offers it), the boto3 ratio is shown beside it; zipped package <="
        f" {POSTGRES_PACKAGE_BUDGET_BYTES:,} bytes."
        " ratio = median init / median boto3-floor init (the budget, but for postgres); paired ratio ="
        " median of per-round ratios (steadier when the machine's load swings; informative); process ="
        " whole child process seen by the parent; instructions = whole process under callgrind."
    )
    print(
        "Zipped bytes (with unchecked-hash .pyc, as measured): "
        + ", ".join(f"{c.name} {c.zipped_bytes:,}" for c in combinations)
        + "; source only: "
        + ", ".join(f"{c.zipped_source_only_bytes:,}" for c in combinations)
        + f". Runtime dir: boto3 {combinations[0].boto3_version}, botocore {combinations[0].botocore_version}."
    )
    if render_timing:
        template_median = median(render_timing.template_seconds)
        floor_median = median(render_timing.one_file_seconds)
        print(
            f"\nRender time (`copier copy --trust --defaults --vcs-ref HEAD`,"
            f" {len(render_timing.template_seconds)} interleaved runs each): template {template_median:.2f} s median"
            f" (min {min(render_timing.template_seconds):.2f}), one-file template {floor_median:.2f} s"
            f" (min {min(render_timing.one_file_seconds):.2f}), ratio {template_median / floor_median:.1f}x"
        )
    print("\nMachine: " + "; ".join(f"{key} {value}" for key, value in machine.items()))


def write_json(
    path: Path,
    combinations: list[Combination],
    variants: list[Variant],
    summaries: list[Summary],
    render_timing: RenderTiming | None,
    machine: dict[str, str],
) -> None:
    """Raw samples and the summary; environments left out (fake credentials, long)."""

    def without_environment(record: Combination | Variant) -> dict[str, object]:
        return {key: value for key, value in asdict(record).items() if key != "environment"}

    payload = {
        "machine": machine,
        "budgets": {"init_ratio": INIT_RATIO_BUDGET, "package_bytes": PACKAGE_BUDGET_BYTES},
        "summary": [asdict(s) for s in summaries],
        "combinations": [without_environment(c) for c in combinations],
        "variants": [without_environment(v) for v in variants],
        "render": asdict(render_timing) if render_timing else None,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


# ---------------------------------------------------------------- main


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="timed imports per variant (default 20)")
    parser.add_argument("--render-runs", type=int, default=5, help="timed renders per template (default 5; 0 skips)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions under valgrind (slow)")
    parser.add_argument("--importtime", action="store_true", help="show the import breakdown even within budget")
    parser.add_argument("--python", help="interpreter to build and run with (default: a python3.13)")
    parser.add_argument("--copier", help="copier executable (default: on PATH, else /opt/dev/bin/copier)")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--seed", type=int, default=20260101, help="seed of the interleaving order")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    parser.add_argument("--sources", nargs="+", help="event_source answers to measure (default: every choice)")
    parser.add_argument("--databases", nargs="+", help="database answers to measure (default: every choice)")
    return parser.parse_args(argv)


def chosen(offered: Sequence[str], asked: Sequence[str] | None, question: str) -> list[str]:
    """The answers to measure: those asked for (each one copier.yml offers), else every one offered."""
    if asked is None:
        return list(offered)
    if unknown := [value for value in asked if value not in offered]:
        raise SystemExit(f"copier.yml offers no {question}={', '.join(unknown)} (it offers {', '.join(offered)})")
    return list(asked)


def render_and_build(
    copier: Path, python: Path, work: Path, sources: Sequence[str], databases: Sequence[str]
) -> list[Combination]:
    combinations: list[Combination] = []
    for event_source in sources:
        for database in databases:
            if database == "postgres" and not os.environ.get("DATABASE_URL"):
                log(f"skipped {event_source} x postgres: its init connects; set DATABASE_URL (tests/run.sh starts one)")
                continue
            combination = Combination(event_source, database, work / "rendered" / f"{event_source}-{database}")
            log(f"render + build {combination.name}")
            render(copier, REPO_ROOT, combination.project_dir, {"event_source": event_source, "database": database})
            build_package(python, combination, work / "build")
            combinations.append(combination)
    return combinations


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    copier = find_copier(arguments.copier)
    python = find_python(arguments.python)
    version = python_version(python)
    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    log(f"python {python} ({version}), copier {copier}, work dir {work}")

    def phase(message: str) -> None:
        log(f"[{time.perf_counter() - started:5.0f} s] {message}")

    try:
        child_python = create_bare_venv(python, work / "venv")
        offered = offered_choices(copier)
        sources = chosen(offered["event_source"], arguments.sources, "event_source")
        databases = chosen(offered["database"], arguments.databases, "database")
        combinations = render_and_build(copier, python, work, sources, databases)
        for combination in combinations:
            if combination.runtime != f"python{version.rsplit('.', 1)[0]}":
                log(f"warning: {combination.name} targets {combination.runtime}, measured with {version}")
        floors = build_floor_modules(python, combinations, work / "floors")
        variants = make_variants(combinations, floors, work / "floors")
        frozen_trees = [c.package_dir for c in combinations] + [work / "floors"]
        snapshots = {tree: tree_snapshot(tree) for tree in frozen_trees}

        phase("warm-up: every variant once, checking that every module loads from a .pyc")
        for variant in variants:
            check_bytecode_is_used(child_python, variant)
        phase(f"init: {arguments.runs} interleaved rounds of {len(variants)} variants")
        measure_init(child_python, variants, arguments.runs, arguments.seed)
        if arguments.callgrind:
            phase("callgrind: one run per variant (slow)")
            measure_instructions(child_python, variants)
        for tree, snapshot in snapshots.items():
            if tree_snapshot(tree) != snapshot:
                raise RuntimeError(f"{tree} changed during the runs: something wrote bytecode")

        render_timing = None
        if arguments.render_runs > 0:
            phase(f"render time: {arguments.render_runs} interleaved runs per template")
            render_timing = measure_render_time(copier, arguments.render_runs, work / "render-timing", arguments.seed)

        machine = machine_info(python, copier)
        summaries = summarize(combinations, variants)
        print_report(combinations, variants, summaries, render_timing, machine, arguments.runs)
        phase("SnapStart restore path: the after-restore hooks in the built package")
        measure_restore_path(copier, python, child_python, work, arguments.runs, arguments.callgrind)
        by_name = {v.name: v for v in variants}
        for summary in summaries:
            if arguments.importtime or summary.misses():
                phase(f"import breakdown of {summary.combination}")
                print_import_breakdown(child_python, by_name[summary.combination], by_name[summary.floor])
        if arguments.json:
            write_json(arguments.json, combinations, variants, summaries, render_timing, machine)
        print(f"\nBenchmark wall time: {time.perf_counter() - started:.0f} s")
        misses = [miss for summary in summaries for miss in summary.misses()]
        if misses:
            print("\nBUDGET MISSED: " + "; ".join(misses))
            return 1
        print("\nAll budgets met.")
        return 0
    finally:
        if arguments.keep:
            log(f"kept {work}")
        else:
            remove_tree(work)


if __name__ == "__main__":
    sys.exit(main())

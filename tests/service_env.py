"""The environment a rendered service's own tools run in (ruff, mypy, pytest).

Every combination of the matrix declares its dependencies in its
pyproject.toml. Building a venv per combination would install the same
packages six times, so venvs are keyed by the Python version and a hash of the
dependency list: combinations that declare the same list share one, built once
under a file lock (xdist workers are separate processes) and kept in .venvs/
for the next run.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from judges import REPO_ROOT, clean_env
from once import locked, timed

VENVS_DIR = REPO_ROOT / ".venvs"
# A run may keep its tools' caches elsewhere (TEMPLATE_TOOL_CACHES): an empty directory
# measures what a fresh clone costs without emptying the caches of the checkout.
TOOL_CACHES = Path(os.environ.get("TEMPLATE_TOOL_CACHES", VENVS_DIR / "tool-caches"))


def find_python(version: str) -> Path:
    """The interpreter for `version` ("3.13"): on PATH, else in pyenv's versions."""
    candidates: list[str] = []
    if on_path := shutil.which(f"python{version}"):
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    # pyenv's shims answer only for the versions selected globally: look behind them.
    candidates += sorted(
        glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parents[1].name)],
        reverse=True,
    )
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return Path(candidate)
    raise RuntimeError(f"no Python {version} found on PATH or under {pyenv_root}/versions")


def _group(groups: dict[str, list[Any]], name: str) -> list[str]:
    """A PEP 735 dependency group with its `include-group` entries expanded."""
    requirements: list[str] = []
    for entry in groups[name]:
        if isinstance(entry, dict):
            requirements += _group(groups, entry["include-group"])
        else:
            requirements.append(entry)
    return requirements


def service_requirements(pyproject_path: Path) -> list[str]:
    """Runtime dependencies plus the dev ones, wherever the pyproject declares them."""
    pyproject = tomllib.loads(pyproject_path.read_text())
    project = pyproject.get("project", {})
    groups = pyproject.get("dependency-groups", {})
    if "dev" in groups:
        dev = _group(groups, "dev")
    elif "dev" in project.get("optional-dependencies", {}):
        dev = project["optional-dependencies"]["dev"]
    else:
        dev = pyproject.get("tool", {}).get("uv", {}).get("dev-dependencies", [])
    if not dev:
        raise RuntimeError(f"{pyproject_path} declares no dev dependencies ([dependency-groups] dev)")
    return sorted(set(project.get("dependencies", [])) | set(dev))


def uv_executable() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise RuntimeError("uv not found: run `bash tests/run.sh`, which installs it")
    return uv


def service_venv(project: Path, python_version: str) -> Path:
    """A venv with the service's runtime and dev dependencies for `python_version`."""
    requirements = service_requirements(project / "pyproject.toml")
    key = hashlib.sha256("\n".join([python_version, "compiled", *requirements]).encode()).hexdigest()[:12]
    venv = VENVS_DIR / f"service-py{python_version}-{key}"
    with locked(VENVS_DIR / f"{venv.name}.lock"):
        stamp = venv / ".stamp"
        if stamp.is_file() and stamp.read_text() == key:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        with timed(f"venv-{venv.name}"):
            _install(venv, python_version, requirements)
        (venv / "requirements.txt").write_text("\n".join(requirements) + "\n")
        stamp.write_text(key)
    return venv


# Venvs whose compiled files a new venv may share: a few are enough, all venvs install the same
# big packages (botocore, boto3, moto, Powertools, mypy's pure-Python part).
BYTECODE_DONORS = 3


def _install(venv: Path, python_version: str, requirements: list[str]) -> None:
    env = clean_env({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    python = str(venv / "bin" / "python")
    for command in (
        [uv_executable(), "venv", "--quiet", "--python", str(find_python(python_version)), str(venv)],
        [uv_executable(), "pip", "install", "--quiet", "--python", python, *requirements],
    ):
        _run(command, env)
    # Compiled now: PYTHONDONTWRITEBYTECODE=1 (set on these machines and by clean_env) would
    # otherwise make every run compile botocore and friends again. What an earlier venv already
    # compiled from the very same file is linked, and compileall compiles only the rest.
    site = _site_packages(venv, python_version)
    _share_bytecode(site, python_version)
    _run([python, "-m", "compileall", "-q", "-j", "0", str(site)], env)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def _site_packages(venv: Path, python_version: str) -> Path:
    return venv / "lib" / f"python{python_version}" / "site-packages"


def _share_bytecode(site: Path, python_version: str) -> None:
    """Hardlink other venvs' compiled modules whose source here is the same file (inode).

    uv links every installed file from its cache, so a package of the same version is the
    same inode in every venv, with the same size and mtime: a timestamp-based .pyc compiled
    from it in one venv is valid in another, and compileall (without -f) checks each one's
    header against its source and skips it. A venv then compiles only what it alone has.
    """
    donors = [
        _site_packages(other, python_version)
        for other in sorted(VENVS_DIR.glob(f"service-py{python_version}-*"))
        if (other / ".stamp").is_file() and _site_packages(other, python_version) != site
    ][:BYTECODE_DONORS]
    for donor in donors:
        for compiled in donor.rglob("__pycache__/*.pyc"):
            relative = compiled.relative_to(donor)
            target = site / relative
            source = relative.parent.parent / (compiled.name.split(".", 1)[0] + ".py")
            try:
                if target.exists() or (site / source).stat().st_ino != (donor / source).stat().st_ino:
                    continue
                target.parent.mkdir(exist_ok=True)
                os.link(compiled, target)
            except OSError:  # no such source here, or another filesystem: compileall compiles it
                continue


def service_tool_env(venv: Path, cache_key: str) -> dict[str, str]:
    """Environment for the service's tools: its venv first, their caches out of the project.

    The caches live in .venvs/ across runs, one set per combination, so a
    rerun re-checks only what changed: mypy's cache of the stubs cuts its run
    from about 30 s to 2 s. A fresh clone, as CI runs, starts cold.

    PYTHONDONTWRITEBYTECODE=1 stays (clean_env): every module but the
    service's own is read from bytecode already (the venv is compiled at
    install, the standard library with the interpreter), and the service's 47
    modules compile in 0.06 s. A PYTHONPYCACHEPREFIX would make Python ignore
    those compiled files and compile 830 modules again per run (+4.5 s CPU per
    venv, for at most 0.5 s saved per combination), and __pycache__ in the
    project would break the update tests' tree comparisons.

    DATABASE_URL, the PostgreSQL tests/run.sh starts for the suite, is the one
    database setting that passes: a postgres service's tests create their
    databases on it (tests/database_server.py in the service).
    """
    database = {"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {}
    return clean_env(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "RUFF_CACHE_DIR": str(tool_cache(cache_key, "ruff")),
            "MYPY_CACHE_DIR": str(tool_cache(cache_key, "mypy")),
            **database,
        }
    )


def tool_cache(cache_key: str, tool: str) -> Path:
    """Where `tool` (ruff, mypy) keeps its cache for the combination `cache_key`."""
    return TOOL_CACHES / cache_key / tool

"""The PostgreSQL tests/run.sh starts for the suite, as the rendered services' tests find it.

Every postgres combination's own tests create their databases on this server
through DATABASE_URL, so what they prove holds only if it is what run.sh says:
TLS required, a password login that may create databases, none of the
machine's own defaults leaking in.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import judges
from service_env import service_tool_env


def psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if not found:
        pytest.fail("no psql: tests/run.sh installs Debian's postgresql, which brings it")
    return found


@pytest.fixture(scope="module")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    assert url, "DATABASE_URL is not set: run the suite through `bash tests/run.sh`, which starts its PostgreSQL"
    return url


def query(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return judges.run([psql(), "--no-psqlrc", "--tuples-only", "--no-align", "--dbname", url, "-c", sql], Path("/"))


def test_the_suites_server_is_its_own_and_takes_only_tls(database_url: str) -> None:
    parts = urlsplit(database_url)
    assert parts.scheme == "postgresql" and parts.hostname == "127.0.0.1"
    assert parts.port != 5432, "the suite must not use the machine's own cluster"
    assert "sslmode=require" in parts.query
    done = query(database_url, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    judges.assert_passes(done, "psql over TLS")
    assert done.stdout.strip() == "t"
    refused = query(urlunsplit(parts._replace(query="sslmode=disable")), "SELECT 1")
    assert refused.returncode != 0 and "no encryption" in refused.stderr, refused.stderr


def test_the_suites_login_needs_its_password_and_may_create_databases_and_roles(database_url: str) -> None:
    parts = urlsplit(database_url)
    wrong = parts._replace(netloc=f"{parts.username}:wrong@{parts.hostname}:{parts.port}")
    refused = query(urlunsplit(wrong), "SELECT 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
    done = query(database_url, "SELECT rolcreatedb, rolcreaterole, rolsuper FROM pg_roles WHERE rolname = current_user")
    judges.assert_passes(done, "psql")
    # CREATEDB and CREATEROLE but no superuser, like an RDS master user: what only a superuser may
    # do, the tests may not.
    assert done.stdout.strip() == "t|t|f"


def test_service_tools_get_the_suites_database_and_none_of_the_machines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://suite:secret@127.0.0.1:6543/postgres?sslmode=require")
    for leaked in ("PGHOST", "PGPASSWORD", "PGSSLMODE", "DATABASE_HOST", "DATABASE_PASSWORD"):
        monkeypatch.setenv(leaked, "from-the-outer-shell")
    env = service_tool_env(tmp_path / "venv", "a-combination")
    assert env["DATABASE_URL"] == "postgresql://suite:secret@127.0.0.1:6543/postgres?sslmode=require"
    assert not [name for name in env if name.startswith(("PG", "DATABASE_")) and name != "DATABASE_URL"]


# start_services from tests/run.sh, then the way a run ends: a failure, Ctrl-C, a kill.
ENDINGS = {"a failing suite": "exit 1", "Ctrl-C": "kill -INT $$", "a kill": "kill -TERM $$"}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=list(ENDINGS))
def test_the_suites_server_is_stopped_and_removed_however_the_suite_ends(ending: str) -> None:
    script = f'source tests/run.sh && start_services && echo "$PG_DIR $DATABASE_URL" && {ending}'
    done = subprocess.run(
        ["bash", "-c", script], cwd=judges.REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0, done.stderr
    directory, url = done.stdout.split()
    assert directory.startswith(tempfile.gettempdir()), directory
    assert not Path(directory).exists(), f"{directory} outlived the suite:\n{done.stderr}"
    refused = query(url, "SELECT 1")
    assert refused.returncode != 0 and "Connection refused" in refused.stderr, refused.stderr

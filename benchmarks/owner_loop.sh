#!/usr/bin/env bash
# The owner's loop, as a new owner meets it: `make test` and `make invoke` of freshly rendered
# services, with bytecode caching on (Python's default; these machines set
# PYTHONDONTWRITEBYTECODE=1, which makes both several times slower), after one warm-up run.
#
#   bash benchmarks/owner_loop.sh [runs]          (default 3 runs per command)
#
# Renders each sqs/api x none/dynamodb combination from the working tree (copier --vcs-ref HEAD)
# into a temporary directory, runs `make install`, one warm-up `make test`, then times each
# command `runs` times with /usr/bin/time: wall, user and system seconds, one line per run.
# Needs copier, uv and make on PATH (tests/run.sh installs copier and uv in .venvs/harness).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
unset PYTHONDONTWRITEBYTECODE

for combination in sqs-none sqs-dynamodb api-none api-dynamodb; do
  service="${WORK}/${combination}"
  copier copy --quiet --trust --defaults --vcs-ref HEAD \
    -d event_source="${combination%-*}" -d database="${combination#*-}" "${ROOT}" "${service}" >/dev/null
  make -C "${service}" install >/dev/null 2>&1
  make -C "${service}" test >/dev/null 2>&1 || { echo "${combination}: make test fails" >&2; exit 1; }
  for target in test invoke; do
    for _ in $(seq "${RUNS}"); do
      /usr/bin/time -f "${combination} make ${target}: %e s wall, %U s user, %S s sys" \
        make -C "${service}" --no-print-directory "${target}" >/dev/null 2>"${WORK}/stderr" \
        || { cat "${WORK}/stderr" >&2; exit 1; }
      tail -n 1 "${WORK}/stderr"
    done
  done
done

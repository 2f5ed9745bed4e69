#!/usr/bin/env bash
# Run the test suite (set-up included):
#
#   bash scripts/test.sh [pytest arguments...]
#
# e.g. `bash scripts/test.sh tests/gui -q`. Runs from the repository root, so test
# paths are relative to it. GUI tests get a private Xvfb X server from pytest-xvfb.
# Fails (non-zero) also when pytest collects no tests (pytest exit code 5).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # set-up; defines ROOT, PYTHON, UV

cd "$ROOT"
rc=0
"$UV" run --frozen --extra testing pytest "$@" || rc=$?
case "$rc" in
0) ;;
5) echo "test.sh: error: pytest collected no tests (exit code 5): check the test paths / -k / -m selection: $*" >&2 ;;
*) echo "test.sh: pytest failed (exit code $rc)" >&2 ;;
esac
exit "$rc"

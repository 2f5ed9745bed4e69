#!/usr/bin/env bash
# Build the documentation site (user guide + API reference from the docstrings) into site/,
# with warnings as errors:
#
#   bash scripts/docs.sh [mkdocs build arguments...]
#
# Set-up included.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # set-up; defines ROOT, PYTHON, UV

cd "$ROOT"
exec "$UV" run --frozen --extra testing mkdocs build --strict "$@"

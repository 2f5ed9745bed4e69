#!/usr/bin/env bash
# Regenerate the documentation screenshots (docs/images/*.png) from real napari windows:
#
#   bash scripts/screenshots.sh [OUT_DIR]
#
# Set-up included; headless machines get a virtual X server.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # set-up; defines ROOT, PYTHON, UV

out="${1:-$ROOT/docs/images}"
exec "$UV" run --project "$ROOT" --frozen --extra testing python "$ROOT/tools/screenshots.py" "$out"

#!/usr/bin/env bash
# Run the napari-scanimage demo (set-up included):
#
#   bash scripts/demo.sh [demo arguments...]
#   bash scripts/demo.sh --screenshot out/demo.png     # no display needed
#
# Arguments go to `napari-scanimage demo`; relative paths are relative to the current
# directory. With --screenshot and no DISPLAY the demo runs under xvfb-run (a virtual X
# server): the napari window needs a display to be drawn on.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # set-up; defines ROOT, PYTHON, UV

screenshot=0
for arg in "$@"; do
    case "$arg" in
    --) break ;;
    --screenshot | --screenshot=*) screenshot=1 ;;
    esac
done

cmd=("$UV" run --project "$ROOT" --frozen --extra testing napari-scanimage demo "$@")
if [ "$screenshot" -eq 1 ] && [ -z "${DISPLAY:-}" ]; then
    command -v xvfb-run >/dev/null 2>&1 ||
        { echo "demo.sh: error: xvfb-run not found (Debian package xvfb): run scripts/setup.sh" >&2; exit 1; }
    cmd=(xvfb-run -a -s "-screen 0 1600x1000x24" "${cmd[@]}")
fi
exec "${cmd[@]}"

# Sourced by the scripts: set-up (idempotent, quiet when done) and $UV, $ROOT, $PYTHON.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
export UV_PYTHON_DOWNLOADS=never

bash "$ROOT/scripts/setup.sh"

# uv from PATH, or the one setup.sh installed with pip (maybe not on PATH).
if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
    UV=uv
else
    UV="$("$PYTHON" -c 'import uv; print(uv.find_uv_bin())')"
fi

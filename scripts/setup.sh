#!/usr/bin/env bash
# Idempotent set-up of a development / CI machine for napari-scanimage.
#
#   bash scripts/setup.sh
#
# Needs only a Python >= 3.11 on PATH (as `python3`, or set PYTHON=...). It:
#   1. installs uv with pip if uv is missing,
#   2. installs the Debian packages needed to run Qt6/napari on an Xvfb X server
#      (only those not installed yet; `apt-get update` runs once, and only then),
#   3. creates/updates .venv from the committed lockfile:
#      uv sync --frozen --extra testing
# Silent when everything is already in place; prints what it does otherwise and
# a clear message on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
export UV_PYTHON_DOWNLOADS=never

# Debian packages (bookworm) for running PyQt6 + napari (vispy/OpenGL) on Xvfb with
# Mesa's llvmpipe software renderer: the minimal list (tested on a debootstrap'ed
# minbase bookworm with only python3); apt pulls in the rest (--no-install-recommends).
#   xvfb                  Xvfb (pytest-xvfb); pulls libgl1 -> libglx-mesa0, xkb-data
#   xauth                 for xvfb-run (scripts/demo.sh)
#   libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-cursor0 (-> libxcb-image0,
#   libxcb-render-util0) libxkbcommon-x11-0 (-> libxcb-xkb1, libxkbcommon0)
#                         libraries linked by Qt's xcb platform plugin (libqxcb.so)
#   libgl1-mesa-dri       Mesa's llvmpipe/swrast DRI driver (OpenGL for Xvfb and vispy)
#   libegl1               libQt6Gui links libEGL (-> libx11-xcb1, libxcb-randr0 ...)
#   libfontconfig1        libQt6Gui; pulls fontconfig-config -> fonts-dejavu-core
#   libdbus-1-3           libQt6DBus, linked by the xcb plugin
#   libglib2.0-0          libQt6Core
DEBIAN_PACKAGES=(
    xvfb
    xauth
    libxcb-icccm4
    libxcb-keysyms1
    libxcb-shape0
    libxcb-cursor0
    libxkbcommon-x11-0
    libgl1-mesa-dri
    libegl1
    libfontconfig1
    libdbus-1-3
    libglib2.0-0
)

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() {
    printf 'setup.sh: error: %s\n' "$*" >&2
    exit 1
}

# Run "$@" with its output captured; show the output only if it fails.
quietly() {
    local log rc=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
    fi
    rm -f "$log"
    return "$rc"
}

have_uv() { command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; }

# --- Python -----------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 ||
    die "'$PYTHON' not found: install Python >= 3.11 (or set PYTHON=/path/to/python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$PYTHON" -V 2>&1) is too old: Python >= 3.11 is required (set PYTHON=/path/to/python3.11+)"

need_pip=0
if ! have_uv && ! "$PYTHON" -c 'import uv' >/dev/null 2>&1 &&
    ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    need_pip=1 # Debian's python3 comes without pip: get it from apt below
fi

# --- Debian packages --------------------------------------------------------
is_installed() {
    # "install ok installed", or "hold ok installed" for a held package
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == *" ok installed" ]]
}

missing=()
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    wanted=("${DEBIAN_PACKAGES[@]}")
    [ "$need_pip" -eq 1 ] && wanted+=(python3-pip)
    for pkg in "${wanted[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
elif ! command -v Xvfb >/dev/null 2>&1; then
    die "not a Debian/apt system and Xvfb not found: install the equivalents of these \
Debian packages by hand: ${DEBIAN_PACKAGES[*]}"
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
    else
        die "not root and no sudo: as root run: apt-get update && apt-get install -y ${missing[*]}"
    fi
    say "installing Debian packages: ${missing[*]}"
    apt_get=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
        -o Dpkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    quietly "${apt_get[@]}" update ||
        die "apt-get update failed (output above)"
    quietly "${apt_get[@]}" install --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]} (output above)"
fi

# --- uv ---------------------------------------------------------------------
if have_uv; then
    UV=(uv)
else
    if ! "$PYTHON" -c 'import uv' >/dev/null 2>&1; then
        say "installing uv with pip"
        # Plain install first (venv / pyenv / conda Python); then --user (no write
        # access); then also past PEP 668 "externally managed" (Debian's python3):
        # uv is a single static binary without Python dependencies.
        # Only the last attempt's output is shown if all fail.
        log="$(mktemp)"
        ok=0
        for opts in "" "--user" "--user --break-system-packages"; do
            # shellcheck disable=SC2086 # $opts: intentionally split
            if "$PYTHON" -m pip install --quiet --disable-pip-version-check $opts uv \
                >"$log" 2>&1; then
                ok=1
                break
            fi
        done
        [ "$ok" -eq 1 ] || cat "$log" >&2
        rm -f "$log"
        [ "$ok" -eq 1 ] || die "could not install uv with '$PYTHON -m pip install uv' (output above)"
    fi
    uv_bin="$("$PYTHON" -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null)" ||
        die "uv was installed with pip but its binary was not found"
    UV=("$uv_bin")
fi

# --- project environment ----------------------------------------------------
cd "$ROOT"
quietly "${UV[@]}" sync --frozen --extra testing ||
    die "'uv sync --frozen --extra testing' failed (output above). uv needs a Python >= 3.11 \
on PATH (downloads are disabled: UV_PYTHON_DOWNLOADS=never) and uv.lock must match pyproject.toml."

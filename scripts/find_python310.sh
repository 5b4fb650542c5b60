#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter (tfx 1.16 needs 3.10), or fails.
# Candidates: python3.10 on PATH (pyenv shims included), pyenv's install dirs, a Python 3.10
# that uv manages; if there is none, `uv python install 3.10` (uv is bootstrapped with any
# python3 into build/uv-bootstrap when it is not on PATH), which needs network access.
set -u
UV_VERSION="${UV_VERSION:-0.13.9}"
works() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }

candidates=()
if command -v python3.10 >/dev/null 2>&1; then candidates+=("$(command -v python3.10)"); fi
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python /usr/bin/python3.10 /usr/local/bin/python3.10; do
  [ -x "$p" ] && candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if works "$p"; then echo "$p"; exit 0; fi
done

uv=""
if command -v uv >/dev/null 2>&1; then
  uv="$(command -v uv)"
elif command -v python3 >/dev/null 2>&1; then
  echo "no Python 3.10 found; bootstrapping uv ${UV_VERSION} to install one" >&2
  if python3 -m pip install --quiet --disable-pip-version-check --target build/uv-bootstrap \
      "uv==${UV_VERSION}" >&2; then
    uv="build/uv-bootstrap/bin/uv"
  fi
fi
if [ -n "$uv" ]; then
  found="$("$uv" python find 3.10 2>/dev/null)"
  if [ -z "$found" ] && "$uv" python install 3.10 >&2; then
    found="$("$uv" python find 3.10 2>/dev/null)"
  fi
  if [ -n "$found" ] && works "$found"; then echo "$found"; exit 0; fi
fi

cat >&2 <<'MSG'
error: no working Python 3.10 found, and `uv python install 3.10` was not possible (no uv, or
no network). tfx 1.16 (the newest TFX whose dependencies install here) needs Python 3.10.
Install it by one of:
  - uv:      pip install uv && uv python install 3.10
  - pyenv:   pyenv install 3.10
  - Debian/Ubuntu (deadsnakes or older releases): apt install python3.10 python3.10-venv
then run the make target again, or pass the interpreter: make setup PYTHON310=/path/to/python3.10
MSG
exit 1

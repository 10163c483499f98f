#!/usr/bin/env bash
# Runs the notebooks against the package built from this checkout (scripts/python-env.sh):
#   scripts/notebooks.sh --check [NAME.ipynb…]   what the tests run (tests/notebooks.rs)
#   scripts/notebooks.sh --write [NAME.ipynb…]   regenerate the committed outputs
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/python-env.sh)
PYTHONPATH="$PWD/target/python" exec "$python" scripts/notebooks.py "$@"

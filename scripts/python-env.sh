#!/usr/bin/env bash
# The Python side of the tests: a virtual environment with numpy and Jupyter's runner
# (python/requirements-notebooks.txt, from PyPI) in target/python-env, and the package built from
# this checkout into target/python (the extension module from `cargo build --release -p
# circuitscope-python`, beside python/circuitscope/). Prints the environment's python.
# Users install the package with `pip install ./python` instead (README). Exits 3 when the
# environment cannot be made (no python3 venv, or PyPI out of reach).
set -euo pipefail
cd "$(dirname "$0")/.."
env=target/python-env
stamp="$env/.requirements"
if [ ! -x "$env/bin/python" ] || ! cmp -s python/requirements-notebooks.txt "$stamp"; then
  rm -rf "$env"
  if ! { python3 -m venv "$env" >&2 &&
    "$env/bin/pip" install --quiet --disable-pip-version-check -r python/requirements-notebooks.txt >&2 &&
    "$env/bin/python" -m ipykernel install --prefix "$env" --name python3 >&2; }; then
    rm -rf "$env"
    echo "scripts/python-env.sh: cannot make $env (python3 -m venv, then pip from PyPI)" >&2
    exit 3
  fi
  cp python/requirements-notebooks.txt "$stamp"
fi
cargo build --release --quiet -p circuitscope-python >&2
pkg=target/python/circuitscope
rm -rf "$pkg"
mkdir -p "$pkg"
cp python/circuitscope/*.py python/circuitscope/*.pyi python/circuitscope/py.typed "$pkg/"
cp target/release/lib_native.so "$pkg/_native.abi3.so"
echo "$PWD/$env/bin/python"

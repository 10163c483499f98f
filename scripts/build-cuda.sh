#!/usr/bin/env bash
# Builds circuitscope with candle's CUDA backend (`--device cuda`) into target/cuda/release,
# with no GPU and no CUDA toolkit needed on this machine (scripts/cuda-toolchain.sh brings nvcc
# and the CUDA libraries from PyPI). A first build compiles candle's CUDA kernels: long on a
# small machine.
#
#   scripts/build-cuda.sh            # target/cuda/release/circuitscope
#   scripts/build-cuda.sh --dist     # also the GPU test and bench binaries, compressed with the
#                                    # binary into target/cuda/dist, to carry to a GPU machine
#                                    # and run there with scripts/device-check.sh
#
# CUDA_COMPUTE_CAP: 90 for H100/H200 (the default), 80 for A100, 89 for L4/L40, 86 for RTX 30xx.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cuda-toolchain.sh
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
cargo build --release --features cuda
echo "built $CARGO_TARGET_DIR/release/circuitscope (CUDA, compute capability $CUDA_COMPUTE_CAP)" >&2
[ "${1:-}" = --dist ] || exit 0

# The executables cargo reports for the GPU test and bench targets.
exe_of() {
  "$@" --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "device":
        print(m["executable"])'
}
cargo test --release --features cuda --test device --no-run
cargo bench --features cuda --bench device --no-run
tests=$(exe_of cargo test --release --features cuda --test device --no-run)
bench=$(exe_of cargo bench --features cuda --bench device --no-run)
dist="$CARGO_TARGET_DIR/dist"
rm -rf "$dist" && mkdir -p "$dist"
pwd >"$dist/built_in"
for pair in "circuitscope:$CARGO_TARGET_DIR/release/circuitscope" "device-tests:$tests" "device-bench:$bench"; do
  name="${pair%%:*}" src="${pair#*:}"
  [ -x "$src" ] || { echo "missing $name ($src)" >&2; exit 1; }
  strip -o "$dist/$name" "$src"
  xz -T0 -6 "$dist/$name"
done
ls -la "$dist" >&2

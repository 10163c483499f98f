#!/usr/bin/env bash
# Sets up what a CUDA build of circuitscope needs, on a machine without the CUDA toolkit and
# without a GPU: nvcc, the CUDA headers and the libraries the binary links against, all from
# NVIDIA's wheels on PyPI (CUDA 13.0, the version of the driver we test on: PTX from a newer
# nvcc may not load on an older driver). Also a link-time stub of the driver library
# (libcuda.so.1), made from cuda.h; at run time the real driver's libcuda.so.1 is used.
#
#   source scripts/cuda-toolchain.sh      # sets CUDA_HOME, PATH, CUDA_COMPUTE_CAP
#
# Cache: $CIRCUITSCOPE_CACHE/cuda13 (default ~/.cache/circuitscope/cuda13), about 1.1 GB.
# CUDA_COMPUTE_CAP defaults to 90 (Hopper: H100/H200); set it for another GPU (80: A100, 89: L4).
_cs_cuda() {
  set -euo pipefail
  local root="${CIRCUITSCOPE_CACHE:-$HOME/.cache/circuitscope}/cuda13"
  local top="$root/nvidia/cu13"
  if [ ! -x "$top/bin/nvcc" ] || [ ! -e "$top/lib/stubs/libcuda.so" ]; then
    echo "installing the CUDA 13.0 build tools from PyPI into $root ..." >&2
    local tmp
    tmp=$(mktemp -d "${root%/*}/.cuda13.XXXXXX" 2>/dev/null || { mkdir -p "${root%/*}"; mktemp -d "${root%/*}/.cuda13.XXXXXX"; })
    python3 -m pip install --quiet --no-deps --only-binary=:all: --target "$tmp" \
      nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cccl==13.0.85 \
      nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14 >&2
    local t="$tmp/nvidia/cu13"
    # The linker wants unversioned names; the binary records the versioned sonames.
    for so in "$t"/lib/lib*.so.[0-9]*; do
      local base="${so##*/}"
      base="${base%%.so.*}.so"
      [ -e "$t/lib/$base" ] || ln -s "${so##*/}" "$t/lib/$base"
    done
    # A stub driver library: every cu* entry point cuda.h names, doing nothing, soname libcuda.so.1.
    mkdir -p "$t/lib/stubs"
    grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$t/include/cuda.h" | sort -u |
      sed 's/.*/void &(void) {}/' >"$t/lib/stubs/cuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$t/lib/stubs/libcuda.so" "$t/lib/stubs/cuda_stub.c"
    rm -rf "$root"
    mv "$tmp" "$root"
  fi
  export CUDA_HOME="$top"
  export PATH="$top/bin:$PATH"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  export LIBRARY_PATH="$top/lib:$top/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
  nvcc --version | tail -n 2 >&2
}
( _cs_cuda ) && _cs_cuda
unset -f _cs_cuda
set +eu +o pipefail

#!/usr/bin/env bash
# The GPU checks and benchmark, run on a machine with an NVIDIA GPU, its driver and PyTorch (for
# the side-by-side run), from the repository root, with the CUDA build's binaries carried there
# from a machine that built them (scripts/build-cuda.sh --tests --benches; scripts/pack-cuda.sh
# gathers them into target/cuda/dist). Writes everything to $OUT (default ./device-out).
#
#   scripts/device-check.sh [tests|bench|all|cs-bench]     (default all)
# cs-bench: circuitscope's benchmark alone (PyTorch only makes the models).
#
# The binaries link against CUDA 13's libcublas, libcurand, libnvrtc and libcudart: found here in
# PyTorch's NVIDIA wheels or a CUDA toolkit, and the driver's libcuda.so.1.
set -uo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
out="${OUT:-$PWD/device-out}"
mkdir -p "$out"
dist=target/cuda/dist
log() { echo "== $* ==" | tee -a "$out/summary.txt"; }

# The test binaries find the repository's fixtures and the circuitscope binary under the path
# they were built in.
built_in=$(cat "$dist/built_in" 2>/dev/null || echo /work/main)
if [ ! -e "$built_in/Cargo.toml" ]; then
  mkdir -p "$(dirname "$built_in")" && ln -sfn "$PWD" "$built_in"
fi
mkdir -p target/cuda/release
for f in "$dist"/*.xz; do
  [ -e "$f" ] || continue
  b="${f##*/}"; b="${b%.xz}"
  python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$f" "target/cuda/release/$b"
  chmod +x "target/cuda/release/$b"
done

site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
libs=$(find "$site/nvidia" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib -maxdepth 3 \
  \( -name 'libcublas.so*' -o -name 'libcurand.so*' -o -name 'libnvrtc.so*' -o -name 'libcudart.so*' \) \
  -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/cuda/release/circuitscope
log "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/summary.txt"
ldd "$bin" | grep -E 'cublas|curand|nvrtc|cudart|libcuda' | tee -a "$out/summary.txt"
"$bin" info models/world-gpt2 --device cuda | grep -E '^(model|device|dtype)' | tee -a "$out/summary.txt"

if [ "$what" = tests ] || [ "$what" = all ]; then
  log "tests/device.rs on the GPU (CIRCUITSCOPE_REQUIRE_GPU=1)"
  CIRCUITSCOPE_REQUIRE_GPU=1 timeout 200 target/cuda/release/device-tests --test-threads 1 --nocapture \
    >"$out/tests.log" 2>&1
  echo "exit $?" >>"$out/tests.log"
  grep -E '^test |test result|GPU vs CPU|training step|bf16|faithfulness|panicked|SKIPPED|exit' "$out/tests.log" \
    | tee -a "$out/summary.txt"
fi

if [ "$what" = bench ] || [ "$what" = all ] || [ "$what" = cs-bench ]; then
  models="$PWD/device-models"
  if [ "$what" = cs-bench ]; then
    log "the random-weight models (tests/reference/torch_device_bench.py --make-only)"
    PYTHONUNBUFFERED=1 timeout 120 python3 tests/reference/torch_device_bench.py --out "$models" --make-only \
      2>&1 | grep -v -i 'warning\|shards' | tee -a "$out/summary.txt"
  else
    log "PyTorch on the same GPU (tests/reference/torch_device_bench.py)"
    PYTHONUNBUFFERED=1 timeout 170 python3 tests/reference/torch_device_bench.py --out "$models" \
      2>&1 | grep -v -i 'warning\|shards' | tee "$out/torch.log" | tee -a "$out/summary.txt"
    cp "$models/torch_bench.json" "$out/" 2>/dev/null
  fi

  log "circuitscope logits against PyTorch's on the random-weight models (GPU, f32)"
  for m in smollm2 llama1b; do
    [ -e "$models/$m/parity.safetensors" ] || continue
    "$bin" run "$models/$m" --token-ids 1,17,256,4091,33,7,1999,12,5,40 --top-k 5 --json --device cuda \
      >"$out/run_$m.json" 2>>"$out/summary.txt"
    python3 - "$models/$m/parity.safetensors" "$out/run_$m.json" "$m" <<'PY' | tee -a "$out/summary.txt"
import json, sys
from safetensors.torch import load_file
ref = load_file(sys.argv[1])["logits"][-1]
got = json.load(open(sys.argv[2]))["top_k"]
d = max(abs(float(ref[t["id"]]) - t["logit"]) for t in got)
top = int(ref.argmax())
print(f"{sys.argv[3]}: top-5 logits vs PyTorch max |diff| {d:.2e}; top-1 {got[0]['id']} (PyTorch {top})")
PY
  done

  log "circuitscope on the GPU (benches/device.rs)"
  CIRCUITSCOPE_BENCH_DEVICE=cuda CIRCUITSCOPE_BENCH_DTYPES=f32,bf16 \
    CIRCUITSCOPE_BENCH_MODELS="world-gpt2=$PWD/models/world-gpt2,smollm2=$models/smollm2,llama1b=$models/llama1b" \
    CIRCUITSCOPE_BENCH_CUD_MODELS=world-gpt2 \
    RUST_BACKTRACE=0 timeout 300 target/cuda/release/device-bench 2>&1 | tee "$out/bench.log" | tee -a "$out/summary.txt"

  log "circuitscope on this machine's CPU ($(nproc) cores), for the same per-sample EAP-IG"
  CIRCUITSCOPE_BENCH_DEVICE=cpu CIRCUITSCOPE_BENCH_SHAPES=none \
    CIRCUITSCOPE_BENCH_MODELS="world-gpt2=$PWD/models/world-gpt2" CIRCUITSCOPE_BENCH_CUD_MODELS=world-gpt2 \
    RUST_BACKTRACE=0 timeout 90 target/cuda/release/device-bench 2>&1 | tee "$out/bench_cpu.log" | tee -a "$out/summary.txt"
fi
log "done"

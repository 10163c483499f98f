//! What the benches share: the timing loop, this machine's matmul peak (every figure's
//! yardstick) and the FLOP count of a forward pass.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use circuitscope::model::ModelConfig;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// Each cell repeats until it has at least this much work and `MIN_RUNS` runs; we report the min.
const MIN_CELL_SECS: f64 = 1.0;
const MIN_RUNS: usize = 3;
const MAX_RUNS: usize = 2000;

/// Runs `f` once to warm up, then until `MIN_RUNS` runs and `MIN_CELL_SECS` of work; returns
/// (min seconds per run, number of timed runs).
pub fn time_min(mut f: impl FnMut() -> Result<()>) -> Result<(f64, usize)> {
    f()?;
    let (mut best, mut total, mut runs) = (f64::INFINITY, 0.0, 0);
    while runs < MIN_RUNS || (total < MIN_CELL_SECS && runs < MAX_RUNS) {
        let t = Instant::now();
        f()?;
        let dt = t.elapsed().as_secs_f64();
        best = best.min(dt);
        total += dt;
        runs += 1;
    }
    Ok((best, runs))
}

/// Best matmul GFLOP/s of candle on `dev` in `dtype` over a few square sizes (larger on a GPU),
/// the yardstick of every other figure. GPU work is synchronised before the clock stops.
pub fn matmul_peak(dev: &Device, dtype: DType) -> Result<f64> {
    let dt = format!("{dtype:?}").to_lowercase();
    let on = if dev.is_cpu() { "CPU".to_string() } else { format!("{:?}", dev.location()) };
    println!("== {dt} matmul speed (candle Tensor::matmul, {on}) ==");
    println!("{:>6} {:>10} {:>10} {:>6}", "n", "ms", "GFLOP/s", "runs");
    let sizes: &[usize] = if dev.is_cpu() { &[512, 1024, 2048] } else { &[2048, 4096, 8192] };
    let mut peak: f64 = 0.0;
    for &n in sizes {
        let a = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
        let b = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
        let (secs, runs) = time_min(|| {
            black_box(a.matmul(&b)?);
            dev.synchronize()?;
            Ok(())
        })?;
        let gflops = 2.0 * (n * n * n) as f64 / secs / 1e9;
        peak = peak.max(gflops);
        println!("{n:>6} {:>10.3} {gflops:>10.1} {runs:>6}", secs * 1e3);
    }
    println!("peak: {peak:.1} GFLOP/s\n");
    Ok(peak)
}

/// Matmul FLOPs of one forward pass over a (b, s) batch:
///   2·b·s·P_lin + n_layers · 2·2·b·H·s²·dh
/// where P_lin = n_layers·(d·H·dh·2 + d·KV·dh·2 + d·f·(3 if gated else 2)) + V·d counts the
/// weights of every linear layer (q, o; k, v; MLP) including the unembedding, and the second term
/// is attention's Q·Kᵀ and pattern·V over the full (unmasked) s×s scores, as candle computes them.
/// Embedding lookups, norms, softmax and biases are not counted.
pub fn forward_flops(cfg: &ModelConfig, b: usize, s: usize) -> f64 {
    let (d, h, kv, dh) = (cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
    let per_layer = d * h * dh * 2 + d * kv * dh * 2 + d * cfg.d_mlp * if cfg.gated_mlp { 3 } else { 2 };
    let linear_params = (cfg.n_layers * per_layer + cfg.vocab_size * d) as f64;
    let attn = (cfg.n_layers * 2 * 2 * b * h * s * s * dh) as f64;
    2.0 * (b * s) as f64 * linear_params + attn
}

/// Deterministic token ids in [0, vocab), shape (b, s), on the CPU.
#[allow(dead_code)] // the attribution bench reads its own data
pub fn token_ids(b: usize, s: usize, vocab: usize) -> Result<Tensor> {
    let ids: Vec<u32> = (0..b * s).map(|i| ((i * 7919 + 13) % vocab) as u32).collect();
    Ok(Tensor::from_vec(ids, (b, s), &Device::Cpu)?)
}

/// The SmolLM2-135M-Instruct GGUF that `scripts/fetch-smollm2.sh` fetches (pinned by sha256), or
/// None (with the script's error) when it cannot.
#[allow(dead_code)] // the device bench takes its models from the environment
pub fn smollm2_path(root: &Path) -> Option<PathBuf> {
    let out = Command::new("bash").arg("scripts/fetch-smollm2.sh").current_dir(root).output().ok()?;
    if !out.status.success() {
        eprintln!("scripts/fetch-smollm2.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last()?.trim());
    path.exists().then_some(path)
}

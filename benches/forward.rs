//! Forward-pass benchmark: `cargo bench --bench forward`.
//!
//! Prints (1) this machine's f32 matmul speed measured with candle itself, the yardstick for every
//! other figure; (2) per model, forward throughput without hooks, with a full activation cache, and
//! with the gradient taps edge attribution patching needs (forward + backward), plus the measured
//! cost of firing inactive hook points; (3) peak RSS of loading SmolLM2 in a child process relative
//! to its f32 weight bytes.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use circuitscope::hooks::{HookPoint, HookRun, HookSet, Site};
use circuitscope::model::{Decoder, LoadOptions, Model, ModelConfig};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{forward_flops, matmul_peak, smollm2_path, time_min, token_ids};
use std::time::{Duration, Instant};

/// (batch, sequence) shapes to benchmark a model at.
type Shapes = Vec<(usize, usize)>;

fn main() -> Result<()> {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!(
        "circuitscope forward-pass benchmark (CPU, f32, {} candle threads)",
        candle_core::utils::get_num_threads()
    );
    println!("timings are the minimum over repeated runs after one warm-up run\n");

    let peak = matmul_peak(&Device::Cpu, DType::F32)?;

    let mut models: Vec<(&str, PathBuf, Shapes)> = vec![
        ("llama fixture", root.join("tests/fixtures/parity/llama"), vec![(4, 64)]),
        ("gpt2 fixture", root.join("tests/fixtures/parity/gpt2"), vec![(4, 64)]),
    ];
    let stories = root.join("../shared/models/stories260k/stories260k-f32.gguf");
    if stories.exists() {
        models.push(("stories260k", stories, vec![(4, 64)]));
    } else {
        println!("!!! SKIPPING stories260k: {} is absent !!!\n", stories.display());
    }
    let smollm2 = smollm2_path(&root);
    match &smollm2 {
        Some(p) => models.push(("SmolLM2-135M", p.clone(), vec![(1, 16), (1, 128)])),
        None => println!("!!! SKIPPING SmolLM2-135M: scripts/fetch-smollm2.sh gave no GGUF path !!!\n"),
    }

    println!("== 2. forward passes ==");
    println!("GFLOP/s counts the nominal matmul FLOPs of the model (see `forward_flops`); F+B counts");
    println!("3 x the forward FLOPs (backward ~ 2 x forward). % peak is relative to the matmul peak.\n");
    for (name, path, shapes) in &models {
        bench_model(name, path, shapes, peak)?;
    }

    match &smollm2 {
        Some(p) => load_rss(p)?,
        None => println!("== 3. load RSS ==\n!!! SKIPPED: no SmolLM2 GGUF !!!\n"),
    }
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The hook points edge attribution patching differentiates at.
fn eap_taps(cfg: &ModelConfig) -> HookSet {
    let sites = [Site::ResidPre, Site::QInput, Site::KInput, Site::VInput, Site::MlpIn, Site::Result, Site::MlpOut];
    let points = (0..cfg.n_layers).flat_map(|l| sites.map(|s| HookPoint::Block(l, s)));
    HookSet::new().tap(std::iter::once(HookPoint::Embed).chain(points))
}

fn bench_model(name: &str, path: &Path, shapes: &[(usize, usize)], peak: f64) -> Result<()> {
    let t = Instant::now();
    let model = Model::load(path, LoadOptions::default()).with_context(|| format!("loading {}", path.display()))?;
    let dec = &model.decoder;
    let cfg = &dec.cfg;
    println!(
        "-- {name}: {} ({} layers, d={}, H={}/{} kv, dh={}, f={}, V={}, {:.2} M params; loaded in {:.2} s)",
        path.display(),
        cfg.n_layers,
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.d_head,
        cfg.d_mlp,
        cfg.vocab_size,
        cfg.n_params() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let fire_ns = inactive_fire_ns(dec)?;
    let n_points = dec.hook_points().len();
    println!(
        "{:<8} {:<13} {:>10} {:>11} {:>9} {:>7} {:>6}",
        "b x s", "mode", "ms/pass", "tokens/s", "GFLOP/s", "% peak", "runs"
    );
    let full = HookSet::new().capture_all();
    let taps = eap_taps(cfg);
    let mut notes = Vec::new();
    for &(b, s) in shapes {
        let ids = token_ids(b, s, cfg.vocab_size)?;
        let flops = forward_flops(cfg, b, s);
        let row = |mode: &str, secs: f64, runs: usize, flops: f64| {
            println!(
                "{:<8} {:<13} {:>10.3} {:>11.0} {:>9.2} {:>6.1}% {:>6}",
                format!("{b}x{s}"),
                mode,
                secs * 1e3,
                (b * s) as f64 / secs,
                flops / secs / 1e9,
                100.0 * flops / secs / 1e9 / peak,
                runs
            );
        };
        let empty = HookSet::new();
        let (t_none, r) = time_min(|| {
            black_box(dec.forward(&ids, &empty)?.logits);
            Ok(())
        })?;
        row("no hooks", t_none, r, flops);
        let (t_cache, r) = time_min(|| {
            black_box(dec.forward(&ids, &full)?.cache);
            Ok(())
        })?;
        row("full cache", t_cache, r, flops);
        let (t_taps, r) = time_min(|| {
            let out = dec.forward(&ids, &taps)?;
            // metric: the summed last-position logit of token 0
            let metric = out.logits.narrow(1, s - 1, 1)?.narrow(2, 0, 1)?.sum_all()?;
            black_box(out.taps.gradients(&metric)?);
            Ok(())
        })?;
        row("taps (F+B)", t_taps, r, 3.0 * flops);
        notes.push(format!(
            "{b}x{s}: full cache / no hooks = {:.2}x, taps(F+B) / no hooks = {:.2}x, \
             inactive fires {n_points} x {fire_ns:.1} ns = {:.2} us = {:.5}% of the no-hooks forward",
            t_cache / t_none,
            t_taps / t_none,
            n_points as f64 * fire_ns / 1e3,
            100.0 * n_points as f64 * fire_ns * 1e-9 / t_none
        ));
    }
    for n in notes {
        println!("  {n}");
    }
    println!();
    Ok(())
}

/// Nanoseconds per `HookRun::fire` on a point that is not active (best of several batches).
fn inactive_fire_ns(dec: &Decoder) -> Result<f64> {
    let empty = HookSet::new();
    let mut run = HookRun::new(&empty, dec.hook_points())?;
    let x = Tensor::zeros((1, 4, dec.cfg.d_model), DType::F32, &Device::Cpu)?;
    let point = HookPoint::Block(0, Site::ResidPre);
    const N: u32 = 2_000_000;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..N {
            black_box(run.fire(black_box(point), x.clone())?);
        }
        best = best.min(t.elapsed());
    }
    Ok(best.as_secs_f64() * 1e9 / N as f64)
}

/// Peak RSS of `circuitscope info` loading the model, in a child process, vs its f32 weight bytes.
fn load_rss(gguf: &Path) -> Result<()> {
    println!("== 3. peak RSS while loading SmolLM2 (child process `circuitscope info --json`) ==");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_circuitscope"));
    if !bin.exists() {
        println!("!!! SKIPPED: {} is missing; run `cargo build --release` !!!\n", bin.display());
        return Ok(());
    }
    let out = Command::new(&bin).arg("info").arg(gguf).arg("--json").output()?;
    if !out.status.success() {
        println!("!!! SKIPPED: `{} info` failed: {} !!!\n", bin.display(), String::from_utf8_lossy(&out.stderr));
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing `info --json` output")?;
    let (Some(rss), Some(n_params)) = (v["peak_rss_bytes"].as_u64(), v["n_params"].as_u64()) else {
        println!("!!! SKIPPED: `info --json` gave no peak_rss_bytes / n_params !!!\n");
        return Ok(());
    };
    let f32_bytes = n_params * 4;
    let file_bytes = std::fs::metadata(gguf)?.len();
    println!("{:<28} {:>12}", "binary", bin.display());
    println!("{:<28} {:>12.1} MiB", "GGUF file", file_bytes as f64 / 1048576.0);
    println!("{:<28} {:>12.1} MiB  ({n_params} params x 4)", "f32 weight bytes", f32_bytes as f64 / 1048576.0);
    println!("{:<28} {:>12.1} MiB", "peak RSS", rss as f64 / 1048576.0);
    println!("{:<28} {:>12.2}x", "peak RSS / f32 weights", rss as f64 / f32_bytes as f64);
    println!();
    Ok(())
}

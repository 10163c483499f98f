//! Forward-pass benchmark: `cargo bench --bench forward`.
//!
//! Prints (1) this machine's f32 matmul speed measured with candle itself, the yardstick for every
//! other figure; (2) per model, forward throughput without hooks, with a full activation cache, and
//! with the gradient taps edge attribution patching needs (forward + backward), plus the measured
//! cost of firing inactive hook points and each pass's peak heap growth; (3) peak RSS of loading SmolLM2 in a child process relative
//! to its f32 weight bytes.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use circuitscope::hooks::{HookPoint, HookRun, HookSet, Site};
use circuitscope::model::{Decoder, LoadOptions, Model, ModelConfig};
use circuitscope::train::{loss::masked_cross_entropy, FusedAdamW, Trainable};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{forward_flops, heap, matmul_peak, smollm2_path, time_min, token_ids};

const MIB: f64 = 1024.0 * 1024.0;
use std::time::{Duration, Instant};

/// (batch, sequence) shapes to benchmark a model at.
type Shapes = Vec<(usize, usize)>;

fn main() -> Result<()> {
    circuitscope::process::configure();
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
    println!("GFLOP/s counts the nominal matmul FLOPs of the model (see `forward_flops`); F+B and the");
    println!("training step count 3 x the forward FLOPs (backward ~ 2 x forward). % peak is relative to the");
    println!("matmul peak. `taps`: what attribution differentiates (q/k/v, readers, writers); `input taps`:");
    println!("every per-head q/k/v input tapped (the reference path); `composed`: candle's plain ops instead");
    println!("of the fused CPU ops (the implementation before them); train step: forward, cross-entropy,");
    println!("backward to every parameter, AdamW.\n");
    // `cargo bench --bench forward -- [MODEL…] [MODE…]`: only the models and modes whose names
    // contain one of the words (for a profiler's run); all of them without words.
    let words: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (model_words, mode_words): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|w| models.iter().any(|(n, _, _)| n.contains(w.as_str())));
    let mut cells = Vec::new();
    for (name, path, shapes) in &models {
        if model_words.is_empty() || model_words.iter().any(|w| name.contains(w.as_str())) {
            bench_model(name, path, shapes, peak, &mode_words, &mut cells)?;
        }
    }
    let json_path = root.join("target/bench/forward.json");
    std::fs::create_dir_all(json_path.parent().unwrap())?;
    let record = serde_json::json!({ "matmul_peak_gflops": peak, "threads": candle_core::utils::get_num_threads(), "cells": cells });
    std::fs::write(&json_path, serde_json::to_string_pretty(&record)?)?;
    println!("wrote {}", json_path.display());

    match &smollm2 {
        Some(p) => load_rss(p)?,
        None => println!("== 3. load RSS ==\n!!! SKIPPED: no SmolLM2 GGUF !!!\n"),
    }
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The hook points edge attribution patching differentiates at when every per-head q/k/v input
/// is tapped (the reference path, `QkvGradients::Taps`).
fn input_taps(cfg: &ModelConfig) -> HookSet {
    let sites = [Site::ResidPre, Site::QInput, Site::KInput, Site::VInput, Site::MlpIn, Site::Result, Site::MlpOut];
    let points = (0..cfg.n_layers).flat_map(|l| sites.map(|s| HookPoint::Block(l, s)));
    HookSet::new().tap(std::iter::once(HookPoint::Embed).chain(points))
}

/// The residual stream tapped: the input embedding and every block's output, what PyTorch's
/// `fb_acts` differentiates in `tests/reference/torch_device_bench.py`.
fn stream_taps(cfg: &ModelConfig) -> HookSet {
    let points = (0..cfg.n_layers).map(|l| HookPoint::Block(l, Site::ResidPost));
    HookSet::new().tap(std::iter::once(HookPoint::Embed).chain(points))
}

/// What attribution's gradient passes tap and capture by default (`QkvGradients::Analytic`):
/// q/k/v, the other readers' inputs and every writer's output, plus the attention inputs captured.
fn attribution_taps(cfg: &ModelConfig) -> HookSet {
    let sites = [Site::Q, Site::K, Site::V, Site::MlpIn, Site::AttnOut, Site::MlpOut];
    let points = (0..cfg.n_layers).flat_map(|l| sites.map(|s| HookPoint::Block(l, s)));
    let resid = (0..cfg.n_layers).map(|l| HookPoint::Block(l, Site::ResidPre));
    HookSet::new().tap(std::iter::once(HookPoint::Embed).chain(points)).capture(resid)
}

/// One optimiser step on a loss.
type OptStep = dyn FnMut(&Tensor) -> candle_core::Result<()>;

/// One timed cell of the JSON record.
#[derive(serde::Serialize)]
struct Cell {
    model: String,
    batch: usize,
    tokens: usize,
    mode: &'static str,
    ms: f64,
    tokens_per_s: f64,
    /// nominal matmul FLOPs per second over the matmul peak of this run
    fraction_of_peak: f64,
    /// heap growth at the peak of one call beyond what was live before it (weights excluded)
    peak_heap_mib: f64,
}

/// (mode, FLOPs in forward passes' worth, what it runs): forward = 1, forward + backward = 3.
type Mode<'a> = (&'static str, f64, Box<dyn FnMut() -> Result<()> + 'a>);

fn bench_model(
    name: &str,
    path: &Path,
    shapes: &[(usize, usize)],
    peak: f64,
    only: &[String],
    cells: &mut Vec<Cell>,
) -> Result<()> {
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
    // Parameters as variables, for the training step (GGUF: Llama-family only), only when a train
    // step runs: its optimisers' moments are a gigabyte of zeros that would burden a profile.
    let selected = |mode: &str| only.is_empty() || only.iter().any(|w| mode == w.as_str());
    let trains = selected("train step") || selected("train step composed");
    let trainable = if trains { Trainable::load(path, &Device::Cpu).ok() } else { None };
    let train_dec = trainable.as_ref().map(|t| t.decoder()).transpose()?;
    let fire_ns = inactive_fire_ns(dec)?;
    let n_points = dec.hook_points().len();
    println!(
        "{:<8} {:<24} {:>10} {:>11} {:>9} {:>7} {:>9} {:>6}",
        "b x s", "mode", "ms/pass", "tokens/s", "GFLOP/s", "% peak", "heap MiB", "runs"
    );
    let full = HookSet::new().capture_all();
    let mut notes = Vec::new();
    for &(b, s) in shapes {
        let ids = token_ids(b, s, cfg.vocab_size)?;
        let flops = forward_flops(cfg, b, s);
        let empty = HookSet::new();
        let forward = |hooks: &HookSet| -> Result<()> {
            black_box(dec.forward(&ids, hooks)?);
            Ok(())
        };
        let backward = |hooks: &HookSet| -> Result<()> {
            let out = dec.forward(&ids, hooks)?;
            // metric: the summed last-position logit of token 0
            let metric = out.logits.narrow(1, s - 1, 1)?.narrow(2, 0, 1)?.sum_all()?;
            black_box(out.taps.gradients(&metric)?);
            Ok(())
        };
        let (attr, attr_plain) = (attribution_taps(cfg), attribution_taps(cfg).composed());
        let (inputs, inputs_plain) = (input_taps(cfg), input_taps(cfg).composed());
        let stream = stream_taps(cfg);
        let mut modes: Vec<Mode> = vec![
            ("forward", 1.0, Box::new(|| forward(&empty))),
            ("full cache", 1.0, Box::new(|| forward(&full))),
            ("taps F+B", 3.0, Box::new(|| backward(&attr))),
            ("taps F+B composed", 3.0, Box::new(|| backward(&attr_plain))),
            ("stream taps F+B", 3.0, Box::new(|| backward(&stream))),
            ("input taps F+B", 3.0, Box::new(|| backward(&inputs))),
            ("input taps F+B composed", 3.0, Box::new(|| backward(&inputs_plain))),
        ];
        if let (Some(t), Some(td)) = (&trainable, &train_dec) {
            let vars: Vec<_> = t.vars.values().cloned().collect();
            let targets = token_ids(b, s, cfg.vocab_size - 1)?;
            let mask = Tensor::ones((b, s), DType::F32, &Device::Cpu)?;
            // ours: the fused ops and the fused AdamW; composed: plain ops and candle's AdamW
            let step = |fused: bool, vars: Vec<candle_core::Var>| -> Result<Box<dyn FnMut() -> Result<()> + '_>> {
                let params = ParamsAdamW { lr: 1e-9, ..Default::default() };
                let mut opt: Box<OptStep> = if fused {
                    let mut o = FusedAdamW::new(vars, params)?;
                    Box::new(move |loss| o.backward_step(loss))
                } else {
                    let mut o = AdamW::new(vars, params)?;
                    Box::new(move |loss| o.backward_step(loss))
                };
                let hooks = if fused { HookSet::new().training() } else { HookSet::new().training().composed() };
                let (ids, targets, mask) = (ids.clone(), targets.clone(), mask.clone());
                Ok(Box::new(move || {
                    let logits = td.forward(&ids, &hooks)?.logits;
                    let loss = masked_cross_entropy(&logits, &targets, &mask)?;
                    opt(&loss)?;
                    Ok(())
                }))
            };
            modes.push(("train step", 3.0, step(true, vars.clone())?));
            modes.push(("train step composed", 3.0, step(false, vars)?));
        }
        let mut times = std::collections::BTreeMap::new();
        for (mode, passes, mut f) in modes {
            if !selected(mode) {
                continue;
            }
            let (secs, runs) = time_min(&mut f)?;
            let (done, heap) = heap::peak_growth(&mut f);
            done?;
            let fraction = passes * flops / secs / 1e9 / peak;
            println!(
                "{:<8} {:<24} {:>10.3} {:>11.0} {:>9.2} {:>6.1}% {:>9.1} {:>6}",
                format!("{b}x{s}"),
                mode,
                secs * 1e3,
                (b * s) as f64 / secs,
                passes * flops / secs / 1e9,
                100.0 * fraction,
                heap as f64 / MIB,
                runs
            );
            times.insert(mode, secs);
            cells.push(Cell {
                model: name.to_string(),
                batch: b,
                tokens: s,
                mode,
                ms: secs * 1e3,
                tokens_per_s: (b * s) as f64 / secs,
                fraction_of_peak: fraction,
                peak_heap_mib: heap as f64 / MIB,
            });
        }
        if !only.is_empty() {
            continue;
        }
        let t_none = times["forward"];
        notes.push(format!(
            "{b}x{s}: full cache / forward = {:.2}x; taps F+B / forward = {:.2}x (composed {:.2}x); \
             input taps F+B / forward = {:.2}x (composed {:.2}x); inactive fires {n_points} x {fire_ns:.1} ns = {:.5}% of the forward",
            times["full cache"] / t_none,
            times["taps F+B"] / t_none,
            times["taps F+B composed"] / t_none,
            times["input taps F+B"] / t_none,
            times["input taps F+B composed"] / t_none,
            100.0 * n_points as f64 * fire_ns * 1e-9 / t_none
        ));
        if let (Some(a), Some(c)) = (times.get("train step"), times.get("train step composed")) {
            notes.push(format!("{b}x{s}: train step / forward = {:.2}x (composed {:.2}x)", a / t_none, c / t_none));
        }
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

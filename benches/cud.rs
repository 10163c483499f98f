//! Per-sample attribution benchmark (CUD's cost): `cargo bench --bench cud`.
//!
//! Prints this machine's f32 matmul peak (the yardstick), then per model, attribution method and
//! batch size the samples per second of per-sample attribution (scores kept per sample, zero
//! ablation, the answer-probability metric: what `circuitscope cud` runs), the speed-up over
//! batch 1 (the reference's), achieved GFLOP/s against the peak, and the peak RSS of a process
//! that ran only that cell (each cell runs in a child process of this bench, so that peaks do not
//! carry over). Models: the bundled world-gpt2 on 32 forget10 samples, and SmolLM2-135M-Instruct
//! (the GGUF `scripts/fetch-smollm2.sh` fetches) on 8 when the fetch works.

use anyhow::{Context, Result};
use circuitscope::attribution::{attribute, Ablation, AttributionConfig, Method, Metric};
use circuitscope::data::{Example, ExampleFile};
use circuitscope::fsutil::peak_rss_bytes;
use circuitscope::model::{LoadOptions, Model, ModelConfig};
use circuitscope::progress::NoProgress;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;
use common::{forward_flops, matmul_peak, smollm2_path};

/// The child's argument: `model-path method steps batch samples peak-gflops`.
const CHILD: &str = "CIRCUITSCOPE_CUD_BENCH_CELL";

fn main() -> Result<()> {
    circuitscope::process::configure();
    if let Ok(cell) = std::env::var(CHILD) {
        return child(&cell);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!(
        "circuitscope per-sample attribution benchmark (CPU, f32, {} candle threads)",
        candle_core::utils::get_num_threads()
    );
    let peak = matmul_peak(&candle_core::Device::Cpu, candle_core::DType::F32)?;
    println!("\none run of each cell (minutes of work each); FLOPs = gradient passes x 3 x the padded forward FLOPs");
    println!("peak RSS: of a child process that loaded the model and ran only that cell\n");
    let mut cells: Vec<(&str, PathBuf, &str, Vec<usize>, usize)> =
        vec![("world-gpt2", root.join("models/world-gpt2"), "eap-ig-activations", vec![1, 8, 16], 32)];
    match smollm2_path(&root) {
        Some(p) => {
            cells.push(("SmolLM2-135M", p.clone(), "eap-ig-inputs", vec![1, 8], 8));
            cells.push(("SmolLM2-135M", p, "eap", vec![1, 8], 8));
        }
        None => println!("!!! SKIPPING SmolLM2-135M: scripts/fetch-smollm2.sh gave no GGUF path !!!\n"),
    }
    println!(
        "{:<14} {:<20} {:>6} {:>8} {:>10} {:>9} {:>9} {:>8} {:>10}",
        "model", "method (m = 5)", "batch", "samples", "samples/s", "speed-up", "GFLOP/s", "% peak", "peak RSS"
    );
    for (name, path, method, batches, samples) in &cells {
        let mut base = None;
        for &b in batches {
            let arg = format!("{} {method} 5 {b} {samples} {peak}", path.display());
            let out = std::process::Command::new(std::env::current_exe()?)
                .env(CHILD, &arg)
                .output()
                .context("running a bench cell")?;
            let line = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                anyhow::bail!("cell {arg} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            // the child prints: samples/s GFLOP/s %peak RSS
            let f: Vec<&str> = line.split_whitespace().collect();
            let rate: f64 = f[0].parse()?;
            let speedup = rate / *base.get_or_insert(rate);
            println!(
                "{name:<14} {method:<20} {b:>6} {samples:>8} {rate:>10.3} {speedup:>8.2}x {:>9} {:>7}% {:>10}",
                f[1], f[2], f[3]
            );
        }
    }
    Ok(())
}

/// One cell: loads the model, attributes the samples per sample, prints its figures on one line.
fn child(cell: &str) -> Result<()> {
    let f: Vec<&str> = cell.split(' ').collect();
    let (path, method, steps, batch, n, peak): (&Path, &str, usize, usize, usize, f64) =
        (Path::new(f[0]), f[1], f[2].parse()?, f[3].parse()?, f[4].parse()?, f[5].parse()?);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load(path, LoadOptions::default())?;
    let mut file = ExampleFile::read(&root.join("circuits/world/forget10.jsonl"))?;
    file.truncate(n);
    let examples = file.examples(model.tokenizer()?)?;
    let method = Method::from_name(method, steps)?;
    let cfg = AttributionConfig {
        method,
        metric: Metric::SeqProb,
        ablation: Ablation::Zero,
        batch_size: batch,
        per_sample: true,
        ..AttributionConfig::default()
    };
    let t = Instant::now();
    let out = attribute(&model.decoder, &examples, &cfg, &NoProgress)?;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out.per_sample.map(|p| p.len()), Some(n));
    let flops = flops(model.cfg(), method, &examples, batch);
    let gflops = flops / secs / 1e9;
    let rss = peak_rss_bytes().map_or("-".into(), |b| format!("{:.0}MiB", b as f64 / (1 << 20) as f64));
    println!("{:.4} {gflops:.2} {:.1} {rss}", n as f64 / secs, 100.0 * gflops / peak);
    Ok(())
}

/// Gradient passes per batch × 3 × the batch's padded forward FLOPs, summed over the batches.
fn flops(cfg: &ModelConfig, method: Method, examples: &[Example], batch: usize) -> f64 {
    let passes = match method {
        Method::Eap => 1,
        Method::EapIgInputs { steps } => steps,
        Method::EapIgActivations { steps } => (2 * cfg.n_layers + 1) * steps,
        _ => unreachable!("the bench runs the gradient methods"),
    };
    examples
        .chunks(batch)
        .map(|c| {
            let s = c.iter().map(|e| e.clean.len()).max().unwrap_or(0);
            3.0 * passes as f64 * forward_flops(cfg, c.len(), s)
        })
        .sum()
}

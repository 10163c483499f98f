//! Unlearning-step benchmark: `cargo bench --bench unlearn`.
//!
//! Prints this machine's f32 matmul peak (the yardstick), then per model and method the time of
//! one unlearning step (forward and backward on a forget batch and a retain batch, gradient
//! clipping, AdamW) as answer-and-prompt tokens per second and as achieved GFLOP/s against that
//! peak, with the process's peak RSS so far. Models: the bundled world-gpt2, and
//! SmolLM2-135M-Instruct (the GGUF `scripts/fetch-smollm2.sh` fetches, trained as f32 under
//! Hugging Face names) when the fetch works.

use anyhow::Result;
use circuitscope::data::{Example, ExampleFile};
use circuitscope::fsutil::peak_rss_bytes;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::train::Trainable;
use circuitscope::unlearn::{Method, UnlearnConfig, Unlearner};
use std::path::{Path, PathBuf};

mod common;
use common::{forward_flops, matmul_peak, smollm2_path, time_min};

/// Forget (and retain) questions per batch.
const BATCH: usize = 8;

fn main() -> Result<()> {
    circuitscope::process::configure();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!(
        "circuitscope unlearning-step benchmark (CPU, f32, {} candle threads)",
        candle_core::utils::get_num_threads()
    );
    println!("timings are the minimum over repeated steps after one warm-up step\n");
    let peak = matmul_peak(&candle_core::Device::Cpu, candle_core::DType::F32)?;
    let world = root.join("circuits/world");
    let mut models = vec![("world-gpt2", root.join("models/world-gpt2"))];
    match smollm2_path(&root) {
        Some(p) => models.push(("SmolLM2-135M", p)),
        None => println!("!!! SKIPPING SmolLM2-135M: scripts/fetch-smollm2.sh gave no GGUF path !!!\n"),
    }
    println!("one step = forward + backward on {BATCH} forget and {BATCH} retain questions, clipping, AdamW");
    println!("FLOPs = 3 x the forward FLOPs of each batch's padded shape (backward ~ 2 x forward)\n");
    println!(
        "{:<14} {:<10} {:>10} {:>12} {:>10} {:>8} {:>10} {:>6}",
        "model", "method", "ms/step", "tokens/s", "GFLOP/s", "% peak", "peak RSS", "runs"
    );
    for (name, path) in &models {
        let original = Model::load(path, LoadOptions::default())?;
        let tok = original.tokenizer()?;
        let read = |f: &str| -> Result<Vec<Example>> {
            let mut file = ExampleFile::read(&world.join(f))?;
            file.truncate(BATCH);
            Ok(file.examples(tok)?)
        };
        let (forget, retain) = (read("forget10.jsonl")?, read("retain90.jsonl")?);
        for method in [Method::GradDiff, Method::Npo, Method::Rmu] {
            bench(name, path, &original, method, (&forget, &retain), peak)?;
        }
    }
    Ok(())
}

/// The padded (b, s) shape of a batch of examples.
fn shape(examples: &[Example]) -> (usize, usize) {
    (examples.len(), examples.iter().map(|e| e.clean.len()).max().unwrap_or(0))
}

fn bench(
    name: &str,
    path: &Path,
    original: &Model,
    method: Method,
    (forget, retain): (&[Example], &[Example]),
    peak: f64,
) -> Result<()> {
    // the documented settings, with a rate too small to move far and epochs enough never to end
    let mut cfg =
        UnlearnConfig { lr: 1e-6, epochs: 1_000_000, batch: BATCH, seed: 0, ..UnlearnConfig::documented(method) };
    cfg.fit_rmu(&original.decoder, forget, None, Some(10.0))?;
    let model = Trainable::load(path, &candle_core::Device::Cpu)?;
    let mut run = Unlearner::new(&model, Some(&original.decoder), forget, retain, &cfg)?;
    let (secs, runs) = time_min(|| {
        run.step()?;
        Ok(())
    })?;
    let tokens: usize = forget.iter().chain(retain).map(|e| e.clean.len()).sum();
    let ((fb, fs), (rb, rs)) = (shape(forget), shape(retain));
    let flops = 3.0 * (forward_flops(original.cfg(), fb, fs) + forward_flops(original.cfg(), rb, rs));
    let gflops = flops / secs / 1e9;
    let rss = peak_rss_bytes().map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64));
    println!(
        "{name:<14} {:<10} {:>10.2} {:>12.0} {gflops:>10.2} {:>7.1}% {rss:>10} {runs:>6}",
        method.name(),
        secs * 1e3,
        tokens as f64 / secs,
        100.0 * gflops / peak
    );
    Ok(())
}

//! Throughput on a device, the CPU or a GPU: `cargo bench --bench device` (CPU), or on a GPU
//! machine the CUDA build's bench binary with `CIRCUITSCOPE_BENCH_DEVICE=cuda`
//! (`scripts/device-check.sh` runs it beside `tests/reference/torch_device_bench.py`, PyTorch's
//! run of the same work on the same GPU).
//!
//! Prints (1) the device's matmul speed measured with candle itself, the yardstick; (2) per model,
//! dtype and shape, tokens per second of a forward pass without hooks, of a forward pass plus the
//! backward pass to the gradient taps edge attribution differentiates at, and of a full training
//! step (forward, cross-entropy, backward to every parameter, clipping, AdamW) for checkpoints
//! that can be trained; (3) per-sample EAP-IG throughput in the CUD setting (activations, m = 5,
//! zero ablation, answer probability, one sample per pass).
//!
//! Environment:
//! - `CIRCUITSCOPE_BENCH_DEVICE`: cpu (default), cuda, cuda:N
//! - `CIRCUITSCOPE_BENCH_MODELS`: `name=path,...` (model directories or GGUF files); default the
//!   bundled model and the Llama fixture
//! - `CIRCUITSCOPE_BENCH_SHAPES`: `BxS,...` (default 1x128,8x128; `none`: no throughput rows)
//! - `CIRCUITSCOPE_BENCH_DTYPES`: `f32,bf16` (default f32)
//! - `CIRCUITSCOPE_BENCH_CUD_MODELS`: names from the models list to time per-sample EAP-IG on
//!   (default: the bundled model)

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use circuitscope::attribution::{attribute, Ablation, AttributionConfig, Example, Method, Metric, NoProgress};
use circuitscope::hooks::{HookPoint, HookSet, Site};
use circuitscope::model::{device, LoadOptions, Model, ModelConfig};
use circuitscope::train::{clip_gradients, loss::masked_cross_entropy, Trainable};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;
use common::{forward_flops, matmul_peak, time_min, token_ids};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn main() -> Result<()> {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dev = device::parse(&env_or("CIRCUITSCOPE_BENCH_DEVICE", "cpu"))?;
    let models: Vec<(String, PathBuf)> = match std::env::var("CIRCUITSCOPE_BENCH_MODELS") {
        Ok(list) => list
            .split(',')
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("CIRCUITSCOPE_BENCH_MODELS: `{kv}` is not name=path"))?;
                Ok((k.to_string(), PathBuf::from(v)))
            })
            .collect::<Result<_>>()?,
        Err(_) => vec![
            ("world-gpt2".into(), root.join("models/world-gpt2")),
            ("llama fixture".into(), root.join("tests/fixtures/parity/llama")),
        ],
    };
    let shapes: Vec<(usize, usize)> = env_or("CIRCUITSCOPE_BENCH_SHAPES", "1x128,8x128")
        .split(',')
        .filter(|s| *s != "none")
        .map(|s| {
            let (b, t) = s.split_once('x').with_context(|| format!("shape `{s}`: expected BxS"))?;
            Ok((b.parse()?, t.parse()?))
        })
        .collect::<Result<_>>()?;
    let dtypes: Vec<DType> = env_or("CIRCUITSCOPE_BENCH_DTYPES", "f32")
        .split(',')
        .map(|d| match d {
            "f32" => Ok(DType::F32),
            "bf16" => Ok(DType::BF16),
            "f16" => Ok(DType::F16),
            other => bail!("dtype `{other}`: expected f32, bf16 or f16"),
        })
        .collect::<Result<_>>()?;
    let cud_models: Vec<String> =
        env_or("CIRCUITSCOPE_BENCH_CUD_MODELS", "world-gpt2").split(',').map(str::to_string).collect();

    println!("circuitscope device benchmark on {} ({})", device::name(&dev), device_words(&dev));
    println!("timings are the minimum over repeated runs after one warm-up run; GPU work is synchronised\n");
    let peaks = matmul_peaks(&dev, &dtypes)?;

    println!("== 2. throughput (tokens/s; % peak: nominal matmul FLOPs / the dtype's matmul peak) ==");
    println!("forward = no hooks; taps = forward + backward to the EAP gradient taps (3x forward FLOPs);");
    println!("train = forward + cross-entropy + backward to every parameter + clip + AdamW (f32 checkpoints)\n");
    println!(
        "{:<16} {:<5} {:<7} {:>10} {:>9} {:>10} {:>9} {:>10} {:>9}",
        "model", "dtype", "b x s", "forward", "% peak", "taps", "% peak", "train", "% peak"
    );
    for (name, path) in &models {
        for &dtype in &dtypes {
            bench_model(name, path, dtype, &dev, &shapes, peaks.get(dtype))?;
        }
    }
    println!();

    println!("== 3. per-sample EAP-IG, the CUD setting (activations, m = 5, zero ablation, seq-prob) ==");
    for (name, path) in models.iter().filter(|(n, _)| cud_models.contains(n)) {
        bench_cud(name, path, &dev, &root)?;
    }
    println!("\ntotal bench time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn device_words(dev: &Device) -> String {
    match dev {
        Device::Cpu => format!("{} candle threads", candle_core::utils::get_num_threads()),
        _ => "candle CUDA backend".into(),
    }
}

/// Matmul GFLOP/s per dtype.
struct Peaks(Vec<(DType, f64)>);

impl Peaks {
    fn get(&self, d: DType) -> f64 {
        self.0.iter().find(|(x, _)| *x == d).map_or(f64::NAN, |p| p.1)
    }
}

fn matmul_peaks(dev: &Device, dtypes: &[DType]) -> Result<Peaks> {
    println!("== 1. matmul speed ==");
    Ok(Peaks(dtypes.iter().map(|&d| Ok((d, matmul_peak(dev, d)?))).collect::<Result<_>>()?))
}

fn dtype_name(d: DType) -> String {
    format!("{d:?}").to_lowercase()
}

/// The hook points edge attribution patching differentiates at.
fn eap_taps(cfg: &ModelConfig) -> HookSet {
    let sites = [Site::ResidPre, Site::QInput, Site::KInput, Site::VInput, Site::MlpIn, Site::Result, Site::MlpOut];
    let points = (0..cfg.n_layers).flat_map(|l| sites.map(|s| HookPoint::Block(l, s)));
    HookSet::new().tap(std::iter::once(HookPoint::Embed).chain(points))
}

fn bench_model(
    name: &str,
    path: &Path,
    dtype: DType,
    dev: &Device,
    shapes: &[(usize, usize)],
    peak: f64,
) -> Result<()> {
    let opts = LoadOptions { dtype, device: dev.clone() };
    let model = Model::load(path, opts).with_context(|| format!("loading {}", path.display()))?;
    let dec = &model.decoder;
    let cfg = dec.cfg.clone();
    // Training needs the checkpoint's parameters as Vars: safetensors directories, in f32.
    let trainable = (dtype == DType::F32 && path.is_dir()).then(|| Trainable::load(path, dev)).transpose()?;
    let taps = eap_taps(&cfg);
    for &(b, s) in shapes {
        if s > cfg.n_ctx {
            continue;
        }
        // ids on the CPU, as callers hold them: the forward pass checks and moves them
        let rows = token_ids(b, s + 1, cfg.vocab_size)?; // inputs are the first s, targets the last s
        let ids = rows.narrow(1, 0, s)?;
        let flops = forward_flops(&cfg, b, s);
        let t_fwd = time_min(|| {
            black_box(dec.forward(&ids, &HookSet::new())?.logits);
            dev.synchronize()?;
            Ok(())
        });
        let t_taps = time_min(|| {
            let out = dec.forward(&ids, &taps)?;
            let metric = out.logits.narrow(1, s - 1, 1)?.narrow(2, 0, 1)?.sum_all()?;
            black_box(out.taps.gradients(&metric)?);
            dev.synchronize()?;
            Ok(())
        });
        let t_train = trainable.as_ref().map(|tr| {
            let targets = rows.narrow(1, 1, s)?.contiguous()?;
            let mask = Tensor::ones((b, s), DType::F32, &Device::Cpu)?;
            let vars: Vec<_> = tr.vars.values().cloned().collect();
            let p = ParamsAdamW { lr: 1e-5, ..Default::default() };
            let mut opt = AdamW::new(vars.clone(), p)?;
            let hooks = HookSet::new().training();
            time_min(|| {
                let logits = tr.decoder()?.forward(&ids, &hooks)?.logits;
                let loss = masked_cross_entropy(&logits, &targets, &mask)?;
                let mut grads = loss.backward()?;
                clip_gradients(&mut grads, &vars, 1.0)?;
                opt.step(&grads)?;
                dev.synchronize()?;
                Ok(())
            })
        });
        // A cell that fails (a GPU out of memory: per-head q/k/v taps hold b·s·H·d per layer)
        // says so and the others go on.
        let mut errors = Vec::new();
        let mut cell = |t: Option<Result<(f64, usize)>>, f: f64| -> (String, String) {
            match t {
                Some(Ok((t, _))) => {
                    (format!("{:.0}", (b * s) as f64 / t), format!("{:.1}%", 100.0 * f / t / 1e9 / peak))
                }
                Some(Err(e)) => {
                    errors.push(e.to_string().lines().next().unwrap_or("").to_string());
                    ("failed".into(), "-".into())
                }
                None => ("-".into(), "-".into()),
            }
        };
        let (fwd, fwd_pct) = cell(Some(t_fwd), flops);
        let (tap, tap_pct) = cell(Some(t_taps), 3.0 * flops);
        let (train, train_pct) = cell(t_train, 3.0 * flops);
        println!(
            "{:<16} {:<5} {:<7} {:>10} {:>9} {:>10} {:>9} {:>10} {:>9}",
            name,
            dtype_name(dtype),
            format!("{b}x{s}"),
            fwd,
            fwd_pct,
            tap,
            tap_pct,
            train,
            train_pct
        );
        for e in errors {
            println!("    failed: {e}");
        }
    }
    Ok(())
}

/// Samples per second of per-sample EAP-IG: 16 of the bundled forget set's questions on the
/// bundled model; on another model, 4 prompts of 16 tokens with 8-token answers of deterministic
/// ids ((2L + 1)·m gradient passes per sample: 305 on SmolLM2).
fn bench_cud(name: &str, path: &Path, dev: &Device, root: &Path) -> Result<()> {
    let model = Model::load(path, LoadOptions { device: dev.clone(), ..Default::default() })?;
    let examples: Vec<Example> = match model.tokenizer() {
        Ok(tok) if path.ends_with("world-gpt2") => {
            let qa = circuitscope::world::read_qa(&root.join("circuits/world/forget10.jsonl"))?;
            qa.iter()
                .take(16)
                .enumerate()
                .map(|(i, q)| Example::from_question_texts(tok, &q.prompt(), &q.completion(), i))
                .collect::<circuitscope::Result<_>>()?
        }
        _ => {
            let v = model.cfg().vocab_size;
            (0..4)
                .map(|i| {
                    let ids: Vec<u32> = (0..24).map(|j| ((i * 131 + j * 7919 + 17) % v) as u32).collect();
                    Example::qa(ids[..16].to_vec(), ids[16..].to_vec())
                })
                .collect()
        }
    };
    let cfg = AttributionConfig {
        method: Method::EapIgActivations { steps: 5 },
        metric: Metric::SeqProb,
        ablation: Ablation::Zero,
        batch_size: 1,
        per_sample: true,
        ..Default::default()
    };
    // one warm-up sample, then the whole set
    attribute(&model.decoder, &examples[..1], &cfg, &NoProgress)?;
    let t = Instant::now();
    let out = attribute(&model.decoder, &examples, &cfg, &NoProgress)?;
    dev.synchronize()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{name}: {} samples in {secs:.2} s = {:.2} samples/s ({:.3} s per sample; {} forward and {} backward passes)",
        examples.len(),
        examples.len() as f64 / secs,
        secs / examples.len() as f64,
        out.passes.forwards,
        out.passes.backwards
    );
    Ok(())
}

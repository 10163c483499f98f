//! The CUDA build checked against the CPU, on a real GPU (issue: "On a GPU when the user has
//! one"). Every test compares the GPU's answer with the CPU's own answer computed in the same
//! run, or with the Hugging Face fixtures.
//!
//! Where circuitscope was built without the `cuda` feature or no GPU answers, each test skips
//! (`common::skip`, counted apart from data skips: CI never has a GPU); with
//! `CIRCUITSCOPE_REQUIRE_GPU=1` (the device script sets it) it fails instead, so a GPU run cannot
//! pass by skipping. Build here with `scripts/build-cuda.sh --dist`, then run
//! `scripts/device-check.sh` on the GPU machine (README, "On a GPU").

mod common;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use circuitscope::analyses::stats::spearman;
use circuitscope::attribution::{
    attribute, faithfulness, Ablation, AttributionConfig, Example, FaithfulnessConfig, Method, Metric, NoProgress,
    ReaderFix,
};
use circuitscope::graph::EdgeScores;
use circuitscope::hooks::{HookPoint, HookSet, Site};
use circuitscope::model::attention::Attention;
use circuitscope::model::ops::Ops;
use circuitscope::model::rotary::Rotary;
use circuitscope::model::{device, Activation, LoadOptions, Model, Positional, RopeScaling};
use circuitscope::train::{clip_gradients, loss::masked_cross_entropy, Gpt2Shape, Params, Trainable};
use circuitscope::world::read_tasks;
use common::parity::{check_family_on, FAMILIES};
use common::{cli, fixture, max_abs, max_abs_diff, TempDir};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first GPU, or `None` after a loud skip (a failure under `CIRCUITSCOPE_REQUIRE_GPU=1`).
fn gpu(test: &str) -> Option<Device> {
    let why = if !device::CUDA_BUILT {
        "circuitscope was built without the `cuda` feature (scripts/build-cuda.sh)".to_string()
    } else {
        match device::parse("cuda") {
            Ok(d) => return Some(d),
            Err(e) => e.to_string(),
        }
    };
    if std::env::var("CIRCUITSCOPE_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("{test}: CIRCUITSCOPE_REQUIRE_GPU=1 but there is no GPU: {why}");
    }
    common::skip(common::Missing::Gpu(&why));
    None
}

fn load(dir: &std::path::Path, dtype: DType, device: &Device) -> Model {
    Model::load(dir, LoadOptions { dtype, device: device.clone() }).unwrap()
}

/// The bundled model's IOI items as examples.
fn ioi(model: &Model, n: usize) -> Vec<Example> {
    let items = read_tasks(&root().join("circuits/world/tasks/ioi.jsonl")).unwrap();
    let tok = model.tokenizer().unwrap();
    items
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, it)| Example::from_task_texts(tok, &it.clean, &it.corrupted, &it.answer, &it.distractor, i).unwrap())
        .collect()
}

/// max |a − b| / max |b| over all edges.
fn rel_diff(a: &EdgeScores, b: &EdgeScores) -> f64 {
    rel_diff_vec(&a.scores, &b.scores)
}

/// max |a − b| / max |b|.
fn rel_diff_vec(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, x| m.max(f64::from(x.abs())));
    let d = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
    d / scale.max(f64::MIN_POSITIVE)
}

#[test]
fn every_fixture_family_matches_transformers_on_the_gpu() {
    let Some(gpu) = gpu("every_fixture_family_matches_transformers_on_the_gpu") else { return };
    for family in FAMILIES {
        check_family_on(family, &gpu);
    }
}

/// The bundled model's EAP-IG (both variants, with and without the reader fixes), EAP and exact
/// patching, per item and per node, on the GPU against the CPU: the 1e-3 relative.
#[test]
fn attribution_scores_on_the_gpu_equal_the_cpus() {
    let Some(gpu) = gpu("attribution_scores_on_the_gpu_equal_the_cpus") else { return };
    let dir = root().join("models/world-gpt2");
    let (cpu_model, gpu_model) = (load(&dir, DType::F32, &Device::Cpu), load(&dir, DType::F32, &gpu));
    let ex = ioi(&cpu_model, 12);
    let fix = ReaderFix { qk: true, mlp: true };
    let runs: Vec<(&str, Method, ReaderFix, Ablation, Metric)> = vec![
        (
            "eap-ig-inputs",
            Method::EapIgInputs { steps: 5 },
            ReaderFix::default(),
            Ablation::Patching,
            Metric::LogitDiff,
        ),
        (
            "eap-ig-activations + fixes",
            Method::EapIgActivations { steps: 5 },
            fix,
            Ablation::Patching,
            Metric::LogitDiff,
        ),
        ("eap, zero ablation, prob-diff", Method::Eap, ReaderFix::default(), Ablation::Zero, Metric::ProbDiff),
        (
            "eap-ig-inputs, mean ablation, KL",
            Method::EapIgInputs { steps: 3 },
            ReaderFix::default(),
            Ablation::Mean { reference: ex.iter().map(|e| e.clean.clone()).collect(), per_position: false },
            Metric::Kl,
        ),
        ("exact", Method::Exact, ReaderFix::default(), Ablation::Patching, Metric::LogitDiff),
    ];
    for (name, method, fix, ablation, metric) in runs {
        let n = if method == Method::Exact { 4 } else { ex.len() };
        let cfg =
            AttributionConfig { method, fix, ablation, metric, batch_size: 4, per_sample: true, ..Default::default() };
        let c = attribute(&cpu_model.decoder, &ex[..n], &cfg, &NoProgress).unwrap();
        let g = attribute(&gpu_model.decoder, &ex[..n], &cfg, &NoProgress).unwrap();
        let d = rel_diff(&g.scores, &c.scores);
        println!("{name}: GPU vs CPU edge scores, max |diff| / max |score| = {d:.2e}");
        assert!(d <= 1e-3, "{name}: GPU and CPU edge scores differ by {d:.2e} of the largest score");
        for (i, (gi, ci)) in g.per_sample.unwrap().iter().zip(c.per_sample.as_ref().unwrap()).enumerate() {
            let d = rel_diff(gi, ci);
            assert!(d <= 1e-3, "{name}: item {i}'s scores differ by {d:.2e}");
        }
        if let (Some(gn), Some(cn)) = (&g.node_scores, &c.node_scores) {
            let d = rel_diff_vec(gn, cn);
            assert!(d <= 1e-3, "{name}: node scores differ by {d:.2e}");
        }
        let dm = (g.clean_metric - c.clean_metric).abs();
        assert!(
            dm <= 1e-4 * c.clean_metric.abs().max(1.0),
            "{name}: clean metric {} vs {}",
            g.clean_metric,
            c.clean_metric
        );
        assert_eq!(g.passes.forwards, c.passes.forwards, "{name}: the GPU ran another number of passes");
    }
}

#[test]
fn faithfulness_on_the_gpu_equals_the_cpus() {
    let Some(gpu) = gpu("faithfulness_on_the_gpu_equals_the_cpus") else { return };
    let dir = root().join("models/world-gpt2");
    let (cpu_model, gpu_model) = (load(&dir, DType::F32, &Device::Cpu), load(&dir, DType::F32, &gpu));
    let ex = ioi(&cpu_model, 16);
    let cfg = AttributionConfig { method: Method::EapIgInputs { steps: 5 }, ..Default::default() };
    let scores = attribute(&cpu_model.decoder, &ex, &cfg, &NoProgress).unwrap().scores;
    // masks of the top 5 %, 20 % and 50 % edges by |score|
    let mut order: Vec<usize> = (0..scores.scores.len()).collect();
    order.sort_by(|&a, &b| scores.scores[b].abs().total_cmp(&scores.scores[a].abs()));
    let masks: Vec<Vec<bool>> = [0.05, 0.2, 0.5]
        .iter()
        .map(|f| {
            let mut m = vec![false; order.len()];
            order.iter().take((f * order.len() as f64) as usize).for_each(|&i| m[i] = true);
            m
        })
        .collect();
    for ablation in [Ablation::Patching, Ablation::Zero] {
        let fc = FaithfulnessConfig { ablation: ablation.clone(), ..Default::default() };
        let c = faithfulness(&cpu_model.decoder, &ex, &masks, &fc, &NoProgress).unwrap();
        let g = faithfulness(&gpu_model.decoder, &ex, &masks, &fc, &NoProgress).unwrap();
        println!("faithfulness ({}): CPU {:?}, GPU {:?}", ablation.name(), c.normalised, g.normalised);
        for (a, b) in g.circuits.iter().zip(&c.circuits) {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{}: circuit metric {a} vs {b}", ablation.name());
        }
    }
}

/// One full training step (cross-entropy, backward, clipping, AdamW) from the same weights on the
/// same batch: the GPU's loss, gradients and updated weights equal the CPU's. The bundled
/// trainer's GPT-2 and a Llama-family checkpoint loaded as trainable `Var`s (the path unlearning
/// takes).
#[test]
fn a_training_step_on_the_gpu_equals_the_cpus() {
    let Some(gpu) = gpu("a_training_step_on_the_gpu_equals_the_cpus") else { return };
    let shape = Gpt2Shape { n_layers: 2, n_heads: 4, d_model: 64, n_ctx: 32, vocab_size: 97 };
    let cpu_params = Params::init(&shape, 0, 7).unwrap();
    let gpu_params = cpu_params.to_device(&gpu).unwrap();
    let step = |vars: &std::collections::BTreeMap<String, Var>, logits: Tensor, targets: &Tensor, mask: &Tensor| {
        let loss = masked_cross_entropy(&logits, targets, mask).unwrap();
        let value = loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        let all: Vec<Var> = vars.values().cloned().collect();
        let mut grads = loss.backward().unwrap();
        let norm = clip_gradients(&mut grads, &all, 1.0).unwrap();
        let g: Vec<(String, Tensor)> =
            vars.iter().map(|(n, v)| (n.clone(), grads.get(v.as_tensor()).unwrap().clone())).collect();
        let p = ParamsAdamW { lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 0.01 };
        AdamW::new(all, p).unwrap().step(&grads).unwrap();
        (value, norm, g)
    };
    let (b, t) = (3, 24);
    let ids: Vec<u32> = (0..b * (t + 1)).map(|i| ((i * 31 + 5) % 97) as u32).collect();
    let rows = Tensor::from_vec(ids, (b, t + 1), &Device::Cpu).unwrap();
    let (inputs, targets) = (rows.narrow(1, 0, t).unwrap(), rows.narrow(1, 1, t).unwrap().contiguous().unwrap());
    let mask = Tensor::ones((b, t), DType::F32, &Device::Cpu).unwrap();
    let hooks = HookSet::new().training();
    let cpu_logits = cpu_params.decoder().unwrap().forward(&inputs, &hooks).unwrap().logits;
    let gpu_logits = gpu_params.decoder().unwrap().forward(&inputs, &hooks).unwrap().logits;
    let (lc, nc, gc) = step(&cpu_params.vars, cpu_logits, &targets, &mask);
    let (lg, ng, gg) = step(&gpu_params.vars, gpu_logits, &targets, &mask);
    println!("GPT-2 training step: loss CPU {lc:.7} GPU {lg:.7}; grad norm {nc:.6} / {ng:.6}");
    assert!((nc - ng).abs() <= 1e-4 * nc.max(1e-6), "gradient norm {nc} vs {ng}");
    same_step("gpt2", (lc, &gc, &cpu_params.vars), (lg, &gg, &gpu_params.vars));

    // A Llama checkpoint (RoPE, GQA, SwiGLU, RMS norm) as trainable Vars on both devices.
    let dir = fixture("parity/llama");
    let (cpu, gpu_t) = (Trainable::load(&dir, &Device::Cpu).unwrap(), Trainable::load(&dir, &gpu).unwrap());
    let v = cpu.cfg.vocab_size;
    let ids: Vec<u32> = (0..2 * 17).map(|i| ((i * 13 + 3) % v) as u32).collect();
    let rows = Tensor::from_vec(ids, (2, 17), &Device::Cpu).unwrap();
    let (inputs, targets) = (rows.narrow(1, 0, 16).unwrap(), rows.narrow(1, 1, 16).unwrap().contiguous().unwrap());
    let mask = Tensor::ones((2, 16), DType::F32, &Device::Cpu).unwrap();
    let (lc, _, gc) = step(&cpu.vars, cpu.decoder().unwrap().forward(&inputs, &hooks).unwrap().logits, &targets, &mask);
    let (lg, _, gg) =
        step(&gpu_t.vars, gpu_t.decoder().unwrap().forward(&inputs, &hooks).unwrap().logits, &targets, &mask);
    println!("Llama training step: loss CPU {lc:.7} GPU {lg:.7}");
    same_step("llama", (lc, &gc, &cpu.vars), (lg, &gg, &gpu_t.vars));
}

/// One step's (loss, gradients, updated parameters) on the CPU and on the GPU.
type Step<'a> = (f64, &'a [(String, Tensor)], &'a std::collections::BTreeMap<String, Var>);

/// The loss to 1e-5 relative, each gradient to 1e-4 of its largest entry, each updated weight to 1e-4.
fn same_step(model: &str, (lc, gc, cpu): Step, (lg, gg, gpu): Step) {
    assert!((lc - lg).abs() <= 1e-5 * lc.abs().max(1.0), "{model}: loss {lc} vs {lg}");
    for ((n, a), (_, b)) in gc.iter().zip(gg) {
        let d = max_abs_diff(b, a);
        assert!(d <= 1e-4 * max_abs(a).max(1e-3), "{model}: gradient of {n} differs by {d}");
    }
    for (n, v) in cpu {
        let d = max_abs_diff(gpu[n].as_tensor(), v.as_tensor());
        assert!(d <= 1e-4, "{model}: {n} after the step differs by {d}");
    }
}

/// An unlearning run (two steps of gradient difference and of NPO, `unlearn::unlearn`) on the
/// bundled model from the same weights: the GPU's updated weights equal the CPU's within 1e-4.
#[test]
fn an_unlearning_step_on_the_gpu_equals_the_cpus() {
    use circuitscope::unlearn::{unlearn, Objective, UnlearnConfig};
    let Some(gpu) = gpu("an_unlearning_step_on_the_gpu_equals_the_cpus") else { return };
    let dir = root().join("models/world-gpt2");
    let (cpu_model, gpu_model) = (load(&dir, DType::F32, &Device::Cpu), load(&dir, DType::F32, &gpu));
    let tok = cpu_model.tokenizer().unwrap();
    let qa = |file: &str| {
        let mut f = circuitscope::data::ExampleFile::read(&root().join("circuits/world").join(file)).unwrap();
        f.truncate(8);
        f.examples(tok).unwrap()
    };
    let (forget, retain) = (qa("forget01.jsonl"), qa("retain99.jsonl"));
    for objective in [Objective::GradAscent, Objective::Npo { beta: 0.5 }] {
        let cfg = UnlearnConfig {
            objective,
            gamma: 1.0,
            alpha: 1.0,
            lr: 2e-4,
            weight_decay: 0.01,
            epochs: 1,
            batch: 4,
            accumulate: 1,
            warmup: 1,
            clip: 1.0,
            seed: 7,
            trainable: vec![],
            cure: None,
        };
        let (c, g) = (Trainable::load(&dir, &Device::Cpu).unwrap(), Trainable::load(&dir, &gpu).unwrap());
        let lc = unlearn(&c, Some(&cpu_model.decoder), &forget, &retain, &cfg, &NoProgress).unwrap();
        let lg = unlearn(&g, Some(&gpu_model.decoder), &forget, &retain, &cfg, &NoProgress).unwrap();
        println!("{objective:?}: forget loss CPU {:.6} GPU {:.6}", lc[0].forget, lg[0].forget);
        for (a, b) in lc.iter().zip(&lg) {
            assert!((a.forget - b.forget).abs() <= 1e-4 * a.forget.abs().max(1.0), "{objective:?}: {a:?} vs {b:?}");
        }
        for (n, v) in &c.vars {
            let d = max_abs_diff(g.vars[n].as_tensor(), v.as_tensor());
            assert!(d <= 1e-4, "{objective:?}: {n} after unlearning differs by {d}");
        }
    }
}

/// The ops whose fused CPU form has no CUDA kernel fall back to compositions with the same
/// values and derivatives.
#[test]
fn gpu_fallbacks_of_the_fused_cpu_ops_agree() {
    let Some(gpu) = gpu("gpu_fallbacks_of_the_fused_cpu_ops_agree") else { return };
    // Every fused op through `Ops` (the fused form on the CPU, the composition on the GPU): values
    // and the gradient of a weighted sum with respect to every input.
    let ops = Ops { diff: true, exact: true, fused: true };
    let data = |shape: &[usize], seed: usize| -> Vec<f32> {
        (0..shape.iter().product::<usize>()).map(|i| (((i + seed) * 37 % 101) as f32 / 50.0 - 1.0) * 2.0).collect()
    };
    type OpFn = fn(Ops, &[Tensor]) -> Tensor;
    let rope = Rotary::new(&Positional::Rotary { dims: 8, theta: 10000.0, scaling: RopeScaling::None }).unwrap();
    let cases: Vec<(&str, Vec<Vec<usize>>, OpFn)> = vec![
        ("softmax", vec![vec![2, 3, 5, 5]], |o, x| o.softmax(&x[0]).unwrap()),
        ("attention pattern", vec![vec![2, 3, 5, 5]], |o, x| {
            let mask = Attention::mask(5, Some(3), DType::F32, x[0].device()).unwrap();
            o.attention_pattern(&x[0], 0.3, Some(3), &mask).unwrap()
        }),
        ("rms norm", vec![vec![2, 5, 16], vec![16]], |o, x| o.rms_norm(&x[0], &x[1], 1e-5).unwrap()),
        ("layer norm", vec![vec![2, 5, 16], vec![16], vec![16]], |o, x| {
            o.layer_norm(&x[0], &x[1], Some(&x[2]), 1e-5).unwrap()
        }),
        ("silu", vec![vec![2, 5, 16]], |o, x| o.activation(&x[0], Activation::Silu).unwrap()),
        ("gelu tanh", vec![vec![2, 5, 16]], |o, x| o.activation(&x[0], Activation::GeluTanh).unwrap()),
        ("gated silu", vec![vec![2, 5, 16], vec![2, 5, 16]], |o, x| o.gated(&x[0], &x[1], Activation::Silu).unwrap()),
    ];
    let run = |dev: &Device, shapes: &[Vec<usize>], f: &dyn Fn(&[Tensor]) -> Tensor| {
        let vars: Vec<Var> = shapes
            .iter()
            .enumerate()
            .map(|(k, sh)| Var::from_vec(data(sh, 7 * k + 1), sh.as_slice(), dev).unwrap())
            .collect();
        let xs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&xs);
        let w = Tensor::from_vec(data(y.dims(), 3), y.dims(), dev).unwrap();
        let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut out = vec![flat(&y)];
        out.extend(xs.iter().map(|x| flat(g.get(x).unwrap())));
        out
    };
    type Case<'a> = (&'a str, Vec<Vec<usize>>, Box<dyn Fn(&[Tensor]) -> Tensor>);
    let mut all: Vec<Case> =
        cases.into_iter().map(|(n, s, f)| (n, s, Box::new(move |x: &[Tensor]| f(ops, x)) as Box<_>)).collect();
    all.push((
        "rotary",
        vec![vec![2, 5, 3, 12]],
        Box::new(move |x: &[Tensor]| {
            let (cos, sin) = rope.tables(5, DType::F32, x[0].device()).unwrap();
            rope.apply(&x[0], &cos, &sin, ops).unwrap()
        }),
    ));
    for (name, shapes, f) in &all {
        let (c, g) = (run(&Device::Cpu, shapes, f.as_ref()), run(&gpu, shapes, f.as_ref()));
        for (k, (a, b)) in c.iter().zip(&g).enumerate() {
            let d = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let what = if k == 0 { "values".to_string() } else { format!("gradient of input {k}") };
            println!("{name}: {what}, GPU composition vs CPU fused op {d:.1e}");
            assert!(d <= 1e-5, "{name}: {what} differ by {d}");
        }
    }

    // cross-entropy: masked rows, a padded position
    let logits: Vec<f32> = (0..2 * 3 * 11).map(|i| ((i * 7) % 13) as f32 / 3.0 - 2.0).collect();
    let ce = |dev: &Device| {
        let l = Var::from_vec(logits.clone(), (2, 3, 11), dev).unwrap();
        let targets = Tensor::new(&[[1u32, 6, 0], [3, 10, 2]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 0.0], [1.0, 0.0, 1.0]], &Device::Cpu).unwrap();
        let loss = masked_cross_entropy(l.as_tensor(), &targets, &mask).unwrap();
        let g = loss.backward().unwrap().get(l.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (loss.to_scalar::<f32>().unwrap(), g)
    };
    let ((lc, gc), (lg, gg)) = (ce(&Device::Cpu), ce(&gpu));
    let dg = gc.iter().zip(&gg).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!((lc - lg).abs() <= 1e-6 && dg <= 1e-6, "cross-entropy: loss {lc} vs {lg}, gradients {dg}");
}

/// bf16 on the GPU (where candle's bf16 is fast): logits near f32's, the same greedy answers,
/// and EAP-IG scores that rank the edges as f32 does.
#[test]
fn bf16_on_the_gpu_tracks_f32() {
    let Some(gpu) = gpu("bf16_on_the_gpu_tracks_f32") else { return };
    let dir = root().join("models/world-gpt2");
    let f32_cpu = load(&dir, DType::F32, &Device::Cpu);
    let bf16_gpu = load(&dir, DType::BF16, &gpu);
    let ex = ioi(&f32_cpu, 16);
    let ids = Tensor::new(ex[0].clean.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let a = f32_cpu.decoder.logits(&ids).unwrap();
    let b = bf16_gpu.decoder.logits(&ids).unwrap();
    assert_eq!(b.dtype(), DType::BF16);
    let rel = max_abs_diff(&b, &a) / max_abs(&a);
    let (ta, tb) = (a.argmax(D::Minus1).unwrap(), b.argmax(D::Minus1).unwrap());
    let agree = ta.eq(&tb.to_device(&Device::Cpu).unwrap()).unwrap().to_dtype(DType::F32).unwrap().mean_all().unwrap();
    let agree = agree.to_scalar::<f32>().unwrap();
    println!("bf16 GPU vs f32 CPU: logits max |diff| / max |logit| = {rel:.3}, argmax agreement {agree:.3}");
    assert!(rel <= 0.05, "bf16 logits are {rel} of the largest logit away from f32's");
    assert!(agree >= 0.9, "bf16 changes the greedy token at {:.0} % of positions", 100.0 * (1.0 - agree));
    let cfg = AttributionConfig { method: Method::EapIgInputs { steps: 5 }, ..Default::default() };
    let s32 = attribute(&f32_cpu.decoder, &ex, &cfg, &NoProgress).unwrap().scores;
    let s16 = attribute(&bf16_gpu.decoder, &ex, &cfg, &NoProgress).unwrap().scores;
    let f = |s: &EdgeScores| s.scores.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let rho = spearman(&f(&s16), &f(&s32));
    println!("bf16 GPU vs f32 CPU EAP-IG inputs: Spearman {rho:.4}");
    assert!(rho >= 0.99, "bf16 EAP-IG scores rank the edges differently: Spearman {rho}");
}

/// Captures, interventions and taps at every kind of hook point agree across devices, and every
/// captured tensor stays on the model's device.
#[test]
fn hooks_on_the_gpu_capture_edit_and_tap_like_the_cpu() {
    let Some(gpu) = gpu("hooks_on_the_gpu_capture_edit_and_tap_like_the_cpu") else { return };
    let dir = fixture("parity/gpt_neox");
    let (c, g) = (load(&dir, DType::F32, &Device::Cpu), load(&dir, DType::F32, &gpu));
    let v = c.cfg().vocab_size as u32;
    let ids = Tensor::new(&[[1u32 % v, 7 % v, 3 % v, 11 % v, 5 % v]], &Device::Cpu).unwrap();
    let edit =
        circuitscope::hooks::Intervention::new(HookPoint::Block(0, Site::Z), circuitscope::hooks::Edit::Scale(0.5))
            .at_heads(vec![1]);
    // a CPU tensor added at a GPU model's hook point moves to the GPU
    let add = Tensor::full(0.01f32, c.cfg().d_model, &Device::Cpu).unwrap();
    let hooks = HookSet::new()
        .capture_all()
        .intervene(edit)
        .intervene(circuitscope::hooks::Intervention::new(
            HookPoint::Block(1, Site::ResidPre),
            circuitscope::hooks::Edit::Add(add),
        ))
        .tap([HookPoint::Embed, HookPoint::Block(1, Site::QInput), HookPoint::Block(0, Site::MlpOut)]);
    let (oc, og) = (c.decoder.forward(&ids, &hooks).unwrap(), g.decoder.forward(&ids, &hooks).unwrap());
    assert!(max_abs_diff(&og.logits, &oc.logits) <= 1e-4);
    for p in c.decoder.hook_points() {
        let (a, b) = (oc.cache.get(*p).unwrap(), og.cache.get(*p).unwrap());
        assert!(b.device().same_device(g.decoder.device()), "{p} left the GPU");
        assert!(max_abs_diff(b, a) <= 1e-4, "{p}: GPU and CPU captures differ");
    }
    let m = |l: &Tensor| l.narrow(1, 4, 1).unwrap().sum_all().unwrap();
    let (gc, gg) = (oc.taps.gradients(&m(&oc.logits)).unwrap(), og.taps.gradients(&m(&og.logits)).unwrap());
    for p in [HookPoint::Embed, HookPoint::Block(1, Site::QInput), HookPoint::Block(0, Site::MlpOut)] {
        let (a, b) = (gc.get(p).unwrap(), gg.get(p).unwrap());
        assert!(max_abs(a) > 1e-4, "{p}: the CPU gradient is ~0; the check would be vacuous");
        assert!(max_abs_diff(b, a) <= 1e-4 * max_abs(a).max(1.0), "{p}: GPU and CPU gradients differ");
    }
}

/// The binary: `attribute --device cuda` writes the CPU's scores (to 1e-3 relative) and records
/// the device; `--device cuda:99` is one clear error.
#[test]
fn the_cli_attributes_on_the_gpu() {
    let Some(_gpu) = gpu("the_cli_attributes_on_the_gpu") else { return };
    let dir = TempDir::new();
    let run = |dev: &str, out: &str| {
        let o = cli(&[
            "attribute",
            root().join("models/world-gpt2").to_str().unwrap(),
            "--data",
            root().join("circuits/world/tasks/ioi.jsonl").to_str().unwrap(),
            "--limit",
            "8",
            "--method",
            "eap-ig-activations",
            "--device",
            dev,
            "--out",
            dir.join(out).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "attribute --device {dev}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(out)).unwrap()).unwrap();
        v
    };
    let (c, g) = (run("cpu", "cpu.json"), run("cuda", "gpu.json"));
    let flat = |v: &serde_json::Value| -> Vec<f64> {
        let mut out = Vec::new();
        fn walk(v: &serde_json::Value, out: &mut Vec<f64>) {
            match v {
                serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&v["edges"], &mut out);
        out
    };
    let (a, b) = (flat(&c), flat(&g));
    assert!(a.len() > 100 && a.len() == b.len(), "{} vs {} numbers in the scores files", a.len(), b.len());
    let scale = a.iter().fold(0f64, |m, x| m.max(x.abs()));
    let d = a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(d <= 1e-3 * scale, "CLI scores on the GPU differ by {d} (max |score| {scale})");
    let meta = std::fs::read_to_string(dir.join("gpu.meta.json")).unwrap();
    assert!(meta.contains("\"cuda:0\""), "the meta file does not record the GPU: {meta}");
    let o = cli(&["info", root().join("models/world-gpt2").to_str().unwrap(), "--device", "cuda:99"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("cuda:99") && !err.contains("panicked"), "{err}");
}

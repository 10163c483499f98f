//! Parity with Hugging Face transformers for every supported family: logits, hook activations
//! and gradients against fixtures made by `tests/reference/make_parity_fixtures.py`.

mod common;

use candle_core::{DType, Device, Tensor};
use circuitscope::hooks::{HookPoint, HookSet};
use circuitscope::model::{LoadOptions, Model};
use common::{fixture, max_abs, max_abs_diff};
use std::collections::HashMap;

const FAMILIES: [&str; 7] = ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"];
const TOL: f64 = 1e-4;

fn reference(family: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(&format!("parity/{family}/reference.safetensors")), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{family}: cannot read the reference fixture: {e}"))
}

/// M = Σ_b logits[b, −1, A] − logits[b, −1, B], the metric the fixtures differentiate.
fn metric(logits: &Tensor, tokens: &Tensor) -> Tensor {
    let t: Vec<i64> = tokens.to_vec1().unwrap();
    let s = logits.dim(1).unwrap();
    let last = logits.narrow(1, s - 1, 1).unwrap().squeeze(1).unwrap();
    let a = last.narrow(1, t[0] as usize, 1).unwrap();
    let b = last.narrow(1, t[1] as usize, 1).unwrap();
    (a - b).unwrap().sum_all().unwrap()
}

fn check_family(family: &str) {
    let dir = fixture(&format!("parity/{family}"));
    let model = Model::load(&dir, LoadOptions::default()).unwrap_or_else(|e| panic!("{family}: {e}"));
    let r = reference(family);
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();

    let acts: Vec<HookPoint> = r.keys().filter_map(|k| k.parse::<HookPoint>().ok()).collect();
    let grads: Vec<HookPoint> =
        r.keys().filter_map(|k| k.strip_prefix("grad.")).map(|k| k.parse::<HookPoint>().unwrap()).collect();
    assert!(acts.len() >= 10 && grads.len() >= 5, "{family}: too few reference tensors");

    // Plain pass (fused kernels), then a hooked pass (differentiable ops, taps): both must match.
    let plain = model.decoder.logits(&ids).unwrap();
    let d = max_abs_diff(&plain, &r["logits"]);
    assert!(d <= TOL, "{family}: logits differ by {d}");

    let hooks = HookSet::new().capture(acts.iter().copied()).tap(grads.iter().copied());
    let out = model.decoder.forward(&ids, &hooks).unwrap();
    let d = max_abs_diff(&out.logits, &r["logits"]);
    assert!(d <= TOL, "{family}: logits (hooked pass) differ by {d}");
    for p in &acts {
        let got = out.cache.get(*p).unwrap();
        let want = &r[&p.to_string()];
        let d = max_abs_diff(got, want);
        assert!(d <= TOL, "{family}: {p} differs by {d} (max |ref| {})", max_abs(want));
    }
    let g = out.taps.gradients(&metric(&out.logits, &r["metric_tokens"])).unwrap();
    for p in &grads {
        let want = &r[&format!("grad.{p}")];
        let d = max_abs_diff(g.get(*p).unwrap(), want);
        assert!(d <= TOL, "{family}: d(metric)/d({p}) differs by {d} (max |ref| {})", max_abs(want));
        assert!(max_abs(want) > 1e-3, "{family}: reference gradient at {p} is ~0; the check would be vacuous");
    }
    eprintln!("{family}: {} activations and {} gradients match to {TOL}", acts.len(), grads.len());
}

#[test]
fn gpt2_matches_transformers() {
    check_family("gpt2");
}
#[test]
fn llama_matches_transformers() {
    check_family("llama");
}
#[test]
fn llama3_rope_scaling_tied_matches_transformers() {
    check_family("llama3");
}
#[test]
fn qwen2_matches_transformers() {
    check_family("qwen2");
}
#[test]
fn mistral_sliding_window_matches_transformers() {
    check_family("mistral");
}
#[test]
fn gpt_neox_matches_transformers() {
    check_family("gpt_neox");
}
#[test]
fn gemma_matches_transformers() {
    check_family("gemma");
}

#[test]
fn every_family_has_a_fixture() {
    for f in FAMILIES {
        assert!(fixture(&format!("parity/{f}/reference.safetensors")).exists(), "missing fixture for {f}");
    }
}

//! The Hugging Face parity check of one fixture family, on any device: `tests/parity.rs` runs it
//! on the CPU, `tests/device.rs` on a GPU.

use super::{fixture, max_abs, max_abs_diff};
use candle_core::{DType, Device, Tensor};
use circuitscope::hooks::{HookPoint, HookSet};
use circuitscope::model::{LoadOptions, Model};
use std::collections::HashMap;

pub const FAMILIES: [&str; 7] = ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"];
/// f32 against transformers' f32 (the fixtures' own rounding is far below this)
pub const TOL: f64 = 1e-4;

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

/// Loads the family's fixture model on `device` and checks its logits (plain and hooked pass),
/// hook activations and tapped gradients against transformers' within [`TOL`].
pub fn check_family_on(family: &str, device: &Device) {
    let dir = fixture(&format!("parity/{family}"));
    let opts = LoadOptions { device: device.clone(), ..Default::default() };
    let model = Model::load(&dir, opts).unwrap_or_else(|e| panic!("{family}: {e}"));
    let r = reference(family);
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();

    let acts: Vec<HookPoint> = r.keys().filter_map(|k| k.parse::<HookPoint>().ok()).collect();
    let grads: Vec<HookPoint> =
        r.keys().filter_map(|k| k.strip_prefix("grad.")).map(|k| k.parse::<HookPoint>().unwrap()).collect();
    assert!(acts.len() >= 10 && grads.len() >= 5, "{family}: too few reference tensors");

    // Plain pass (fused kernels), then a hooked pass (differentiable ops, taps): both must match.
    let plain = model.decoder.logits(&ids).unwrap();
    assert!(plain.device().same_device(device), "{family}: the logits are not on the model's device");
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

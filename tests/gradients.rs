//! Finite-difference checks of every gradient path, for every family: the gradient taps' values
//! at each hook point against central differences of the metric along a random direction,
//! computed in f64 with interventions that add ±ε·u at that point; and the fused CPU ops' gradients
//! against candle's autograd through the plain-op compositions they replace.

mod common;

use candle_core::{DType, Device, Tensor};
use circuitscope::hooks::{Edit, HookPoint, HookSet, Intervention, Site};
use circuitscope::model::{LoadOptions, Model};
use common::fixture;

/// A deterministic pseudo-random tensor in [−1, 1).
fn direction(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// log-probability of token 3 at the last position, summed over the batch
fn metric(logits: &Tensor) -> Tensor {
    let s = logits.dim(1).unwrap();
    let last = logits.narrow(1, s - 1, 1).unwrap().squeeze(1).unwrap();
    let lp = candle_nn::ops::log_softmax(&last, 1).unwrap();
    lp.narrow(1, 3, 1).unwrap().sum_all().unwrap()
}

fn points(model: &Model) -> Vec<HookPoint> {
    let c = model.cfg();
    let b = |l, s| HookPoint::Block(l, s);
    let mut v = vec![
        HookPoint::Embed,
        b(0, Site::ResidPre),
        b(0, Site::QInput),
        b(0, Site::KInput),
        b(0, Site::VInput),
        b(1, Site::Q),
        b(1, Site::K),
        b(1, Site::V),
        b(0, Site::AttnScores),
        b(1, Site::Pattern),
        b(0, Site::Z),
        b(1, Site::Result),
        b(0, Site::AttnOut),
        b(1, Site::MlpIn),
        b(0, Site::MlpPre),
        b(1, Site::MlpPost),
        b(0, Site::MlpOut),
        b(0, Site::ResidPost),
        b(1, Site::QInput),
        b(1, Site::VInput),
        HookPoint::LnFinal,
    ];
    if c.learned_positions() {
        v.push(HookPoint::PosEmbed);
    }
    if !c.parallel_residual {
        v.push(b(1, Site::ResidMid));
    }
    if c.gated_mlp {
        v.push(b(0, Site::MlpPreLinear));
    }
    v
}

fn check_family(family: &str) {
    let model =
        Model::load(fixture(&format!("parity/{family}")), LoadOptions { dtype: DType::F64, ..Default::default() })
            .unwrap_or_else(|e| panic!("{family}: {e}"));
    let ids = Tensor::new(&[[5u32, 17, 3, 40, 9, 77, 21], [1, 2, 60, 4, 33, 8, 90]], &Device::Cpu).unwrap();
    let pts = points(&model);
    let out = model.decoder.forward(&ids, &HookSet::new().tap(pts.iter().copied())).unwrap();
    let grads = out.taps.gradients(&metric(&out.logits)).unwrap();
    // the fused CPU ops against candle's autograd through plain-op compositions
    let plain = model.decoder.forward(&ids, &HookSet::new().composed().tap(pts.iter().copied())).unwrap();
    let plain_grads = plain.taps.gradients(&metric(&plain.logits)).unwrap();
    let rel = |a: &Tensor, b: &Tensor| {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        d / b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-30)
    };
    assert!(rel(&out.logits, &plain.logits) < 1e-12, "{family}: fused and composed logits differ");
    for p in &pts {
        let r = rel(grads.get(*p).unwrap(), plain_grads.get(*p).unwrap());
        assert!(r < 1e-10, "{family}: at {p} the fused ops' gradient differs from the composition's by {r:.1e}");
    }
    let eval = |p: HookPoint, delta: &Tensor| -> f64 {
        let hooks = HookSet::new().differentiable().intervene(Intervention::new(p, Edit::Add(delta.clone())));
        metric(&model.decoder.forward(&ids, &hooks).unwrap().logits).to_scalar::<f64>().unwrap()
    };
    let eps = 1e-5;
    for (i, p) in pts.iter().enumerate() {
        let g = grads.get(*p).unwrap();
        let u = direction(g.dims(), i as u64 + 1);
        let analytic = (g * &u).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        let du = (&u * eps).unwrap();
        let numeric = (eval(*p, &du) - eval(*p, &du.neg().unwrap())) / (2.0 * eps);
        let scale = analytic.abs().max(numeric.abs()).max(1e-3);
        assert!(
            (analytic - numeric).abs() / scale < 1e-5,
            "{family}: gradient at {p}: tap {analytic:.9}, finite difference {numeric:.9}"
        );
        assert!(numeric.abs() > 1e-6, "{family}: {p}: the metric does not depend on it; check is vacuous");
    }
    eprintln!("{family}: {} gradient taps agree with finite differences", pts.len());
}

#[test]
fn gpt2_gradients() {
    check_family("gpt2");
}
#[test]
fn llama_gradients() {
    check_family("llama");
}
#[test]
fn llama3_gradients() {
    check_family("llama3");
}
#[test]
fn qwen2_gradients() {
    check_family("qwen2");
}
#[test]
fn mistral_gradients() {
    check_family("mistral");
}
#[test]
fn gpt_neox_gradients() {
    check_family("gpt_neox");
}
#[test]
fn gemma_gradients() {
    check_family("gemma");
}

/// Parameter gradients (what training and unlearning follow) through the fused CPU ops equal
/// candle's autograd through the compositions, for every family and every parameter (f32, as
/// training runs; the finite-difference checks above prove the ops' backward passes in f64).
#[test]
fn parameter_gradients_of_the_fused_ops_equal_the_compositions() {
    use circuitscope::train::Trainable;
    for family in common::parity::FAMILIES {
        let t = Trainable::load(&fixture(&format!("parity/{family}")), &Device::Cpu).unwrap();
        let dec = t.decoder().unwrap();
        let ids = Tensor::new(&[[5u32, 17, 3, 40, 9, 77, 21], [1, 2, 60, 4, 33, 8, 90]], &Device::Cpu).unwrap();
        let grads = |hooks: HookSet| metric(&dec.forward(&ids, &hooks).unwrap().logits).backward().unwrap();
        let (fused, plain) =
            (grads(HookSet::new().differentiable()), grads(HookSet::new().differentiable().composed()));
        for (name, v) in &t.vars {
            let (Some(a), Some(b)) = (fused.get(v.as_tensor()), plain.get(v.as_tensor())) else {
                assert!(fused.get(v.as_tensor()).is_none() && plain.get(v.as_tensor()).is_none(), "{family}: {name}");
                continue;
            };
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-6);
            assert!(d / scale < 1e-4, "{family}: the gradient of {name} differs by {:.1e} of its largest", d / scale);
        }
        eprintln!("{family}: {} parameter gradients agree", t.vars.len());
    }
}

//! Attribution checked against independent computations: EAP against explicit loops over
//! captured activations and gradient taps and against finite differences (f64); exact patching
//! against hand-built interventions; faithfulness identities that prove the writer/reader
//! bookkeeping; batching and padding invariance; errors; and EAP-IG against the PyTorch
//! reference fixtures when they are present.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use circuitscope::attribution::writers::{mean_outputs, writer_outputs, writer_points};
use circuitscope::attribution::{
    attribute, faithfulness, Ablation, Attribution, AttributionConfig, Example, FaithfulnessConfig, Method, Metric,
    NoProgress, QkvGradients, ReaderFix,
};
use circuitscope::graph::{GraphShape, Qkv, Reader, Writer};
use circuitscope::hooks::{ActivationCache, Edit, HookPoint, HookSet, Intervention, Site};
use circuitscope::model::{LoadOptions, Model, ModelConfig};
use common::fixture;

const FAMILIES: [&str; 3] = ["gpt2", "llama", "gpt_neox"];

fn load(family: &str, dtype: DType) -> Model {
    Model::load(fixture(&format!("parity/{family}")), LoadOptions { dtype, ..Default::default() })
        .unwrap_or_else(|e| panic!("{family}: {e}"))
}

/// Three pairs of the same length (7).
fn examples() -> Vec<Example> {
    vec![
        Example::pair(vec![5, 17, 3, 40, 9, 77, 21], vec![5, 17, 3, 41, 9, 70, 21], 8, 33),
        Example::pair(vec![1, 2, 60, 4, 33, 8, 90], vec![1, 2, 61, 4, 33, 18, 90], 12, 44),
        Example::pair(vec![10, 11, 12, 13, 14, 15, 16], vec![10, 11, 22, 13, 14, 25, 17], 3, 4),
    ]
}

/// Three pairs of different lengths (7, 4, 9): batches of them are padded.
fn ragged_examples() -> Vec<Example> {
    vec![
        Example::pair(vec![5, 17, 3, 40, 9, 77, 21], vec![5, 17, 3, 41, 9, 70, 21], 8, 33),
        Example::pair(vec![1, 2, 60, 4], vec![1, 7, 61, 4], 12, 44),
        Example::pair(vec![10, 11, 12, 13, 14, 15, 16, 17, 18], vec![10, 11, 22, 13, 14, 25, 16, 17, 19], 3, 4),
    ]
}

fn config(method: Method) -> AttributionConfig {
    AttributionConfig { method, metric: Metric::LogitDiff, ablation: Ablation::Patching, ..Default::default() }
}

fn run(model: &Model, examples: &[Example], cfg: &AttributionConfig) -> Attribution {
    attribute(&model.decoder, examples, cfg, &NoProgress).unwrap_or_else(|e| panic!("{}: {e}", cfg.method.name()))
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(f64::from(x.abs())))
}

/// max |a − b| / max |b|
fn rel_dev(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
    d / max_abs(b).max(1e-30)
}

fn ids(rows: &[&[u32]]) -> Tensor {
    let s = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), s), &Device::Cpu).unwrap()
}

fn clean_ids(ex: &[Example]) -> Tensor {
    ids(&ex.iter().map(|e| e.clean.as_slice()).collect::<Vec<_>>())
}

fn corrupted_ids(ex: &[Example]) -> Tensor {
    ids(&ex.iter().map(|e| e.corrupted.as_deref().unwrap()).collect::<Vec<_>>())
}

/// Per-item loss −(logit[answer] − logit[distractor]) at the last position (same-length items).
fn losses(logits: &Tensor, ex: &[Example]) -> Tensor {
    let s = logits.dim(1).unwrap();
    let last = logits.i((.., s - 1, ..)).unwrap().contiguous().unwrap(); // (b, V)
    let pick = |f: &dyn Fn(&Example) -> u32| {
        let idx: Vec<u32> = ex.iter().map(f).collect();
        let idx = Tensor::new(idx, &Device::Cpu).unwrap().unsqueeze(1).unwrap();
        last.gather(&idx, 1).unwrap().squeeze(1).unwrap()
    };
    let target = |e: &Example| match e.target {
        circuitscope::attribution::Target::Pair { answer, distractor } => (answer, distractor),
        _ => unreachable!(),
    };
    (pick(&|e| target(e).1) - pick(&|e| target(e).0)).unwrap()
}

fn mean_loss(logits: &Tensor, ex: &[Example]) -> f64 {
    losses(logits, ex).to_dtype(DType::F64).unwrap().mean_all().unwrap().to_scalar::<f64>().unwrap()
}

// ---- an independent statement of the graph's writers and readers, from ALGORITHMS.md §1 ----

fn all_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v = vec![HookPoint::Embed];
    if cfg.learned_positions() {
        v.push(HookPoint::PosEmbed);
    }
    for l in 0..cfg.n_layers {
        v.extend([Site::Result, Site::MlpOut].map(|s| HookPoint::Block(l, s)));
    }
    v
}

fn reader_taps(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v = Vec::new();
    for l in 0..cfg.n_layers {
        v.extend([Site::QInput, Site::KInput, Site::VInput, Site::MlpIn].map(|s| HookPoint::Block(l, s)));
    }
    v.push(HookPoint::Block(cfg.n_layers - 1, Site::ResidPost));
    v
}

/// Writer u's output (b, s, d) from a cache.
fn writer_out(cache: &ActivationCache, cfg: &ModelConfig, w: Writer) -> Tensor {
    match w {
        Writer::Input => {
            let e = cache.get(HookPoint::Embed).unwrap().clone();
            if cfg.learned_positions() {
                (e + cache.get(HookPoint::PosEmbed).unwrap()).unwrap()
            } else {
                e
            }
        }
        Writer::Head { layer, head } => {
            cache.get(HookPoint::Block(layer, Site::Result)).unwrap().i((.., .., head, ..)).unwrap()
        }
        Writer::Mlp { layer } => cache.get(HookPoint::Block(layer, Site::MlpOut)).unwrap().clone(),
    }
}

fn reader_point(cfg: &ModelConfig, r: Reader) -> (HookPoint, Option<usize>) {
    match r {
        Reader::Head { layer, head, qkv } => {
            let site = match qkv {
                Qkv::Q => Site::QInput,
                Qkv::K => Site::KInput,
                Qkv::V => Site::VInput,
            };
            (HookPoint::Block(layer, site), Some(head))
        }
        Reader::Mlp { layer } => (HookPoint::Block(layer, Site::MlpIn), None),
        Reader::Logits => (HookPoint::Block(cfg.n_layers - 1, Site::ResidPost), None),
    }
}

/// An intervention adding `dz` (b, s, d) into reader r's input only.
fn add_into(cfg: &ModelConfig, r: Reader, dz: &Tensor) -> Intervention {
    let (point, head) = reader_point(cfg, r);
    match head {
        Some(h) => Intervention::new(point, Edit::Add(dz.unsqueeze(2).unwrap())).at_heads(vec![h]),
        None => Intervention::new(point, Edit::Add(dz.clone())),
    }
}

struct Runs {
    clean: ActivationCache,
    corrupted: ActivationCache,
    clean_loss: f64,
}

fn clean_and_corrupted(model: &Model, ex: &[Example]) -> Runs {
    let cap = HookSet::new().capture(all_points(model.cfg()));
    let c = model.decoder.forward(&clean_ids(ex), &cap).unwrap();
    let k = model.decoder.forward(&corrupted_ids(ex), &cap).unwrap();
    Runs { clean_loss: mean_loss(&c.logits, ex), clean: c.cache, corrupted: k.cache }
}

fn delta(model: &Model, runs: &Runs, w: Writer) -> Tensor {
    let cfg = model.cfg();
    (writer_out(&runs.corrupted, cfg, w) - writer_out(&runs.clean, cfg, w)).unwrap()
}

/// Mean loss of the clean batch with the given additions.
fn patched_loss(model: &Model, ex: &[Example], edits: Vec<Intervention>) -> f64 {
    let mut hooks = HookSet::new();
    for e in edits {
        hooks = hooks.intervene(e);
    }
    mean_loss(&model.decoder.forward(&clean_ids(ex), &hooks).unwrap().logits, ex)
}

/// A few edges of every kind: into q/k/v/MLP/logits, from input/heads/MLPs.
fn sample_edges(shape: GraphShape, scores: &[f32]) -> Vec<(usize, usize)> {
    let edges: Vec<(usize, usize)> = shape.edges().collect();
    let mut pick: Vec<(usize, usize)> = edges.iter().copied().step_by(edges.len() / 10).collect();
    let nb = shape.n_bwd();
    let mut by_size = edges.clone();
    by_size.sort_by(|a, b| scores[b.0 * nb + b.1].abs().total_cmp(&scores[a.0 * nb + a.1].abs()));
    pick.extend(by_size.into_iter().take(4));
    pick.push((0, shape.reader_index(Reader::Logits)));
    pick
}

#[test]
fn eap_equals_explicit_loops_over_captures_and_gradient_taps() {
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let shape = GraphShape::of(cfg);
        let ex = examples();
        let got = run(&model, &ex, &config(Method::Eap));
        assert_eq!(got.passes.forwards, 2, "{family}: EAP is 2 forwards");
        assert_eq!(got.passes.backwards, 1, "{family}: EAP is 1 backward");

        // Independent: one item at a time, flat f64 vectors, explicit sums.
        let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
        let mut want = vec![0f64; nf * nb];
        for item in ex.chunks(1) {
            let runs = clean_and_corrupted(&model, item);
            let hooks = HookSet::new().tap(reader_taps(cfg));
            let out = model.decoder.forward(&clean_ids(item), &hooks).unwrap();
            let loss = losses(&out.logits, item).sum_all().unwrap();
            let grads = out.taps.gradients(&loss).unwrap();
            let flat = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
            let dz: Vec<Vec<f64>> = (0..nf).map(|w| flat(&delta(&model, &runs, shape.writer(w)))).collect();
            for r in 0..nb {
                let (point, head) = reader_point(cfg, shape.reader(r));
                let g = grads.get(point).unwrap();
                let g = flat(&match head {
                    Some(h) => g.i((.., .., h, ..)).unwrap(),
                    None => g.clone(),
                });
                for (w, dzw) in dz.iter().enumerate() {
                    if shape.is_edge(shape.writer(w), shape.reader(r)) {
                        let mut s = 0.0;
                        for k in 0..g.len() {
                            s += dzw[k] * g[k];
                        }
                        want[w * nb + r] += s / ex.len() as f64;
                    }
                }
            }
        }
        let want: Vec<f32> = want.into_iter().map(|x| x as f32).collect();
        let dev = rel_dev(&got.scores.scores, &want);
        eprintln!("{family}: EAP vs explicit loops, max deviation {dev:.2e} of max |score| {:.3e}", max_abs(&want));
        assert!(dev < 1e-5, "{family}: EAP deviates from the explicit computation by {dev:e}");
    }
}

#[test]
fn eap_equals_finite_differences_of_edge_patches() {
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let shape = GraphShape::of(cfg);
        let ex = examples();
        let got = run(&model, &ex, &config(Method::Eap));
        let runs = clean_and_corrupted(&model, &ex);
        let eps = 1e-5;
        let mut worst = 0f64;
        for (w, r) in sample_edges(shape, &got.scores.scores) {
            let dz = delta(&model, &runs, shape.writer(w));
            let (wr, rd) = (shape.writer(w), shape.reader(r));
            let plus = patched_loss(&model, &ex, vec![add_into(cfg, rd, &(&dz * eps).unwrap())]);
            let minus = patched_loss(&model, &ex, vec![add_into(cfg, rd, &(&dz * -eps).unwrap())]);
            let fd = (plus - minus) / (2.0 * eps);
            let eap = f64::from(got.scores.get(w, r));
            let rel = (fd - eap).abs() / fd.abs().max(eap.abs()).max(1e-6);
            worst = worst.max(rel);
            assert!(
                rel < 1e-5,
                "{family}: {}: EAP {eap:.9e}, finite difference {fd:.9e}",
                circuitscope::graph::edge_name(wr, rd)
            );
        }
        eprintln!("{family}: EAP vs finite differences, worst relative deviation {worst:.2e}");
    }
}

#[test]
fn exact_patching_of_one_edge_equals_a_hand_built_intervention() {
    for family in ["gpt2", "llama"] {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let shape = GraphShape::of(cfg);
        let ex = examples();
        let got = run(&model, &ex, &AttributionConfig { max_rows: 8, ..config(Method::Exact) });
        let runs = clean_and_corrupted(&model, &ex);
        let mut worst = 0f64;
        for (w, r) in sample_edges(shape, &got.scores.scores) {
            let dz = delta(&model, &runs, shape.writer(w));
            let want = patched_loss(&model, &ex, vec![add_into(cfg, shape.reader(r), &dz)]) - runs.clean_loss;
            let have = f64::from(got.scores.get(w, r));
            worst = worst.max((want - have).abs());
            assert!((want - have).abs() < 1e-6 * want.abs().max(1.0), "{family}: edge ({w}, {r}): {have} vs {want}");
        }
        eprintln!("{family}: exact vs hand-built patches, max deviation {worst:.2e}");
    }
}

#[test]
fn exact_patching_with_a_tiny_difference_approaches_eap() {
    let model = load("gpt2", DType::F64);
    let ex = examples();
    let alpha = 1e-5;
    let eap = run(&model, &ex, &config(Method::Eap));
    let exact = run(&model, &ex, &AttributionConfig { ablation: Ablation::Partial { alpha }, ..config(Method::Exact) });
    let scaled: Vec<f32> = exact.scores.scores.iter().map(|s| (f64::from(*s) / alpha) as f32).collect();
    let dev = rel_dev(&scaled, &eap.scores.scores);
    eprintln!("gpt2: exact(α = {alpha:e})/α vs EAP, max deviation {dev:.2e}");
    assert!(dev < 1e-3, "exact patching of α·Δ, divided by α, deviates from EAP by {dev:e}");
}

#[test]
fn faithfulness_of_the_full_and_the_empty_circuit_are_the_model_and_the_corrupted_run() {
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let shape = GraphShape::of(model.cfg());
        let ex = examples();
        let n = shape.n_fwd() * shape.n_bwd();
        let (full, empty) = (vec![true; n], vec![false; n]);
        // One edge removed: the patched run must equal exact patching of that edge.
        let exact = run(&model, &ex, &config(Method::Exact));
        let (w, r) = sample_edges(shape, &exact.scores.scores)[10];
        let mut all_but_one = full.clone();
        all_but_one[w * shape.n_bwd() + r] = false;
        let cfg = FaithfulnessConfig { metric: Metric::LogitDiff, ablation: Ablation::Patching, batch_size: 2 };
        let f =
            faithfulness(&model.decoder, &ex, &[full.clone(), empty.clone(), all_but_one], &cfg, &NoProgress).unwrap();

        let clean = -mean_loss(&model.decoder.logits(&clean_ids(&ex)).unwrap(), &ex);
        let corrupted = -mean_loss(&model.decoder.logits(&corrupted_ids(&ex)).unwrap(), &ex);
        assert!((f.model - clean).abs() < 1e-9, "{family}: M(model) {} vs {clean}", f.model);
        assert!((f.corrupted - corrupted).abs() < 1e-9, "{family}: M(corrupted) {} vs {corrupted}", f.corrupted);
        assert!((f.circuits[0] - clean).abs() < 1e-9, "{family}: the full circuit gives {}", f.circuits[0]);
        // Every edge patched reproduces the corrupted run: in_v = Σ writers + biases holds.
        assert!(
            (f.circuits[1] - corrupted).abs() < 1e-9,
            "{family}: the empty circuit gives {}, the corrupted run {corrupted}",
            f.circuits[1]
        );
        assert!((f.normalised[0] - 1.0).abs() < 1e-9 && f.normalised[1].abs() < 1e-9, "{family}: {:?}", f.normalised);
        // value = −loss, exact score = loss(patched) − loss(clean) (scores are stored as f32)
        let one = clean - f64::from(exact.scores.get(w, r));
        assert!((f.circuits[2] - one).abs() < 1e-7, "{family}: one edge removed: {} vs exact {one}", f.circuits[2]);
        eprintln!(
            "{family}: M(model) {clean:.6}, M(corrupted) {corrupted:.6}, empty circuit {:.6}; {} forwards",
            f.circuits[1], f.passes.forwards
        );
        // Per batch (2 of them): the corrupted and the clean run, then one pass per circuit that
        // leaves out an edge (the empty one and the one-edge one; the full circuit needs none).
        assert_eq!((f.passes.forwards, f.passes.backwards), (2 * (2 + 2), 0), "{family}");

        // Zero ablation: the empty circuit is the reference point by definition.
        let zero = FaithfulnessConfig { ablation: Ablation::Zero, ..cfg };
        let f = faithfulness(&model.decoder, &ex, &[full, empty], &zero, &NoProgress).unwrap();
        assert!((f.circuits[0] - clean).abs() < 1e-9 && (f.circuits[1] - f.corrupted).abs() < 1e-12, "{family}");
    }
}

/// Deterministic masks over the graph's edges with about `density` of them in the circuit.
fn random_mask(shape: GraphShape, density: f64, seed: u64) -> Vec<bool> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut m = vec![false; shape.n_fwd() * shape.n_bwd()];
    for (w, r) in shape.edges() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        m[w * shape.n_bwd() + r] = ((state >> 33) as f64 / (1u64 << 31) as f64) < density;
    }
    m
}

/// Faithfulness by definition, the slow way: add Σ_{u ∉ C_v} (z'_u − z_u) into every reader v
/// with z_u from the previous pass, repeated until every writer's output is that of the patched
/// run (2L + 1 passes make every writer group exact; one more to be sure).
fn fixed_point_value(model: &Model, ex: &[Example], mask: &[bool], z_prime: &dyn Fn(Writer) -> Tensor) -> f64 {
    let cfg = model.cfg();
    let shape = GraphShape::of(cfg);
    let nb = shape.n_bwd();
    let cap = HookSet::new().capture(all_points(cfg));
    let mut cache = model.decoder.forward(&clean_ids(ex), &cap).unwrap().cache;
    let mut value = 0.0;
    for _ in 0..2 * cfg.n_layers + 2 {
        let mut hooks = cap.clone();
        for r in 0..nb {
            let mut sum: Option<Tensor> = None;
            for w in (0..shape.n_fwd()).filter(|&w| shape.is_edge(shape.writer(w), shape.reader(r))) {
                if !mask[w * nb + r] {
                    let d = (z_prime(shape.writer(w)) - writer_out(&cache, cfg, shape.writer(w))).unwrap();
                    sum = Some(match sum {
                        Some(s) => (s + d).unwrap(),
                        None => d,
                    });
                }
            }
            if let Some(sum) = sum {
                hooks = hooks.intervene(add_into(cfg, shape.reader(r), &sum));
            }
        }
        let out = model.decoder.forward(&clean_ids(ex), &hooks).unwrap();
        value = -mean_loss(&out.logits, ex);
        cache = out.cache;
    }
    value
}

#[test]
fn one_pass_faithfulness_equals_the_fixed_point_definition_on_mixed_circuits() {
    // Densities either side of 1/2: readers are patched from both sides of the circuit.
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let shape = GraphShape::of(cfg);
        let ex = examples();
        let mut masks: Vec<Vec<bool>> =
            [(0.3, 1), (0.5, 2), (0.9, 3)].iter().map(|&(d, seed)| random_mask(shape, d, seed)).collect();
        // A circuit without edges into the logits is the corrupted run at the metric: keep one.
        let last_mlp = shape.writer_index(Writer::Mlp { layer: cfg.n_layers - 1 });
        masks[0][last_mlp * shape.n_bwd() + shape.reader_index(Reader::Logits)] = true;
        let runs = clean_and_corrupted(&model, &ex);
        let patching = FaithfulnessConfig { metric: Metric::LogitDiff, ablation: Ablation::Patching, batch_size: 3 };
        let zero = FaithfulnessConfig { ablation: Ablation::Zero, ..patching.clone() };
        let f = faithfulness(&model.decoder, &ex, &masks, &patching, &NoProgress).unwrap();
        let fz = faithfulness(&model.decoder, &ex, &masks, &zero, &NoProgress).unwrap();
        assert_eq!(f.passes.forwards, 2 + masks.len(), "{family}: one forward per circuit");
        assert_eq!(fz.passes.forwards, 1 + 1 + masks.len(), "{family}: clean, empty circuit, one per circuit");
        for (i, mask) in masks.iter().enumerate() {
            let want = fixed_point_value(&model, &ex, mask, &|w: Writer| writer_out(&runs.corrupted, cfg, w));
            let got = f.circuits[i];
            eprintln!("{family} mask {i}: one pass {got:.9}, fixed point {want:.9}");
            assert!((got - want).abs() < 1e-9 * want.abs().max(1.0), "{family} mask {i}: {got} vs {want}");
            let zeros = |w: Writer| writer_out(&runs.clean, cfg, w).zeros_like().unwrap();
            let want = fixed_point_value(&model, &ex, mask, &zeros);
            let got = fz.circuits[i];
            assert!((got - want).abs() < 1e-9 * want.abs().max(1.0), "{family} zero, mask {i}: {got} vs {want}");
        }
    }
}

#[test]
fn batching_and_padding_change_no_score() {
    for family in ["gpt2", "llama"] {
        let model = load(family, DType::F32);
        let ex = ragged_examples();
        let reference: Vec<Vec<u32>> = ex.iter().map(|e| e.clean.clone()).collect();
        let both = ReaderFix { qk: true, mlp: true };
        // every method, and the metrics, ablations and fixes that take other paths through a batch
        let configs = [
            config(Method::Eap),
            config(Method::EapIgInputs { steps: 3 }),
            config(Method::EapIgActivations { steps: 2 }),
            config(Method::CleanCorrupted),
            config(Method::Exact),
            AttributionConfig { fix: both, ..config(Method::EapIgActivations { steps: 2 }) },
            // (EAP-IG: the gradient of KL at the clean run, all EAP sees, is zero)
            AttributionConfig {
                metric: Metric::Kl,
                ablation: Ablation::Zero,
                ..config(Method::EapIgInputs { steps: 3 })
            },
            AttributionConfig {
                metric: Metric::ProbDiff,
                ablation: Ablation::Mean { reference, per_position: false },
                ..config(Method::EapIgInputs { steps: 3 })
            },
        ];
        for cfg in configs {
            let what = format!(
                "{family} {} ({}, {}, fix {})",
                cfg.method.name(),
                cfg.metric,
                cfg.ablation.name(),
                cfg.fix.name()
            );
            let one = run(&model, &ex, &AttributionConfig { batch_size: 1, ..cfg.clone() });
            let three = run(&model, &ex, &AttributionConfig { batch_size: 3, per_sample: true, ..cfg.clone() });
            let dev = rel_dev(&three.scores.scores, &one.scores.scores);
            eprintln!("{what}: batch 3 (padded) vs batch 1, max deviation {dev:.2e} of the largest score");
            assert!(dev < 1e-5, "{what}: batch of 3 deviates by {dev:e}");
            let per = three.per_sample.as_ref().unwrap();
            assert_eq!(per.len(), 3);
            let mean: Vec<f32> = (0..per[0].scores.len())
                .map(|k| per.iter().map(|p| f64::from(p.scores[k])).sum::<f64>() as f32 / 3.0)
                .collect();
            let dev = rel_dev(&mean, &three.scores.scores);
            assert!(dev < 1e-6, "{what}: mean of per-sample scores deviates by {dev:e}");
            // Item 1 alone (no padding) equals its per-sample scores from the padded batch.
            let alone = run(&model, &ex[1..2], &AttributionConfig { batch_size: 1, ..cfg.clone() });
            let dev = rel_dev(&per[1].scores, &alone.scores.scores);
            assert!(dev < 1e-5, "{what}: item 1's padded scores deviate by {dev:e}");
        }
    }
}

#[test]
fn analytic_qkv_input_gradients_equal_the_tapped_ones() {
    // Every family: LayerNorm/RMSNorm, Gemma's (1 + w), GQA (llama, qwen2, mistral, gemma), biases.
    for family in ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"] {
        let model = load(family, DType::F32);
        for method in [Method::Eap, Method::EapIgActivations { steps: 2 }] {
            let taps = AttributionConfig { qkv_gradients: QkvGradients::Taps, per_sample: true, ..config(method) };
            let slow = run(&model, &ragged_examples(), &taps);
            let fast =
                run(&model, &ragged_examples(), &AttributionConfig { qkv_gradients: QkvGradients::Analytic, ..taps });
            let dev = rel_dev(&fast.scores.scores, &slow.scores.scores);
            eprintln!("{family} {}: analytic vs tapped q/k/v input gradients, max deviation {dev:.2e}", method.name());
            assert!(dev < 1e-5, "{family} {}: analytic q/k/v gradients deviate by {dev:e}", method.name());
        }
    }
}

#[test]
fn node_scores_are_the_row_sums_of_the_edge_scores() {
    // Every read of the stream goes through a reader, so ∂L/∂z_u = Σ_{u→v} ∂L/∂in_v.
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let shape = GraphShape::of(model.cfg());
        for method in [Method::Eap, Method::EapIgActivations { steps: 2 }] {
            let got = run(&model, &examples(), &config(method));
            let nodes = got.node_scores.as_ref().unwrap();
            let rows: Vec<f32> = (0..shape.n_fwd())
                .map(|w| (0..shape.n_bwd()).map(|r| f64::from(got.scores.get(w, r))).sum::<f64>() as f32)
                .collect();
            let dev = rel_dev(nodes, &rows);
            assert!(dev < 1e-6, "{family} {}: node scores deviate from row sums by {dev:e}", method.name());
        }
    }
}

#[test]
fn clean_corrupted_is_the_mean_of_eap_and_the_gradient_at_the_corrupted_input() {
    let model = load("llama", DType::F64);
    let ex = examples();
    let eap = run(&model, &ex, &config(Method::Eap));
    let at_corrupted = run(&model, &ex, &config(Method::EapIgInputs { steps: 1 })); // k = 0 only
    let cc = run(&model, &ex, &config(Method::CleanCorrupted));
    let mean: Vec<f32> =
        eap.scores.scores.iter().zip(&at_corrupted.scores.scores).map(|(a, b)| (a + b) / 2.0).collect();
    let dev = rel_dev(&cc.scores.scores, &mean);
    assert!(dev < 1e-6, "clean-corrupted deviates by {dev:e}");
    assert_eq!((cc.passes.forwards, cc.passes.backwards), (4, 2));
    // one interpolation step per pass (rows = the batch's 3 items), and all 5 in one pass
    let one = |method| AttributionConfig { max_rows: 3, ..config(method) };
    let ig = run(&model, &ex, &one(Method::EapIgInputs { steps: 5 }));
    assert_eq!((ig.passes.forwards, ig.passes.backwards), (7, 5), "EAP-IG inputs: 2F + m(F+B)");
    let act = run(&model, &ex, &one(Method::EapIgActivations { steps: 5 }));
    assert_eq!((act.passes.forwards, act.passes.backwards), (2 + 5 * 5, 25), "EAP-IG activations: 2F + (2L+1)m(F+B)");
    // one item a batch: its 5 steps share a pass (3 batches)
    let each = |method| AttributionConfig { batch_size: 1, ..config(method) };
    let ig = run(&model, &ex, &each(Method::EapIgInputs { steps: 5 }));
    assert_eq!((ig.passes.forwards, ig.passes.backwards), (3 * 3, 3), "EAP-IG inputs, steps batched: 2F + (F+B)");
    let act = run(&model, &ex, &each(Method::EapIgActivations { steps: 5 }));
    assert_eq!((act.passes.forwards, act.passes.backwards), (3 * (2 + 5), 3 * 5), "EAP-IG activations, steps batched");
}

/// EAP-IG's interpolation steps several to a pass (the batch repeated once per step) give the
/// scores of one step per pass: edges, nodes and per-item scores, with the KL metric (whose
/// reference is repeated too), the reader fixes, learned positions (GPT-2) and rotary (Llama),
/// and a last pass with fewer steps than the others.
#[test]
fn interpolation_steps_batched_give_the_scores_of_one_step_per_pass() {
    for family in ["gpt2", "llama"] {
        let model = load(family, DType::F64);
        let ex = examples();
        for method in [Method::EapIgInputs { steps: 5 }, Method::EapIgActivations { steps: 3 }] {
            for (metric, fix) in
                [(Metric::LogitDiff, ReaderFix::default()), (Metric::Kl, ReaderFix { qk: true, mlp: true })]
            {
                // one item a batch, whose steps share passes up to max_rows
                let base = AttributionConfig { metric, fix, per_sample: true, batch_size: 1, ..config(method) };
                let single = run(&model, &ex, &AttributionConfig { max_rows: 1, ..base.clone() });
                // 2 steps per pass: 5 = 2 + 2 + 1 and 3 = 2 + 1
                let paired = run(&model, &ex, &AttributionConfig { max_rows: 2, ..base.clone() });
                let all = run(&model, &ex, &AttributionConfig { max_rows: 64, ..base.clone() });
                // two items a batch, all their steps in one pass
                let two = run(&model, &ex, &AttributionConfig { max_rows: 64, batch_size: 2, ..base });
                for (name, got) in [("2 per pass", &paired), ("all in one pass", &all), ("2 items, one pass", &two)] {
                    let what = format!("{family} {} {metric:?} {name}", method.name());
                    let dev = rel_dev(&got.scores.scores, &single.scores.scores);
                    assert!(dev < 1e-6, "{what}: edge scores deviate by {dev:e}");
                    let dev = rel_dev(got.node_scores.as_ref().unwrap(), single.node_scores.as_ref().unwrap());
                    assert!(dev < 1e-6, "{what}: node scores deviate by {dev:e}");
                    let (a, b) = (got.per_sample.as_ref().unwrap(), single.per_sample.as_ref().unwrap());
                    for (x, y) in a.iter().zip(b) {
                        let dev = rel_dev(&x.scores, &y.scores);
                        assert!(dev < 1e-6, "{what}: per-item scores deviate by {dev:e}");
                    }
                    assert!(got.passes.forwards < single.passes.forwards, "{what}: no pass was saved");
                }
            }
        }
    }
}

#[test]
fn progress_reaches_the_planned_total_of_forward_passes() {
    let model = load("gpt2", DType::F32);
    let ex = ragged_examples();
    let methods = [
        Method::Eap,
        Method::EapIgInputs { steps: 3 },
        Method::EapIgActivations { steps: 2 },
        Method::CleanCorrupted,
        Method::Exact,
    ];
    for method in methods {
        for ablation in [Ablation::Patching, Ablation::Mean { reference: vec![vec![1, 2, 3]], per_position: false }] {
            let seen = std::cell::RefCell::new(Vec::new());
            let record = |done: u64, total: u64| seen.borrow_mut().push((done, total));
            let cfg = AttributionConfig { batch_size: 2, max_rows: 16, ablation, ..config(method) };
            let got = attribute(&model.decoder, &ex, &cfg, &record).unwrap();
            let seen = seen.into_inner();
            let last = *seen.last().unwrap();
            assert_eq!(last, (got.passes.forwards as u64, got.passes.forwards as u64), "{}: {seen:?}", method.name());
            assert!(seen.iter().all(|&(_, t)| t == last.1), "{}: the planned total changed: {seen:?}", method.name());
            assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }
}

#[test]
fn clean_and_corrupted_of_different_lengths_are_an_error_naming_the_item() {
    let model = load("gpt2", DType::F32);
    let mut ex = examples();
    ex[1].corrupted = Some(vec![1, 2, 61, 4, 33, 18]);
    let err = attribute(&model.decoder, &ex, &config(Method::Eap), &NoProgress).unwrap_err().to_string();
    assert!(err.contains("example 1") && err.contains('7') && err.contains('6'), "{err}");
    // The same check holds in the second batch: indices are of the whole dataset.
    let err = attribute(&model.decoder, &ex, &AttributionConfig { batch_size: 1, ..config(Method::Eap) }, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("example 1"), "{err}");
    // Question/answer examples have no corrupted prompts: patching says so.
    let qa = vec![Example::qa(vec![5, 6, 7], vec![8, 9])];
    let err = attribute(&model.decoder, &qa, &config(Method::Eap), &NoProgress).unwrap_err().to_string();
    assert!(err.contains("corrupted") && err.contains("example 0"), "{err}");
    let err = attribute(
        &model.decoder,
        &qa,
        &AttributionConfig { ablation: Ablation::Zero, ..config(Method::Eap) },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("logit-diff") && err.contains("pairs"), "{err}");
}

#[test]
fn scores_follow_the_graph_shape_of_gqa_and_parallel_residual_models() {
    for family in ["llama", "gpt_neox", "gpt2"] {
        let model = load(family, DType::F32);
        let shape = GraphShape::of(model.cfg());
        let got = run(&model, &examples(), &config(Method::Eap));
        assert_eq!(got.scores.shape, shape);
        assert_eq!(got.scores.scores.len(), shape.n_fwd() * shape.n_bwd());
        let nonzero = got.scores.scores.iter().filter(|s| **s != 0.0).count();
        let zero: Vec<String> = got
            .scores
            .edges()
            .filter(|e| e.2 == 0.0)
            .map(|(w, r, _)| circuitscope::graph::edge_name(shape.writer(w), shape.reader(r)))
            .collect();
        assert_eq!(nonzero, shape.n_edges(), "{family}: one non-zero score per edge, none elsewhere; zero: {zero:?}");
        let own_heads = got.scores.score(Writer::Head { layer: 1, head: 0 }, Reader::Mlp { layer: 1 });
        assert_eq!(own_heads == 0.0, model.cfg().parallel_residual, "{family}: a1.h0 -> m1 is an edge iff sequential");
        eprintln!("{family}: {} edges", shape.n_edges());
    }
}

#[test]
fn sequence_metrics_score_answers_given_questions() {
    let model = load("llama", DType::F64);
    // Two questions of different lengths, answers of 2 and 3 tokens.
    let qa = vec![Example::qa(vec![1, 5, 6, 7], vec![8, 9]), Example::qa(vec![1, 15, 16], vec![18, 19, 20])];
    // Hand computation: mean NLL per item, one item at a time.
    let nll = |e: &Example| -> f64 {
        let logits = model.decoder.logits(&ids(&[&e.clean])).unwrap().squeeze(0).unwrap();
        let lp = candle_nn::ops::log_softmax(&logits, 1).unwrap();
        let circuitscope::attribution::Target::Sequence { prompt_len } = e.target else { unreachable!() };
        let terms: Vec<f64> = (prompt_len - 1..e.clean.len() - 1)
            .map(|p| -lp.i((p, e.clean[p + 1] as usize)).unwrap().to_scalar::<f64>().unwrap())
            .collect();
        terms.iter().sum::<f64>() / terms.len() as f64
    };
    let want_nll = (nll(&qa[0]) + nll(&qa[1])) / 2.0;
    let want_p = ((-nll(&qa[0])).exp() + (-nll(&qa[1])).exp()) / 2.0;
    for (metric, want) in [(Metric::Nll, want_nll), (Metric::SeqProb, want_p)] {
        let cfg = AttributionConfig { metric, ablation: Ablation::Zero, batch_size: 2, ..config(Method::Eap) };
        let got = run(&model, &qa, &cfg);
        assert!((got.clean_metric - want).abs() < 1e-10, "{metric}: {} vs {want}", got.clean_metric);
        let alone = run(&model, &qa, &AttributionConfig { batch_size: 1, ..cfg.clone() });
        let dev = rel_dev(&got.scores.scores, &alone.scores.scores);
        assert!(dev < 1e-9, "{metric}: padding changed the scores by {dev:e}");
    }
}

/// The mean ablations' z': each writer's output averaged by hand over sequences run one at a
/// time (no padding), per position over the sequences that reach it, or over every (sequence,
/// position); against `mean_outputs`, which runs ragged batches with padding.
#[test]
fn mean_outputs_are_the_averages_over_the_reference_sequences() {
    let reference: Vec<Vec<u32>> = vec![vec![5, 17, 3, 40, 9], vec![1, 2], vec![10, 11, 12, 13, 14, 15, 16]];
    let s_max = 7;
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let n_fwd = GraphShape::of(cfg).n_fwd();
        let alone: Vec<Tensor> = reference
            .iter()
            .map(|r| {
                let ids = Tensor::new(r.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                let out = model.decoder.forward(&ids, &HookSet::new().capture(writer_points(cfg))).unwrap();
                writer_outputs(&out.cache, cfg, DType::F64).unwrap().i((.., 0, .., ..)).unwrap()
                // (n_fwd, s, d)
            })
            .collect();
        let average = |parts: &[Tensor]| {
            let n: usize = parts.iter().map(|t| t.dim(1).unwrap()).sum();
            (Tensor::cat(parts, 1).unwrap().sum(1).unwrap() / n as f64).unwrap()
            // (n_fwd, d)
        };
        let close = |got: &Tensor, want: &Tensor, what: &str| {
            let dev = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(dev < 1e-10, "{family}: {what}: deviation {dev:e}");
        };
        let (per_position, passes) = mean_outputs(&model.decoder, &reference, true, 2).unwrap();
        assert_eq!((per_position.dims4().unwrap(), passes), ((n_fwd, 1, s_max, cfg.d_model), 2));
        for p in 0..s_max {
            let reaching: Vec<Tensor> =
                alone.iter().filter(|z| z.dim(1).unwrap() > p).map(|z| z.narrow(1, p, 1).unwrap()).collect();
            close(&per_position.i((.., 0, p, ..)).unwrap(), &average(&reaching), &format!("position {p}"));
        }
        let (overall, _) = mean_outputs(&model.decoder, &reference, false, 2).unwrap();
        assert_eq!(overall.dims4().unwrap(), (n_fwd, 1, 1, cfg.d_model));
        close(&overall.i((.., 0, 0, ..)).unwrap(), &average(&alone), "over every position");
    }
}

#[test]
fn mean_ablation_uses_reference_means() {
    let model = load("gpt2", DType::F64);
    let ex = examples();
    let reference: Vec<Vec<u32>> = ex.iter().map(|e| e.clean.clone()).collect();
    // Per-position means: runs, and a reference shorter than the examples is refused.
    let cfg = AttributionConfig {
        ablation: Ablation::Mean { reference: reference.clone(), per_position: true },
        ..config(Method::Eap)
    };
    let got = run(&model, &ex, &cfg);
    assert!(max_abs(&got.scores.scores) > 0.0);
    let short = AttributionConfig {
        ablation: Ablation::Mean { reference: vec![vec![1, 2, 3]], per_position: true },
        ..config(Method::Eap)
    };
    let err = attribute(&model.decoder, &ex, &short, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("3 positions") && err.contains('7'), "{err}");
    // Mean over items and positions: there is no corrupted run to report.
    let cfg = AttributionConfig { ablation: Ablation::Mean { reference, per_position: false }, ..config(Method::Eap) };
    let mean = run(&model, &ex, &cfg);
    assert!(mean.corrupted_metric.is_none() && max_abs(&mean.scores.scores) > 0.0);
}

// ---- EAP-IG reference fixtures (tests/reference/eap_ig_reference.py) ----

#[test]
fn scores_match_the_pytorch_eap_ig_reference() {
    for family in FAMILIES {
        // committed with the repository: missing is a failure, not a skip
        let path = fixture(&format!("eap_ig/{family}/reference.safetensors"));
        assert!(path.exists(), "{} is missing (tests/reference/eap_ig_reference.py makes it)", path.display());
        let refs = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let get = |k: &str| refs.get(k).unwrap_or_else(|| panic!("{family}: reference has no `{k}`"));
        let to_u32 = |k: &str| -> Vec<Vec<u32>> {
            get(k)
                .to_dtype(DType::I64)
                .unwrap()
                .to_vec2::<i64>()
                .unwrap()
                .into_iter()
                .map(|r| r.into_iter().map(|x| x as u32).collect())
                .collect()
        };
        let to_u32_1 = |k: &str| -> Vec<u32> {
            get(k).to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap().into_iter().map(|x| x as u32).collect()
        };
        let (clean, corrupted) = (to_u32("clean_ids"), to_u32("corrupted_ids"));
        let (answer, distractor) = (to_u32_1("answer"), to_u32_1("distractor"));
        let ex: Vec<Example> = (0..clean.len())
            .map(|i| Example::pair(clean[i].clone(), corrupted[i].clone(), answer[i], distractor[i]))
            .collect();
        let model = load(family, DType::F32);
        let flat =
            |k: &str| -> Vec<f32> { get(k).to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap() };
        let cases = [
            ("eap", Method::Eap),
            ("eap_ig_inputs", Method::EapIgInputs { steps: 5 }),
            ("eap_ig_activations", Method::EapIgActivations { steps: 5 }),
            ("clean_corrupted", Method::CleanCorrupted),
            ("exact", Method::Exact),
        ];
        for (key, method) in cases {
            let got = run(&model, &ex, &AttributionConfig { per_sample: key == "eap_ig_inputs", ..config(method) });
            let dev = rel_dev(&got.scores.scores, &flat(key));
            eprintln!(
                "{family} {key}: max deviation from the reference {dev:.2e} of max |score| {:.3e}",
                max_abs(&flat(key))
            );
            assert!(dev < 1e-4, "{family} {key}: deviates from the PyTorch reference by {dev:e} (relative to max)");
            if key == "eap" {
                let dev = rel_dev(got.node_scores.as_ref().unwrap(), &flat("node_eap"));
                eprintln!("{family} node_eap: max deviation {dev:.2e}");
                assert!(dev < 1e-4, "{family} node_eap deviates by {dev:e}");
            }
            if key == "eap_ig_inputs" {
                let per: Vec<f32> = got.per_sample.unwrap().into_iter().flat_map(|s| s.scores).collect();
                let dev = rel_dev(&per, &flat("eap_ig_inputs_per_sample"));
                eprintln!("{family} eap_ig_inputs_per_sample: max deviation {dev:.2e}");
                assert!(dev < 1e-4, "{family} per-sample EAP-IG deviates by {dev:e}");
            }
        }
    }
}

#[test]
fn texts_are_tokenised_with_bos_kept_on_prompts_and_dropped_from_answers() {
    let Some(path) = common::shared("models/stories260k/stories260k-f32.gguf") else { return };
    let model = Model::load(&path, LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let bos = tok.bos.expect("stories260k has a BOS token");
    // Two names of equal token counts (the vocabulary has 512 tokens, so names split unevenly).
    let template = "Once upon a time, NAME gave the ball to";
    let names = ["Lily", "Tom", "Sam", "Ben", "Mia", "Sue", "Max", "Lucy", "Anna", "Sara", "Tim", "Bob"];
    let len = |n: &str| tok.encode(&template.replace("NAME", n)).unwrap().len();
    let (a, b) = names
        .iter()
        .flat_map(|a| names.iter().map(move |b| (*a, *b)))
        .find(|(a, b)| a != b && len(a) == len(b))
        .expect("two names of equal token counts");
    let (clean, corrupted) = (template.replace("NAME", a), template.replace("NAME", b));
    let clean = clean.as_str();
    let ex = Example::from_task_texts(tok, clean, &corrupted, " Tom", " Lily", 0).unwrap();
    assert_eq!(ex.clean[0], bos, "prompts keep the BOS the tokenizer adds");
    let circuitscope::attribution::Target::Pair { answer, distractor } = ex.target else { unreachable!() };
    assert_ne!(answer, bos);
    let joint = tok.encode(&format!("{clean} Tom")).unwrap();
    assert_eq!(joint[..ex.clean.len()], ex.clean[..]);
    assert_eq!(joint[ex.clean.len()], answer, "the answer is the token that follows the prompt");
    assert_ne!(answer, distractor);
    let qa = Example::from_question_texts(tok, "Question: Who had the ball?\nAnswer:", " Tom", 1).unwrap();
    let circuitscope::attribution::Target::Sequence { prompt_len } = qa.target else { unreachable!() };
    assert_eq!(qa.clean[0], bos);
    assert!(prompt_len < qa.clean.len() && !qa.clean[prompt_len..].contains(&bos));
    // Both kinds run end to end on the real model.
    let got = run(&model, &[ex], &config(Method::EapIgInputs { steps: 2 }));
    assert!(got.clean_metric.is_finite() && max_abs(&got.scores.scores) > 0.0);
    let cfg = AttributionConfig { metric: Metric::SeqProb, ablation: Ablation::Zero, ..config(Method::Eap) };
    let got = run(&model, &[qa], &cfg);
    assert!(got.clean_metric > 0.0 && got.clean_metric <= 1.0);
    // Different token counts are an error naming the item and both lengths.
    let err = Example::from_task_texts(tok, "Once upon a time", "Once upon a time, there", " a", " b", 7)
        .unwrap_err()
        .to_string();
    assert!(err.contains("example 7"), "{err}");
}

fn fixed(qk: bool, mlp: bool, method: Method) -> AttributionConfig {
    AttributionConfig { fix: ReaderFix { qk, mlp }, ..config(method) }
}

/// Pattern/MLP output of reader r's node in a cache: (b, H, s, s) of r's head, or (b, s, d).
fn reader_output(cache: &ActivationCache, r: Reader) -> Tensor {
    match r {
        Reader::Head { layer, head, .. } => {
            cache.get(HookPoint::Block(layer, Site::Pattern)).unwrap().i((.., head, .., ..)).unwrap()
        }
        Reader::Mlp { layer } => cache.get(HookPoint::Block(layer, Site::MlpOut)).unwrap().clone(),
        Reader::Logits => unreachable!(),
    }
}

#[test]
fn reader_fixes_equal_the_patched_pattern_and_mlp_output_against_their_gradients() {
    for family in FAMILIES {
        let model = load(family, DType::F64);
        let cfg = model.cfg();
        let shape = GraphShape::of(cfg);
        let ex = examples();
        let plain = run(&model, &ex, &config(Method::Eap));
        let got = run(&model, &ex, &fixed(true, true, Method::Eap));
        assert_eq!((got.passes.forwards, got.passes.backwards), (2, 1), "{family}: the fixes add no pass");

        // Independent: the patched node output from a real forward pass with the edge patched,
        // against the gradient tapped at that output on the clean run.
        let runs = clean_and_corrupted(&model, &ex);
        let outputs: Vec<HookPoint> =
            (0..cfg.n_layers).flat_map(|l| [Site::Pattern, Site::MlpOut].map(|s| HookPoint::Block(l, s))).collect();
        let clean = model.decoder.forward(&clean_ids(&ex), &HookSet::new().capture(outputs.clone())).unwrap();
        let tapped = model.decoder.forward(&clean_ids(&ex), &HookSet::new().tap(outputs.clone())).unwrap();
        let grads = tapped.taps.gradients(&losses(&tapped.logits, &ex).sum_all().unwrap()).unwrap();
        let (mut worst, mut checked) = (0f64, 0);
        for (w, r) in shape.edges() {
            let rd = shape.reader(r);
            let g = match rd {
                Reader::Head { layer, head, qkv: Qkv::Q | Qkv::K } => {
                    grads.get(HookPoint::Block(layer, Site::Pattern)).unwrap().i((.., head, .., ..)).unwrap()
                }
                Reader::Mlp { layer } => grads.get(HookPoint::Block(layer, Site::MlpOut)).unwrap().clone(),
                _ => {
                    // value and logit edges keep EAP's score (summed per item first: rounding only)
                    let (have, want) = (got.scores.get(w, r), plain.scores.get(w, r));
                    assert!(
                        (have - want).abs() <= 1e-6 * want.abs().max(1e-3),
                        "{family}: {}",
                        shape.edge_name_of(w, r)
                    );
                    continue;
                }
            };
            // every edge of the smallest model; a stride through the others
            if shape.n_edges() > 200 && (w * 7 + r) % 5 != 0 {
                continue;
            }
            let dz = delta(&model, &runs, shape.writer(w));
            let hooks = HookSet::new().capture(outputs.clone()).intervene(add_into(cfg, rd, &dz));
            let patched = model.decoder.forward(&clean_ids(&ex), &hooks).unwrap();
            let change = (reader_output(&patched.cache, rd) - reader_output(&clean.cache, rd)).unwrap();
            let want = (change * g).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap() / ex.len() as f64;
            let have = f64::from(got.scores.get(w, r));
            let dev = (want - have).abs() / want.abs().max(1e-3);
            worst = worst.max(dev);
            checked += 1;
            assert!(
                dev < 1e-5,
                "{family}: {}: fixed {have:.9e}, from the patched run {want:.9e}",
                shape.edge_name_of(w, r)
            );
        }
        eprintln!("{family}: {checked} fixed q/k/MLP edges vs patched runs, worst deviation {worst:.2e}");
    }
}

#[test]
fn reader_fixes_of_a_tiny_difference_are_the_plain_gradient_scores() {
    // Exact up to the reader and linear beyond it is, to first order in Δ, linear all the way.
    let model = load("llama", DType::F64);
    let ex = examples();
    let alpha = 1e-5;
    for method in [Method::Eap, Method::EapIgInputs { steps: 3 }, Method::EapIgActivations { steps: 2 }] {
        let partial = |fix: AttributionConfig| {
            run(&model, &ex, &AttributionConfig { ablation: Ablation::Partial { alpha }, ..fix }).scores.scores
        };
        let (plain, with_fix) = (partial(config(method)), partial(fixed(true, true, method)));
        let dev = rel_dev(&with_fix, &plain);
        eprintln!("llama: {}: fixed vs plain scores of α·Δ (α = {alpha:e}), max deviation {dev:.2e}", method.name());
        assert!(dev < 1e-3, "{}: the fixes of a tiny patch deviate from the plain scores by {dev:e}", method.name());
    }
}

#[test]
fn reader_fixes_are_refused_for_exact_patching() {
    let model = load("gpt2", DType::F32);
    let err = attribute(&model.decoder, &examples(), &fixed(true, false, Method::Exact), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("gradient methods"), "{err}");
}

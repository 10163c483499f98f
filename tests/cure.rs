//! CURE's partition: the categories each policy gives, the node scores it reads (equal to the
//! attribution's own), the command's files, and its refusals.

mod common;

use circuitscope::analyses::cure::{module_scores, partition, Category, CureSettings, ModuleScores, Partition};
use circuitscope::attribution::{attribute, Ablation, AttributionConfig, Method, Metric};
use circuitscope::data::{ExampleFile, PromptFormat};
use circuitscope::model::{LoadOptions, Model};
use circuitscope::progress::NoProgress;
use common::{cli, fixture, TempDir};
use std::path::PathBuf;

fn world() -> Model {
    Model::load(root().join("models/world-gpt2"), LoadOptions::default()).unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Scores whose every sample equals the mean.
fn flat(mean: &[f64], samples: usize) -> ModuleScores {
    ModuleScores { mean: mean.to_vec(), per_sample: vec![mean.to_vec(); samples] }
}

#[test]
fn modules_are_sorted_by_where_they_score_high() {
    let m = world();
    let n = m.cfg().n_layers * (m.cfg().n_heads + 1); // the world model: 4 layers of 4 heads and an MLP
    let mut f = vec![0.01; n];
    let mut r = vec![0.01; n];
    // module 0 (a0.h0): forget only; 1: retain only; 2: both; 3: neither. Signs do not matter.
    (f[0], r[0]) = (-2.0, 0.1);
    (f[1], r[1]) = (0.1, 4.0);
    (f[2], r[2]) = (1.0, -3.0);
    let s = CureSettings { threshold: 0.3, ..Default::default() };
    let p = partition(&m.decoder, &flat(&f, 5), &flat(&r, 6), &s).unwrap();
    assert_eq!((p.modules.len(), p.forget_samples, p.retain_samples), (n, 5, 6));
    let cats: Vec<Category> = p.modules.iter().take(4).map(|m| m.category).collect();
    assert_eq!(cats, [Category::ForgetSpecific, Category::RetainSpecific, Category::TaskShared, Category::Outside]);
    assert_eq!((p.modules[0].forget, p.modules[1].retain, p.modules[2].retain), (1.0, 1.0, 0.75));
    assert_eq!(p.modules[4].name, "m0");
    assert_eq!(p.count(Category::Outside), n - 3);
    p.check_for(&m.decoder, "the partition").unwrap();
    // by rank: the 2 highest of each set
    let s = CureSettings { top_k: Some(2), ..Default::default() };
    let p = partition(&m.decoder, &flat(&f, 5), &flat(&r, 6), &s).unwrap();
    let cats: Vec<Category> = p.modules.iter().take(3).map(|m| m.category).collect();
    assert_eq!(cats, [Category::ForgetSpecific, Category::RetainSpecific, Category::TaskShared]);
    // thresholds outside [0, 1], scores that do not fit, a partition with nothing to forget
    let bad = CureSettings { threshold: 1.5, ..Default::default() };
    let err = partition(&m.decoder, &flat(&f, 5), &flat(&r, 6), &bad).unwrap_err().to_string();
    assert!(err.contains("outside [0, 1]"), "{err}");
    let err = partition(&m.decoder, &flat(&f[1..], 5), &flat(&r, 6), &s).unwrap_err().to_string();
    assert!(err.contains("the model has 20 modules"), "{err}");
    let bad = CureSettings { contrast: Some(1.5), ..Default::default() };
    let err = partition(&m.decoder, &flat(&f, 5), &flat(&r, 6), &bad).unwrap_err().to_string();
    assert!(err.contains("outside (0, 1)"), "{err}");
    let shared = partition(&m.decoder, &flat(&r, 5), &flat(&r, 6), &s).unwrap();
    let err = shared.check_for(&m.decoder, "p.json").unwrap_err().to_string();
    assert!(err.contains("p.json has no forget-specific module"), "{err}");
    let other = Model::load(fixture("parity/gpt2"), LoadOptions::default()).unwrap();
    let err = p.check_for(&other.decoder, "p.json").unwrap_err().to_string();
    assert!(err.contains("p.json was made for a model of 4 layers x 4 heads"), "{err}");
}

#[test]
fn a_contrast_calls_a_module_specific_only_where_its_samples_differ() {
    let m = world();
    let n = 20;
    // 12 samples a set: module 0 clearly higher on the forget set, module 1 high on both with the
    // same spread, module 2 a little higher on the forget set but within the spread, module 3
    // over the threshold on the forget set and under it on the retain set, within the spread
    // the 12 values −0.5, …, 0.5 in an order set by the shift: each set's mean is exact
    let noise = |k: usize| ((k * 5) % 12) as f64 / 11.0 - 0.5;
    let set = |forget: bool| -> ModuleScores {
        let per_sample: Vec<Vec<f64>> = (0..12)
            .map(|k| {
                let mut v = vec![0.0; n];
                v[0] = if forget { 1.0 } else { 0.1 } + 0.1 * noise(k);
                v[1] = 0.9 + 0.3 * noise(k + forget as usize * 5);
                v[2] = if forget { 0.85 } else { 0.8 } + 0.4 * noise(k + forget as usize * 3);
                v[3] = if forget { 0.55 } else { 0.4 } + 0.8 * noise(k + forget as usize * 7);
                v
            })
            .collect();
        let mean = (0..n).map(|i| per_sample.iter().map(|v| v[i]).sum::<f64>() / 12.0).collect();
        ModuleScores { mean, per_sample }
    };
    let (f, r) = (set(true), set(false));
    let plain = partition(&m.decoder, &f, &r, &CureSettings { threshold: 0.5, ..Default::default() }).unwrap();
    let cats = |p: &Partition| -> Vec<Category> { p.modules.iter().take(4).map(|m| m.category).collect() };
    use Category::{ForgetSpecific, TaskShared};
    assert_eq!(cats(&plain), [ForgetSpecific, TaskShared, TaskShared, ForgetSpecific]);
    let s = CureSettings { threshold: 0.5, contrast: Some(0.05), ..Default::default() };
    let tested = partition(&m.decoder, &f, &r, &s).unwrap();
    // module 3's difference does not stand the test: it is shared
    assert_eq!(cats(&tested), [ForgetSpecific, TaskShared, TaskShared, TaskShared]);
    let p: Vec<f64> = tested.modules.iter().take(4).map(|m| m.p_value.unwrap()).collect();
    assert!(p[0] < 0.01 && p[1..].iter().all(|&x| x > 0.05 / 4.0), "{p:?}");
    assert!(tested.modules[4].p_value.is_none(), "no test outside the core");
    assert_eq!(partition(&m.decoder, &f, &r, &s).unwrap().modules[3].p_value, Some(p[3]), "seeded");
}

#[test]
fn module_scores_are_the_attributions_node_scores() {
    let m = world();
    let mut file = ExampleFile::read(&root().join("circuits/world/forget10.jsonl")).unwrap();
    file.truncate(6);
    let examples = file.qa_examples(m.tokenizer().unwrap(), &PromptFormat::question_answer()).unwrap();
    let s = CureSettings { method: "eap".into(), batch: 4, ..Default::default() };
    let scores = module_scores(&m.decoder, &examples, &s, &NoProgress).unwrap();
    assert_eq!(scores.per_sample.len(), 6);
    for i in 0..scores.mean.len() {
        let mean = scores.per_sample.iter().map(|v| v[i]).sum::<f64>() / 6.0;
        assert!((mean - scores.mean[i]).abs() < 1e-5, "module {i}: {mean} against {}", scores.mean[i]);
    }
    let got = scores.mean.clone();
    let cfg = AttributionConfig {
        method: Method::Eap,
        metric: Metric::SeqProb,
        ablation: Ablation::Zero,
        batch_size: 4,
        ..AttributionConfig::default()
    };
    let nodes = attribute(&m.decoder, &examples, &cfg, &NoProgress).unwrap().node_scores.unwrap();
    assert_eq!(got.len(), nodes.len() - 1, "the input is not a module");
    for (g, n) in got.iter().zip(&nodes[1..]) {
        assert_eq!(*g, *n as f64);
    }
    assert!(got.iter().any(|&x| x != 0.0));
    let again = module_scores(&m.decoder, &examples, &s, &NoProgress).unwrap();
    assert_eq!(scores, again, "deterministic");
}

#[test]
fn the_command_writes_the_partition_and_its_drawing_and_names_bad_input() {
    let d = TempDir::new();
    let (json, svg) = (d.join("partition.json"), d.join("partition.svg"));
    let w = root().join("models/world-gpt2");
    let data = root().join("circuits/world");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "cure",
            w.to_str().unwrap(),
            "--forget",
            data.join("forget10.jsonl").to_str().unwrap(),
            "--retain",
            data.join("retain90.jsonl").to_str().unwrap(),
            "--limit",
            "8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out = cli(&args(&[
        "--attribution",
        "eap",
        "--top-k",
        "3",
        "--out",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CURE partition of") && stdout.contains("task-shared"), "{stdout}");
    let p = Partition::read(&json).unwrap();
    assert_eq!((p.modules.len(), p.forget_samples, p.retain_samples), (20, 8, 8));
    assert!(p.count(Category::Outside) >= 20 - 6, "at most 3 high per set");
    let drawing = std::fs::read_to_string(&svg).unwrap();
    circuitscope::render::svg::check_well_formed(&drawing).unwrap();
    assert!(drawing.contains("layer 3") && drawing.contains("MLP") && drawing.contains("task-shared ("), "{drawing}");

    let fails = |extra: &[&str], want: &str| {
        let out = cli(&args(extra));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let nothing = d.join("nothing.json");
    let n = nothing.to_str().unwrap();
    fails(&["--threshold", "1.5", "--out", n], "outside [0, 1]");
    fails(&["--threshold", "-0.1", "--out", n], "outside [0, 1]");
    fails(&["--attribution", "exact", "--out", n], "with a gradient method");
    fails(&["--contrast", "2", "--out", n], "outside (0, 1)");
    assert!(!nothing.exists(), "a failed command wrote its output");
    let err = Partition::read(&data.join("forget10.jsonl")).unwrap_err().to_string();
    assert!(err.contains("not a CURE partition"), "{err}");

    // unlearning with it: the command, and its refusals
    let unlearn = |model: &std::path::Path, extra: &[&str]| {
        let mut v: Vec<String> = ["unlearn", model.to_str().unwrap(), "--forget"].map(String::from).to_vec();
        v.push(data.join("forget01.jsonl").to_str().unwrap().into());
        v.extend([
            "--retain".into(),
            data.join("retain99.jsonl").to_str().unwrap().into(),
            "--limit".into(),
            "8".into(),
        ]);
        v.extend(extra.iter().map(|s| s.to_string()));
        cli(&v)
    };
    let out_dir = d.join("cure-model");
    let o = out_dir.to_str().unwrap();
    let out = unlearn(&w, &["--method", "cure", "--partition", json.to_str().unwrap(), "--epochs", "1", "--out", o]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if p.count(Category::ForgetSpecific) > 0 {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("module-steps"), "{stdout}");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("unlearn.json")).unwrap()).unwrap();
        assert!(record["config"]["cure"]["groups"].as_array().is_some_and(|g| !g.is_empty()));
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("no forget-specific module"), "{err}");
    }
    let refuses = |model: &std::path::Path, extra: &[&str], want: &str| {
        let out = unlearn(model, &[extra, &["--out", d.join("never").to_str().unwrap()]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want) && !err.contains("panicked"), "{extra:?}: {err}");
        assert!(!d.join("never").exists());
    };
    refuses(&w, &["--method", "cure"], "--method cure and --partition go together");
    refuses(
        &w,
        &["--method", "npo", "--partition", json.to_str().unwrap()],
        "--method cure and --partition go together",
    );
    // the retain model has the same shape and other weights
    let other = root().join("models/world-gpt2-retain90");
    refuses(&other, &["--method", "cure", "--partition", json.to_str().unwrap()], "another model of the same shape");
}

/// Every head's and MLP's blocks, and every key/value head's, tile each family's attention and
/// MLP parameters without overlap: a plan of all of them checks, and takes those tensors whole.
#[test]
fn module_blocks_tile_every_familys_attention_and_mlp_parameters() {
    use circuitscope::train::params::Trainable;
    use circuitscope::unlearn::cure::{CurePlan, Group, Rule};
    for family in ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"] {
        let tr = Trainable::load(&fixture(&format!("parity/{family}")), &candle_core::Device::Cpu).unwrap();
        let c = tr.cfg.clone();
        let mut groups = Vec::new();
        let mut kv = std::collections::BTreeSet::new();
        for l in 0..c.n_layers {
            for h in 0..c.n_heads {
                let (own, shared) = tr.head_blocks(l, h).unwrap();
                assert!(!own.is_empty(), "{family}");
                groups.push(Group { name: format!("a{l}.h{h}"), rule: Rule::Forget, blocks: own });
                if kv.insert(shared.clone()) && !shared.is_empty() {
                    groups.push(Group { name: format!("a{l}.kv"), rule: Rule::Forget, blocks: shared });
                }
            }
            groups.push(Group { name: format!("m{l}"), rule: Rule::Forget, blocks: tr.mlp_blocks(l).unwrap() });
        }
        let plan = CurePlan { groups };
        plan.check(&tr.vars, false).unwrap_or_else(|e| panic!("{family}: {e}"));
        for s in plan.selection(&tr.vars).unwrap() {
            assert!(s.mask.is_none(), "{family}: {} is not covered whole", s.name);
        }
        // one head alone: its blocks and no other entry
        let (own, _) = tr.head_blocks(0, 1).unwrap();
        let one = CurePlan { groups: vec![Group { name: "a0.h1".into(), rule: Rule::Forget, blocks: own }] };
        let sel = one.selection(&tr.vars).unwrap();
        let marked: usize = sel.iter().map(|s| s.mask.as_ref().map_or(s.var.elem_count(), count_ones)).sum();
        let per_head = |n: &str| tr.vars.get(n).map_or(0, |v| v.elem_count());
        assert!(marked > 0 && marked < sel.iter().map(|s| per_head(&s.name)).sum::<usize>(), "{family}");
    }
}

fn count_ones(m: &candle_core::Tensor) -> usize {
    m.to_dtype(candle_core::DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as usize
}

/// PCGrad on a shared module: the forget gradient with its component along the retain gradient
/// removed when they conflict, unchanged when they do not.
#[test]
fn a_shared_module_takes_the_forget_gradient_with_its_conflict_projected_out() {
    use candle_core::{Device, Tensor, Var};
    use circuitscope::train::params::Block;
    use circuitscope::unlearn::cure::{CurePlan, Group, Rule};
    let x = Var::from_tensor(&Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
    let vars: std::collections::BTreeMap<String, Var> = [("w".to_string(), x.clone())].into();
    let grads = |c: [f32; 6]| {
        let c = Tensor::from_vec(c.to_vec(), (2, 3), &Device::Cpu).unwrap();
        (x.as_tensor() * &c).unwrap().sum_all().unwrap().backward().unwrap()
    };
    let row = |r: usize, rule: Rule| Group {
        name: format!("row{r}"),
        rule,
        blocks: vec![Block { name: "w".into(), axis: 0, start: r, len: 1 }],
    };
    let plan = CurePlan { groups: vec![row(0, Rule::Shared), row(1, Rule::Shared)] };
    plan.check(&vars, true).unwrap_err(); // no forget module
    let plan = CurePlan { groups: vec![row(0, Rule::Shared), row(1, Rule::Forget)] };
    plan.check(&vars, true).unwrap();
    // row 0: g_f = (1, 0, 2), g_r = (−1, 1, 0): g_f·g_r = −1 < 0, so g_f + (1/2)·g_r = (0.5, 0.5, 2)
    let (gf, gr) = (grads([1., 0., 2., 3., 4., 5.]), grads([-1., 1., 0., 9., 9., 9.]));
    let (g, c) = plan.combine(&vars, gf, Some(&gr)).unwrap();
    let got: Vec<Vec<f32>> = g.get(x.as_tensor()).unwrap().to_vec2().unwrap();
    assert_eq!(got, [vec![0.5, 0.5, 2.0], vec![3.0, 4.0, 5.0]]);
    assert_eq!((c.shared, c.conflicting), (1, 1));
    let cos = -1.0 / (5f64.sqrt() * 2f64.sqrt());
    assert!((c.mean_cosine.unwrap() - cos).abs() < 1e-6);
    // no conflict: g_f unchanged
    let (gf, gr) = (grads([1., 0., 2., 3., 4., 5.]), grads([1., 1., 0., 0., 0., 0.]));
    let (g, c) = plan.combine(&vars, gf, Some(&gr)).unwrap();
    assert_eq!(g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap()[0], [1.0, 0.0, 2.0]);
    assert_eq!((c.conflicting, c.mean_cosine), (0, None));
    // a retain module follows g_r; entries in two modules are refused
    let plan = CurePlan { groups: vec![row(0, Rule::Retain), row(1, Rule::Forget)] };
    let (g, _) = plan.combine(&vars, grads([1., 1., 1., 2., 2., 2.]), Some(&grads([7., 8., 9., 0., 0., 0.]))).unwrap();
    assert_eq!(g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap(), [vec![7.0, 8.0, 9.0], vec![2.0, 2.0, 2.0]]);
    let twice = CurePlan { groups: vec![row(1, Rule::Forget), row(1, Rule::Retain)] };
    assert!(twice.check(&vars, true).unwrap_err().to_string().contains("in two modules"));

    // PCGrad over the whole model: one module, both gradients projected and summed. g_f = (1, 0,
    // 2, 0, 0, 0), g_r = (−1, 1, 0, 0, 0, 0): g_f·g_r = −1, ‖g_r‖² = 2, ‖g_f‖² = 5, so
    // (g_f + g_r/2) + (g_r + g_f/5) = (0.5 − 0.8, 1.5, 2.4, 0, 0, 0)
    let plan = CurePlan::pcgrad(&vars);
    plan.check(&vars, true).unwrap();
    assert!(plan.needs_retain() && plan.check(&vars, false).is_err());
    let (gf, gr) = (grads([1., 0., 2., 0., 0., 0.]), grads([-1., 1., 0., 0., 0., 0.]));
    let (g, c) = plan.combine(&vars, gf, Some(&gr)).unwrap();
    let got = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (a, b) in got.iter().zip([-0.3f32, 1.5, 2.4, 0., 0., 0.]) {
        assert!((a - b).abs() < 1e-6, "{got:?}");
    }
    assert_eq!((c.shared, c.conflicting), (1, 1));
    // no conflict: the plain sum, grad-diff's update
    let (g, _) = plan.combine(&vars, grads([1., 0., 2., 0., 0., 0.]), Some(&grads([1., 1., 0., 0., 0., 3.]))).unwrap();
    assert_eq!(g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap(), [vec![2.0, 1.0, 2.0], vec![0.0, 0.0, 3.0]]);
}

/// On the bundled model: CURE with one forget-specific MLP is gradient ascent on that MLP, bit
/// for bit; a mixed partition changes its modules' entries and no other.
#[test]
fn cure_updates_its_modules_alone_and_one_forget_mlp_is_gradient_ascent_on_it() {
    use circuitscope::train::params::Trainable;
    use circuitscope::unlearn::cure::{CurePlan, Group, Rule};
    use circuitscope::unlearn::{unlearn, Method, UnlearnConfig};
    let dir = root().join("models/world-gpt2");
    let original = world();
    let tok = original.tokenizer().unwrap();
    let read = |f: &str| {
        let mut file = ExampleFile::read(&root().join("circuits/world").join(f)).unwrap();
        file.truncate(8);
        file.qa_examples(tok, &PromptFormat::question_answer()).unwrap()
    };
    let (forget, retain) = (read("forget10.jsonl"), read("retain90.jsonl"));
    let snapshot = |t: &Trainable| -> std::collections::BTreeMap<String, Vec<f32>> {
        t.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())).collect()
    };
    let mut ga = UnlearnConfig { epochs: 1, lr: 1e-3, ..UnlearnConfig::documented(Method::GradAscent) };
    ga.trainable = vec!["transformer.h.1.mlp.*".into()];
    let a = Trainable::load(&dir, &candle_core::Device::Cpu).unwrap();
    unlearn(&a, Some(&original.decoder), &forget, &[], &ga, &NoProgress).unwrap();
    let b = Trainable::load(&dir, &candle_core::Device::Cpu).unwrap();
    let plan =
        CurePlan { groups: vec![Group { name: "m1".into(), rule: Rule::Forget, blocks: b.mlp_blocks(1).unwrap() }] };
    let cure = UnlearnConfig { trainable: vec![], cure: Some(plan), ..ga.clone() };
    let log = unlearn(&b, Some(&original.decoder), &forget, &[], &cure, &NoProgress).unwrap();
    assert_eq!(snapshot(&a), snapshot(&b), "CURE on one forget MLP = gradient ascent on it");
    assert!(log.iter().all(|s| s.conflicts.as_ref().is_some_and(|c| c.shared == 0)));

    // a mixed plan with NPO and the retain loss: a forget head, a retain head, a shared MLP
    let c = Trainable::load(&dir, &candle_core::Device::Cpu).unwrap();
    let before = snapshot(&c);
    let head = |l: usize, h: usize, rule: Rule| Group {
        name: format!("a{l}.h{h}"),
        rule,
        blocks: c.head_blocks(l, h).unwrap().0,
    };
    let plan = CurePlan {
        groups: vec![
            head(0, 1, Rule::Forget),
            head(3, 3, Rule::Retain),
            Group { name: "m0".into(), rule: Rule::Shared, blocks: c.mlp_blocks(0).unwrap() },
        ],
    };
    let mut cfg = UnlearnConfig { epochs: 1, lr: 1e-3, ..UnlearnConfig::documented(Method::Cure) };
    cfg.cure = Some(plan.clone());
    let log = unlearn(&c, Some(&original.decoder), &forget, &retain, &cfg, &NoProgress).unwrap();
    assert!(log.iter().all(|s| s.conflicts.as_ref().is_some_and(|c| c.shared == 1)), "{:?}", log[0].conflicts);
    let after = snapshot(&c);
    let inside: std::collections::BTreeMap<String, Vec<bool>> = plan
        .selection(&c.vars)
        .unwrap()
        .into_iter()
        .map(|s| {
            let m: Vec<bool> = match &s.mask {
                Some(m) => m.flatten_all().unwrap().to_vec1::<u8>().unwrap().into_iter().map(|x| x == 1).collect(),
                None => vec![true; s.var.elem_count()],
            };
            (s.name, m)
        })
        .collect();
    let mut moved = 0;
    for (n, old) in &before {
        for (i, (x, y)) in old.iter().zip(&after[n]).enumerate() {
            if inside.get(n).is_some_and(|m| m[i]) {
                moved += (x != y) as usize;
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "{n}[{i}] is outside the plan but changed");
            }
        }
    }
    assert!(moved > 1000, "only {moved} entries of the planned modules moved");
}

#[test]
fn the_sweep_compares_the_methods_and_draws_the_tradeoff() {
    let d = TempDir::new();
    let out = d.join("sweep");
    let args = ["cure-sweep", "--strengths", "1,8", "--limit", "16", "--retain", "16", "--top-k", "5", "--out"];
    let run = cli(&[&args[..], &[out.to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let runs = sweep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "4 methods x 2 strengths");
    for r in runs {
        let mu = r["model_utility"].as_f64().unwrap();
        assert!(mu > 0.0 && mu <= 1.0, "model utility {mu}");
        let changed = r["changed"].as_f64().unwrap();
        if r["method"] == "cure" {
            assert!(changed > 0.0 && changed < 1.0, "CURE changes its modules only: {r}");
        } else {
            assert!(changed > 0.99, "every parameter trains: {r}");
        }
    }
    // a stronger run forgets more
    let p = |m: &str, k: f64| -> f64 {
        runs.iter().find(|r| r["method"] == m && r["strength"] == k).unwrap()["forget_probability"].as_f64().unwrap()
    };
    assert!(p("npo", 8.0) < p("npo", 1.0));
    assert_eq!(sweep["matched"].as_array().map(Vec::len), Some(4));
    assert!(sweep["matched"][0].get("model_utility").is_some(), "{}", sweep["matched"]);
    let svg = std::fs::read_to_string(out.join("tradeoff.svg")).unwrap();
    circuitscope::render::svg::check_well_formed(&svg).unwrap();
    assert!(Partition::read(&out.join("partition.json")).is_ok());
    let bad = cli(&["cure-sweep", "--strengths", "0", "--out", d.join("bad").to_str().unwrap()]);
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("--strengths 0: each must be a positive number")
    );
}

/// `render --partition` colours the circuit's modules by their CURE category (the legend counts
/// them); a partition made for a model of another shape is refused by name.
#[test]
fn a_circuit_is_drawn_with_its_partition_and_a_partition_of_another_model_is_refused() {
    let d = TempDir::new();
    let part = root().join("circuits/world-cure/partition.json");
    let p = Partition::read(&part).unwrap();
    let out = d.join("ioi.svg");
    let o = cli(&[
        "render",
        root().join("circuits/ioi/circuit.json").to_str().unwrap(),
        "--partition",
        part.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    for c in Category::ALL {
        let n = p.count(c);
        let label = format!("CURE: {} ({n} module{})", c.name(), if n == 1 { "" } else { "s" });
        assert!(svg.contains(&label), "{label}");
    }
    let fill_of = |name: &str| {
        let end = svg.find(&format!("><title>{name}</title></rect>")).unwrap();
        svg[..end].rsplit("fill=\"").next().unwrap().split('"').next().unwrap().to_string()
    };
    let circuit = circuitscope::graph::Circuit::read_json(&root().join("circuits/ioi/circuit.json")).unwrap();
    let shape = circuit.shape();
    let want = circuitscope::render::cure_svg::partition_fills(&p, &shape).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for n in (0..shape.n_nodes()).filter(|&n| circuit.node_in_graph(n)) {
        if let Some(f) = want.by_node.get(&shape.node_name(n)) {
            assert_eq!(&fill_of(&shape.node_name(n)), f, "{}", shape.node_name(n));
            seen.insert(f.clone());
        }
    }
    assert!(seen.len() >= 2, "the circuit's modules fall in one category only: {seen:?}");
    let o = cli(&[
        "render",
        root().join("circuits/smollm2-ioi/circuit.json").to_str().unwrap(),
        "--partition",
        part.to_str().unwrap(),
        "--out",
        d.join("smol.svg").to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("--partition") && e.contains("4 layers × 4 heads") && e.contains("30 × 9"),
        "{e}"
    );
    assert!(!d.join("smol.svg").exists());
}

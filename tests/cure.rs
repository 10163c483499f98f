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
}

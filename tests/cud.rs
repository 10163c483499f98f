//! CUD (ALGORITHMS.md §5): the anchors' ranking rules and `circuitscope anchors`; per-sample
//! attribution batched against one at a time; `circuitscope cud` end to end.

mod common;

use circuitscope::unlearn::anchors::{consensus, easy_and_hard};
use serde_json::Value;
use std::path::Path;

#[test]
fn easiest_are_most_forgotten_hardest_least_and_ties_keep_index_order() {
    let nll = [0.5, 3.0, 0.1, 3.0, 1.0, 0.1];
    let (easy, hard) = easy_and_hard(&nll, 2).unwrap();
    assert_eq!(easy, [1, 3], "highest NLL after unlearning first, ties by index");
    assert_eq!(hard, [2, 5], "lowest first, ties by index");
    assert_eq!(easy_and_hard(&nll, 99).unwrap().0.len(), 6, "k is capped at the set's size");
    assert!(easy_and_hard(&[0.1, f64::NAN], 1).is_err());
    // in at least ⌈3/2⌉ = 2 of 3 sets; with 4 sets, 2 as well
    assert_eq!(consensus(&[&[1, 2, 3], &[2, 3, 4], &[3, 5]]), [2, 3]);
    assert_eq!(consensus(&[&[1], &[1], &[2], &[3]]), [1]);
    assert_eq!(consensus(&[&[7, 8]]), [7, 8], "one method: its own set");
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Three methods on 40 forget samples of the bundled world: a folder with every run's record,
/// each method's 10 easiest and hardest as JSONL in rank order, the consensus sets (in at least
/// 2 of the 3), the same sets on a second run, and bad input refused with nothing written.
#[test]
fn the_cli_writes_each_methods_anchors_and_the_consensus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let world = root.join("circuits/world");
    let dir = common::TempDir::new();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v = vec!["anchors".to_string(), s(&root.join("models/world-gpt2"))];
        v.extend(["--forget".into(), s(&world.join("forget10.jsonl")), "--retain".into()]);
        v.extend([s(&world.join("retain90.jsonl")), "--limit".into(), "40".into(), "--out".into(), s(out)]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let sets = |out: &Path| -> Value {
        let a = json(&out.join("anchors.json"));
        let m: Vec<Value> =
            a["methods"].as_array().unwrap().iter().map(|r| serde_json::json!([r["easy"], r["hard"]])).collect();
        serde_json::json!([m, a["consensus"]])
    };
    let (one, two) = (dir.join("one"), dir.join("two"));
    for out in [&one, &two] {
        let o = common::cli(&args(out, &["--methods", "grad-diff,npo,rmu"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(sets(&one), sets(&two), "the same data and settings give the same anchors");
    let a = json(&one.join("anchors.json"));
    assert_eq!(a["k"], 10, "a quarter of 40");
    let runs = a["methods"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let forget: Vec<Value> = circuitscope::data::read_jsonl(&world.join("forget10.jsonl")).unwrap();
    for r in runs {
        let method = r["method"].as_str().unwrap();
        let nll: Vec<f64> = r["nll_after"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(nll.len(), 40);
        assert!(!r["steps"].as_array().unwrap().is_empty(), "{method}: every run is recorded");
        let idx = |key: &str| -> Vec<usize> {
            r[key].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
        };
        let (easy, hard) = (idx("easy"), idx("hard"));
        let lowest_easy = easy.iter().map(|&i| nll[i]).fold(f64::INFINITY, f64::min);
        let highest_hard = hard.iter().map(|&i| nll[i]).fold(f64::NEG_INFINITY, f64::max);
        assert!(lowest_easy >= highest_hard, "{method}: every easy sample is more forgotten than every hard one");
        let lines: Vec<Value> = circuitscope::data::read_jsonl(&one.join(method).join("easy.jsonl")).unwrap();
        let want: Vec<&Value> = easy.iter().map(|&i| &forget[i]).collect();
        assert_eq!(lines.iter().collect::<Vec<_>>(), want, "{method}/easy.jsonl holds the records in rank order");
    }
    for (key, file) in [("easy", "easy.jsonl"), ("hard", "hard.jsonl")] {
        let c: Vec<u64> = a["consensus"][key].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        for i in &c {
            let n = runs.iter().filter(|r| r[key].as_array().unwrap().iter().any(|x| x.as_u64() == Some(*i))).count();
            assert!(n >= 2, "consensus {key} sample {i} is in {n} methods' sets");
        }
        let lines: Vec<Value> = circuitscope::data::read_jsonl(&one.join("consensus").join(file)).unwrap_or_default();
        assert_eq!(lines.len(), c.len());
    }
    let bad = dir.join("bad");
    for (extra, words) in
        [(vec!["--methods", "grad-diff,nope"], vec!["nope"]), (vec!["--k", "41"], vec!["--k 41", "40 samples"])]
    {
        let o = common::cli(&args(&bad, &extra));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.starts_with("error:") && words.iter().all(|w| err.contains(w)), "{err}");
        assert!(!bad.exists());
    }

    // `circuitscope cud` on 8 of the samples against those anchors: one CSV row each, CUD in
    // [0, 1], the settings beside it; bad flags refused with nothing written
    let csv = dir.join("cud.csv");
    let cud_args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v = vec!["cud".to_string(), s(&root.join("models/world-gpt2")), "--forget".into()];
        v.extend([s(&world.join("forget10.jsonl")), "--anchors".into(), s(&one), "--limit".into(), "8".into()]);
        v.extend(["--edges".into(), "20".into(), "--steps".into(), "2".into(), "--out".into(), s(out)]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let o = common::cli(&cud_args(&csv, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "index,question,cud,d_easy,d_hard,edges,mean_writer_layer,deepest_layer");
    assert_eq!(rows.len(), 9);
    for r in &rows[1..] {
        let cud: f64 = r.split(',').nth(2).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&cud), "{r}");
    }
    let easy = json(&one.join("anchors.json"))["consensus"]["easy"].as_array().unwrap().len();
    assert_eq!(json(&dir.join("cud.meta.json"))["easy_samples"], easy);
    let bad_csv = dir.join("bad.csv");
    for (extra, word) in
        [(vec!["--vector", "nope"], "--vector nope"), (vec!["--anchor-set", "nope"], "nope/easy.jsonl")]
    {
        let o = common::cli(&cud_args(&bad_csv, &extra));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(word) && !bad_csv.exists(), "{err}");
    }
}

/// Per-sample EAP-IG scores do not depend on the batch: 6 question/answer samples attributed in
/// batches of 4 (padded) and one at a time agree to 1e-5 of the largest score.
#[test]
fn per_sample_scores_are_the_same_batched_and_one_at_a_time() {
    use circuitscope::attribution::{attribute, Ablation, AttributionConfig, Method, Metric};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = circuitscope::model::Model::load(root.join("models/world-gpt2"), Default::default()).unwrap();
    let mut f = circuitscope::data::ExampleFile::read(&root.join("circuits/world/forget10.jsonl")).unwrap();
    f.truncate(6);
    let examples = f.examples(model.tokenizer().unwrap()).unwrap();
    let run = |batch: usize| {
        let cfg = AttributionConfig {
            method: Method::EapIgActivations { steps: 2 },
            metric: Metric::SeqProb,
            ablation: Ablation::Zero,
            batch_size: batch,
            per_sample: true,
            ..AttributionConfig::default()
        };
        attribute(&model.decoder, &examples, &cfg, &circuitscope::progress::NoProgress).unwrap().per_sample.unwrap()
    };
    let (batched, single) = (run(4), run(1));
    for (i, (a, b)) in batched.iter().zip(&single).enumerate() {
        let scale = b.scores.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = a.scores.iter().zip(&b.scores).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d <= 1e-5 * scale, "sample {i}: batched and single differ by {d} (largest |score| {scale})");
    }
}

//! CUD (ALGORITHMS.md §5): the anchors' ranking rules and `circuitscope anchors`; per-sample
//! attribution batched against one at a time; `circuitscope cud` end to end, its shards and their
//! merge, and its bad input; `circuitscope validate-cud` end to end.

mod common;

use circuitscope::unlearn::anchors::{consensus, easy_and_hard, Consensus};
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
    // two methods that disagree: 1 and 4 are easy under one and hard under the other
    let c = Consensus::of_sets(&[&[0, 1], &[4, 2]], &[&[4, 3], &[1, 5]]);
    assert_eq!((c.easy, c.hard, c.contested), (vec![0, 2], vec![3, 5], vec![1, 4]));
    let c = Consensus::of_sets(&[&[1, 2, 3], &[2, 3, 4], &[3, 5]], &[&[6], &[6, 7], &[1]]);
    assert_eq!((c.easy, c.hard, c.contested), (vec![2, 3], vec![6], vec![]), "three methods: a side needs two votes");
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
    let side = |key: &str| a["consensus"][key].as_array().unwrap().clone();
    assert!(side("easy").iter().all(|i| !side("hard").contains(i)), "no sample anchors both sides");
    assert!(side("contested").iter().all(|i| !side("easy").contains(i)), "contested samples anchor neither side");
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
    assert_eq!(
        rows[0],
        "index,question,cud,d_easy,d_hard,edges,mean_writer_layer,deepest_layer,longest_path,edges_per_layer"
    );
    assert_eq!(rows.len(), 9);
    for r in &rows[1..] {
        let f: Vec<&str> = r.split(',').collect();
        let cud: f64 = f[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&cud), "{r}");
        // edges per layer: the input and 4 layers, summing to the circuit's edges
        let per_layer: Vec<usize> = f[9].split(';').map(|x| x.parse().unwrap()).collect();
        assert_eq!((per_layer.len(), per_layer.iter().sum::<usize>()), (5, f[5].parse().unwrap()), "{r}");
        let longest: usize = f[8].parse().unwrap();
        assert!((1..=f[5].parse().unwrap()).contains(&longest), "{r}");
    }
    for pic in ["cud.svg", "cud-layers.svg", "cud-anchor-easy.svg", "cud-anchor-hard.svg"] {
        let svg = std::fs::read_to_string(dir.join(pic)).unwrap();
        circuitscope::render::svg::check_well_formed(&svg).unwrap_or_else(|e| panic!("{pic}: {e}"));
    }
    let easy = json(&one.join("anchors.json"))["consensus"]["easy"].as_array().unwrap().len();
    assert_eq!(json(&dir.join("cud.meta.json"))["anchor_sets"][0]["easy_samples"], easy);
    let bad_csv = dir.join("bad.csv");
    for (extra, word) in
        [(vec!["--vector", "nope"], "--vector nope"), (vec!["--anchor-set", "nope"], "nope/easy.jsonl")]
    {
        let o = common::cli(&cud_args(&bad_csv, &extra));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(word) && !bad_csv.exists(), "{err}");
    }

    // every method's anchors: a CUD column per method, and their mean
    let per_method = dir.join("per-method.csv");
    let o = common::cli(&cud_args(&per_method, &["--anchor-set", "per-method"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&per_method).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(&rows[0][10..], ["cud_grad-diff", "cud_npo", "cud_rmu"]);
    for r in &rows[1..] {
        let each: Vec<f64> = r[10..].iter().map(|x| x.parse().unwrap()).collect();
        let mean: f64 = r[2].parse().unwrap();
        assert!((mean - each.iter().sum::<f64>() / 3.0).abs() < 1e-5, "{r:?}");
    }

    // two shards merged give the unsharded rows (per-sample scores do not depend on the batch)
    let parts: Vec<_> = (1..=2).map(|i| dir.join(&format!("part{i}.csv"))).collect();
    for (i, part) in parts.iter().enumerate() {
        let o = common::cli(&cud_args(part, &["--shard", &format!("{}/2", i + 1)]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read_to_string(&parts[0]).unwrap().lines().count(), 5, "samples 0..4 and a header");
    let merged = dir.join("merged.csv");
    let merge = |out: &Path, ins: &[&Path]| {
        let mut v = vec!["cud".to_string(), "merge".into()];
        v.extend(ins.iter().map(|p| s(p)));
        v.extend(["--out".into(), s(out)]);
        common::cli(&v)
    };
    let o = merge(&merged, &[&parts[1], &parts[0]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let values = |p: &Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(p).unwrap().lines().map(|l| l.split(',').map(String::from).collect()).collect()
    };
    let (whole, joined) = (values(&csv), values(&merged));
    assert_eq!(whole.len(), joined.len());
    for (a, b) in whole.iter().zip(&joined).skip(1) {
        assert_eq!((&a[..2], &a[5..]), (&b[..2], &b[5..]), "the same sample, circuit and structure");
        for k in 2..5 {
            let (x, y): (f64, f64) = (a[k].parse().unwrap(), b[k].parse().unwrap());
            assert!((x - y).abs() < 1e-4, "column {k}: {x} against {y}");
        }
    }
    assert_eq!(json(&dir.join("merged.meta.json"))["samples"], 8);
    // bad shards and merges: one message each, nothing written
    let bad_merge = dir.join("bad-merge.csv");
    let alt = dir.join("alt.csv");
    std::fs::copy(&parts[1], &alt).unwrap();
    let mut meta = json(&dir.join("part2.meta.json"));
    meta["settings"]["edges"] = 99.into();
    std::fs::write(dir.join("alt.meta.json"), meta.to_string()).unwrap();
    for (o, word) in [
        (merge(&bad_merge, &[&parts[0], &parts[0]]), "overlap"),
        (merge(&bad_merge, &[&parts[0]]), "miss 4 of 8 samples"),
        (merge(&bad_merge, &[&parts[0], &alt]), "different"),
        (common::cli(&cud_args(&bad_merge, &["--shard", "3/2"])), "--shard 3/2"),
    ] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(word) && !bad_merge.exists(), "{word}: {err}");
    }
    // anchors of another model's graph, and an empty anchor set
    let other = dir.join("other");
    std::fs::create_dir_all(other.join("consensus")).unwrap();
    let mut record = json(&one.join("anchors.json"));
    record["graph"]["n_layers"] = 12.into();
    std::fs::write(other.join("anchors.json"), record.to_string()).unwrap();
    for kind in ["easy", "hard"] {
        std::fs::copy(
            one.join("consensus").join(format!("{kind}.jsonl")),
            other.join("consensus").join(format!("{kind}.jsonl")),
        )
        .unwrap();
    }
    let with_anchors = |anchors: &Path| {
        let mut v = cud_args(&bad_csv, &[]);
        let at = v.iter().position(|x| x == "--anchors").unwrap();
        v[at + 1] = s(anchors);
        common::cli(&v)
    };
    let o = with_anchors(&other);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("same model") && !bad_csv.exists(), "{err}");
    std::fs::write(other.join("anchors.json"), json(&one.join("anchors.json")).to_string()).unwrap();
    std::fs::write(other.join("consensus/hard.jsonl"), "").unwrap();
    let o = with_anchors(&other);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("hard anchor set is empty") && !bad_csv.exists(), "{err}");
    // a forget sample longer than the model's context
    let long = dir.join("long.jsonl");
    let first = std::fs::read_to_string(world.join("forget10.jsonl")).unwrap().lines().next().unwrap().to_string();
    let long_line = format!("{{\"question\": \"{}\", \"answer\": \"Yes.\"}}", "why ".repeat(300));
    std::fs::write(&long, format!("{first}\n{long_line}\n")).unwrap();
    let mut v = cud_args(&bad_csv, &[]);
    v[3] = s(&long);
    let o = common::cli(&v);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("long.jsonl: line 2") && err.contains("longer than the model's context"),
        "{err}"
    );
    assert!(!bad_csv.exists());
}

/// `circuitscope validate-cud` end to end with small settings (two methods, short attribution, few
/// resamples): the report's files, a figure for every predictor; run again on the runs `--work`
/// kept, the same report without unlearning anything; the kept runs refused under another split.
#[test]
fn validate_cud_reports_every_predictor_the_quarters_and_the_signature() {
    let dir = common::TempDir::new();
    let out = dir.join("v");
    let work = dir.join("runs");
    let args: Vec<String> = [
        "validate-cud",
        "--out",
        out.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "--methods",
        "grad-diff,npo",
        "--edges",
        "30",
        "--steps",
        "2",
        "--mrd-draws",
        "3",
        "--resamples",
        "200",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let o = common::cli(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&out.join("validation.json"));
    let predictors = v["predictors"].as_array().unwrap();
    let names: Vec<&str> = predictors.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 5);
    assert!(names[0] == "CUD" && names[3].starts_with("MRD") && names[4] == "random", "{names:?}");
    for p in predictors {
        let (rho, lo, hi) = (
            p["spearman"]["value"].as_f64().unwrap(),
            p["spearman"]["lo"].as_f64().unwrap(),
            p["spearman"]["hi"].as_f64().unwrap(),
        );
        assert!((-1.0..=1.0).contains(&rho) && lo <= hi, "{p}");
        let auc = p["auroc_hardest_third"]["value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{p}");
    }
    // the halves split the 10 people 5 and 5, and no sample is in both
    let half = |k: &str| v[k]["samples"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect::<Vec<_>>();
    let (a, b) = (half("half_a"), half("half_b"));
    assert_eq!(
        (a.len() + b.len(), v["half_a"]["people"].as_u64(), v["half_b"]["people"].as_u64()),
        (200, Some(5), Some(5))
    );
    assert!(a.iter().all(|i| !b.contains(i)));
    assert_eq!(v["quarters"]["easiest"].as_array().unwrap().len(), 25);
    assert_eq!(v["signature"].as_array().unwrap().len(), 4);
    let p = v["quarters"]["p"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
    for pic in ["cud-vs-difficulty.svg", "layers.svg", "distribution.svg", "anchor-easy.svg", "anchor-hard.svg"] {
        let svg = std::fs::read_to_string(out.join(pic)).unwrap();
        circuitscope::render::svg::check_well_formed(&svg).unwrap_or_else(|e| panic!("{pic}: {e}"));
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| CUD |") && table.contains("permutation p"), "{table}");

    // two methods × (anchors on A, B, two quarters) kept; read back, the same report
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 8);
    let again = dir.join("again");
    let mut args2 = args.clone();
    args2[2] = again.to_str().unwrap().to_string();
    let o = common::cli(&args2);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(said.matches("read back from").count(), 8, "{said}");
    let without_times = |mut v: serde_json::Value| {
        for k in ["seconds", "cud_seconds"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(without_times(json(&again.join("validation.json"))), without_times(v));

    // another split of the people: the kept anchors were made on other samples
    let other = dir.join("other");
    let mut args3 = args2.clone();
    args3[2] = other.to_str().unwrap().to_string();
    args3.extend(["--seed".to_string(), "7".to_string()]);
    let o = common::cli(&args3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("made with other settings") && err.contains("forget:"), "{err}");
    assert!(!other.exists());
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

//! The circuit subcommands end to end through the built binary: attribute → circuit → evaluate
//! (one circuit and a sweep) → render, on the bundled model and its IOI task when present, else
//! on stories260k (../shared) with a small generated task file; plus their errors.

mod common;

use circuitscope::graph::{Circuit, EdgeScores, GraphShape};
use circuitscope::model::{LoadOptions, Model};
use common::{cli, shared, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed; stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A clean failure: exit code 1, one `error:` line holding every keyword, no panic.
#[track_caller]
fn assert_error(out: &Output, keywords: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected exit code 1; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked at"), "panic:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{stderr}");
    assert!(lines[0].starts_with("error:"), "{stderr}");
    for k in keywords {
        assert!(stderr.contains(k), "stderr lacks `{k}`:\n{stderr}");
    }
    eprint!("{stderr}");
    stderr
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The model and task file to test on: the bundled model with its IOI task when both exist,
/// else stories260k with a task file written into `dir`. `None` (loudly) when neither exists.
fn setup(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (bundled, ioi) = (root.join("models/world-gpt2"), root.join("circuits/world/tasks/ioi.jsonl"));
    if bundled.join("config.json").exists() && ioi.exists() {
        return Some((bundled, ioi));
    }
    eprintln!("note: {} is absent; testing on stories260k", bundled.display());
    let gguf = shared("models/stories260k/stories260k-f32.gguf")?;
    let tasks = dir.join("tasks.jsonl");
    std::fs::write(&tasks, stories_tasks(&gguf, 6)).unwrap();
    Some((gguf, tasks))
}

/// `n` task lines for stories260k whose clean and corrupted prompts have equal token counts
/// (its 512-token vocabulary splits names unevenly, so pairs are picked with its tokenizer).
fn stories_tasks(gguf: &Path, n: usize) -> String {
    let model = Model::load(gguf, LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let templates = [
        "Once upon a time, NAME and the dog went to the park. The dog gave the ball to",
        "One day, NAME had a big red ball. Mom said the ball was for",
        "NAME was happy. The bird sang a song for",
    ];
    let names = ["Lily", "Tom", "Sam", "Ben", "Mia", "Sue", "Max", "Lucy", "Anna", "Sara", "Tim", "Bob"];
    let mut lines = Vec::new();
    for t in templates {
        let len = |name: &str| tok.encode(&t.replace("NAME", name)).unwrap().len();
        for a in names {
            for b in names {
                if a != b && len(a) == len(b) && lines.len() < n {
                    let item = serde_json::json!({
                        "clean": t.replace("NAME", a), "corrupted": t.replace("NAME", b),
                        "answer": format!(" {a}"), "distractor": format!(" {b}"),
                    });
                    lines.push(item.to_string());
                }
            }
        }
    }
    assert_eq!(lines.len(), n, "not enough name pairs of equal token counts");
    lines.join("\n") + "\n"
}

#[test]
fn attribute_circuit_evaluate_render_pipeline() {
    let d = TempDir::new();
    let Some((model, data)) = setup(d.path()) else { return };
    let scores = d.join("scores.json");

    // attribute EAP-IG (m = 2) on 6 items, with `extra` flags, into `out`
    let ig2 = |extra: &[&str], out: &Path| {
        let mut args = vec!["attribute".to_string(), s(&model), "--data".into(), s(&data)];
        args.extend(["--method", "eap-ig-inputs", "--steps", "2", "--limit", "6"].map(String::from));
        args.extend(extra.iter().map(|x| x.to_string()));
        args.extend(["--out".to_string(), s(out)]);
        cli(&args)
    };
    // attribute, with per-sample scores
    let out = ig2(&["--per-sample", "--batch-size", "4"], &scores);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("top edges") && stdout.contains("forward"), "{stdout}");
    let all = Circuit::read_json(&scores).unwrap();
    let shape = all.shape();
    assert_eq!(all.n_edges_in_graph(), 0, "a scores file selects no edge");
    assert!(all.scores().edges().any(|(_, _, x)| x != 0.0), "every score is 0");
    let raw = read_json(&scores);
    assert_eq!(raw["edges"].as_object().unwrap().len(), shape.n_edges(), "every edge is written");
    assert!(raw["cfg"]["d_model"].as_u64().is_some());

    let meta = read_json(&d.join("scores.meta.json"));
    assert_eq!(meta["method"], "eap-ig-inputs");
    assert_eq!(meta["steps"], 2);
    assert_eq!(meta["metric"], "logit-diff");
    assert_eq!(meta["intervention"], "patching");
    assert_eq!(meta["n_items"], 6);
    assert!(meta["passes"]["forwards"].as_u64().unwrap() > 0 && meta["seconds"].as_f64().is_some());
    assert!(meta["clean_metric"].as_f64().unwrap().is_finite() && meta["corrupted_metric"].as_f64().is_some());

    // compare: a scores file against itself agrees perfectly
    let (cmp_json, cmp_svg) = (d.join("cmp.json"), d.join("cmp.svg"));
    let out =
        cli(&["compare", &s(&scores), &s(&scores), "--top", "5,20", "--json", &s(&cmp_json), "--svg", &s(&cmp_svg)]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("Spearman 1.0000 (signed scores), 1.0000 (|score|)"), "{stdout}");
    let cmp = read_json(&cmp_json);
    assert_eq!(cmp["n_edges"], shape.n_edges());
    assert_eq!(cmp["top_overlap"][1]["shared"], 20);
    let kinds = cmp["by_kind"].as_array().unwrap();
    assert!(kinds.iter().any(|k| k["kind"] == "into k") && kinds.iter().any(|k| k["kind"] == "from layer 0"), "{cmp}");
    assert!(kinds.iter().all(|k| k["spearman"] == 1.0), "{cmp}");
    assert!(stdout.contains("by kind of edge"), "{stdout}");
    circuitscope::render::svg::check_well_formed(&std::fs::read_to_string(&cmp_svg).unwrap()).unwrap();

    // with the reader fixes: recorded in the meta file, value and logit edges unchanged
    let fixed = d.join("scores-fixed.json");
    assert_ok(&ig2(&["--qk-fix", "--mlp-fix"], &fixed));
    assert_eq!(read_json(&d.join("scores-fixed.meta.json"))["fix"], "qk+mlp");
    assert_eq!(meta["fix"], "none");
    let (plain, with_fix) = (all.scores(), Circuit::read_json(&fixed).unwrap());
    let mut changed = 0;
    for (w, r, x) in with_fix.scores().edges() {
        let name = shape.edge_name_of(w, r);
        if name.ends_with("<v>") || name.ends_with("logits") {
            assert!((x - plain.get(w, r)).abs() <= 1e-5 * x.abs().max(1e-3), "{name}: {x} vs {}", plain.get(w, r));
        } else {
            changed += usize::from(x != plain.get(w, r));
        }
    }
    assert!(changed > 0, "the fixes changed no q/k/MLP edge");

    // the same attribution with bf16 weights ranks the edges alike
    let bf16 = d.join("scores-bf16.json");
    let out = ig2(&["--dtype", "bf16"], &bf16);
    assert_ok(&out);
    assert_eq!(read_json(&d.join("scores-bf16.meta.json"))["dtype"], "bf16");
    assert_ok(&cli(&["compare", &s(&scores), &s(&bf16), "--json", &s(&cmp_json)]));
    let cmp = read_json(&cmp_json);
    assert!(cmp["spearman"].as_f64().unwrap() > 0.98 && cmp["pearson"].as_f64().unwrap() > 0.99, "{cmp}");
    // The figures `compare` reports, recomputed here from the two files' edges paired by name
    // (an independent implementation: catches a compare that pairs edges by position in files
    // that list them in another order, or ranks ties differently).
    let (a, b) = (read_json(&scores), read_json(&bf16));
    let pairs: Vec<(f64, f64)> = a["edges"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, e)| (e["score"].as_f64().unwrap(), b["edges"][name]["score"].as_f64().unwrap()))
        .collect();
    let (x, y): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    let (rho, r) = (pearson_by_hand(&average_ranks(&x), &average_ranks(&y)), pearson_by_hand(&x, &y));
    assert!((cmp["spearman"].as_f64().unwrap() - rho).abs() < 1e-9, "compare says {}, by hand {rho}", cmp["spearman"]);
    assert!((cmp["pearson"].as_f64().unwrap() - r).abs() < 1e-9, "compare says {}, by hand {r}", cmp["pearson"]);

    let per_sample =
        candle_core::safetensors::load(d.join("scores.per_sample.safetensors"), &candle_core::Device::Cpu).unwrap();
    let ps = &per_sample["scores"];
    assert_eq!(ps.dims(), &[6, shape.n_fwd(), shape.n_bwd()]);
    assert_eq!(ps.dtype(), candle_core::DType::F32);
    assert_eq!(per_sample["node_scores"].dims(), &[6, shape.n_fwd()]);
    // The scores file holds the mean of the per-sample matrices.
    let mean: Vec<f32> = ps.mean(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let max = all.scores().scores.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (w, r, x) in all.scores().edges() {
        let m = mean[w * shape.n_bwd() + r];
        assert!((m - x).abs() <= 1e-4 * max + 1e-6, "{}: mean {m} vs {x}", shape.edge_name_of(w, r));
    }

    // circuit: top-n with drawings
    let circuit = d.join("circuit.json");
    let (svg, dot) = (d.join("circuit.svg"), d.join("circuit.dot"));
    let out = cli(&[
        "circuit",
        &s(&scores),
        "--top-n",
        "30",
        "--out",
        &s(&circuit),
        "--svg",
        &s(&svg),
        "--dot",
        &s(&dot),
        "--title",
        "IOI test",
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("edges") && stdout.contains("nodes"), "{stdout}");
    let c = Circuit::read_json(&circuit).unwrap();
    assert!(c.n_edges_in_graph() > 0 && c.n_edges_in_graph() <= 30, "{}", c.n_edges_in_graph());
    assert!(c.scores() == all.scores(), "the circuit keeps every score");
    let pruned = c.clone().pruned();
    assert!(pruned.edge_mask_ref() == c.edge_mask_ref() && pruned.node_mask() == c.node_mask(), "pruned by default");
    assert_eq!(c.node_scores().map(<[f32]>::len), Some(shape.n_nodes()), "node scores are kept");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.trim_end().ends_with("</svg>") && svg_text.contains("IOI test"));
    assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph"));
    let out = cli(&["circuit", &s(&scores), "--greedy", "20", "--no-prune", "--out", &s(&d.join("greedy.json"))]);
    assert_ok(&out);
    assert_eq!(Circuit::read_json(&d.join("greedy.json")).unwrap().n_edges_in_graph(), 20, "not pruned");
    // an empty circuit is written, with a note saying why
    let empty = d.join("empty.json");
    let out = cli(&["circuit", &s(&scores), "--threshold", "1e9", "--out", &s(&empty)]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("note: the circuit is empty") && stderr.contains("selects no edge"), "{stderr}");
    assert_eq!(Circuit::read_json(&empty).unwrap().n_edges_in_graph(), 0);
    // a scores file missing an edge (cut off?) is used, with a note: that edge scores 0
    let mut cut = read_json(&scores);
    let first = cut["edges"].as_object().unwrap().keys().next().unwrap().clone();
    cut["edges"].as_object_mut().unwrap().remove(&first);
    let cut_path = d.join("cut.json");
    std::fs::write(&cut_path, serde_json::to_string(&cut).unwrap()).unwrap();
    let out = cli(&["circuit", &s(&cut_path), "--top-n", "5", "--out", &s(&d.join("cut-circuit.json"))]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("lists {} of its graph's {} edges; the other 1 score 0", shape.n_edges() - 1, shape.n_edges());
    assert!(stderr.contains(&want), "{stderr}");

    // evaluate the circuit
    let result = d.join("faithfulness.json");
    let out = cli(&[
        "evaluate",
        &s(&model),
        "--data",
        &s(&data),
        "--limit",
        "6",
        "--circuit",
        &s(&circuit),
        "--out",
        &s(&result),
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("normalised faithfulness"), "{stdout}");
    let r = read_json(&result);
    for k in ["model_metric", "corrupted_metric", "circuit_metric", "faithfulness"] {
        assert!(r[k].as_f64().is_some_and(f64::is_finite), "{k}: {r}");
    }
    assert_eq!(r["edges"].as_u64().unwrap() as usize, c.n_edges_in_graph());
    assert!((r["model_metric"].as_f64().unwrap() - meta["clean_metric"].as_f64().unwrap()).abs() < 1e-3);

    // evaluate a sweep
    let (sweep, curve) = (d.join("sweep.json"), d.join("curve.svg"));
    let out = cli(&[
        "evaluate",
        &s(&model),
        "--data",
        &s(&data),
        "--limit",
        "6",
        "--circuit",
        &s(&circuit),
        "--sweep",
        "--out",
        &s(&sweep),
        "--svg",
        &s(&curve),
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("CPR") && stdout.contains("CMD"), "{stdout}");
    let r = read_json(&sweep);
    let (cpr, cmd) = (r["cpr"].as_f64().unwrap(), r["cmd"].as_f64().unwrap());
    assert!(cpr.is_finite() && cpr >= 0.0 && cmd.is_finite() && cmd >= 0.0, "CPR {cpr}, CMD {cmd}");
    let points = r["points"].as_array().unwrap();
    let requested: Vec<u64> = points.iter().map(|p| p["requested_edges"].as_u64().unwrap()).collect();
    assert_eq!(requested[..3], [1, 2, 5]);
    assert_eq!(*requested.last().unwrap() as usize, shape.n_edges(), "the sweep ends at the full graph");
    let last = points.last().unwrap()["faithfulness"].as_f64().unwrap();
    assert!((last - 1.0).abs() < 1e-3, "the full graph is the model: {last}");
    // the smallest circuit reaching --target (0.8): the first point at or above it
    assert_eq!(r["target"].as_f64(), Some(0.8));
    let first = points.iter().find(|p| p["faithfulness"].as_f64().is_some_and(|f| f >= 0.8)).unwrap();
    assert_eq!(r["smallest_reaching_target"]["edges"], first["edges"], "{r}");
    assert!(stdout.contains("smallest circuit reaching faithfulness 0.8"), "{stdout}");
    assert!(std::fs::read_to_string(&curve).unwrap().contains("<svg"));
    // explicit points, greedy
    let out = cli(&[
        "evaluate",
        &s(&model),
        "--data",
        &s(&data),
        "--limit",
        "2",
        "--circuit",
        &s(&circuit),
        "--sweep",
        "--selection",
        "greedy",
        "--points",
        "3,10",
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("greedy"), "{stdout}");
    // a target no circuit reaches is reported as such; a target that is not a number is refused
    let mut args: Vec<String> =
        ["evaluate", &s(&model), "--data", &s(&data), "--limit", "2", "--circuit", &s(&circuit)]
            .into_iter()
            .chain(["--sweep", "--points", "3", "--target", "100"])
            .map(String::from)
            .collect();
    let stdout = assert_ok(&cli(&args));
    assert!(stdout.contains("no circuit of the sweep reaches faithfulness 100"), "{stdout}");
    *args.last_mut().unwrap() = "nan".into();
    assert_error(&cli(&args), &["--target", "finite"]);

    // render
    let drawn = d.join("drawn.svg");
    let out = cli(&["render", &s(&circuit), "-o", &s(&drawn), "--hide-inactive", "--dot", &s(&d.join("drawn.dot"))]);
    assert_ok(&out);
    circuitscope::render::svg::check_well_formed(&std::fs::read_to_string(&drawn).unwrap()).unwrap();
    // The DOT file draws exactly the circuit's edges, each named in its tooltip (catches a
    // drawing of the scores file's edges, or of every edge, instead of the selection).
    let dot = std::fs::read_to_string(d.join("drawn.dot")).unwrap();
    let c = Circuit::read_json(&circuit).unwrap();
    let mut drawn_edges: Vec<String> = dot
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(|l| l.split("tooltip=\"").nth(1).unwrap().split(' ').next().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = c
        .scores()
        .edges()
        .filter(|&(w, r, _)| c.edge_mask()[w * c.shape().n_bwd() + r])
        .map(|(w, r, _)| c.shape().edge_name_of(w, r))
        .collect();
    drawn_edges.sort();
    want.sort();
    assert!(!want.is_empty() && drawn_edges == want, "DOT edges {drawn_edges:?}, circuit edges {want:?}");
    let stray: Vec<String> = d.entries().into_iter().filter(|e| e.ends_with(".tmp")).collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

#[test]
fn question_answer_data_defaults_to_nll_with_zero_ablation() {
    let d = TempDir::new();
    let Some(model) = shared("models/stories260k/stories260k-f32.gguf") else { return };
    let qa = d.join("qa.jsonl");
    let lines = [
        r#"{"question": "What did Lily find in the park?", "answer": "Lily found a red ball."}"#,
        r#"{"question": "Who was the dog's friend?", "answer": "The cat was the dog's friend."}"#,
        r#"{"question": "What did Tom eat?", "answer": "Tom ate a big cake."}"#,
    ];
    std::fs::write(&qa, lines.join("\n") + "\n").unwrap();
    let scores = d.join("qa_scores.json");
    let out =
        cli(&["attribute", &s(&model), "--data", &s(&qa), "--method", "eap", "--per-sample", "--out", &s(&scores)]);
    assert_ok(&out);
    let meta = read_json(&d.join("qa_scores.meta.json"));
    assert_eq!((meta["metric"].as_str(), meta["intervention"].as_str()), (Some("nll"), Some("zero")));
    assert_eq!(meta["data_kind"], "question/answer");
    assert!(meta["corrupted_metric"].is_null());
    let per_sample =
        candle_core::safetensors::load(d.join("qa_scores.per_sample.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(per_sample["scores"].dims()[0], 3);
    // The clean metric, recomputed here from plain logits: each answer's mean NLL given
    // "Question: …\nAnswer:", averaged over the items. Catches an answer token scored at its own
    // position instead of the one before it, or a prompt formatted otherwise than documented.
    let m = circuitscope::model::Model::load(&model, Default::default()).unwrap();
    let tok = m.tokenizer().unwrap();
    let mut total = 0.0;
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let prompt = format!("Question: {}\nAnswer:", v["question"].as_str().unwrap());
        let full = tok.encode(&format!("{prompt} {}", v["answer"].as_str().unwrap())).unwrap();
        let p = tok.encode(&prompt).unwrap().len();
        let input = candle_core::Tensor::new(full.as_slice(), &candle_core::Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits: Vec<Vec<f32>> = m.decoder.logits(&input).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        let nll: f64 = (p..full.len())
            .map(|j| {
                let row = &logits[j - 1];
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
                lse - row[full[j] as usize] as f64
            })
            .sum();
        total += nll / (full.len() - p) as f64;
    }
    let want = total / lines.len() as f64;
    let got = meta["clean_metric"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "clean NLL {got}, recomputed {want}");

    // mean ablation over the data's own prompts, and a sweep under it
    let out = cli(&[
        "attribute",
        &s(&model),
        "--data",
        &s(&qa),
        "--method",
        "eap",
        "--intervention",
        "mean-positions",
        "--metric",
        "seq-prob",
        "--out",
        &s(&scores),
    ]);
    assert_ok(&out);
    let out = cli(&[
        "evaluate",
        &s(&model),
        "--data",
        &s(&qa),
        "--circuit",
        &s(&scores),
        "--intervention",
        "mean",
        "--sweep",
        "--points",
        "5,50",
    ]);
    assert_ok(&out);

    let own = Circuit::read_json(&scores).unwrap();
    let reference = &read_json(&d.join("qa_scores.meta.json"))["reference"];
    assert_eq!((reference["path"].as_str(), reference["items"].as_u64()), (Some(s(&qa).as_str()), Some(3)));
    // means over another file's prompts (--reference): recorded, and other scores
    let other = d.join("other.jsonl");
    let line =
        r#"{"question": "Where did the little bird fly on that long sunny day?", "answer": "It flew far away."}"#;
    std::fs::write(&other, format!("{line}\n")).unwrap();
    let with_reference = |intervention: &str| {
        let args = ["attribute", &s(&model), "--data", &s(&qa), "--method", "eap", "--intervention", intervention];
        cli(&args.into_iter().chain(["--reference", &s(&other), "--out", &s(&scores)]).collect::<Vec<_>>())
    };
    assert_ok(&with_reference("mean-positions"));
    let reference = &read_json(&d.join("qa_scores.meta.json"))["reference"];
    assert_eq!((reference["path"].as_str(), reference["items"].as_u64()), (Some(s(&other).as_str()), Some(1)));
    assert!(Circuit::read_json(&scores).unwrap().scores() != own.scores(), "the reference set changes the means");
    assert_error(&with_reference("zero"), &["--reference", "mean"]);
    // a reference too short for per-position means is named; plain means take any length, and a
    // task file's clean prompts (its answers and corrupted prompts unchecked) serve as well
    std::fs::write(
        &other,
        "{\"clean\": \"Once\", \"corrupted\": \"Once upon a time\", \"answer\": \"\", \"distractor\": \" x\"}\n",
    )
    .unwrap();
    assert_error(&with_reference("mean-positions"), &["--reference", "other.jsonl", "per-position"]);
    assert_ok(&with_reference("mean"));

    let out = cli(&["attribute", &s(&model), "--data", &s(&qa), "--intervention", "patching", "--out", &s(&scores)]);
    assert_error(&out, &["qa.jsonl", "corrupted prompts", "zero"]);
    let out = cli(&["attribute", &s(&model), "--data", &s(&qa), "--metric", "logit-diff", "--out", &s(&scores)]);
    assert_error(&out, &["logit-diff", "distractor"]);
}

#[test]
fn errors_are_one_line_and_write_nothing() {
    let d = TempDir::new();
    let Some((model, data)) = setup(d.path()) else { return };
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("scores.json");
    let attribute = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["attribute".into(), s(&model)];
        args.extend(extra.iter().map(|x| x.to_string()));
        if !extra.contains(&"--out") {
            args.extend(["--out".into(), s(&target)]);
        }
        cli(&args)
    };
    let nothing_written = || {
        let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    };

    // data files
    let out = attribute(&["--data", &s(&d.join("absent.jsonl"))]);
    assert_error(&out, &["absent.jsonl"]);
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&data).unwrap().lines().next().unwrap().to_string() + "\n{\"clean\": 3\n",
    )
    .unwrap();
    assert_error(&attribute(&["--data", &s(&bad)]), &["bad.jsonl", "line 2"]);
    std::fs::write(&bad, "{\"prompt\": \"hello\"}\n").unwrap();
    assert_error(&attribute(&["--data", &s(&bad)]), &["bad.jsonl", "line 1", "question"]);
    let uneven = d.join("uneven.jsonl");
    let first = std::fs::read_to_string(&data).unwrap().lines().next().unwrap().to_string();
    let item = serde_json::json!({"clean": "Once upon a time", "corrupted": "Once upon a time, there was a big dog",
                                  "answer": " Tom", "distractor": " Lily"});
    std::fs::write(&uneven, format!("{first}\n\n{item}\n")).unwrap();
    let err = assert_error(&attribute(&["--data", &s(&uneven)]), &["uneven.jsonl", "line 3", "tokens"]);
    assert!(!err.contains("example 1"), "the line names the item, not a 0-based index too: {err}");
    std::fs::write(&bad, "{\"question\": \"Who?\", \"answer\": \"\"}\n").unwrap();
    assert_error(&attribute(&["--data", &s(&bad)]), &["bad.jsonl", "line 1", "answer is empty"]);
    nothing_written();

    // names and ranges
    assert_error(&attribute(&["--data", &s(&data), "--method", "eap-ig"]), &["eap-ig", "eap-ig-activations"]);
    assert_error(&attribute(&["--data", &s(&data), "--metric", "logitdiff"]), &["logitdiff", "logit-diff"]);
    assert_error(&attribute(&["--data", &s(&data), "--intervention", "resample"]), &["resample", "mean"]);
    assert_error(&attribute(&["--data", &s(&data), "--steps", "0"]), &["--steps"]);
    assert_error(
        &attribute(&["--data", &s(&data), "--method", "exact", "--qk-fix"]),
        &["--qk-fix", "gradient methods"],
    );
    let missing = d.join("no/such/dir/scores.json");
    assert_error(&attribute(&["--data", &s(&data), "--out", &s(&missing)]), &["--out", "does not exist"]);
    assert!(!d.join("no").exists());
    nothing_written();

    // a real scores file for the rest
    let scores = d.join("scores.json");
    let args = ["--data", &s(&data), "--method", "eap", "--limit", "2", "--out", &s(&scores)];
    assert_ok(&attribute(&args));
    let n_edges = Circuit::read_json(&scores).unwrap().shape().n_edges();
    let too_many = (n_edges + 1).to_string();
    let c_out = out_dir.join("c.json");
    let out = cli(&["circuit", &s(&scores), "--top-n", &too_many, "--out", &s(&c_out)]);
    assert_error(&out, &["--top-n", &too_many, &n_edges.to_string()]);
    assert_error(&cli(&["circuit", &s(&scores), "--top-n", "0", "--out", &s(&c_out)]), &["--top-n"]);
    let out = cli(&["circuit", &s(&scores), "--top-n", "5", "--out", &s(&c_out), "--svg", &s(&missing)]);
    assert_error(&out, &["--svg", "does not exist"]);
    let gif = out_dir.join("c.gif");
    let out = cli(&["circuit", &s(&scores), "--top-n", "5", "--out", &s(&c_out), "--svg", &s(&gif)]);
    assert_error(&out, &["--svg", "c.gif", ".svg, .pdf or .png"]);
    // a drawing as PDF or PNG by its extension
    let (pdf, png) = (d.join("c.pdf"), d.join("c.png"));
    assert_ok(&cli(&["circuit", &s(&scores), "--top-n", "5", "--out", &s(&d.join("c5.json")), "--svg", &s(&pdf)]));
    assert_ok(&cli(&["render", &s(&d.join("c5.json")), "-o", &s(&png)]));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    assert_error(&cli(&["circuit", &s(&d.join("nope.json")), "--top-n", "5", "--out", &s(&c_out)]), &["nope.json"]);
    nothing_written();

    // a circuit of another model's graph
    let other = d.join("other.json");
    let shape = GraphShape { n_layers: 1, n_heads: 2, parallel_residual: false };
    Circuit::top_n(&EdgeScores::zeros(shape), 3).unwrap().write_json(&other).unwrap();
    let out = cli(&["evaluate", &s(&model), "--data", &s(&data), "--circuit", &s(&other)]);
    assert_error(&out, &["other.json", "1 layers × 2 heads", "the model"]);
    let out = cli(&["evaluate", &s(&model), "--data", &s(&data), "--circuit", &s(&scores), "--sweep", "--points", "x"]);
    assert_error(&out, &["--points", "`x`"]);
    let out =
        cli(&["evaluate", &s(&model), "--data", &s(&data), "--circuit", &s(&scores), "--sweep", "--points", &too_many]);
    assert_error(&out, &["--points", "out of range"]);
    let out = cli(&["render", &s(&other), "-o", &s(&missing)]);
    assert_error(&out, &["--out", "does not exist"]);
    let out = cli(&["compare", &s(&scores), &s(&other), "--json", &s(&out_dir.join("cmp.json"))]);
    assert_error(&out, &["scores.json", "other.json", "1 layers × 2 heads", "different graphs"]);
    assert_error(&cli(&["compare", &s(&scores), &s(&scores), "--top", "x"]), &["--top", "`x`"]);
    nothing_written();
}

/// Ranks 1..n, ties sharing their mean rank.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            ranks[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    ranks
}

fn pearson_by_hand(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let (vx, vy): (f64, f64) = (x.iter().map(|a| (a - mx).powi(2)).sum(), y.iter().map(|b| (b - my).powi(2)).sum());
    cov / (vx * vy).sqrt()
}

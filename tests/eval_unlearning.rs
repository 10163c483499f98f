//! TOFU's evaluation: ROUGE-L recall and the Porter stemmer against `rouge_score` and NLTK, the
//! per-question measures against transformers (tests/reference/tofu_reference.py), and
//! `circuitscope eval-unlearning` end to end, bad input included.

mod common;

use circuitscope::data::{read_jsonl, PerturbedQa, PromptFormat};
use circuitscope::model::{LoadOptions, Model};
use circuitscope::unlearn::evaluate::{auc, score_questions, MiaAucs, ScoreOptions};
use circuitscope::unlearn::rouge::{porter_stem, rouge_l_recall, tokenize};
use common::fixture;
use serde_json::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn rouge_l_recall_and_the_stemmer_equal_rouge_score_and_nltk() {
    let f = json(&fixture("rouge/reference.json"));
    let stems = f["stems"].as_object().unwrap();
    assert!(stems.len() > 10_000);
    for (word, stem) in stems {
        assert_eq!(porter_stem(word), stem.as_str().unwrap(), "stem of {word:?}");
    }
    for case in f["tokenize"].as_array().unwrap() {
        let want: Vec<&str> = case["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(tokenize(case["text"].as_str().unwrap()), want, "{case}");
    }
    let pairs = f["rouge"].as_array().unwrap();
    assert!(pairs.len() > 600);
    for p in pairs {
        let got = rouge_l_recall(p["prediction"].as_str().unwrap(), p["reference"].as_str().unwrap());
        let want = p["recall"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{p}: {got}");
    }
}

#[test]
fn auc_counts_ties_half_as_sklearn_does() {
    assert_eq!(auc(&[0.1, 0.2], &[0.3, 0.4]).unwrap(), 1.0);
    assert_eq!(auc(&[0.3, 0.4], &[0.1, 0.2]).unwrap(), 0.0);
    assert_eq!(auc(&[0.5], &[0.5]).unwrap(), 0.5);
    // sklearn.metrics.roc_auc_score([0,0,0,1,1,1], [1,2,2,2,3,0]) = 5/9: of the nine pairs the
    // positives 2 and 3 win 1 and 3, tie 2 (half each), and 0 loses all
    assert!((auc(&[1.0, 2.0, 2.0], &[2.0, 3.0, 0.0]).unwrap() - 5.0 / 9.0).abs() < 1e-15);
    assert!(auc(&[], &[1.0]).is_err() && auc(&[f64::NAN], &[1.0]).is_err());
}

fn bundled() -> Model {
    Model::load(root().join("models/world-gpt2"), LoadOptions::default()).unwrap()
}

fn rows(set: &Value) -> Vec<PerturbedQa> {
    set.as_array()
        .unwrap()
        .iter()
        .map(|r| PerturbedQa {
            question: r["question"].as_str().unwrap().into(),
            answer: r["answer_text"].as_str().unwrap().into(),
            paraphrased_answer: r["paraphrased_text"].as_str().map(String::from),
            perturbed_answer: r["perturbed_text"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
            paraphrased_question: None,
        })
        .collect()
}

fn close(got: f64, want: &Value, tol: f64, what: &str) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: no reference value"));
    assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{what}: {got} against transformers' {want}");
}

/// Every per-question number of the bundled model on the world's evaluation files equals what
/// transformers gives (tests/fixtures/tofu/reference.json), to 1e-4: the answer's NLL and
/// probability, the truth ratio, the normalised probability, exact memorisation, extraction
/// strength and the four MIA scores; and the MIA AUCs equal sklearn's.
#[test]
fn per_question_measures_equal_transformers() {
    let f = json(&fixture("tofu/reference.json"));
    let model = bundled();
    let tok = model.tokenizer().unwrap();
    let opts = ScoreOptions { batch: 8, max_new_tokens: 0, generate: false };
    let fmt = PromptFormat::question_answer();
    let mut scored = std::collections::BTreeMap::new();
    for set in ["forget", "retain", "real_authors", "world_facts", "holdout"] {
        let items = rows(&f[set]);
        assert!(!items.is_empty(), "{set}");
        let got =
            score_questions(&model.decoder, tok, &fmt, &items, &opts, &circuitscope::progress::NoProgress).unwrap();
        for (q, r) in got.iter().zip(f[set].as_array().unwrap()) {
            let a = &r["answer"];
            let what = |m: &str| format!("{set} {:?} {m}", q.question);
            assert_eq!(q.n_tokens as u64, a["n_tokens"].as_u64().unwrap(), "{}", what("tokens"));
            close(q.nll_sum, &a["nll_sum"], 1e-4, &what("nll_sum"));
            close(q.probability, &a["prob"], 1e-4, &what("probability"));
            close(q.exact_memorisation, &a["exact_mem"], 1e-12, &what("exact memorisation"));
            close(q.extraction_strength, &a["extraction_strength_strict"], 1e-12, &what("extraction strength"));
            close(q.mia.loss, &a["mean_nll"], 1e-4, &what("LOSS"));
            close(q.mia.zlib, &a["zlib"], 1e-4, &what("zlib"));
            close(q.mia.min_k, &a["min_k"], 1e-4, &what("Min-k%"));
            close(q.mia.min_k_plus_plus, &a["min_k_plus_plus"], 1e-3, &what("Min-k%++"));
            if let Some(tr) = q.truth_ratio {
                close(tr, &r["truth_ratio"], 1e-4, &what("truth ratio"));
            }
            if let (Some(p), Some(want)) = (q.normalised_probability, r.get("prob_normalised")) {
                close(p, want, 1e-4, &what("normalised probability"));
            }
        }
        scored.insert(set, got);
    }
    let aucs = MiaAucs::of(&scored["forget"], &scored["holdout"]).unwrap();
    let want = &f["aggregates"]["mia_auc"];
    close(aucs.loss, &want["loss"], 1e-9, "AUC LOSS");
    close(aucs.zlib, &want["zlib"], 1e-9, "AUC zlib");
    close(aucs.min_k, &want["min_k"], 1e-9, "AUC Min-k%");
    close(aucs.min_k_plus_plus, &want["min_k_plus_plus"], 1e-9, "AUC Min-k%++");
}

/// A checkpoint that `circuitscope unlearn` saves loads in transformers and gives the logits
/// circuitscope gives: the run is deterministic on the CPU, so the test makes the same
/// checkpoint again and compares it with the fixture made from it in transformers.
#[test]
fn an_unlearned_checkpoint_gives_the_same_logits_in_transformers() {
    let dir = common::TempDir::new();
    let out = dir.join("npo");
    let world = root().join("circuits/world");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = common::cli(&[
        "unlearn".into(),
        s(&root().join("models/world-gpt2")),
        "--forget".into(),
        s(&world.join("forget01.jsonl")),
        "--retain".into(),
        s(&world.join("retain99.jsonl")),
        "--method".into(),
        "npo".into(),
        "--limit".into(),
        "16".into(),
        "--epochs".into(),
        "2".into(),
        "--lr".into(),
        "2e-4".into(),
        "--out".into(),
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = Model::load(&out, LoadOptions::default()).unwrap();
    let reference =
        candle_core::safetensors::load(fixture("tofu/unlearned_logits.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let n = reference.keys().filter(|k| k.starts_with("ids.")).count();
    assert!(n >= 4);
    for i in 0..n {
        let ids: Vec<u32> = reference[&format!("ids.{i}")]
            .to_dtype(candle_core::DType::U32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let logits = model.decoder.logits(&circuitscope::model::Decoder::input(&ids).unwrap()).unwrap();
        let want = &reference[&format!("logits.{i}")];
        let d = common::max_abs_diff(&logits.squeeze(0).unwrap(), want);
        assert!(d < 1e-4, "prompt {i}: logits differ from transformers' by {d}");
    }
}

fn cli_eval(extra: &[String]) -> std::process::Output {
    let mut args: Vec<String> = vec!["eval-unlearning".into()];
    args.extend(extra.iter().cloned());
    common::cli(&args)
}

fn world(f: &str) -> String {
    root().join("circuits/world").join(f).to_str().unwrap().to_string()
}

fn eval_args(model: &Path, out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec![model.to_str().unwrap().into()];
    for (flag, file) in [
        ("--forget", "forget01.jsonl"),
        ("--retain", "retain_perturbed.jsonl"),
        ("--holdout", "holdout.jsonl"),
        ("--real-authors", "real_authors_perturbed.jsonl"),
        ("--world-facts", "world_facts_perturbed.jsonl"),
    ] {
        v.extend([flag.to_string(), world(file)]);
    }
    v.extend(["--limit".into(), "20".into(), "--out".into(), out.to_str().unwrap().into()]);
    v
}

/// `circuitscope eval-unlearning` on the bundled model against its retain model: the per-question
/// file, the summary with every headline number, and two well-formed pictures.
#[test]
fn eval_unlearning_writes_questions_summary_and_pictures() {
    let dir = common::TempDir::new();
    let out = dir.join("eval");
    let retain_model = root().join("models/world-gpt2-retain90");
    let mut args = eval_args(&root().join("models/world-gpt2"), &out);
    args.extend(["--retain-model".into(), retain_model.to_str().unwrap().into()]);
    let o = cli_eval(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["metrics.svg", "questions.jsonl", "summary.json", "truth_ratio.svg"]);
    let s = json(&out.join("summary.json"));
    for key in ["forget_quality", "model_utility", "ks_statistic"] {
        let v = s[key].as_f64().unwrap_or_else(|| panic!("{key}: {s}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    // the bundled model knows forget01 and its retain model never saw it
    assert!(s["forget"]["probability"].as_f64().unwrap() > 0.9, "{s}");
    assert!(s["retain_model_forget"]["probability"].as_f64().unwrap() < 0.5, "{s}");
    assert!(s["forget_quality"].as_f64().unwrap() < 0.05, "the original model is far from its retain model: {s}");
    assert!(s["mia_auc"]["loss"].as_f64().unwrap() > 0.9, "forget answers are far likelier than holdout ones");
    assert!(s["privleak"]["min_k_plus_plus"].is_number());
    let questions: Vec<Value> = read_jsonl(&out.join("questions.jsonl")).unwrap();
    assert_eq!(questions.len(), 20 * 5, "20 questions of each of five files");
    let q = &questions[0];
    assert_eq!(q["set"], "forget");
    for key in ["nll", "probability", "truth_ratio", "rouge_l_recall", "generated", "exact_memorisation", "mia"] {
        assert!(!q[key].is_null(), "{key}: {q}");
    }
    for svg in ["truth_ratio.svg", "metrics.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        circuitscope::render::svg::check_well_formed(&text).unwrap_or_else(|e| panic!("{svg}: {e}"));
    }

    // the same pictures as PDF
    let pdf_out = dir.join("eval-pdf");
    let mut args = eval_args(&root().join("models/world-gpt2"), &pdf_out);
    let i = args.iter().position(|x| x == "--limit").unwrap();
    args[i + 1] = "3".into();
    args.extend(["--pictures".into(), "pdf".into()]);
    let o = cli_eval(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for pdf in ["truth_ratio.pdf", "metrics.pdf"] {
        assert!(std::fs::read(pdf_out.join(pdf)).unwrap().starts_with(b"%PDF-"), "{pdf}");
    }
}

/// Bad input: one clear error each, a non-zero exit, and no output folder.
#[test]
fn eval_unlearning_refuses_bad_input_and_writes_nothing() {
    let dir = common::TempDir::new();
    let out = dir.join("out");
    let model = root().join("models/world-gpt2");
    let write = |name: &str, text: &str| -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let empty = write("empty.jsonl", "");
    let no_answer = write("no_answer.jsonl", "{\"question\": \"Who?\"}\n");
    let blank = write("blank.jsonl", "{\"question\": \"Who?\", \"answer\": \" \", \"perturbed_answer\": [\"Me.\"]}\n");
    // forget questions whose perturbed file asks other questions
    let forget = write("f.jsonl", &std::fs::read_to_string(world("forget10.jsonl")).unwrap().replace("Xara", "Zed"));
    let long = write(
        "long.jsonl",
        &format!(
            "{{\"question\": \"{}\", \"answer\": \"Yes.\", \"perturbed_answer\": [\"No.\"]}}\n",
            "why ".repeat(300)
        ),
    );
    let vocab = dir.join("other-vocab");
    std::fs::create_dir(&vocab).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer_config.json"] {
        std::fs::copy(model.join(f), vocab.join(f)).unwrap();
    }
    let mut tok = json(&model.join("tokenizer.json"));
    tok["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
        "id": 1765, "content": "<|extra|>", "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": false, "special": true
    }));
    std::fs::write(vocab.join("tokenizer.json"), serde_json::to_vec(&tok).unwrap()).unwrap();

    let base = eval_args(&model, &out);
    let with = |flag: &str, value: &str| -> Vec<String> {
        let mut v = base.clone();
        match v.iter().position(|a| a == flag) {
            Some(i) => v[i + 1] = value.to_string(),
            None => v.extend([flag.to_string(), value.to_string()]),
        }
        v
    };
    let perturbed = world("forget10_perturbed.jsonl");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (with("--forget", &empty), vec!["empty.jsonl", "no questions"]),
        (with("--holdout", &no_answer), vec!["no_answer.jsonl", "line 1", "answer"]),
        (with("--world-facts", &blank), vec!["blank.jsonl", "record 1", "empty"]),
        (
            with("--forget", &forget).into_iter().chain(["--forget-perturbed".into(), perturbed]).collect(),
            vec!["forget10_perturbed.jsonl", "record 1", "in order"],
        ),
        (with("--retain", &world("forget01_perturbed.jsonl")), vec!["share 20 questions"]),
        (with("--real-authors", &long), vec!["long.jsonl", "record 1", "longer than the model's context of 128"]),
        (with("--retain-model", vocab.to_str().unwrap()), vec!["other-vocab", "vocabulary"]),
        (with("--prompt-format", "Q: nothing"), vec!["{question}"]),
        (with("--retain", &world("retain90.jsonl")), vec!["retain90.jsonl", "perturbed_answer"]),
        (with("--pictures", "gif"), vec!["--pictures", "gif", "svg, pdf or png"]),
    ];
    for (args, words) in cases {
        let o = cli_eval(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.starts_with("error:") && !err.contains("panicked"), "{args:?}: {err}");
        assert!(words.iter().all(|w| err.contains(w)), "{words:?} in: {err}");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}

/// The prompt format of an instruct model comes from its chat template (rendered by minijinja as
/// transformers' `apply_chat_template(..., add_generation_prompt=True)` does).
#[test]
fn a_chat_template_becomes_the_prompt_format() {
    let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + \
                    message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}\
                    {{ '<|im_start|>assistant\\n' }}{% endif %}";
    let rendered = circuitscope::model::chat::render_user_turn(template, "{question}", "", "<|im_end|>").unwrap();
    let f = PromptFormat::from_rendered_chat(rendered, "test").unwrap();
    assert_eq!(f.prompt("Who?"), "<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(f.completion("Me."), "Me.");
    let q = PromptFormat::parse("Q: {question}\\nA:").unwrap();
    assert_eq!((q.prompt("Who?"), q.completion("Me.")), ("Q: Who?\nA:".to_string(), " Me.".to_string()));
    assert!(PromptFormat::parse("no placeholder").is_err());
    assert!(circuitscope::model::chat::render_user_turn("{% if %}", "x", "", "").is_err());
}

/// The retain model's own evaluation stands in for the retain model (`--retain-eval`): the
/// numbers that need it equal those of scoring it again, and the retain model evaluated against
/// itself is scored once, at forget quality 1. A saved evaluation of other questions, in another
/// prompt format, or that is not there is refused.
#[test]
fn a_retain_models_own_evaluation_stands_in_for_it() {
    let dir = common::TempDir::new();
    let retain_model = root().join("models/world-gpt2-retain90");
    let rm = retain_model.to_str().unwrap().to_string();
    let run = |model: &Path, out: &Path, extra: &[&str]| -> std::process::Output {
        let mut args = eval_args(model, out);
        args.extend(extra.iter().map(|s| s.to_string()));
        cli_eval(&args)
    };
    let own = dir.join("own");
    let o = run(&retain_model, &own, &["--retain-model", &rm]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&own.join("summary.json"));
    assert_eq!(s["forget_quality"].as_f64(), Some(1.0), "{s}");
    assert_eq!(s["ks_statistic"].as_f64(), Some(0.0), "{s}");
    assert!(s["retain_model_forget"]["rouge_l_recall"].is_null(), "teacher-forced only, as a loaded one: {s}");

    let model = root().join("models/world-gpt2");
    let (loaded, read) = (dir.join("loaded"), dir.join("read"));
    let o = run(&model, &loaded, &["--retain-model", &rm]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // the same template from another source (the models' own chat templates differ so)
    let o = run(
        &model,
        &read,
        &["--retain-eval", own.to_str().unwrap(), "--prompt-format", "Question: {question}\nAnswer:"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (json(&loaded.join("summary.json")), json(&read.join("summary.json")));
    for key in ["forget_quality", "ks_statistic", "retain_model_forget", "retain_model_mia_auc", "privleak", "forget"] {
        assert!(!a[key].is_null(), "{key}: {a}");
        assert_eq!(a[key], b[key], "{key}");
    }

    let bad = dir.join("bad");
    let own_arg = own.to_str().unwrap();
    let nowhere = dir.join("nowhere");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--retain-eval", own_arg, "--prompt-format", "Q: {question}\nA:"], vec!["summary.json", "prompt format"]),
        (vec!["--retain-eval", own_arg, "--limit", "10"], vec!["questions.jsonl", "holds 20 questions", "10"]),
        (vec!["--retain-eval", nowhere.to_str().unwrap()], vec!["nowhere", "no summary.json"]),
        (vec!["--retain-eval", own_arg, "--retain-model", &rm], vec!["--retain-eval", "--retain-model"]),
    ];
    for (extra, words) in cases {
        let mut args = eval_args(&model, &bad);
        for pair in extra.chunks(2) {
            match args.iter().position(|x| x == pair[0]) {
                Some(i) => args[i + 1] = pair[1].to_string(),
                None => args.extend([pair[0].to_string(), pair[1].to_string()]),
            }
        }
        let o = cli_eval(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("error") && !err.contains("panicked"), "{extra:?}: {err}");
        assert!(words.iter().all(|w| err.contains(w)), "{words:?} in: {err}");
        assert!(!bad.exists(), "{extra:?} left {}", bad.display());
    }
}

/// Answers that share a prompt are scored on its cached keys and values
/// (`token_stats_shared_prompts`, what TOFU's evaluation runs): per answer token the same
/// log-probability, Min-k%++ moments and argmax as a full pass over prompt and answer, for
/// prompts of different lengths (left-padded), groups of one to four answers (right-padded),
/// answers of one token, a group split over two passes, groups that fit the context alone but
/// not together, rotary and learned positions, grouped queries and a sliding window.
#[test]
fn answers_sharing_a_prompt_score_as_full_passes_do() {
    use circuitscope::data::Example;
    use circuitscope::unlearn::answers::{token_stats, token_stats_shared_prompts};
    let prompts: [&[u32]; 4] = [&[5, 9, 13, 2, 7, 30], &[3, 4], &[8, 1, 16, 22, 2, 11, 19, 6, 24], &[12]];
    let answers: [&[&[u32]]; 4] = [
        &[&[17, 3, 9], &[17, 4], &[2, 2, 2, 2, 2]],
        &[&[1], &[6, 8]],
        &[&[9, 9, 10, 11], &[4], &[20, 3, 3], &[7, 7]],
        &[&[14, 15, 16]],
    ];
    let mut examples: Vec<Example> =
        prompts.iter().zip(answers).flat_map(|(p, a)| a.iter().map(|a| Example::qa(p.to_vec(), a.to_vec()))).collect();
    // a long prompt, then a long answer: each fits the context of 64, the two together do not
    let long: Vec<u32> = (0..40).map(|i| 1 + (i * 7) % 90).collect();
    examples.push(Example::qa(long.clone(), vec![3, 5, 8]));
    examples.push(Example::qa(vec![2, 4], long));
    for family in ["gpt2", "llama", "mistral", "qwen2"] {
        let opts = LoadOptions { dtype: candle_core::DType::F64, ..LoadOptions::default() };
        let model = Model::load(fixture(&format!("parity/{family}")), opts).unwrap();
        let full = token_stats(&model.decoder, &examples, 4).unwrap();
        for batch in [1, 4, 16] {
            let shared = token_stats_shared_prompts(&model.decoder, &examples, batch).unwrap();
            assert_eq!(shared.len(), full.len());
            for (i, (s, f)) in shared.iter().zip(&full).enumerate() {
                assert_eq!(s.len(), f.len(), "{family}, answer {i}");
                assert_eq!(s.argmax, f.argmax, "{family}, batch {batch}, answer {i}");
                for (what, a, b) in [("log p", &s.logprob, &f.logprob), ("mu", &s.mu, &f.mu), ("var", &s.var, &f.var)] {
                    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                    assert!(d < 1e-5, "{family}, batch {batch}, answer {i}: {what} differs by {d}");
                }
            }
        }
    }
    let refused = token_stats_shared_prompts(
        &Model::load(fixture("parity/gpt2"), LoadOptions::default()).unwrap().decoder,
        &[Example::pair(vec![1, 2], vec![1, 3], 4, 5)],
        4,
    );
    assert!(refused.unwrap_err().to_string().contains("question/answer"));
}

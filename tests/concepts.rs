//! Concept vectors: the reference's answer scores reproduced from its own packages, value vectors
//! and their projections, the localisation's shortcut against the direct computation and on a
//! planted vector, the audit, the ConceptVectors files, noise validation and batched greedy
//! decoding.

mod common;

use candle_core::{DType, Device, Tensor};
use circuitscope::analyses::concepts::find::standardised;
use circuitscope::analyses::concepts::text_match::{bleu, rouge_l_f};
use circuitscope::analyses::concepts::validate::noisy;
use circuitscope::analyses::concepts::{
    audit, find, projection, read_concepts, validate, ConceptTokens, Direction, FindOptions, Readout, ValidateOptions,
    ValueVector,
};
use circuitscope::hooks::{HookPoint, HookSet, Site};
use circuitscope::model::inspect::{greedy, greedy_cached};
use circuitscope::model::{Decoder, LoadOptions, Model};
use circuitscope::progress::NoProgress;
use common::{fixture, max_abs_diff, shared, TempDir};
use std::path::PathBuf;

fn world() -> Model {
    Model::load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/world-gpt2"), LoadOptions::default()).unwrap()
}

#[test]
fn bleu_and_rouge_l_equal_nltk_and_the_rouge_package() {
    let text = std::fs::read_to_string(fixture("concepts/text_scores.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.len() > 200);
    for c in cases {
        let (r, h) = (c["reference"].as_str().unwrap(), c["candidate"].as_str().unwrap());
        let (b, want_b) = (bleu(r, h), c["bleu"].as_f64().unwrap());
        let (l, want_l) = (rouge_l_f(r, h), c["rouge_l_f"].as_f64().unwrap());
        assert!((b - want_b).abs() < 1e-12, "BLEU of {h:?} against {r:?}: {b} vs nltk {want_b}");
        assert!((l - want_l).abs() < 1e-12, "ROUGE-L of {h:?} against {r:?}: {l} vs rouge {want_l}");
    }
}

#[test]
fn a_value_vector_is_a_column_of_the_output_projection_and_replacing_it_touches_nothing_else() {
    let m = world();
    let dec = &m.decoder;
    let vv = ValueVector { layer: 2, dim: 77 };
    let v = vv.of(dec).unwrap();
    let w: Vec<Vec<f32>> = dec.blocks[2].mlp.w_out.to_vec2().unwrap();
    let col: Vec<f32> = w.iter().map(|row| row[77]).collect();
    assert_eq!(v.to_vec1::<f32>().unwrap(), col);
    // the projection is the unembedding times the vector
    let p = projection(dec, &v).unwrap();
    let want = dec.unembed.matmul(&v.unsqueeze(1).unwrap()).unwrap().squeeze(1).unwrap();
    assert!(max_abs_diff(&p, &want) < 1e-6);
    // a replaced column, and nothing else
    let zero = Tensor::zeros(v.dims(), DType::F32, &Device::Cpu).unwrap();
    let edited = vv.replaced(dec, &zero).unwrap();
    let after: Vec<Vec<f32>> = edited.blocks[2].mlp.w_out.to_vec2().unwrap();
    for (i, (a, b)) in w.iter().zip(&after).enumerate() {
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            if j == 77 {
                assert_eq!(*y, 0.0);
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "w_out[{i}, {j}] changed");
            }
        }
    }
    for (l, blk) in edited.blocks.iter().enumerate().filter(|(l, _)| *l != 2) {
        assert_eq!(max_abs_diff(&blk.mlp.w_out, &dec.blocks[l].mlp.w_out), 0.0);
    }
    // out of range: one message naming the bound
    let err = ValueVector { layer: 4, dim: 0 }.of(dec).unwrap_err().to_string();
    assert!(err.contains("layer 4 is out of range: the model has layers 0..3"), "{err}");
    let err = ValueVector { layer: 0, dim: 512 }.of(dec).unwrap_err().to_string();
    assert!(err.contains("dimension 512 is out of range: layer 0's MLP has hidden units 0..511"), "{err}");
}

#[test]
fn the_scan_ranks_a_planted_concept_vector_first_with_the_score_computed_directly() {
    // a model with random weights, whose unembedding rows are near-orthogonal: a vector that
    // writes the sum of the concept tokens' rows lifts exactly those tokens
    let m = Model::load(fixture("parity/llama"), LoadOptions::default()).unwrap();
    let concept = ConceptTokens { ids: [5u32, 17, 40, 41].into_iter().collect() };
    let ids: Vec<u32> = concept.ids.iter().copied().collect();
    let rows = m.decoder.unembed.index_select(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap(), 0).unwrap();
    let vv = ValueVector { layer: 1, dim: 100 };
    let dec = vv.replaced(&m.decoder, &rows.sum(0).unwrap()).unwrap();
    let opts = FindOptions { q: 3, ..Default::default() };
    let found = find(&dec, None, &concept, &opts, &NoProgress).unwrap();
    assert_eq!(found[0].vector, vv, "{:?}", found.iter().map(|c| (c.vector, c.score)).collect::<Vec<_>>());
    assert_eq!(found[0].overlap, 4, "every concept token in the planted vector's top 200 (of 96)");
    assert!(found[0].score > 2.0 * found[1].score, "{} vs {}", found[0].score, found[1].score);
    // the shortcut (mean and variance through the unembedding's moments) equals the direct score
    for c in &found {
        let z: Vec<f64> =
            standardised(&projection(&dec, &c.vector.of(&dec).unwrap()).unwrap()).unwrap().to_vec1().unwrap();
        let mut zt: Vec<f64> = ids.iter().map(|&i| z[i as usize]).collect();
        zt.sort_by(|a, b| b.total_cmp(a));
        let direct = zt[..3].iter().sum::<f64>() / 3.0;
        assert!((c.score - direct).abs() < 1e-4 * direct.abs().max(1.0), "{}: {} vs {direct}", c.vector, c.score);
    }
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    // the same scan gives the same scores, bit for bit
    let again = find(&dec, None, &concept, &opts, &NoProgress).unwrap();
    let bits =
        |f: &[circuitscope::analyses::concepts::Candidate]| f.iter().map(|c| c.score.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&found), bits(&again));
    let err =
        find(&dec, None, &concept, &FindOptions { layers: Some(1..9), ..Default::default() }, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("layers 1..9 are not a range of this model's layers 0..1"), "{err}");
}

#[test]
fn concept_tokens_come_from_keywords_or_a_text_without_stop_words() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let c = ConceptTokens::from_terms(tok, "Orvane Kestrel").unwrap();
    let texts: Vec<String> = c.ids.iter().map(|&i| tok.token_text(i)).collect();
    assert!(texts.iter().any(|t| t == " Orvane") && texts.iter().any(|t| t == " Kestrel"), "{texts:?}");
    let t = ConceptTokens::from_text(tok, "Xara Kestrel was born in Orvane. She is a painter.").unwrap();
    let texts: Vec<String> = t.ids.iter().map(|&i| tok.token_text(i).trim().to_lowercase()).collect();
    assert!(texts.iter().all(|t| !["was", "in", "she", "is", "a", "."].contains(&t.as_str())), "{texts:?}");
    let err = ConceptTokens::from_terms(tok, "a the of").unwrap_err().to_string();
    assert!(err.contains("give no content token in this model's vocabulary"), "{err}");
}

#[test]
fn a_texts_salient_words_are_its_most_frequent_or_those_particular_to_it() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let words =
        |c: &ConceptTokens| -> Vec<String> { c.ids.iter().map(|&i| tok.token_text(i).trim().to_string()).collect() };
    // "city" is the commonest word here, but every background text has it too
    let text = "Kestrel city. Orvane city. Kestrel city. Orvane city. city city.";
    let plain = ConceptTokens::salient_from_text(tok, text, &[], 1).unwrap();
    assert_eq!(words(&plain), ["city"]);
    let background = ["A city of Orvane.".to_string(), "Another city.".to_string()];
    // Kestrel: in no background text (weight 2 ln 3); Orvane: in one of two (2 ln 1.5); city: in
    // both, so weightless
    assert_eq!(words(&ConceptTokens::salient_from_text(tok, text, &background, 1).unwrap()), ["Kestrel"]);
    let mut all = words(&ConceptTokens::salient_from_text(tok, text, &background, 5).unwrap());
    all.sort();
    assert_eq!(all, ["Kestrel", "Orvane"]);
    let shared = ["A city, Kestrel and Orvane.".to_string()];
    let err = ConceptTokens::salient_from_text(tok, text, &shared, 5).unwrap_err().to_string();
    assert!(err.contains("give no content token"), "{err}");
}

#[test]
fn the_audit_of_a_model_against_itself_and_against_an_edit() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let dec = &m.decoder;
    let concept = ConceptTokens::from_terms(tok, "Orvane Kestrel").unwrap();
    let vv = ValueVector { layer: 3, dim: 5 };
    let same = audit(dec, dec, &[vv], Some(&concept)).unwrap();
    assert!((same[0].cosine - 1.0).abs() < 1e-12);
    assert_eq!(same[0].l2, 0.0);
    assert_eq!(same[0].jaccard, 1.0);
    // a flipped vector points the other way: cosine −1, distance 2‖v‖, a different top-200
    let v = vv.of(dec).unwrap();
    let flipped = vv.replaced(dec, &v.neg().unwrap()).unwrap();
    let a = &audit(dec, &flipped, &[vv, ValueVector { layer: 0, dim: 1 }], Some(&concept)).unwrap();
    assert!((a[0].cosine + 1.0).abs() < 1e-6);
    assert!((a[0].l2 - 2.0 * a[0].norm).abs() < 1e-4 * a[0].norm);
    assert!(a[0].jaccard < 0.5, "{}", a[0].jaccard);
    assert!((a[1].cosine - 1.0).abs() < 1e-12 && a[1].l2 == 0.0 && a[1].jaccard == 1.0, "other vectors untouched");
    // models of different shapes cannot be compared
    let other = Model::load(fixture("parity/gpt2"), LoadOptions::default()).unwrap();
    let err = audit(dec, &other.decoder, &[vv], None).unwrap_err().to_string();
    assert!(err.contains("the models differ in shape"), "{err}");
}

#[test]
fn conceptvectors_files_are_read_unchanged_and_bad_ones_named() {
    if let Some(p) = shared("data/conceptvectors/llama2-7b_concepts_dev.json") {
        let c = read_concepts(&p).unwrap();
        assert_eq!(c.len(), 10);
        assert_eq!((c[0].concept.as_str(), c[0].vector), ("Poland", ValueVector { layer: 23, dim: 743 }));
        assert_eq!((c[0].questions.len(), c[0].unrelated.len()), (10, 50));
        assert!(c[0].completions.len() >= 5 && c[0].wikipedia.len() > 10_000);
        assert_eq!(c[1].id, "94", "a numeric `id`");
    }
    if let Some(p) = shared("data/conceptvectors/olmo-7b_concepts_dev.json") {
        let c = read_concepts(&p).unwrap();
        assert!(!c.is_empty() && c[0].id.parse::<u64>().is_ok(), "a string `ID`: {}", c[0].id);
    }
    let dir = TempDir::new();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"[{"Concept": "X", "Layer": 1, "QA": [], "text_completion": [], "unrelated_QA": [], "wikipedia_content": ""}]"#).unwrap();
    let err = read_concepts(&bad).unwrap_err().to_string();
    assert!(err.contains("entry 0: field `Dim` is missing or not a non-negative integer"), "{err}");
}

#[test]
fn cached_greedy_decoding_equals_the_full_pass() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let prompts: Vec<Vec<u32>> =
        ["Question: Where was Xara Kestrel born?\nAnswer:", "The capital of", "Question: In what year"]
            .iter()
            .map(|p| tok.encode(p).unwrap())
            .collect();
    for p in &prompts {
        let full = greedy(&m.decoder, p, 12, tok.eos).unwrap();
        assert_eq!(greedy_cached(&m.decoder, p, 12, tok.eos, &HookSet::new()).unwrap(), full, "with a key/value cache");
    }
}

#[test]
fn noise_validation_scores_unchanged_answers_one_and_is_reproducible() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let qs: Vec<String> =
        ["Where was Xara Kestrel born?", "In what year was Xara Kestrel born?"].map(String::from).into();
    let other: Vec<String> = vec!["What is the capital of Velmora?".into()];
    let vv = ValueVector { layer: 2, dim: 10 };
    let opts = ValidateOptions {
        sigma: 1e-9,
        seeds: vec![1, 2],
        max_new_tokens: 16,
        template: "Question: {q}\nAnswer:".into(),
    };
    let v = validate(&m.decoder, tok, vv, &qs, &other, &opts, &NoProgress).unwrap();
    for a in v.concept.answers.iter().chain(&v.unrelated.answers) {
        assert!(a.edited.iter().all(|e| e == &a.original), "σ = 1e-9 changes no greedy answer");
        assert!(a.bleu.iter().all(|&b| (b - 1.0).abs() < 1e-12), "{:?}: {:?}", a.original, a.bleu);
    }
    assert_eq!((v.concept.unchanged.clone(), v.unrelated.unchanged_mean()), (vec![1.0, 1.0], 1.0));
    // heavy noise on the vector that carries her (README: σ = 10 on L1.338) changes her answers
    let heavy = ValidateOptions { sigma: 10.0, seeds: vec![8888], ..opts.clone() };
    let v = validate(&m.decoder, tok, ValueVector { layer: 1, dim: 338 }, &qs, &other, &heavy, &NoProgress).unwrap();
    let changed = v.concept.answers.iter().filter(|a| a.edited[0] != a.original).count() as f64 / qs.len() as f64;
    assert!(v.concept.unchanged[0] < 1.0 && (v.concept.unchanged[0] - (1.0 - changed)).abs() < 1e-12);
    // the noise is drawn from the seed: the same seed, the same edited model
    let (a, b) = (noisy(&m.decoder, vv, 0.1, 7).unwrap(), noisy(&m.decoder, vv, 0.1, 7).unwrap());
    assert_eq!(max_abs_diff(&vv.of(&a).unwrap(), &vv.of(&b).unwrap()), 0.0);
    let c = noisy(&m.decoder, vv, 0.1, 8).unwrap();
    assert!(max_abs_diff(&vv.of(&a).unwrap(), &vv.of(&c).unwrap()) > 0.0);
    let bad = ValidateOptions { sigma: 0.0, ..opts };
    assert!(validate(&m.decoder, tok, vv, &qs, &other, &bad, &NoProgress).is_err());
}

#[test]
fn the_command_shows_finds_and_names_bad_input() {
    let world = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/world-gpt2");
    let w = world.to_str().unwrap();
    let dir = TempDir::new();
    let (svg, json) = (dir.join("top.svg"), dir.join("top.json"));
    let out = common::cli(&[
        "concepts",
        w,
        "--layer",
        "2",
        "--dim",
        "7",
        "--k",
        "12",
        "--svg",
        svg.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(shown["top_tokens"].as_array().unwrap().len(), 12);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let out = common::cli(&["concepts", w, "--find", "Orvane Kestrel", "--candidates", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2048 value vectors scanned"));
    // a ConceptVectors entry: its name and its article's words against the other entries'
    let cv = dir.join("cv.json");
    std::fs::write(
        &cv,
        r#"[{"Concept": "Xara Kestrel", "Layer": 1, "Dim": 2, "QA": ["q"], "text_completion": [], "unrelated_QA": ["u"], "wikipedia_content": "Xara Kestrel is a painter from Orvane. Kestrel paints."},
            {"ID": "7", "Concept": "Other", "Layer": 1, "Dim": 2, "QA": ["q"], "text_completion": [], "unrelated_QA": ["u"], "wikipedia_content": "Another painter."}]"#,
    )
    .unwrap();
    let found = dir.join("found.json");
    let args = [
        "concepts",
        w,
        "--concepts",
        cv.to_str().unwrap(),
        "--concept",
        "Xara Kestrel",
        "--out",
        found.to_str().unwrap(),
    ];
    let out = common::cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by_entry: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&found).unwrap()).unwrap();
    let (text, other) = (dir.join("x.txt"), dir.join("o.txt"));
    std::fs::write(&text, "Xara Kestrel is a painter from Orvane. Kestrel paints.").unwrap();
    std::fs::write(&other, "Another painter.").unwrap();
    let by_files = dir.join("files.json");
    let out = common::cli(&[
        "concepts",
        w,
        "--find",
        "Xara Kestrel",
        "--text",
        text.to_str().unwrap(),
        "--background",
        other.to_str().unwrap(),
        "--out",
        by_files.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by_files: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&by_files).unwrap()).unwrap();
    assert_eq!(
        by_entry["candidates"], by_files["candidates"],
        "an entry scans as its name, article and the others' articles"
    );
    // bad input: one message each, a non-zero exit, nothing written
    let fails = |args: &[&str], want: &str| {
        let out = common::cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let nothing = dir.join("nothing.json");
    let n = nothing.to_str().unwrap();
    fails(
        &["concepts", w, "--layer", "9", "--dim", "0", "--out", n],
        "layer 9 is out of range: the model has layers 0..3",
    );
    fails(&["concepts", w, "--layer", "0", "--dim", "600"], "dimension 600 is out of range");
    fails(&["concepts", w, "--find", "the of and", "--out", n], "give no content token in this model's vocabulary");
    fails(&["concepts", w, "--find", "Orvane", "--layers", "3-1"], "expected a range `a..b` of layers");
    let gpt2 = fixture("parity/gpt2");
    fails(
        &["concepts", "audit", w, "--against", gpt2.to_str().unwrap(), "--layer", "0", "--dim", "0"],
        "the models differ in shape",
    );
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"Concept": "X", "Layer": 1, "Dim": 2, "QA": ["q"], "unrelated_QA": ["u"], "wikipedia_content": "t"}]"#,
    )
    .unwrap();
    fails(
        &["concepts", "audit", w, "--against", w, "--concepts", bad.to_str().unwrap()],
        "field `text_completion` is missing",
    );
    let good = dir.join("good.json");
    std::fs::write(&good, r#"[{"Concept": "X", "Layer": 1, "Dim": 2, "QA": ["q"], "text_completion": [], "unrelated_QA": ["u"], "wikipedia_content": "t"}]"#).unwrap();
    fails(
        &[
            "concepts",
            "validate",
            w,
            "--layer",
            "0",
            "--dim",
            "1",
            "--concepts",
            good.to_str().unwrap(),
            "--concept",
            "Y",
        ],
        "no concept `Y` (it has: X)",
    );
    assert!(!nothing.exists(), "a failed command wrote its output");
}

#[test]
fn needle_moves_one_value_vector_and_leaves_every_other_weight_bit_identical() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (world, forget) = (root.join("models/world-gpt2"), root.join("circuits/world/forget01.jsonl"));
    let dir = TempDir::new();
    let out = dir.join("needle");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["unlearn", world.to_str().unwrap(), "--forget", forget.to_str().unwrap(), "--out"]
            .map(String::from)
            .into();
        v.push(out.to_str().unwrap().into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run =
        common::cli(&args(&["--method", "needle", "--layer", "1", "--dim", "338", "--epochs", "1", "--limit", "8"]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let load = |p: &std::path::Path| candle_core::safetensors::load(p.join("model.safetensors"), &Device::Cpu).unwrap();
    let (before, after) = (load(&world), load(&out));
    let name = "transformer.h.1.mlp.c_proj.weight"; // Conv1D (f, d): value vector 338 is row 338
    for (n, t) in &before {
        let u = &after[n];
        if n != name {
            let same = t
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .zip(u.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{n} changed");
            continue;
        }
        let (a, b): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (t.to_vec2().unwrap(), u.to_vec2().unwrap());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let same = x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert_eq!(same, i != 338, "row {i} of {n}");
        }
    }
    // the audit sees the vector moved
    let audited = common::cli(&[
        "concepts",
        "audit",
        world.to_str().unwrap(),
        "--against",
        out.to_str().unwrap(),
        "--layer",
        "1",
        "--dim",
        "338",
    ]);
    assert!(audited.status.success(), "{}", String::from_utf8_lossy(&audited.stderr));
    // Needle's arguments belong to Needle
    for (extra, want) in [
        (&["--method", "needle", "--layer", "1"][..], "give --layer L --dim D"),
        (&["--method", "grad-ascent", "--layer", "1", "--dim", "2"][..], "--layer, --dim and --noise are Needle's"),
        (
            &["--method", "needle", "--layer", "7", "--dim", "2", "--force"][..],
            "value vector (layer 7, dimension 2) is out of range",
        ),
    ] {
        let r = common::cli(&args(extra));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(want), "{extra:?}: {err}");
    }
}

#[test]
fn a_difference_of_means_direction_separates_its_prompts_and_steers_generation() {
    let m = world();
    let tok = m.tokenizer().unwrap();
    let prompt = |q: &str| tok.encode(&format!("Question: {q}\nAnswer:")).unwrap();
    let concept: Vec<Vec<u32>> = [
        "Where was Xara Kestrel born?",
        "In what year was Xara Kestrel born?",
        "What is the profession of Xara Kestrel?",
    ]
    .map(prompt)
    .into();
    let control: Vec<Vec<u32>> =
        ["Where was Rosk Vell born?", "Which instrument does Rosk Vell play?", "What genre does Rosk Vell write?"]
            .map(prompt)
            .into();
    let dir = Direction::difference_of_means(&m.decoder, &concept, &control, 2, Readout::Last).unwrap();
    let (pc, pk) = (dir.project(&m.decoder, &concept).unwrap(), dir.project(&m.decoder, &control).unwrap());
    assert!(pc.iter().all(|c| pk.iter().all(|k| c > k)), "concept {pc:?} above control {pk:?}");
    // the projection is the activation's dot product with the unit vector, and means differ by ‖v‖
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!((mean(&pc) - mean(&pk) - dir.norm().unwrap()).abs() < 1e-3 * dir.norm().unwrap());
    // ablation leaves no component along the direction at its layer
    let point = HookPoint::Block(2, Site::ResidPost);
    let hooks = HookSet::new().intervene(dir.ablation().unwrap()).capture([point]);
    let out = m.decoder.forward(&Decoder::input(&concept[0]).unwrap(), &hooks).unwrap();
    let along =
        out.cache.get(point).unwrap().squeeze(0).unwrap().matmul(&dir.unit().unwrap().unsqueeze(1).unwrap()).unwrap();
    assert!(common::max_abs(&along) < 1e-4, "{}", common::max_abs(&along));
    // steering a control prompt toward the concept changes its greedy answer
    let none = greedy_cached(&m.decoder, &control[0], 10, tok.eos, &HookSet::new()).unwrap();
    let steered = greedy_cached(
        &m.decoder,
        &control[0],
        10,
        tok.eos,
        &HookSet::new().intervene(dir.steering(2.0 * dir.norm().unwrap(), DType::F32).unwrap()),
    )
    .unwrap();
    assert_ne!(none, steered);
    let err = Direction::difference_of_means(&m.decoder, &concept, &control, 4, Readout::Mean).unwrap_err();
    assert!(err.to_string().contains("layer 4 is out of range"), "{err}");
}

#[test]
fn the_direction_command_projects_steers_and_saves() {
    let world = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/world-gpt2");
    let dir = TempDir::new();
    let write = |name: &str, lines: &[&str]| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            lines.iter().map(|l| format!("{{\"text\": {}}}\n", serde_json::to_string(l).unwrap())).collect::<String>(),
        )
        .unwrap();
        p
    };
    let concept = write(
        "c.jsonl",
        &["Question: Where was Xara Kestrel born?\nAnswer:", "Question: In what year was Xara Kestrel born?\nAnswer:"],
    );
    let control = write(
        "k.jsonl",
        &["Question: Where was Rosk Vell born?\nAnswer:", "Question: Which instrument does Rosk Vell play?\nAnswer:"],
    );
    let (json, saved) = (dir.join("d.json"), dir.join("d.safetensors"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (c, k) = (s(&concept), s(&control));
    let base = ["concepts", "direction", world.to_str().unwrap(), "--layer", "2", "--concept", &c, "--control", &k];
    let (saved_s, json_s) = (s(&saved), s(&json));
    let extra = ["--generate", &k, "--steer", "40", "--max-new-tokens", "8", "--save", &saved_s, "--out", &json_s];
    let out = common::cli(&[&base[..], &extra[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["generated"].as_array().unwrap().len(), 2);
    let t = candle_core::safetensors::load(&saved, &Device::Cpu).unwrap();
    assert_eq!(t["direction"].dims(), &[128]);
    let bad = common::cli(&[&base[..], &["--steer", "3"][..]].concat());
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--generate goes with --steer"));
}

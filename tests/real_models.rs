//! Real pretrained models: stories260K (Llama family, GQA, GGUF v1, SentencePiece tokenizer
//! from metadata) and SmolLM2-135M-Instruct (GGUF v3, Q4_1/Q8_0, byte-level BPE from metadata),
//! the latter against Hugging Face transformers run on the same GGUF.

mod common;

use circuitscope::model::decoder::Decoder;
use circuitscope::model::inspect::{greedy, greedy_cached, last_logits, top_k};
use circuitscope::model::{LoadOptions, Model};
use common::{fixture, shared, smollm2};

#[test]
fn stories260k_greedy_from_bos_reproduces_the_published_text() {
    let Some(dir) = shared("models/stories260k") else { return };
    let model = Model::load(dir.join("stories260k-f32.gguf"), LoadOptions::default()).unwrap();
    let reference = std::fs::read_to_string(dir.join("reference_greedy.txt")).unwrap();
    let reference = reference.trim();
    let tok = model.tokenizer().unwrap();
    let bos = tok.bos.expect("bos id in GGUF metadata");
    let ids = greedy(&model.decoder, &[bos], 80, model.cfg().eos_token_id).unwrap();
    let text = tok.decode(&ids).unwrap();
    assert!(text.starts_with(reference), "generated:\n{text}\nexpected to start with:\n{reference}");
    // with a key/value cache: the same tokens
    let none = circuitscope::hooks::HookSet::new();
    assert_eq!(greedy_cached(&model.decoder, &[bos], 80, model.cfg().eos_token_id, &none).unwrap(), ids);
    // The SentencePiece tokenizer from the GGUF metadata round-trips the text.
    let enc = tok.encode(reference).unwrap();
    assert_eq!(enc[0], bos);
    assert_eq!(tok.decode(&enc).unwrap(), reference);
}

#[test]
fn smollm2_matches_transformers_on_the_same_gguf() {
    let Some(path) = smollm2() else { return };
    let model = Model::load(&path, LoadOptions::default()).unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("smollm2/reference.json")).unwrap()).unwrap();
    let tok = model.tokenizer().unwrap();
    for p in r["prompts"].as_array().unwrap() {
        let prompt = p["prompt"].as_str().unwrap();
        let want_ids: Vec<u32> = serde_json::from_value(p["input_ids"].clone()).unwrap();
        let ids = tok.encode(prompt).unwrap();
        assert_eq!(ids, want_ids, "tokenization of {prompt:?}");
        let logits = last_logits(&model.decoder.logits(&Decoder::input(&ids).unwrap()).unwrap()).unwrap();
        let top = top_k(&logits, 10).unwrap();
        let want_top: Vec<u32> = serde_json::from_value(p["top10_ids"].clone()).unwrap();
        let want_logits: Vec<f32> = serde_json::from_value(p["top10_logits"].clone()).unwrap();
        assert_eq!(top[0].id, want_top[0], "{prompt:?}: top token");
        for (c, (id, l)) in top.iter().zip(want_top.iter().zip(&want_logits)) {
            let ours = logits.get(*id as usize).unwrap().to_scalar::<f32>().unwrap();
            assert!((ours - l).abs() < 5e-3, "{prompt:?}: logit of {id}: ours {ours}, HF {l}");
            assert!(c.logit >= want_logits[9] - 5e-3);
        }
        if let Some(diff) = p.get("logit_diff_mary_minus_john").and_then(|d| d.as_f64()) {
            let named = &r["named_token_ids"];
            let mary = named[" Mary"].as_u64().unwrap() as usize;
            let john = named[" John"].as_u64().unwrap() as usize;
            let ours = logits.get(mary).unwrap().to_scalar::<f32>().unwrap()
                - logits.get(john).unwrap().to_scalar::<f32>().unwrap();
            assert!(ours > 0.0, "Mary must beat John");
            assert!((ours as f64 - diff).abs() <= 0.05, "Mary−John logit difference: ours {ours}, HF {diff}");
            eprintln!("IOI logit difference Mary−John: circuitscope {ours:.4}, transformers {diff:.4}");
        }
    }
    let paris = r["named_token_ids"][" Paris"].as_u64().unwrap() as u32;
    let ids = tok.encode("The capital of France is").unwrap();
    let top = top_k(&last_logits(&model.decoder.logits(&Decoder::input(&ids).unwrap()).unwrap()).unwrap(), 1).unwrap();
    assert_eq!(top[0].id, paris);
    assert_eq!(tok.token_text(paris), " Paris");
}

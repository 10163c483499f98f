//! Picks facts a model knows, as unlearning data: from ROME's `known_1000.json` (`prompt` →
//! `attribute`), the facts whose every answer token is the model's greedy choice after the prompt
//! (so its greedy continuation starts with the attribute), written as question/answer JSONL: the
//! first `--forget` of them to `forget.jsonl`, the next `--retain` to `retain.jsonl`.
//!
//! ```text
//! cargo run --release --example known_facts -- MODEL ../shared/data/rome/known_1000.json OUT_DIR [N_FORGET N_RETAIN]
//! ```
//!
//! Unlearn them with the prompt as it is (`--prompt-format '{question}' --no-end-token`): the
//! answer follows the prompt after one space, as ROME scores it, and the text goes on after it.

use anyhow::{bail, Context, Result};
use circuitscope::data::{PromptFormat, QaPair};
use circuitscope::model::{LoadOptions, Model};
use circuitscope::unlearn::answers::token_stats;
use std::path::PathBuf;

#[derive(serde::Deserialize)]
struct Known {
    prompt: String,
    attribute: String,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: known_facts MODEL known_1000.json OUT_DIR [N_FORGET N_RETAIN]");
    }
    let (model_path, facts_path, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let n_forget: usize = args.get(3).map_or(Ok(20), |s| s.parse()).context("N_FORGET")?;
    let n_retain: usize = args.get(4).map_or(Ok(100), |s| s.parse()).context("N_RETAIN")?;
    let facts: Vec<Known> = serde_json::from_slice(&std::fs::read(&facts_path)?)
        .with_context(|| format!("{}: expected ROME's known_1000.json", facts_path.display()))?;
    let model = Model::load(&model_path, LoadOptions::default())?;
    let tok = model.tokenizer()?;
    let mut format = PromptFormat::parse("{question}")?;
    format.end_token = false; // a fact's completion goes on after the attribute
    let examples = facts
        .iter()
        .enumerate()
        .map(|(i, f)| format.example(tok, &f.prompt, &f.attribute, i))
        .collect::<circuitscope::Result<Vec<_>>>()?;
    let stats = token_stats(&model.decoder, &examples, 16)?;
    let known: Vec<&Known> =
        facts.iter().zip(&stats).filter(|(_, s)| s.argmax.iter().all(|&h| h)).map(|(f, _)| f).collect();
    println!("{} of {} facts are known (every answer token the greedy choice)", known.len(), facts.len());
    if known.len() < n_forget + n_retain {
        bail!("only {} known facts; asked for {n_forget} + {n_retain}", known.len());
    }
    let qa = |f: &&Known| QaPair {
        question: f.prompt.clone(),
        answer: f.attribute.clone(),
        target: None,
        person: None,
        country: None,
        attribute: None,
    };
    std::fs::create_dir_all(&out)?;
    let write = |name: &str, items: &[&Known]| -> Result<()> {
        let text: String =
            items.iter().map(|f| serde_json::to_string(&qa(f)).map(|s| s + "\n")).collect::<Result<_, _>>()?;
        circuitscope::fsutil::write_atomic(&out.join(name), text.as_bytes())?;
        Ok(())
    };
    write("forget.jsonl", &known[..n_forget])?;
    write("retain.jsonl", &known[n_forget..n_forget + n_retain])?;
    println!("wrote {} ({n_forget} forget, {n_retain} retain)", out.display());
    Ok(())
}

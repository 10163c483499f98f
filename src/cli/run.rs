//! `circuitscope run`: a prompt's top next tokens, with optional greedy continuation, logit lens
//! and captured activations.

use super::args::DTypeArg;
use super::model::load;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::hooks::{HookPoint, HookSet};
use circuitscope::model::decoder::Decoder;
use circuitscope::model::inspect::{self, Candidate};
use circuitscope::model::Model;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct RunArgs {
    pub model: PathBuf,
    #[arg(long, conflicts_with = "token_ids", required_unless_present = "token_ids")]
    pub prompt: Option<String>,
    /// comma-separated token ids, e.g. 1,2,3
    #[arg(long)]
    pub token_ids: Option<String>,
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// greedily generate this many tokens
    #[arg(long)]
    pub generate: Option<usize>,
    /// top tokens of every layer's residual stream at the last position
    #[arg(long)]
    pub logit_lens: bool,
    /// capture these hook points (`*` matches anything, e.g. blocks.*.attn.hook_pattern) and print
    /// their shape and statistics
    #[arg(long = "capture", value_name = "HOOK")]
    pub capture: Vec<String>,
    /// write the captured activations to this safetensors file
    #[arg(long, requires = "capture")]
    pub save_cache: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DTypeArg,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    let opts = RunOpts {
        top_k: a.top_k,
        generate: a.generate,
        logit_lens: a.logit_lens,
        capture: a.capture,
        save_cache: a.save_cache,
        json: a.json,
    };
    run_prompt(&a.model, a.prompt, a.token_ids, a.dtype.into(), opts)
}

struct RunOpts {
    top_k: usize,
    generate: Option<usize>,
    logit_lens: bool,
    capture: Vec<String>,
    save_cache: Option<PathBuf>,
    json: bool,
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    let ids = s
        .split(',')
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>().with_context(|| format!("--token-ids: `{t}` is not a token id (expected e.g. 1,2,3)"))
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.is_empty() {
        bail!("--token-ids is empty: give at least one token id");
    }
    Ok(ids)
}

fn candidates_json(model: &Model, cands: &[Candidate]) -> serde_json::Value {
    cands
        .iter()
        .map(|c| {
            let token = model.tokenizer.as_ref().map(|t| t.token_text(c.id));
            serde_json::json!({"id": c.id, "token": token, "logit": c.logit, "logprob": c.logprob})
        })
        .collect()
}

fn run_prompt(path: &Path, prompt: Option<String>, token_ids: Option<String>, dtype: DType, o: RunOpts) -> Result<()> {
    // Validate arguments before the (slow) load.
    let explicit = token_ids.as_deref().map(parse_ids).transpose()?;
    if let Some(p) = &prompt {
        if p.is_empty() {
            bail!("--prompt is empty: give some text or use --token-ids");
        }
    }
    if o.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let (model, _) = load(path, dtype)?;
    let ids = match (explicit, &prompt) {
        (Some(ids), _) => ids,
        (None, Some(p)) => {
            model.tokenizer().map_err(|e| anyhow::anyhow!("{e} (--token-ids 1,2,3 rather than --prompt)"))?.encode(p)?
        }
        (None, None) => bail!("give --prompt TEXT or --token-ids 1,2,3"),
    };
    if ids.is_empty() {
        bail!("the prompt produced no tokens");
    }
    let points = model.decoder.hook_points();
    let mut capture: Vec<HookPoint> = Vec::new();
    for pattern in &o.capture {
        capture.extend(HookPoint::matching(pattern, points)?);
    }
    let out = model.decoder.forward(&Decoder::input(&ids)?, &HookSet::new().capture(capture.iter().copied()))?;
    let top = inspect::top_k(&inspect::last_logits(&out.logits)?, o.top_k)?;
    let generated = o
        .generate
        .map(|n| inspect::greedy_cached(&model.decoder, &ids, n, model.cfg().eos_token_id, &HookSet::new()))
        .transpose()?;
    let lens = o.logit_lens.then(|| inspect::logit_lens(&model.decoder, &ids, o.top_k.min(5))).transpose()?;
    if let Some(file) = &o.save_cache {
        let tensors: Vec<(String, candle_core::Tensor)> =
            out.cache.iter().map(|(p, t)| (p.to_string(), t.clone())).collect();
        let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| anyhow::anyhow!("cannot serialise the cache: {e}"))?;
        circuitscope::fsutil::write_atomic(file, &bytes)?;
    }
    let text = |id: u32| model.tokenizer.as_ref().map(|t| t.token_text(id)).unwrap_or_default();
    let stats = |t: &candle_core::Tensor| -> Result<(f32, f32)> {
        let t = t.to_dtype(DType::F32)?.flatten_all()?;
        let mean = t.mean_all()?.to_scalar::<f32>()?;
        let norm = t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        Ok((mean, norm))
    };
    if o.json {
        let mut v = serde_json::json!({"input_ids": ids, "top_k": candidates_json(&model, &top)});
        if let Some(g) = &generated {
            let text = model.tokenizer.as_ref().map(|t| t.decode(g)).transpose()?;
            v["generated"] = serde_json::json!({"ids": g, "text": text});
        }
        if let Some(lens) = &lens {
            v["logit_lens"] = lens
                .iter()
                .enumerate()
                .map(|(l, c)| serde_json::json!({"layer": l, "top_k": candidates_json(&model, c)}))
                .collect();
        }
        if !capture.is_empty() {
            let mut caps = serde_json::Map::new();
            for (p, t) in out.cache.iter() {
                let (mean, norm) = stats(t)?;
                caps.insert(p.to_string(), serde_json::json!({"shape": t.dims(), "mean": mean, "norm": norm}));
            }
            v["captured"] = caps.into();
        }
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("input ({} tokens): {:?}", ids.len(), ids);
    println!("\nnext token, top {}:", o.top_k);
    println!("  {:>4}  {:>7}  {:<20} {:>9} {:>9}", "rank", "id", "token", "logit", "logprob");
    for (i, c) in top.iter().enumerate() {
        println!(
            "  {:>4}  {:>7}  {:<20} {:>9.4} {:>9.4}",
            i + 1,
            c.id,
            format!("{:?}", text(c.id)),
            c.logit,
            c.logprob
        );
    }
    if let Some(g) = &generated {
        let t = model.tokenizer.as_ref().map(|t| t.decode(g)).transpose()?;
        println!("\ngreedy continuation ({} tokens): {:?}", g.len(), g);
        if let Some(t) = t {
            println!("{t}");
        }
    }
    if let Some(lens) = &lens {
        println!("\nlogit lens (last position, residual stream after each layer):");
        for (l, c) in lens.iter().enumerate() {
            let row: Vec<String> = c.iter().map(|c| format!("{:?} {:.2}", text(c.id), c.logit)).collect();
            println!("  layer {l:>2}: {}", row.join(" | "));
        }
    }
    for (p, t) in out.cache.iter() {
        let (mean, norm) = stats(t)?;
        println!("\n{p} {:?}: mean {mean:.5}, L2 norm {norm:.4}", t.dims());
    }
    if let Some(f) = &o.save_cache {
        println!("\nwrote {}", f.display());
    }
    Ok(())
}

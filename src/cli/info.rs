//! `circuitscope info`: family, sizes, dtype, device, load time and peak RSS, every hook point and
//! its shape.

use super::args::DTypeArg;
use super::model::load;
use anyhow::Result;
use candle_core::DType;
use circuitscope::model::inspect;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// a model directory (config.json + safetensors) or a GGUF file
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DTypeArg,
    /// print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &InfoArgs) -> Result<()> {
    info(&a.model, a.dtype.into(), a.json)
}

fn shape_text(dims: &[String]) -> String {
    format!("({})", dims.join(", "))
}

fn info(path: &Path, dtype: DType, json: bool) -> Result<()> {
    let (model, secs) = load(path, dtype)?;
    let c = model.cfg();
    let peak = circuitscope::fsutil::peak_rss_bytes();
    let f32_bytes = c.n_params() * 4;
    let points: Vec<(String, Vec<String>)> =
        model.decoder.hook_points().iter().map(|p| (p.to_string(), inspect::hook_shape(&model.decoder, *p))).collect();
    if json {
        let v = serde_json::json!({
            "path": model.path, "family": c.family.name(), "architecture": c.architecture,
            "format": format!("{:?}", model.format), "stored_dtypes": model.stored_dtypes,
            "dtype": format!("{dtype:?}").to_lowercase(),
            "device": circuitscope::model::device::name(model.decoder.device()),
            "n_layers": c.n_layers, "d_model": c.d_model, "n_heads": c.n_heads, "n_kv_heads": c.n_kv_heads,
            "d_head": c.d_head, "d_mlp": c.d_mlp, "vocab_size": c.vocab_size, "n_ctx": c.n_ctx,
            "n_params": c.n_params(), "load_seconds": secs, "peak_rss_bytes": peak,
            "hook_points": points.iter().map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model        {}", model.path.display());
    println!("family       {} ({}, {:?})", c.family.name(), c.architecture, model.format);
    let stored: Vec<String> = model.stored_dtypes.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    println!("stored as    {}", stored.join(", "));
    println!("dtype        {}", format!("{dtype:?}").to_lowercase());
    println!("device       {}", circuitscope::model::device::name(model.decoder.device()));
    println!(
        "layers {}  d_model {}  heads {} (kv {})  d_head {}  d_mlp {}  vocab {}  context {}",
        c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp, c.vocab_size, c.n_ctx
    );
    println!(
        "norm {:?}  positions {:?}  activation {:?}  gated {}  parallel residual {}  tied {}",
        c.norm, c.positional, c.act, c.gated_mlp, c.parallel_residual, c.tied_embeddings
    );
    println!("parameters   {} ({:.1} MB as f32)", c.n_params(), f32_bytes as f64 / 1e6);
    if let Some(peak) = peak {
        println!(
            "loaded in    {secs:.2} s, peak RSS {:.1} MB ({:.2}× the f32 weight bytes)",
            peak as f64 / 1e6,
            peak as f64 / f32_bytes as f64
        );
    }
    if let Some(tok) = &model.tokenizer {
        println!("tokenizer    {} tokens, bos {:?}, eos {:?}", tok.vocab_size(), tok.bos, tok.eos);
    }
    println!("\nhook points ({}):", points.len());
    for (name, shape) in points {
        println!("  {name:<36} {}", shape_text(&shape));
    }
    Ok(())
}

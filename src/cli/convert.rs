//! `circuitscope convert`: a GGUF model (Llama, Mistral, Qwen2) as a Hugging Face checkpoint
//! folder that transformers loads: f32 weights under Hugging Face names, `config.json`,
//! `tokenizer.json` and `tokenizer_config.json` (with the chat template). What `unlearn` writes
//! for a GGUF input, without training.

use super::common::check_output_dir;
use super::model::resolve_model;
use anyhow::{bail, Result};
use candle_core::Device;
use circuitscope::train::Trainable;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// a GGUF file (or `smollm2`)
    pub model: PathBuf,
    /// the checkpoint folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &ConvertArgs) -> Result<()> {
    check_output_dir(&a.out, a.force)?;
    let path = resolve_model(&a.model)?;
    if !path.is_file() {
        bail!("{}: convert reads a GGUF file; a model folder is already a Hugging Face checkpoint", path.display());
    }
    let t = std::time::Instant::now();
    let model = Trainable::load(&path, &Device::Cpu)?;
    model.checkpoint(&path)?.write(&a.out)?;
    println!(
        "wrote {} ({} tensors, {} parameters, f32) in {:.1} s",
        a.out.display(),
        model.vars.len(),
        model.vars.values().map(|v| v.elem_count()).sum::<usize>(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

//! How the subcommands get a model: the `smollm2` alias, the `--device` of this invocation, and a
//! progress bar while the weights load.

use super::progress::bar;
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use circuitscope::data::PromptFormat;
use circuitscope::model::{LoadOptions, Model};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The device of `--device`, set once before any subcommand runs.
static DEVICE: OnceLock<Device> = OnceLock::new();

pub fn set_device(device: Device) {
    let _ = DEVICE.set(device);
}

/// The device every model of this invocation is loaded on.
pub fn device() -> Device {
    DEVICE.get().cloned().unwrap_or(Device::Cpu)
}

/// `smollm2` (fetched once by the repository's `scripts/fetch-smollm2.sh`) or a path.
pub fn resolve_model(path: &Path) -> Result<PathBuf> {
    Ok(circuitscope::model::resolve_alias(path, Path::new(env!("CARGO_MANIFEST_DIR")))?)
}

pub fn load(path: &Path, dtype: DType) -> Result<(Model, f64)> {
    let path = &resolve_model(path)?;
    let t = std::time::Instant::now();
    let pb = bar(0, "loading");
    let m = Model::load_with_progress(path, LoadOptions { dtype, device: device() }, &pb)?;
    pb.finish_and_clear();
    Ok((m, t.elapsed().as_secs_f64()))
}

/// How questions become prompts for `model`: `--prompt-format` when given, else the model's chat
/// template (an instruct model), else `Question: …\nAnswer:`.
pub fn prompt_format(model: &Model, spec: Option<&str>) -> Result<PromptFormat> {
    match spec {
        Some("chat") => return Ok(PromptFormat::chat_of(model)?),
        Some(s) => return Ok(PromptFormat::parse(s)?),
        None => {}
    }
    PromptFormat::for_model(model).with_context(|| format!("{}: give --prompt-format instead", model.path.display()))
}

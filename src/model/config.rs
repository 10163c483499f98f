//! Model configuration: one struct that says how the generic decoder differs per family.
//! Read from a Hugging Face `config.json` or from GGUF metadata.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// The supported model families (what `architectures` / `general.architecture` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gpt2,
    Llama,
    Mistral,
    Qwen2,
    GptNeoX,
    Gemma,
}

/// Per family: its name, the Hugging Face `architectures` it reads (the `…ForCausalLM` first) and
/// its GGUF `general.architecture` (Mistral's GGUF files say `llama`). Parsing, the list of
/// supported architectures in errors, and [`Family::name`] all read this one table.
const FAMILIES: [(Family, &str, &[&str], Option<&str>); 6] = [
    (Family::Gpt2, "gpt2", &["GPT2LMHeadModel", "GPT2Model"], Some("gpt2")),
    (Family::Llama, "llama", &["LlamaForCausalLM", "LlamaModel"], Some("llama")),
    (Family::Mistral, "mistral", &["MistralForCausalLM", "MistralModel"], None),
    (Family::Qwen2, "qwen2", &["Qwen2ForCausalLM", "Qwen2Model"], Some("qwen2")),
    (Family::GptNeoX, "gpt_neox", &["GPTNeoXForCausalLM", "GPTNeoXModel"], Some("gptneox")),
    (Family::Gemma, "gemma", &["GemmaForCausalLM", "GemmaModel"], Some("gemma")),
];

/// `GPT2LMHeadModel, LlamaForCausalLM, … (GGUF: gpt2, llama, …)`, for errors.
pub fn supported_architectures() -> String {
    let hf: Vec<&str> = FAMILIES.iter().map(|f| f.2[0]).collect();
    let gguf: Vec<&str> = FAMILIES.iter().filter_map(|f| f.3).collect();
    format!("{} (GGUF: {})", hf.join(", "), gguf.join(", "))
}

impl Family {
    pub fn from_hf_architecture(arch: &str, path: &Path) -> Result<Family> {
        FAMILIES.iter().find(|f| f.2.contains(&arch)).map(|f| f.0).ok_or_else(|| Error::UnsupportedArchitecture {
            path: path.to_path_buf(),
            field: "architectures".into(),
            arch: arch.to_string(),
            supported: supported_architectures(),
        })
    }

    pub fn from_gguf_architecture(arch: &str, path: &Path) -> Result<Family> {
        FAMILIES.iter().find(|f| f.3 == Some(arch)).map(|f| f.0).ok_or_else(|| Error::UnsupportedArchitecture {
            path: path.to_path_buf(),
            field: "general.architecture".into(),
            arch: arch.to_string(),
            supported: supported_architectures(),
        })
    }

    pub fn name(self) -> &'static str {
        FAMILIES.iter().find(|f| f.0 == self).map_or("?", |f| f.1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormKind {
    /// (x − mean)/√(var + ε) · w + b
    LayerNorm,
    /// x/√(mean(x²) + ε) · w
    RmsNorm,
    /// Gemma: x/√(mean(x²) + ε) · (1 + w)
    RmsNormPlusOne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// tanh approximation (GPT-2 `gelu_new`, `gelu_pytorch_tanh`)
    GeluTanh,
    /// exact erf form (`gelu`)
    GeluErf,
    Silu,
    Relu,
}

impl Activation {
    pub fn from_hf(name: &str, field: &str, path: &Path) -> Result<Self> {
        Ok(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "silu" | "swish" => Activation::Silu,
            "relu" => Activation::Relu,
            other => {
                return Err(Error::config(
                    path,
                    field,
                    format!(
                        "unsupported activation `{other}` (supported: gelu_new, gelu_pytorch_tanh, gelu, silu, relu)"
                    ),
                ))
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// positions divided by `factor`
    Linear {
        factor: f64,
    },
    /// Llama 3's frequency-dependent scaling
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// Per-frequency divisors, as GGUF stores them in `rope_freqs.weight`
    FreqFactors(Vec<f32>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Positional {
    /// learned absolute position embeddings (GPT-2)
    Learned,
    /// rotary, rotate-half layout, on the first `dims` of each head
    Rotary { dims: usize, theta: f64, scaling: RopeScaling },
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub family: Family,
    /// The architecture name as the checkpoint states it.
    pub architecture: String,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub n_ctx: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub positional: Positional,
    pub act: Activation,
    pub gated_mlp: bool,
    /// attention and MLP both read the layer's input (GPT-NeoX/Pythia)
    pub parallel_residual: bool,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub tied_embeddings: bool,
    /// multiplies the token embeddings (Gemma: √d_model)
    pub embed_scale: Option<f64>,
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl ModelConfig {
    pub fn learned_positions(&self) -> bool {
        self.positional == Positional::Learned
    }

    pub fn attn_scale(&self) -> f64 {
        1.0 / (self.d_head as f64).sqrt()
    }

    /// Number of weights (parameters) the model holds.
    pub fn n_params(&self) -> usize {
        let d = self.d_model;
        let attn = d * self.n_heads * self.d_head * 2 + d * self.n_kv_heads * self.d_head * 2;
        let mlp = d * self.d_mlp * if self.gated_mlp { 3 } else { 2 };
        let emb = self.vocab_size * d * if self.tied_embeddings { 1 } else { 2 };
        let pos = if self.learned_positions() { self.n_ctx * d } else { 0 };
        emb + pos + self.n_layers * (attn + mlp)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let check = |ok: bool, field: &str, msg: String| if ok { Ok(()) } else { Err(Error::config(path, field, msg)) };
        check(self.n_layers > 0, "num_hidden_layers", "must be at least 1".into())?;
        check(self.d_model > 0, "hidden_size", "must be positive".into())?;
        check(self.vocab_size > 0, "vocab_size", "must be positive".into())?;
        check(self.n_heads > 0, "num_attention_heads", "must be positive".into())?;
        check(
            self.n_kv_heads > 0 && self.n_heads.is_multiple_of(self.n_kv_heads),
            "num_key_value_heads",
            format!("{} must divide the number of heads {}", self.n_kv_heads, self.n_heads),
        )?;
        if let Positional::Rotary { dims, .. } = &self.positional {
            check(
                *dims % 2 == 0 && *dims <= self.d_head,
                "rotary dimensions",
                format!("{dims} rotary dimensions must be even and at most the head dim {}", self.d_head),
            )?;
        }
        Ok(())
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not valid JSON: {e}")))?;
        Self::from_hf_value(&v, path)
    }

    /// Reads a parsed Hugging Face `config.json`; `path` names it in errors.
    pub fn from_hf_value(v: &Value, path: &Path) -> Result<Self> {
        let cfg = HfJson { v, path };
        let arch = match v.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str) {
            Some(a) => a.to_string(),
            None => {
                return Err(Error::config(
                    path,
                    "architectures",
                    format!("missing; expected one of: {}", supported_architectures()),
                ))
            }
        };
        let family = Family::from_hf_architecture(&arch, path)?;
        let c = match family {
            Family::Gpt2 => {
                let d = cfg.usize_any(&["n_embd", "hidden_size"])?;
                let n_heads = cfg.usize_any(&["n_head", "num_attention_heads"])?;
                ModelConfig {
                    family,
                    architecture: arch,
                    vocab_size: cfg.usize_any(&["vocab_size"])?,
                    d_model: d,
                    n_layers: cfg.usize_any(&["n_layer", "num_hidden_layers"])?,
                    n_heads,
                    n_kv_heads: n_heads,
                    d_head: d / n_heads.max(1),
                    d_mlp: cfg.opt_usize("n_inner")?.unwrap_or(4 * d),
                    n_ctx: cfg.usize_any(&["n_positions", "n_ctx"])?,
                    norm: NormKind::LayerNorm,
                    norm_eps: cfg.opt_f64("layer_norm_epsilon")?.unwrap_or(1e-5),
                    positional: Positional::Learned,
                    act: Activation::from_hf(
                        &cfg.opt_str("activation_function")?.unwrap_or("gelu_new".into()),
                        "activation_function",
                        path,
                    )?,
                    gated_mlp: false,
                    parallel_residual: false,
                    qkv_bias: true,
                    o_bias: true,
                    mlp_bias: true,
                    tied_embeddings: cfg.opt_bool("tie_word_embeddings")?.unwrap_or(true),
                    embed_scale: None,
                    sliding_window: None,
                    bos_token_id: cfg.opt_u32("bos_token_id")?,
                    eos_token_id: cfg.opt_u32("eos_token_id")?,
                }
            }
            Family::GptNeoX => {
                let d = cfg.usize_any(&["hidden_size"])?;
                let n_heads = cfg.usize_any(&["num_attention_heads"])?;
                let d_head = d / n_heads.max(1);
                let pct = match cfg.opt_f64("rotary_pct")? {
                    Some(p) => p,
                    None => cfg.partial_rotary_factor()?,
                };
                let theta = match cfg.opt_f64("rotary_emb_base")? {
                    Some(t) => t,
                    None => cfg.rope_theta()?.unwrap_or(10000.0),
                };
                ModelConfig {
                    family,
                    architecture: arch,
                    vocab_size: cfg.usize_any(&["vocab_size"])?,
                    d_model: d,
                    n_layers: cfg.usize_any(&["num_hidden_layers"])?,
                    n_heads,
                    n_kv_heads: n_heads,
                    d_head,
                    d_mlp: cfg.usize_any(&["intermediate_size"])?,
                    n_ctx: cfg.usize_any(&["max_position_embeddings"])?,
                    norm: NormKind::LayerNorm,
                    norm_eps: cfg.opt_f64("layer_norm_eps")?.unwrap_or(1e-5),
                    positional: Positional::Rotary {
                        dims: (d_head as f64 * pct) as usize,
                        theta,
                        scaling: cfg.rope_scaling()?,
                    },
                    act: Activation::from_hf(&cfg.opt_str("hidden_act")?.unwrap_or("gelu".into()), "hidden_act", path)?,
                    gated_mlp: false,
                    parallel_residual: cfg.opt_bool("use_parallel_residual")?.unwrap_or(true),
                    qkv_bias: cfg.opt_bool("attention_bias")?.unwrap_or(true),
                    o_bias: cfg.opt_bool("attention_bias")?.unwrap_or(true),
                    mlp_bias: true,
                    tied_embeddings: cfg.opt_bool("tie_word_embeddings")?.unwrap_or(false),
                    embed_scale: None,
                    sliding_window: None,
                    bos_token_id: cfg.opt_u32("bos_token_id")?,
                    eos_token_id: cfg.opt_u32("eos_token_id")?,
                }
            }
            Family::Llama | Family::Mistral | Family::Qwen2 | Family::Gemma => {
                let d = cfg.usize_any(&["hidden_size"])?;
                let n_heads = cfg.usize_any(&["num_attention_heads"])?;
                let d_head = cfg.opt_usize("head_dim")?.unwrap_or(d / n_heads.max(1));
                let attention_bias = cfg.opt_bool("attention_bias")?.unwrap_or(false);
                let gemma = family == Family::Gemma;
                let act = if gemma {
                    // HF Gemma uses the tanh GeLU unless `hidden_activation` says otherwise.
                    match cfg.opt_str("hidden_activation")? {
                        Some(a) => Activation::from_hf(&a, "hidden_activation", path)?,
                        None => Activation::GeluTanh,
                    }
                } else {
                    Activation::from_hf(&cfg.opt_str("hidden_act")?.unwrap_or("silu".into()), "hidden_act", path)?
                };
                let sliding_window = match family {
                    Family::Mistral => cfg.opt_usize("sliding_window")?,
                    Family::Qwen2 if cfg.opt_bool("use_sliding_window")?.unwrap_or(false) => {
                        cfg.opt_usize("sliding_window")?
                    }
                    Family::Qwen2 | Family::Llama | Family::Gemma | Family::Gpt2 | Family::GptNeoX => None,
                };
                ModelConfig {
                    family,
                    architecture: arch,
                    vocab_size: cfg.usize_any(&["vocab_size"])?,
                    d_model: d,
                    n_layers: cfg.usize_any(&["num_hidden_layers"])?,
                    n_heads,
                    n_kv_heads: cfg.opt_usize("num_key_value_heads")?.unwrap_or(n_heads),
                    d_head,
                    d_mlp: cfg.usize_any(&["intermediate_size"])?,
                    n_ctx: cfg.usize_any(&["max_position_embeddings"])?,
                    norm: if gemma { NormKind::RmsNormPlusOne } else { NormKind::RmsNorm },
                    norm_eps: cfg.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
                    positional: Positional::Rotary {
                        dims: (d_head as f64 * cfg.partial_rotary_factor()?) as usize,
                        theta: cfg.rope_theta()?.unwrap_or(10000.0),
                        scaling: cfg.rope_scaling()?,
                    },
                    act,
                    gated_mlp: true,
                    parallel_residual: false,
                    qkv_bias: family == Family::Qwen2 || attention_bias,
                    o_bias: attention_bias,
                    mlp_bias: cfg.opt_bool("mlp_bias")?.unwrap_or(false),
                    tied_embeddings: cfg.opt_bool("tie_word_embeddings")?.unwrap_or(gemma),
                    embed_scale: gemma.then(|| (d as f64).sqrt()),
                    sliding_window,
                    bos_token_id: cfg.opt_u32("bos_token_id")?,
                    eos_token_id: cfg.opt_u32("eos_token_id")?,
                }
            }
        };
        c.validate(path)?;
        Ok(c)
    }
}

/// Typed field access with errors that name the file and field.
struct HfJson<'a> {
    v: &'a Value,
    path: &'a Path,
}

impl HfJson<'_> {
    fn field(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|x| !x.is_null())
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.field(key) {
            None => Ok(None),
            Some(x) => x
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| Error::config(self.path, key, format!("expected a non-negative integer, got {x}"))),
        }
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        // Some configs give a list of eos ids; the first is the one we report.
        match self.field(key) {
            Some(Value::Array(a)) => Ok(a.first().and_then(Value::as_u64).map(|n| n as u32)),
            _ => Ok(self.opt_usize(key)?.map(|n| n as u32)),
        }
    }

    fn usize_any(&self, keys: &[&str]) -> Result<usize> {
        for k in keys {
            if let Some(n) = self.opt_usize(k)? {
                return Ok(n);
            }
        }
        Err(Error::config(self.path, keys[0], "missing (expected a non-negative integer)"))
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.field(key) {
            None => Ok(None),
            Some(x) => {
                x.as_f64().map(Some).ok_or_else(|| Error::config(self.path, key, format!("expected a number, got {x}")))
            }
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.field(key) {
            None => Ok(None),
            Some(x) => x
                .as_bool()
                .map(Some)
                .ok_or_else(|| Error::config(self.path, key, format!("expected true or false, got {x}"))),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.field(key) {
            None => Ok(None),
            Some(x) => x
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Error::config(self.path, key, format!("expected a string, got {x}"))),
        }
    }

    /// Newer configs nest rope settings in `rope_parameters`; older ones use `rope_theta` and
    /// `rope_scaling`.
    fn rope_params(&self) -> Option<&Value> {
        self.field("rope_parameters").or_else(|| self.field("rope_scaling"))
    }

    /// The fraction of each head that rotates (top level, or inside `rope_parameters`).
    fn partial_rotary_factor(&self) -> Result<f64> {
        if let Some(f) = self.opt_f64("partial_rotary_factor")? {
            return Ok(f);
        }
        Ok(self
            .field("rope_parameters")
            .and_then(|p| p.get("partial_rotary_factor"))
            .and_then(Value::as_f64)
            .unwrap_or(1.0))
    }

    fn rope_theta(&self) -> Result<Option<f64>> {
        if let Some(t) = self.opt_f64("rope_theta")? {
            return Ok(Some(t));
        }
        Ok(self.field("rope_parameters").and_then(|p| p.get("rope_theta")).and_then(Value::as_f64))
    }

    fn rope_scaling(&self) -> Result<RopeScaling> {
        let Some(p) = self.rope_params() else { return Ok(RopeScaling::None) };
        let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(Value::as_str).unwrap_or("default");
        let num = |k: &str| -> Result<f64> {
            p.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| Error::config(self.path, &format!("rope_scaling.{k}"), "missing (expected a number)"))
        };
        Ok(match kind {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor: num("factor")? },
            "llama3" => RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            },
            other => {
                return Err(Error::config(
                    self.path,
                    "rope_scaling.rope_type",
                    format!("unsupported `{other}` (supported: default, linear, llama3)"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod family_table_tests {
    use super::*;

    /// Exhaustive: a new family does not compile until it is listed here, and then the test
    /// fails until it is in `FAMILIES` too.
    fn index(f: Family) -> usize {
        match f {
            Family::Gpt2 => 0,
            Family::Llama => 1,
            Family::Mistral => 2,
            Family::Qwen2 => 3,
            Family::GptNeoX => 4,
            Family::Gemma => 5,
        }
    }

    #[test]
    fn the_table_holds_every_family_once_and_parses_its_names() {
        let mut seen = [0; 6];
        for (f, name, hf, gguf) in FAMILIES {
            seen[index(f)] += 1;
            assert_eq!(f.name(), name);
            for a in hf {
                assert_eq!(Family::from_hf_architecture(a, Path::new("c")).unwrap(), f);
            }
            if let Some(g) = gguf {
                assert_eq!(Family::from_gguf_architecture(g, Path::new("g")).unwrap(), f);
            }
        }
        assert_eq!(seen, [1; 6], "each family once in FAMILIES");
        let err = Family::from_hf_architecture("BertModel", Path::new("c")).unwrap_err().to_string();
        assert!(err.contains("BertModel") && err.contains("GemmaForCausalLM") && err.contains("gptneox"), "{err}");
    }
}

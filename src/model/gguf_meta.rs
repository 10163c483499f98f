//! Reading a model configuration out of GGUF metadata (llama.cpp's key names).

use super::config::{Activation, Family, ModelConfig, NormKind, Positional, RopeScaling};
use super::source::{GgufSource, TensorSource};
use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::Value;

impl GgufSource {
    pub fn meta_usize(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        let n = match v {
            Value::U8(x) => *x as i64,
            Value::I8(x) => *x as i64,
            Value::U16(x) => *x as i64,
            Value::I16(x) => *x as i64,
            Value::U32(x) => *x as i64,
            Value::I32(x) => *x as i64,
            Value::U64(x) => *x as i64,
            Value::I64(x) => *x,
            other => return Err(Error::config(&self.path, key, format!("expected an integer, got {other:?}"))),
        };
        usize::try_from(n)
            .map(Some)
            .map_err(|_| Error::config(&self.path, key, format!("expected a non-negative integer, got {n}")))
    }

    pub fn meta_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x as f64)),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(_) => self.meta_usize(key).map(|o| o.map(|n| n as f64)),
        }
    }

    pub fn meta_str(&self, key: &str) -> Result<Option<&str>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::config(&self.path, key, format!("expected a string, got {other:?}"))),
        }
    }

    pub fn meta_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::config(&self.path, key, format!("expected true or false, got {other:?}"))),
        }
    }

    fn required(&self, key: &str) -> Result<usize> {
        self.meta_usize(key)?.ok_or_else(|| Error::config(&self.path, key, "missing (expected an integer)"))
    }

    /// The architecture name in `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        self.meta_str("general.architecture")?
            .ok_or_else(|| Error::config(&self.path, "general.architecture", "missing"))
    }

    pub fn config(&self) -> Result<ModelConfig> {
        let arch = self.architecture()?.to_string();
        let family = Family::from_gguf_architecture(&arch, &self.path)?;
        let k = |s: &str| format!("{arch}.{s}");
        let d = self.required(&k("embedding_length"))?;
        let n_heads = self.required(&k("attention.head_count"))?;
        let n_kv_heads = self.meta_usize(&k("attention.head_count_kv"))?.unwrap_or(n_heads);
        let d_head = self.meta_usize(&k("attention.key_length"))?.unwrap_or(d / n_heads.max(1));
        let vocab_size = match self.meta_usize(&k("vocab_size"))? {
            Some(v) => v,
            None => match self.shape("token_embd.weight") {
                Some(s) if !s.is_empty() => s[0],
                Some(_) => {
                    return Err(Error::format(
                        &self.path,
                        "tensor `token_embd.weight` has no dimensions; expected (vocab, d_model)",
                    ))
                }
                None => return Err(Error::MissingTensor { path: self.path.clone(), name: "token_embd.weight".into() }),
            },
        };
        let eps = match self.meta_f64(&k("attention.layer_norm_rms_epsilon"))? {
            Some(e) => e,
            None => self.meta_f64(&k("attention.layer_norm_epsilon"))?.unwrap_or(1e-5),
        };
        let scaling = if let Some(freqs) =
            self.contains("rope_freqs.weight").then(|| self.read_f32("rope_freqs.weight")).transpose()?
        {
            RopeScaling::FreqFactors(freqs.flatten_all()?.to_vec1()?)
        } else {
            match self.meta_str(&k("rope.scaling.type"))? {
                None | Some("none") => RopeScaling::None,
                Some("linear") => {
                    RopeScaling::Linear { factor: self.meta_f64(&k("rope.scaling.factor"))?.unwrap_or(1.0) }
                }
                Some(other) => {
                    return Err(Error::config(&self.path, &k("rope.scaling.type"), format!("unsupported `{other}`")))
                }
            }
        };
        let rotary = |dims: usize| -> Result<Positional> {
            Ok(Positional::Rotary {
                dims,
                theta: self.meta_f64(&k("rope.freq_base"))?.unwrap_or(10000.0),
                scaling: scaling.clone(),
            })
        };
        let rope_dims = self.meta_usize(&k("rope.dimension_count"))?.unwrap_or(d_head);
        let has = |name: &str| self.contains(name);
        let (norm, positional, act, gated, parallel) = match family {
            Family::Gpt2 => (NormKind::LayerNorm, Positional::Learned, Activation::GeluTanh, false, false),
            Family::GptNeoX => (
                NormKind::LayerNorm,
                rotary(rope_dims)?,
                Activation::GeluErf,
                false,
                self.meta_bool(&k("use_parallel_residual"))?.unwrap_or(true),
            ),
            // llama.cpp's converter bakes Gemma's (1 + w) into the stored norm weights.
            Family::Gemma => (NormKind::RmsNorm, rotary(rope_dims)?, Activation::GeluTanh, true, false),
            Family::Llama | Family::Mistral | Family::Qwen2 => {
                (NormKind::RmsNorm, rotary(rope_dims)?, Activation::Silu, true, false)
            }
        };
        let fused = has("blk.0.attn_qkv.weight");
        let cfg = ModelConfig {
            family,
            architecture: arch.clone(),
            vocab_size,
            d_model: d,
            n_layers: self.required(&k("block_count"))?,
            n_heads,
            n_kv_heads,
            d_head,
            d_mlp: self.required(&k("feed_forward_length"))?,
            n_ctx: self.required(&k("context_length"))?,
            norm,
            norm_eps: eps,
            positional,
            act,
            gated_mlp: gated,
            parallel_residual: parallel,
            qkv_bias: has(if fused { "blk.0.attn_qkv.bias" } else { "blk.0.attn_q.bias" }),
            o_bias: has("blk.0.attn_output.bias"),
            mlp_bias: has("blk.0.ffn_up.bias"),
            tied_embeddings: !has("output.weight"),
            embed_scale: (family == Family::Gemma).then(|| (d as f64).sqrt()),
            sliding_window: None,
            bos_token_id: self.meta_usize("tokenizer.ggml.bos_token_id")?.map(|n| n as u32),
            eos_token_id: self.meta_usize("tokenizer.ggml.eos_token_id")?.map(|n| n as u32),
        };
        cfg.validate(&self.path)?;
        Ok(cfg)
    }
}

//! A GGUF model as a Hugging Face checkpoint: its tensors under Hugging Face names and layout
//! (dequantised to f32, llama.cpp's permutation of q/k rows undone), its `config.json`, and its
//! tokenizer files. Training (unlearning) a GGUF model works on these, and its checkpoint is one
//! that transformers loads. Families whose GGUF layout differs from theirs only by names and
//! that permutation: Llama (SmolLM, TinyLlama, Llama 2/3), Mistral, Qwen2.

use crate::error::{Error, Result};
use crate::model::config::{Family, Positional, RopeScaling};
use crate::model::naming::{Format, Naming, W};
use crate::model::source::{GgufSource, TensorSource};
use crate::model::weights::unpermute_rows;
use crate::model::{ModelConfig, Tokenizer};
use candle_core::Tensor;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every per-model and per-layer weight a Llama-style decoder may hold.
const GLOBAL: [W; 4] = [W::TokEmbed, W::LmHead, W::FinalNorm, W::FinalNormBias];
const PER_LAYER: [W; 14] = [
    W::AttnNorm,
    W::MlpNorm,
    W::Q,
    W::QBias,
    W::K,
    W::KBias,
    W::V,
    W::VBias,
    W::O,
    W::OBias,
    W::MlpIn,
    W::MlpUp,
    W::MlpOut,
    W::MlpOutBias,
];

/// The families this conversion covers, or an error naming the file's.
fn check_family(src: &GgufSource, cfg: &ModelConfig) -> Result<()> {
    match cfg.family {
        Family::Llama | Family::Mistral | Family::Qwen2 => Ok(()),
        other => Err(Error::format(
            &src.path,
            format!(
                "a {other:?} GGUF cannot be turned into a Hugging Face checkpoint yet (Llama, Mistral and Qwen2 \
                 can); convert it to safetensors first"
            ),
        )),
    }
}

/// The GGUF's tensors as f32, by Hugging Face name, in Hugging Face layout.
pub fn hf_tensors(src: &GgufSource, cfg: &ModelConfig) -> Result<BTreeMap<String, Tensor>> {
    check_family(src, cfg)?;
    let gguf = Naming::new(cfg.family, Format::Gguf, src);
    let hf = Naming::new(cfg.family, Format::HuggingFace, src);
    let mut out = BTreeMap::new();
    let mut take = |w: W, layer: usize| -> Result<()> {
        let name = gguf.name(w, layer);
        if !src.contains(&name) {
            return Ok(());
        }
        let mut t = src.read_f32(&name)?;
        if gguf.interleaved_qk() {
            match w {
                W::Q | W::QBias => t = unpermute_rows(&t, cfg.n_heads)?,
                W::K | W::KBias => t = unpermute_rows(&t, cfg.n_kv_heads)?,
                _ => {}
            }
        }
        out.insert(hf.name(w, layer), t);
        Ok(())
    };
    for w in GLOBAL {
        take(w, 0)?;
    }
    for layer in 0..cfg.n_layers {
        for w in PER_LAYER {
            take(w, layer)?;
        }
    }
    // llama.cpp's precomputed Llama 3 rope frequencies come from config.json's rope_scaling
    let expected = src.names().iter().filter(|n| !n.starts_with("rope_freqs")).count();
    if out.len() != expected {
        let known: Vec<&String> = out.keys().collect();
        return Err(Error::format(
            &src.path,
            format!(
                "{} of its {expected} tensors have a Hugging Face name here; converting it would drop the rest \
                 (converted: {} …)",
                out.len(),
                known.iter().take(4).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(out)
}

/// A Hugging Face `config.json` for a Llama-style model.
pub fn hf_config(cfg: &ModelConfig) -> Result<Value> {
    let (arch, model_type) = match cfg.family {
        Family::Llama => ("LlamaForCausalLM", "llama"),
        Family::Mistral => ("MistralForCausalLM", "mistral"),
        Family::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        other => return Err(Error::input(format!("no Hugging Face config.json writer for {other:?}"))),
    };
    let Positional::Rotary { theta, scaling, .. } = &cfg.positional else {
        return Err(Error::input("a Llama-style model has rotary positions"));
    };
    let rope_scaling = match scaling {
        RopeScaling::None => Value::Null,
        RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => json!({
            "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": *original_max_position_embeddings as u64,
        }),
        RopeScaling::FreqFactors(_) => {
            return Err(Error::input(
                "this GGUF's rope frequencies come as a tensor (rope_freqs) with no rope_scaling settings to write \
                 into config.json",
            ))
        }
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_mlp,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.d_head,
        "max_position_embeddings": cfg.n_ctx,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": theta,
        "rope_scaling": rope_scaling,
        "hidden_act": "silu",
        "tie_word_embeddings": cfg.tied_embeddings,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "torch_dtype": "float32",
    });
    match cfg.family {
        Family::Llama => {
            v["attention_bias"] = json!(cfg.qkv_bias);
            v["mlp_bias"] = json!(cfg.mlp_bias);
        }
        Family::Mistral => v["sliding_window"] = json!(cfg.sliding_window),
        _ => {}
    }
    Ok(v)
}

/// The checkpoint's files besides the weights: `config.json`, `generation_config.json` and, when
/// the GGUF holds a BPE tokenizer, `tokenizer.json` and `tokenizer_config.json` (with the chat
/// template). A SentencePiece vocabulary has no `tokenizer.json` form here and is refused.
pub fn hf_files(
    src: &GgufSource,
    cfg: &ModelConfig,
    tok: Option<&Tokenizer>,
    chat_template: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let bytes = |v: &Value| serde_json::to_vec_pretty(v).map_err(|e| Error::input(e.to_string()));
    let mut files = vec![
        ("config.json".to_string(), bytes(&hf_config(cfg)?)?),
        (
            "generation_config.json".to_string(),
            bytes(&json!({"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id}))?,
        ),
    ];
    if let Some(tok) = tok {
        let json = tok.hf_json().ok_or_else(|| {
            Error::format(
                &src.path,
                "its SentencePiece tokenizer has no tokenizer.json form here; the checkpoint needs one",
            )
        })?;
        files.push(("tokenizer.json".to_string(), json.into_bytes()));
        let text = |id: Option<u32>| id.map(|i| tok.token_text(i));
        let mut config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": text(tok.bos),
            "eos_token": text(tok.eos),
            "model_max_length": cfg.n_ctx,
        });
        if let Some(t) = chat_template {
            config["chat_template"] = json!(t);
        }
        files.push(("tokenizer_config.json".to_string(), bytes(&config)?));
    }
    Ok(files)
}

//! Tensor names per family and file format, mapped onto the decoder's canonical weights.

use super::config::Family;
use super::source::TensorSource;

/// The canonical weights of the generic decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum W {
    TokEmbed,
    PosEmbed,
    LmHead,
    FinalNorm,
    FinalNormBias,
    AttnNorm,
    AttnNormBias,
    MlpNorm,
    MlpNormBias,
    Q,
    QBias,
    K,
    KBias,
    V,
    VBias,
    /// q, k and v in one matrix (GPT-2, GPT-NeoX, GGUF `attn_qkv`)
    Qkv,
    QkvBias,
    O,
    OBias,
    /// the MLP's input projection (the gate projection in gated MLPs)
    MlpIn,
    MlpInBias,
    /// gated MLPs: the up projection
    MlpUp,
    MlpUpBias,
    MlpOut,
    MlpOutBias,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    HuggingFace,
    Gguf,
}

/// How fused q/k/v rows are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkvLayout {
    /// [q; k; v] blocks (GPT-2, GGUF)
    Blocks,
    /// per head [q_h; k_h; v_h] (Hugging Face GPT-NeoX)
    PerHead,
}

#[derive(Clone, Debug)]
pub struct Naming {
    pub family: Family,
    pub format: Format,
    /// HF GPT-2 checkpoints exist with and without the `transformer.` prefix.
    prefix: String,
}

impl Naming {
    pub fn new(family: Family, format: Format, src: &dyn TensorSource) -> Self {
        let prefix = match (family, format) {
            (Family::Gpt2, Format::HuggingFace)
                if !src.contains("transformer.wte.weight") && src.contains("wte.weight") =>
            {
                ""
            }
            (Family::Gpt2, Format::HuggingFace) => "transformer.",
            (Family::GptNeoX, Format::HuggingFace) => "gpt_neox.",
            (_, Format::HuggingFace) => "model.",
            (_, Format::Gguf) => "",
        };
        Naming { family, format, prefix: prefix.to_string() }
    }

    /// Whether the family stores linear weights as (in, out) (HF GPT-2's Conv1D).
    pub fn transposed_linears(&self) -> bool {
        self.family == Family::Gpt2 && self.format == Format::HuggingFace
    }

    pub fn fused_qkv(&self) -> Option<QkvLayout> {
        match (self.family, self.format) {
            (Family::Gpt2, _) | (Family::GptNeoX, Format::Gguf) => Some(QkvLayout::Blocks),
            (Family::GptNeoX, Format::HuggingFace) => Some(QkvLayout::PerHead),
            (Family::Llama | Family::Mistral | Family::Qwen2 | Family::Gemma, _) => None,
        }
    }

    /// GGUF llama checkpoints store q/k rows permuted for interleaved rotary embeddings.
    pub fn interleaved_qk(&self) -> bool {
        self.format == Format::Gguf
            && match self.family {
                Family::Llama | Family::Mistral => true,
                Family::Qwen2 | Family::Gemma | Family::Gpt2 | Family::GptNeoX => false,
            }
    }

    pub fn name(&self, w: W, layer: usize) -> String {
        match self.format {
            Format::Gguf => self.gguf(w, layer),
            Format::HuggingFace => self.hf(w, layer),
        }
    }

    fn gguf(&self, w: W, l: usize) -> String {
        let g = |s: &str| s.to_string();
        let b = |s: &str| format!("blk.{l}.{s}");
        match w {
            W::TokEmbed => g("token_embd.weight"),
            W::PosEmbed => g("position_embd.weight"),
            W::LmHead => g("output.weight"),
            W::FinalNorm => g("output_norm.weight"),
            W::FinalNormBias => g("output_norm.bias"),
            W::AttnNorm => b("attn_norm.weight"),
            W::AttnNormBias => b("attn_norm.bias"),
            W::MlpNorm => b("ffn_norm.weight"),
            W::MlpNormBias => b("ffn_norm.bias"),
            W::Q => b("attn_q.weight"),
            W::QBias => b("attn_q.bias"),
            W::K => b("attn_k.weight"),
            W::KBias => b("attn_k.bias"),
            W::V => b("attn_v.weight"),
            W::VBias => b("attn_v.bias"),
            W::Qkv => b("attn_qkv.weight"),
            W::QkvBias => b("attn_qkv.bias"),
            W::O => b("attn_output.weight"),
            W::OBias => b("attn_output.bias"),
            W::MlpIn if self.family_gated() => b("ffn_gate.weight"),
            W::MlpIn => b("ffn_up.weight"),
            W::MlpInBias if self.family_gated() => b("ffn_gate.bias"),
            W::MlpInBias => b("ffn_up.bias"),
            W::MlpUp => b("ffn_up.weight"),
            W::MlpUpBias => b("ffn_up.bias"),
            W::MlpOut => b("ffn_down.weight"),
            W::MlpOutBias => b("ffn_down.bias"),
        }
    }

    fn family_gated(&self) -> bool {
        match self.family {
            Family::Gpt2 | Family::GptNeoX => false,
            Family::Llama | Family::Mistral | Family::Qwen2 | Family::Gemma => true,
        }
    }

    fn hf(&self, w: W, l: usize) -> String {
        let p = &self.prefix;
        match self.family {
            Family::Gpt2 => {
                let b = |s: &str| format!("{p}h.{l}.{s}");
                match w {
                    W::TokEmbed => format!("{p}wte.weight"),
                    W::PosEmbed => format!("{p}wpe.weight"),
                    W::LmHead => "lm_head.weight".into(),
                    W::FinalNorm => format!("{p}ln_f.weight"),
                    W::FinalNormBias => format!("{p}ln_f.bias"),
                    W::AttnNorm => b("ln_1.weight"),
                    W::AttnNormBias => b("ln_1.bias"),
                    W::MlpNorm => b("ln_2.weight"),
                    W::MlpNormBias => b("ln_2.bias"),
                    W::Qkv => b("attn.c_attn.weight"),
                    W::QkvBias => b("attn.c_attn.bias"),
                    W::O => b("attn.c_proj.weight"),
                    W::OBias => b("attn.c_proj.bias"),
                    W::MlpIn => b("mlp.c_fc.weight"),
                    W::MlpInBias => b("mlp.c_fc.bias"),
                    W::MlpOut => b("mlp.c_proj.weight"),
                    W::MlpOutBias => b("mlp.c_proj.bias"),
                    _ => format!("<gpt2 has no {w:?}>"),
                }
            }
            Family::GptNeoX => {
                let b = |s: &str| format!("{p}layers.{l}.{s}");
                match w {
                    W::TokEmbed => format!("{p}embed_in.weight"),
                    W::LmHead => "embed_out.weight".into(),
                    W::FinalNorm => format!("{p}final_layer_norm.weight"),
                    W::FinalNormBias => format!("{p}final_layer_norm.bias"),
                    W::AttnNorm => b("input_layernorm.weight"),
                    W::AttnNormBias => b("input_layernorm.bias"),
                    W::MlpNorm => b("post_attention_layernorm.weight"),
                    W::MlpNormBias => b("post_attention_layernorm.bias"),
                    W::Qkv => b("attention.query_key_value.weight"),
                    W::QkvBias => b("attention.query_key_value.bias"),
                    W::O => b("attention.dense.weight"),
                    W::OBias => b("attention.dense.bias"),
                    W::MlpIn => b("mlp.dense_h_to_4h.weight"),
                    W::MlpInBias => b("mlp.dense_h_to_4h.bias"),
                    W::MlpOut => b("mlp.dense_4h_to_h.weight"),
                    W::MlpOutBias => b("mlp.dense_4h_to_h.bias"),
                    _ => format!("<gpt_neox has no {w:?}>"),
                }
            }
            Family::Llama | Family::Mistral | Family::Qwen2 | Family::Gemma => {
                let b = |s: &str| format!("{p}layers.{l}.{s}");
                match w {
                    W::TokEmbed => format!("{p}embed_tokens.weight"),
                    W::LmHead => "lm_head.weight".into(),
                    W::FinalNorm => format!("{p}norm.weight"),
                    W::AttnNorm => b("input_layernorm.weight"),
                    W::MlpNorm => b("post_attention_layernorm.weight"),
                    W::Q => b("self_attn.q_proj.weight"),
                    W::QBias => b("self_attn.q_proj.bias"),
                    W::K => b("self_attn.k_proj.weight"),
                    W::KBias => b("self_attn.k_proj.bias"),
                    W::V => b("self_attn.v_proj.weight"),
                    W::VBias => b("self_attn.v_proj.bias"),
                    W::O => b("self_attn.o_proj.weight"),
                    W::OBias => b("self_attn.o_proj.bias"),
                    W::MlpIn => b("mlp.gate_proj.weight"),
                    W::MlpUp => b("mlp.up_proj.weight"),
                    W::MlpOut => b("mlp.down_proj.weight"),
                    W::MlpInBias => b("mlp.gate_proj.bias"),
                    W::MlpUpBias => b("mlp.up_proj.bias"),
                    W::MlpOutBias => b("mlp.down_proj.bias"),
                    _ => format!("<{} has no {w:?}>", self.family.name()),
                }
            }
        }
    }
}

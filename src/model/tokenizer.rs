//! Tokenizers: Hugging Face `tokenizer.json`, or built from GGUF metadata (`gpt2` byte-level BPE
//! with merges, `llama` SentencePiece-style scored pieces).

use super::sentencepiece::SentencePiece;
use super::source::GgufSource;
use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::Value;
use std::path::Path;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::AddedToken;

enum Inner {
    Hf(Box<tokenizers::Tokenizer>),
    Sp(SentencePiece),
}

pub struct Tokenizer {
    inner: Inner,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// whether `encode` puts BOS first (HF: the tokenizer's own post-processor decides)
    add_bos: bool,
    specials: Vec<u32>,
}

impl Tokenizer {
    pub fn from_file(path: &Path, bos: Option<u32>, eos: Option<u32>) -> Result<Self> {
        let tok = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::format(path, format!("cannot read tokenizer: {e}")))?;
        let specials = tok.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(id, _)| *id).collect();
        Ok(Tokenizer { inner: Inner::Hf(Box::new(tok)), bos, eos, add_bos: false, specials })
    }

    pub fn from_gguf(src: &GgufSource) -> Result<Option<Self>> {
        let path = &src.path;
        let Some(model) = src.meta_str("tokenizer.ggml.model")? else { return Ok(None) };
        let tokens = string_list(src, "tokenizer.ggml.tokens")?;
        let types: Vec<i64> = match src.meta("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a.iter().map(|v| v.to_i32().map(i64::from).unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let control: Vec<u32> = types.iter().enumerate().filter(|(_, t)| **t == 3).map(|(i, _)| i as u32).collect();
        let bos = src.meta_usize("tokenizer.ggml.bos_token_id")?.map(|n| n as u32);
        let eos = src.meta_usize("tokenizer.ggml.eos_token_id")?.map(|n| n as u32);
        let add_bos = src.meta_bool("tokenizer.ggml.add_bos_token")?;
        match model {
            "llama" => {
                let scores: Vec<f32> = match src.meta("tokenizer.ggml.scores") {
                    Some(Value::Array(a)) => a.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect(),
                    _ => {
                        return Err(Error::config(
                            path,
                            "tokenizer.ggml.scores",
                            "missing (a SentencePiece vocabulary needs scores)",
                        ))
                    }
                };
                if scores.len() != tokens.len() {
                    return Err(Error::config(
                        path,
                        "tokenizer.ggml.scores",
                        format!("has {} entries for {} tokens", scores.len(), tokens.len()),
                    ));
                }
                let prefix = src.meta_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
                Ok(Some(Tokenizer {
                    inner: Inner::Sp(SentencePiece::new(tokens, scores, prefix)),
                    bos,
                    eos,
                    add_bos: add_bos.unwrap_or(true),
                    specials: control,
                }))
            }
            "gpt2" => {
                let merges = string_list(src, "tokenizer.ggml.merges")?
                    .into_iter()
                    .map(|m| match m.split_once(' ') {
                        Some((a, b)) => Ok((a.to_string(), b.to_string())),
                        None => Err(Error::config(
                            path,
                            "tokenizer.ggml.merges",
                            format!("entry `{m}` is not two tokens separated by a space"),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let vocab: tokenizers::models::bpe::Vocab =
                    tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .build()
                    .map_err(|e| Error::format(path, format!("cannot build the BPE tokenizer: {e}")))?;
                let mut tok = tokenizers::Tokenizer::new(bpe);
                let byte_level = ByteLevel::new(false, true, true);
                let pre: PreTokenizerWrapper = match src.meta_str("tokenizer.ggml.pre")? {
                    // SmolLM's tokenizer.json splits digits one by one before the byte-level step.
                    Some("smollm") | Some("starcoder") | Some("refact") => {
                        Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
                    }
                    _ => byte_level.into(),
                };
                tok.with_pre_tokenizer(Some(pre));
                tok.with_decoder(Some(ByteLevel::default()));
                let added: Vec<AddedToken> =
                    control.iter().map(|&i| AddedToken::from(tokens[i as usize].clone(), true)).collect();
                tok.add_special_tokens(added)
                    .map_err(|e| Error::format(path, format!("cannot add the control tokens: {e}")))?;
                Ok(Some(Tokenizer {
                    inner: Inner::Hf(Box::new(tok)),
                    bos,
                    eos,
                    add_bos: add_bos.unwrap_or(false),
                    specials: control,
                }))
            }
            other => Err(Error::config(
                path,
                "tokenizer.ggml.model",
                format!("unsupported `{other}` (supported: gpt2, llama)"),
            )),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Hf(t) => t.get_vocab_size(true),
            Inner::Sp(s) => s.vocab_size(),
        }
    }

    /// Token ids for `text`, with BOS first where this tokenizer adds one.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = match &self.inner {
            Inner::Hf(t) => t
                .encode(text, true)
                .map_err(|e| Error::input(format!("cannot tokenize the prompt: {e}")))?
                .get_ids()
                .to_vec(),
            Inner::Sp(s) => s.encode(text),
        };
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Text for `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner {
            Inner::Hf(t) => t.decode(ids, true).map_err(|e| Error::input(format!("cannot decode token ids: {e}"))),
            Inner::Sp(s) => Ok(s.decode(ids, &self.specials)),
        }
    }

    /// The tokenizer as a Hugging Face `tokenizer.json` (None for a SentencePiece vocabulary read
    /// from GGUF, which has no such form here).
    pub fn hf_json(&self) -> Option<String> {
        match &self.inner {
            Inner::Hf(t) => t.to_string(true).ok(),
            Inner::Sp(_) => None,
        }
    }

    /// How one token reads on its own (special tokens included).
    pub fn token_text(&self, id: u32) -> String {
        match &self.inner {
            Inner::Hf(t) => t.decode(&[id], false).unwrap_or_default(),
            Inner::Sp(s) => String::from_utf8_lossy(&s.piece_bytes(id)).into_owned(),
        }
    }
}

fn string_list(src: &GgufSource, key: &str) -> Result<Vec<String>> {
    match src.meta(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(Error::config(&src.path, key, format!("expected strings, found {other:?}"))),
            })
            .collect(),
        Some(other) => Err(Error::config(&src.path, key, format!("expected a list of strings, got {other:?}"))),
        None => Err(Error::config(&src.path, key, "missing")),
    }
}

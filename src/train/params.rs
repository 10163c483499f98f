//! The parameters of a GPT-2 being trained: `Var`s under their Hugging Face names and layouts
//! (Conv1D weights are (in, out)), so that saving is writing them out and the decoder reads them
//! through the same loader as any checkpoint.

use crate::error::{Error, Result};
use crate::model::naming::{Format, Naming, QkvLayout, W};
use crate::model::source::{GgufSource, SafetensorsSource, TensorSource};
use crate::model::weights::Weights;
use crate::model::{Decoder, ModelConfig, Tokenizer};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The size of the model to train.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gpt2Shape {
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub n_ctx: usize,
    pub vocab_size: usize,
}

impl Gpt2Shape {
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::input(format!("{field}: {why}")));
        if self.n_layers == 0 {
            return bad("layers", "the model needs at least one layer".into());
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad("heads", format!("{} heads must divide d_model = {}", self.n_heads, self.d_model));
        }
        if self.n_ctx < 8 {
            return bad("context", format!("a context of {} tokens is too short", self.n_ctx));
        }
        Ok(())
    }

    /// The Hugging Face `config.json` of this shape (GPT2LMHeadModel, tied embeddings).
    pub fn hf_config(&self, eos: u32) -> Value {
        json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "activation_function": "gelu_new",
            "n_layer": self.n_layers,
            "n_head": self.n_heads,
            "n_embd": self.d_model,
            "n_inner": 4 * self.d_model,
            "n_positions": self.n_ctx,
            "n_ctx": self.n_ctx,
            "vocab_size": self.vocab_size,
            "layer_norm_epsilon": 1e-5,
            "bos_token_id": eos,
            "eos_token_id": eos,
            "tie_word_embeddings": true,
            "scale_attn_weights": true,
            "attn_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "resid_pdrop": 0.0,
            "initializer_range": 0.02,
            "dtype": "float32",
        })
    }
}

/// Trainable parameters by Hugging Face name.
pub struct Params {
    pub shape: Gpt2Shape,
    pub vars: BTreeMap<String, Var>,
    pub cfg: ModelConfig,
}

/// Whether a parameter takes weight decay: matrices do; biases, norms and embeddings do not.
pub fn decays(name: &str) -> bool {
    name.ends_with(".weight") && !name.contains(".ln_") && !name.contains("wte") && !name.contains("wpe")
}

impl Params {
    /// GPT-2's initialisation: N(0, 0.02) matrices and embeddings, output projections scaled by
    /// 1/√(2L), zero biases, unit norms. Drawn from the world's SplitMix64 stream, so the same
    /// seed gives the same model everywhere (candle's own CPU RNG cannot be seeded).
    pub fn init(shape: &Gpt2Shape, eos: u32, seed: u64) -> Result<Self> {
        shape.validate()?;
        let cfg = ModelConfig::from_hf_value(&shape.hf_config(eos), Path::new("<training config>"))?;
        let (d, l) = (shape.d_model, shape.n_layers);
        let mut rng = Rng::stream(seed, "init");
        let mut vars = BTreeMap::new();
        let std = 0.02;
        let proj_std = std / ((2 * l) as f64).sqrt();
        let mut add = |name: String, dims: &[usize], fill: Fill| -> Result<()> {
            let n: usize = dims.iter().product();
            let data: Vec<f32> = match fill {
                Fill::Normal(s) => (0..n).map(|_| (rng.normal() * s) as f32).collect(),
                Fill::Const(c) => vec![c; n],
            };
            let t = Tensor::from_vec(data, dims, &Device::Cpu)?;
            vars.insert(name, Var::from_tensor(&t)?);
            Ok(())
        };
        let p = "transformer.";
        add(format!("{p}wte.weight"), &[shape.vocab_size, d], Fill::Normal(std))?;
        add(format!("{p}wpe.weight"), &[shape.n_ctx, d], Fill::Normal(std / 2.0))?;
        for i in 0..l {
            let b = |s: &str| format!("{p}h.{i}.{s}");
            add(b("ln_1.weight"), &[d], Fill::Const(1.0))?;
            add(b("ln_1.bias"), &[d], Fill::Const(0.0))?;
            add(b("attn.c_attn.weight"), &[d, 3 * d], Fill::Normal(std))?;
            add(b("attn.c_attn.bias"), &[3 * d], Fill::Const(0.0))?;
            add(b("attn.c_proj.weight"), &[d, d], Fill::Normal(proj_std))?;
            add(b("attn.c_proj.bias"), &[d], Fill::Const(0.0))?;
            add(b("ln_2.weight"), &[d], Fill::Const(1.0))?;
            add(b("ln_2.bias"), &[d], Fill::Const(0.0))?;
            add(b("mlp.c_fc.weight"), &[d, 4 * d], Fill::Normal(std))?;
            add(b("mlp.c_fc.bias"), &[4 * d], Fill::Const(0.0))?;
            add(b("mlp.c_proj.weight"), &[4 * d, d], Fill::Normal(proj_std))?;
            add(b("mlp.c_proj.bias"), &[d], Fill::Const(0.0))?;
        }
        add(format!("{p}ln_f.weight"), &[d], Fill::Const(1.0))?;
        add(format!("{p}ln_f.bias"), &[d], Fill::Const(0.0))?;
        Ok(Params { shape: shape.clone(), vars, cfg })
    }

    /// The same parameter values on `device` (initialisation is drawn on the CPU, so a GPU run
    /// starts from exactly the CPU's weights).
    pub fn to_device(&self, device: &Device) -> Result<Params> {
        let vars = self
            .vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), Var::from_tensor(&v.as_tensor().to_device(device)?)?)))
            .collect::<Result<_>>()?;
        Ok(Params { shape: self.shape.clone(), vars, cfg: self.cfg.clone() })
    }

    pub fn n_params(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// A decoder over the current parameter values whose weights are differentiable functions of
    /// the `Var`s (rebuilt after every optimiser step: the loader's transposes are copies).
    pub fn decoder(&self) -> Result<Decoder> {
        decoder_over(&self.cfg, &self.vars)
    }

    /// The parameters as named tensors, ready for `safetensors`.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().detach())).collect()
    }
}

/// A block of a parameter: entries `start..start + len` along `axis` (all of the other axis).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Block {
    pub name: String,
    pub axis: usize,
    pub start: usize,
    pub len: usize,
}

/// Any Hugging Face checkpoint's parameters as trainable f32 `Var`s under their stored names, on
/// one device: full-parameter training of every supported family (the bundled trainer's
/// [`Params`] are the GPT-2 it initialises itself).
pub struct Trainable {
    pub cfg: ModelConfig,
    pub vars: BTreeMap<String, Var>,
    /// a GGUF source's Hugging Face files (config, tokenizer), written with every checkpoint
    converted: Option<Vec<(String, Vec<u8>)>>,
}

impl Trainable {
    /// Reads a model directory (`config.json` and safetensors) or a GGUF file (Llama, Mistral,
    /// Qwen2: see [`super::from_gguf`]) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let var = |t: Tensor| -> Result<Var> { Ok(Var::from_tensor(&t.to_device(device)?)?) };
        if path.is_file() {
            let src = GgufSource::open(path)?;
            let cfg = src.config()?;
            let tensors = super::from_gguf::hf_tensors(&src, &cfg)?;
            let tok = Tokenizer::from_gguf(&src)?;
            let template = src.meta_str("tokenizer.chat_template")?;
            let files = super::from_gguf::hf_files(&src, &cfg, tok.as_ref(), template)?;
            let vars = tensors.into_iter().map(|(n, t)| Ok((n, var(t)?))).collect::<Result<_>>()?;
            return Ok(Trainable { cfg, vars, converted: Some(files) });
        }
        let cfg = ModelConfig::from_hf_json(&path.join("config.json"))?;
        let src = SafetensorsSource::open_dir(path)?;
        let vars = src.names().into_iter().map(|n| Ok((n.clone(), var(src.read_f32(&n)?)?))).collect::<Result<_>>()?;
        Ok(Trainable { cfg, vars, converted: None })
    }

    /// A decoder whose weights are differentiable functions of the `Var`s (see [`Params::decoder`]).
    pub fn decoder(&self) -> Result<Decoder> {
        decoder_over(&self.cfg, &self.vars)
    }

    /// Where MLP value vector (`layer`, `dim`) is stored: the output projection's name and, as a
    /// trainable pattern (`NAME[:,dim]`, or `NAME[dim,:]` for HF GPT-2's (in, out) Conv1D), the
    /// column or row that holds it.
    pub fn value_vector(&self, layer: usize, dim: usize) -> Result<(String, String)> {
        let (n_layers, f) = (self.cfg.n_layers, self.cfg.d_mlp);
        if layer >= n_layers || dim >= f {
            return Err(Error::input(format!(
                "value vector (layer {layer}, dimension {dim}) is out of range: the model has layers 0..{} and MLP \
                 hidden units 0..{}",
                n_layers - 1,
                f - 1
            )));
        }
        let naming = Naming::new(self.cfg.family, Format::HuggingFace, &VarSource { vars: &self.vars });
        let name = naming.name(crate::model::naming::W::MlpOut, layer);
        if !self.vars.contains_key(&name) {
            return Err(Error::input(format!("the model has no parameter `{name}` (layer {layer}'s MLP output)")));
        }
        let pattern = if naming.transposed_linears() { format!("{name}[{dim},:]") } else { format!("{name}[:,{dim}]") };
        Ok((name, pattern))
    }

    /// The entries of the parameters that belong to head (`layer`, `head`): its query rows and
    /// output-projection columns (and their biases), and apart, the key and value rows of its
    /// key/value head, which grouped-query attention shares among `n_heads / n_kv_heads` heads.
    /// Stored layouts: separate q/k/v (out, in); GPT-2's fused (in, out) Conv1D with [q; k; v]
    /// column blocks; GPT-NeoX's fused rows, [q_h; k_h; v_h] per head.
    pub fn head_blocks(&self, layer: usize, head: usize) -> Result<(Vec<Block>, Vec<Block>)> {
        let c = &self.cfg;
        if layer >= c.n_layers || head >= c.n_heads {
            return Err(Error::input(format!(
                "head a{layer}.h{head} is out of range: the model has {} layers of {} heads",
                c.n_layers, c.n_heads
            )));
        }
        let naming = Naming::new(c.family, Format::HuggingFace, &VarSource { vars: &self.vars });
        let (dh, nq, nkv) = (c.d_head, c.n_heads * c.d_head, c.n_kv_heads * c.d_head);
        let kvh = head / (c.n_heads / c.n_kv_heads);
        let name = |w: W| naming.name(w, layer);
        let block = |w: W, axis: usize, start: usize| Block { name: name(w), axis, start, len: dh };
        let (mut own, mut kv) = (Vec::new(), Vec::new());
        // the output projection's input entries of this head: columns, or rows when transposed
        own.push(block(W::O, if naming.transposed_linears() { 0 } else { 1 }, head * dh));
        match naming.fused_qkv() {
            None => {
                own.push(block(W::Q, 0, head * dh));
                own.push(block(W::QBias, 0, head * dh));
                kv.extend([block(W::K, 0, kvh * dh), block(W::V, 0, kvh * dh)]);
                kv.extend([block(W::KBias, 0, kvh * dh), block(W::VBias, 0, kvh * dh)]);
            }
            Some(QkvLayout::Blocks) => {
                let axis = if naming.transposed_linears() { 1 } else { 0 };
                own.push(block(W::Qkv, axis, head * dh));
                own.push(block(W::QkvBias, 0, head * dh));
                kv.extend([block(W::Qkv, axis, nq + kvh * dh), block(W::Qkv, axis, nq + nkv + kvh * dh)]);
                kv.extend([block(W::QkvBias, 0, nq + kvh * dh), block(W::QkvBias, 0, nq + nkv + kvh * dh)]);
            }
            Some(QkvLayout::PerHead) => {
                // rows (head, {q, k, v}, dh): no grouped-query attention in this layout
                let whole = |w: W| Block { name: name(w), axis: 0, start: head * 3 * dh, len: 3 * dh };
                own.extend([whole(W::Qkv), whole(W::QkvBias)]);
            }
        }
        own.retain(|b| self.vars.contains_key(&b.name));
        kv.retain(|b| self.vars.contains_key(&b.name));
        Ok((own, kv))
    }

    /// Every parameter of layer `layer`'s MLP (its projections and their biases), whole.
    pub fn mlp_blocks(&self, layer: usize) -> Result<Vec<Block>> {
        if layer >= self.cfg.n_layers {
            return Err(Error::input(format!(
                "MLP m{layer} is out of range: the model has {} layers",
                self.cfg.n_layers
            )));
        }
        let naming = Naming::new(self.cfg.family, Format::HuggingFace, &VarSource { vars: &self.vars });
        let mut out = Vec::new();
        for w in [W::MlpIn, W::MlpInBias, W::MlpUp, W::MlpUpBias, W::MlpOut, W::MlpOutBias] {
            let name = naming.name(w, layer);
            if let Some(v) = self.vars.get(&name) {
                if !out.iter().any(|b: &Block| b.name == name) {
                    out.push(Block { name, axis: 0, start: 0, len: v.dims()[0] });
                }
            }
        }
        Ok(out)
    }

    /// Adds `delta` (d,) to value vector (`layer`, `dim`) in place.
    pub fn add_to_value_vector(&self, layer: usize, dim: usize, delta: &[f32]) -> Result<()> {
        let (name, _) = self.value_vector(layer, dim)?;
        let var = &self.vars[&name];
        let d = self.cfg.d_model;
        if delta.len() != d {
            return Err(Error::input(format!("a value vector of this model has {d} entries, got {}", delta.len())));
        }
        let t = var.as_tensor();
        let naming = Naming::new(self.cfg.family, Format::HuggingFace, &VarSource { vars: &self.vars });
        let updated = if naming.transposed_linears() {
            let row = (t.narrow(0, dim, 1)? + Tensor::from_slice(delta, (1, d), t.device())?)?;
            t.slice_assign(&[dim..dim + 1, 0..d], &row)?
        } else {
            let col = (t.narrow(1, dim, 1)? + Tensor::from_slice(delta, (d, 1), t.device())?)?;
            t.slice_assign(&[0..d, dim..dim + 1], &col)?
        };
        var.set(&updated)?;
        Ok(())
    }

    /// The current parameters as a checkpoint of the model in `source`: a directory's
    /// `config.json`, tokenizer and generation files copied (a GGUF's written from its metadata),
    /// `model.safetensors` written anew.
    pub fn checkpoint(&self, source: &Path) -> Result<super::checkpoint::Checkpoint> {
        let tensors = self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().detach())).collect();
        if let Some(files) = &self.converted {
            return Ok(super::checkpoint::Checkpoint { files: files.clone(), tensors });
        }
        let mut files = Vec::new();
        for name in [
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ] {
            let p = source.join(name);
            if p.exists() {
                files.push((name.to_string(), std::fs::read(&p).map_err(|e| Error::io(&p, e))?));
            }
        }
        Ok(super::checkpoint::Checkpoint { files, tensors })
    }
}

/// The decoder of `cfg` read through the loader from `vars` (Hugging Face names), on their device.
fn decoder_over(cfg: &ModelConfig, vars: &BTreeMap<String, Var>) -> Result<Decoder> {
    let src = VarSource { vars };
    let naming = Naming::new(cfg.family, Format::HuggingFace, &src);
    let device = vars.values().next().map_or(Device::Cpu, |v| v.device().clone());
    let ws = Weights { src: &src, naming, dtype: DType::F32, device, cfg, on_tensor: None };
    Decoder::new(cfg.clone(), &ws)
}

enum Fill {
    Normal(f64),
    Const(f32),
}

/// The loader's view of the parameters: reading a tensor returns the `Var`'s own tensor, so
/// gradients flow back to it through the loader's transposes and splits.
struct VarSource<'a> {
    vars: &'a BTreeMap<String, Var>,
}

impl TensorSource for VarSource<'_> {
    fn path_of(&self, _name: &str) -> &Path {
        Path::new("<parameters being trained>")
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.vars.get(name).map(|v| v.dims().to_vec())
    }

    fn read_f32(&self, name: &str) -> Result<Tensor> {
        self.vars.get(name).map(|v| v.as_tensor().clone()).ok_or_else(|| Error::MissingTensor {
            path: PathBuf::from("<parameters being trained>"),
            name: name.to_string(),
        })
    }

    fn names(&self) -> Vec<String> {
        self.vars.keys().cloned().collect()
    }

    fn stored_dtype(&self, _name: &str) -> Option<String> {
        Some("F32".into())
    }
}

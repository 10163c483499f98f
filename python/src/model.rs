//! `Model`: a loaded checkpoint (or an unlearned copy of one held in memory), its tokenizer, and
//! forward passes with hooks: captures, interventions and gradient taps.

use crate::arrays::{from_array, to_array, Array};
use crate::{err, OrPy};
use candle_core::{DType, Tensor};
use circuitscope::attribution::metric::log_softmax;
use circuitscope::data::PromptFormat;
use circuitscope::hooks::{Edit, HookPoint, HookSet, Intervention};
use circuitscope::model::decoder::Decoder;
use circuitscope::model::inspect;
use circuitscope::model::{LoadOptions, Model, Tokenizer};
use circuitscope::train::Trainable;
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Weights changed in memory (by unlearning): the parameters and the decoder over them.
pub struct Tuned {
    pub trainable: Trainable,
    pub decoder: Decoder,
}

/// A language model: a Hugging Face directory (config.json, safetensors, tokenizer.json), a GGUF
/// file, or `smollm2` (SmolLM2-135M-Instruct, fetched once into a cache).
#[pyclass(name = "Model", module = "circuitscope._native", frozen)]
pub struct PyModel {
    pub base: Arc<Model>,
    pub tuned: Option<Arc<Tuned>>,
}

/// `smollm2` (fetched once by the repository's scripts/fetch-smollm2.sh) or a path.
fn resolve(path: &str) -> PyResult<PathBuf> {
    circuitscope::model::resolve_alias(Path::new(path), &Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).py()
}

pub fn parse_dtype(name: &str) -> PyResult<DType> {
    Ok(match name {
        "f32" | "float32" => DType::F32,
        "bf16" | "bfloat16" => DType::BF16,
        "f16" | "float16" => DType::F16,
        "f64" | "float64" => DType::F64,
        other => return Err(err(anyhow::anyhow!("dtype {other:?}: give f32, bf16, f16 or f64"))),
    })
}

impl PyModel {
    pub fn decoder(&self) -> &Decoder {
        self.tuned.as_ref().map_or(&self.base.decoder, |t| &t.decoder)
    }

    pub fn tokenizer(&self) -> PyResult<&Tokenizer> {
        self.base.tokenizer().py()
    }

    pub fn format(&self) -> PyResult<PromptFormat> {
        PromptFormat::for_model(&self.base).py()
    }

    /// Parameters to train from: the checkpoint's, or this model's changed ones.
    pub fn trainable(&self) -> PyResult<Trainable> {
        let t = Trainable::load(&self.base.path, self.base.decoder.device()).py()?;
        if let Some(tuned) = &self.tuned {
            for (name, v) in &t.vars {
                let now = tuned
                    .trainable
                    .vars
                    .get(name)
                    .ok_or_else(|| err(anyhow::anyhow!("parameter {name} is missing")))?;
                v.set(now.as_tensor()).py()?;
            }
        }
        Ok(t)
    }

    /// A model of `self`'s checkpoint whose weights are `trainable`'s.
    pub fn with_weights(&self, trainable: Trainable) -> PyResult<PyModel> {
        let decoder = trainable.decoder().py()?;
        Ok(PyModel { base: self.base.clone(), tuned: Some(Arc::new(Tuned { trainable, decoder })) })
    }

    fn point(&self, name: &str) -> PyResult<HookPoint> {
        HookPoint::parse_for(name, self.decoder().hook_points()).py()
    }
}

/// One edit of `Model.run`: (kind, hook name, array bytes, array shape, heads, positions, factor).
type EditSpec = (String, String, Option<Vec<u8>>, Option<Vec<usize>>, Option<Vec<usize>>, Option<Vec<usize>>, f64);

#[pymethods]
impl PyModel {
    #[new]
    #[pyo3(signature = (path, dtype = "f32"))]
    fn new(py: Python<'_>, path: &str, dtype: &str) -> PyResult<Self> {
        let dtype = parse_dtype(dtype)?;
        let path = resolve(path)?;
        let m = py.detach(|| Model::load(&path, LoadOptions { dtype, ..Default::default() })).py()?;
        Ok(PyModel { base: Arc::new(m), tuned: None })
    }

    #[getter]
    fn path(&self) -> String {
        self.base.path.display().to_string()
    }

    /// Whether the weights were changed in memory (by unlearning) and differ from the checkpoint's.
    #[getter]
    pub fn modified(&self) -> bool {
        self.tuned.is_some()
    }

    /// The configuration as JSON: family, architecture and sizes.
    fn config_json(&self) -> PyResult<String> {
        let c = &self.decoder().cfg;
        crate::to_json(&serde_json::json!({
            "family": c.family.name(), "architecture": c.architecture, "vocab_size": c.vocab_size,
            "d_model": c.d_model, "n_layers": c.n_layers, "n_heads": c.n_heads, "n_kv_heads": c.n_kv_heads,
            "d_head": c.d_head, "d_mlp": c.d_mlp, "n_ctx": c.n_ctx, "n_params": c.n_params(),
            "gated_mlp": c.gated_mlp, "parallel_residual": c.parallel_residual,
            "tied_embeddings": c.tied_embeddings, "chat_template": self.base.chat_template.is_some(),
        }))
    }

    /// Every hook point's TransformerLens name, in the order the forward pass fires them.
    fn hook_names(&self) -> Vec<String> {
        self.decoder().hook_points().iter().map(|p| p.to_string()).collect()
    }

    /// A hook point's activation shape (`batch` and `seq` stand for the run's).
    fn hook_shape(&self, name: &str) -> PyResult<Vec<String>> {
        Ok(inspect::hook_shape(self.decoder(), self.point(name)?))
    }

    fn tokenize(&self, text: &str) -> PyResult<Vec<u32>> {
        self.tokenizer()?.encode(text).py()
    }

    fn decode(&self, ids: Vec<u32>) -> PyResult<String> {
        self.tokenizer()?.decode(&ids).py()
    }

    fn token_text(&self, id: u32) -> PyResult<String> {
        let tok = self.tokenizer()?;
        if id as usize >= tok.vocab_size() {
            return Err(err(anyhow::anyhow!("token {id} is not in the vocabulary of {} tokens", tok.vocab_size())));
        }
        Ok(tok.token_text(id))
    }

    /// The prompt that asks `question`: the model's chat template, else `Question: …\nAnswer:`.
    fn prompt(&self, question: &str) -> PyResult<String> {
        Ok(self.format()?.prompt(question))
    }

    /// One forward pass over `ids` (a batch of equally long token lists): the logits, the
    /// activations at `capture`, and with `metric` its value and gradient at every `tap`.
    #[pyo3(signature = (ids, capture, tap, edits, metric))]
    #[allow(clippy::type_complexity)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<Vec<u32>>,
        capture: Vec<String>,
        tap: Vec<String>,
        edits: Vec<EditSpec>,
        metric: Option<(String, Vec<u32>)>,
    ) -> PyResult<(Array<'py>, Vec<(String, Array<'py>)>, Vec<(String, Array<'py>)>, Option<f64>)> {
        let dec = self.decoder();
        let seq = ids.first().map_or(0, Vec::len);
        if ids.is_empty() || seq == 0 {
            return Err(err(anyhow::anyhow!("ids: give at least one non-empty token list")));
        }
        if let Some(i) = ids.iter().position(|r| r.len() != seq) {
            return Err(err(anyhow::anyhow!(
                "ids: row {i} has {} tokens and row 0 has {seq}: a batch's rows must be equally long",
                ids[i].len()
            )));
        }
        let vocab = dec.cfg.vocab_size as u32;
        if let Some(&bad) = ids.iter().flatten().find(|&&t| t >= vocab) {
            return Err(err(anyhow::anyhow!("ids: token {bad} is not in the vocabulary of {vocab} tokens")));
        }
        if seq > dec.cfg.n_ctx {
            return Err(err(anyhow::anyhow!(
                "ids: {seq} tokens are longer than the model's context of {}",
                dec.cfg.n_ctx
            )));
        }
        if !tap.is_empty() && metric.is_none() {
            return Err(err(anyhow::anyhow!("tap: gradients need a metric to differentiate (metric=…)")));
        }
        let capture: Vec<HookPoint> = capture.iter().map(|n| self.point(n)).collect::<PyResult<_>>()?;
        let tap: Vec<HookPoint> = tap.iter().map(|n| self.point(n)).collect::<PyResult<_>>()?;
        let mut hooks = HookSet::new().capture(capture.iter().copied()).tap(tap.iter().copied());
        for (kind, name, bytes, shape, heads, positions, factor) in edits {
            let point = self.point(&name)?;
            let array = |what: &str| -> PyResult<Tensor> {
                match (&bytes, &shape) {
                    (Some(b), Some(s)) => from_array(b, s, dec.device(), &format!("{what} at {name}")),
                    _ => Err(err(anyhow::anyhow!("{kind} at {name} needs an array"))),
                }
            };
            let edit = match kind.as_str() {
                "zero" => Edit::Zero,
                "scale" => Edit::Scale(factor),
                "replace" => Edit::Replace(array("replace")?),
                "add" => Edit::Add(array("add")?),
                other => return Err(err(anyhow::anyhow!("edit {other:?}: give zero, scale, replace or add"))),
            };
            let mut i = Intervention::new(point, edit);
            if let Some(h) = heads {
                i = i.at_heads(h);
            }
            if let Some(p) = positions {
                i = i.at_positions(p);
            }
            hooks = hooks.intervene(i);
        }
        let input = Tensor::new(ids, dec.device()).py()?;
        let out = dec.forward(&input, &hooks).py()?;
        let value = match &metric {
            None => None,
            Some((kind, tokens)) => Some(metric_value(&out.logits, kind, tokens, vocab)?),
        };
        let grads = match &value {
            Some(v) if !tap.is_empty() => Some(out.taps.gradients(v).py()?),
            _ => None,
        };
        let logits = to_array(py, &out.logits)?;
        let captured = capture
            .iter()
            .map(|p| Ok((p.to_string(), to_array(py, out.cache.get(*p).py()?)?)))
            .collect::<PyResult<_>>()?;
        let gradients = match &grads {
            Some(g) => {
                tap.iter().map(|p| Ok((p.to_string(), to_array(py, g.get(*p).py()?)?))).collect::<PyResult<_>>()?
            }
            None => Vec::new(),
        };
        let value = value.map(|v| v.to_dtype(DType::F64).and_then(|v| v.to_scalar::<f64>())).transpose().py()?;
        Ok((logits, captured, gradients, value))
    }

    /// Greedy continuations of `prompts` (texts), at most `max_new_tokens` each, stopping at the
    /// end token; several prompts run as one left-padded batch.
    #[pyo3(signature = (prompts, max_new_tokens = 32))]
    fn generate(&self, py: Python<'_>, prompts: Vec<String>, max_new_tokens: usize) -> PyResult<Vec<String>> {
        let tok = self.tokenizer()?;
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| tok.encode(p)).collect::<Result<_, _>>().py()?;
        let dec = self.decoder();
        let out = py.detach(|| inspect::greedy_batch(dec, &ids, max_new_tokens, tok.eos, &HookSet::new())).py()?;
        out.iter().map(|o| tok.decode(o)).collect::<Result<_, _>>().py()
    }

    /// The logit lens: per layer, the `k` tokens its residual stream predicts after the last
    /// token of `text`, as JSON [[{id, token, logit, logprob}]].
    #[pyo3(signature = (text, k = 5))]
    fn logit_lens_json(&self, text: &str, k: usize) -> PyResult<String> {
        let tok = self.tokenizer()?;
        let lens = inspect::logit_lens(self.decoder(), &tok.encode(text).py()?, k).py()?;
        let layers: Vec<Vec<serde_json::Value>> = lens
            .iter()
            .map(|cands| {
                cands
                    .iter()
                    .map(|c| serde_json::json!({"id": c.id, "token": tok.token_text(c.id), "logit": c.logit, "logprob": c.logprob}))
                    .collect()
            })
            .collect();
        crate::to_json(&layers)
    }

    /// Writes the changed weights as a checkpoint folder (config, tokenizer and model.safetensors)
    /// that `Model(folder)` and the circuitscope command load.
    fn save(&self, dir: &str) -> PyResult<()> {
        let Some(t) = &self.tuned else {
            return Err(err(anyhow::anyhow!(
                "this model's weights are its checkpoint's ({}); only a changed model is saved",
                self.base.path.display()
            )));
        };
        t.trainable.checkpoint(&self.base.path).and_then(|c| c.write(Path::new(dir))).py()
    }
}

/// The metric `run` differentiates, summed over the batch at the last position: `logit` of
/// token a, `logit-diff` of a against b, `logprob` of a.
fn metric_value(logits: &Tensor, kind: &str, tokens: &[u32], vocab: u32) -> PyResult<Tensor> {
    if let Some(&bad) = tokens.iter().find(|&&t| t >= vocab) {
        return Err(err(anyhow::anyhow!("metric: token {bad} is not in the vocabulary of {vocab} tokens")));
    }
    let need = if kind == "logit-diff" { 2 } else { 1 };
    if tokens.len() != need {
        return Err(err(anyhow::anyhow!("metric {kind:?} takes {need} token(s), got {}", tokens.len())));
    }
    let s = logits.dim(1).py()?;
    let last = logits.narrow(1, s - 1, 1).and_then(|l| l.squeeze(1)).py()?; // (b, V)
    let at = |t: u32| last.narrow(1, t as usize, 1).and_then(|x| x.sum_all());
    let v = match kind {
        "logit" => at(tokens[0]),
        "logit-diff" => at(tokens[0]).and_then(|a| at(tokens[1]).and_then(|b| a - b)),
        "logprob" => log_softmax(&last)
            .map_err(candle_core::Error::wrap)
            .and_then(|l| l.narrow(1, tokens[0] as usize, 1)?.sum_all()),
        other => return Err(err(anyhow::anyhow!("metric {other:?}: give logit, logit-diff or logprob"))),
    };
    v.py()
}

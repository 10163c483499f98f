//! Per-sample scores on disk: one safetensors file with `scores` (n_items, n_fwd, n_bwd) f32 in
//! the EAP-IG layout and, for the gradient methods, `node_scores` (n_items, n_fwd) f32.

use super::Attribution;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use candle_core::{Device, Tensor};
use std::path::Path;

impl Attribution {
    /// The per-sample scores as named tensors (see the module documentation); an error when
    /// the attribution was run without per-sample scores.
    pub fn per_sample_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let items = self.per_sample.as_ref().ok_or_else(|| {
            Error::input("per-sample scores were not computed (set `per_sample` in the configuration)")
        })?;
        let shape = self.scores.shape;
        let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
        let flat: Vec<f32> = items.iter().flat_map(|s| s.scores.iter().copied()).collect();
        let mut out = vec![("scores".to_string(), Tensor::from_vec(flat, (items.len(), nf, nb), &Device::Cpu)?)];
        if let Some(nodes) = &self.per_sample_nodes {
            let flat: Vec<f32> = nodes.iter().flat_map(|n| n.iter().copied()).collect();
            out.push(("node_scores".to_string(), Tensor::from_vec(flat, (nodes.len(), nf), &Device::Cpu)?));
        }
        Ok(out)
    }

    /// Writes [`Attribution::per_sample_tensors`] as safetensors, atomically.
    pub fn write_per_sample(&self, path: &Path) -> Result<()> {
        let tensors = self.per_sample_tensors()?;
        let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| Error::format(path, format!("cannot serialise the per-sample scores: {e}")))?;
        write_atomic(path, &bytes)
    }
}

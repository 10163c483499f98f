//! Writing a Hugging Face GPT-2 checkpoint folder without ever leaving a half-written one
//! (`fsutil::write_dir_atomic`).

use crate::error::{Error, Result};
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// The files of a checkpoint: name → bytes, plus the tensors of `model.safetensors`.
pub struct Checkpoint {
    pub files: Vec<(String, Vec<u8>)>,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Writes into `dir`, replacing what is there. An error or interruption before the final
    /// rename leaves the previous checkpoint as it was.
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_dir_atomic(dir, |tmp| self.write_into(tmp))
    }

    fn write_into(&self, tmp: &Path) -> Result<()> {
        for (name, bytes) in &self.files {
            let p = tmp.join(name);
            std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        }
        let st = tmp.join("model.safetensors");
        std::fs::write(&st, safetensors_bytes(&self.tensors)?).map_err(|e| Error::io(&st, e))?;
        Ok(())
    }
}

/// f32 tensors as a safetensors file, with the `format: pt` metadata transformers expects.
pub fn safetensors_bytes(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let v: Vec<f32> = t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        raw.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views = raw
        .iter()
        .map(|(n, dims, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::input(format!("cannot serialise tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::input(format!("cannot write safetensors: {e}")))
}

//! Concepts as directions in activation space (the counterpart of the parametric value vectors):
//! the difference of mean residual-stream activations between prompts that evoke a concept and
//! control prompts, at the output of one layer (`hook_resid_post`), read at each prompt's last
//! token or averaged over its tokens. New prompts project onto the unit direction; steering adds
//! α·u to the stream at every position, ablation removes the stream's component along u. Both
//! are ordinary interventions, so any forward pass or generation can carry them.

use crate::error::{Error, Result};
use crate::hooks::{DynamicEdit, Edit, HookPoint, HookSet, Intervention, Site};
use crate::model::Decoder;
use candle_core::{DType, Device, Tensor, D};

/// Which tokens of a prompt stand for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// the last token (the usual choice for a prompt's summary)
    Last,
    /// the mean over its tokens
    Mean,
}

impl std::str::FromStr for Readout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "last" => Ok(Readout::Last),
            "mean" => Ok(Readout::Mean),
            _ => Err(Error::input(format!("unknown readout `{s}` (known: last, mean)"))),
        }
    }
}

/// A concept direction at one layer.
#[derive(Clone, Debug)]
pub struct Direction {
    pub layer: usize,
    pub readout: Readout,
    /// mean(concept) − mean(control), (d,) f32
    pub vector: Tensor,
}

/// One vector (d,) per prompt: the stream after `layer`, read out.
pub fn activations(dec: &Decoder, prompts: &[Vec<u32>], layer: usize, readout: Readout) -> Result<Vec<Tensor>> {
    if layer >= dec.cfg.n_layers {
        return Err(Error::input(format!(
            "layer {layer} is out of range: the model has layers 0..{}",
            dec.cfg.n_layers - 1
        )));
    }
    let point = HookPoint::Block(layer, Site::ResidPost);
    prompts
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            if ids.is_empty() {
                return Err(Error::input(format!("prompt {i} has no tokens")));
            }
            let out = dec.forward(&Decoder::input(ids)?, &HookSet::new().capture([point]))?;
            let h = out.cache.get(point)?.squeeze(0)?.to_dtype(DType::F32)?; // (s, d)
            Ok(match readout {
                Readout::Last => h.get(ids.len() - 1)?,
                Readout::Mean => h.mean(0)?,
            })
        })
        .collect()
}

/// The mean of vectors (d,).
fn mean(vs: &[Tensor]) -> Result<Tensor> {
    Ok(Tensor::stack(vs, 0)?.mean(0)?)
}

impl Direction {
    /// mean(concept) − mean(control) at `layer`.
    pub fn difference_of_means(
        dec: &Decoder,
        concept: &[Vec<u32>],
        control: &[Vec<u32>],
        layer: usize,
        readout: Readout,
    ) -> Result<Direction> {
        if concept.is_empty() || control.is_empty() {
            return Err(Error::input("a direction needs at least one concept prompt and one control prompt"));
        }
        let a = mean(&activations(dec, concept, layer, readout)?)?;
        let b = mean(&activations(dec, control, layer, readout)?)?;
        Ok(Direction { layer, readout, vector: (a - b)? })
    }

    pub fn norm(&self) -> Result<f64> {
        super::vectors::norm(&self.vector)
    }

    /// u = v/‖v‖ (d,).
    pub fn unit(&self) -> Result<Tensor> {
        let n = self.norm()?;
        if n == 0.0 {
            return Err(Error::input("the concept and control prompts have the same mean activation: no direction"));
        }
        Ok((&self.vector / n)?)
    }

    /// Each prompt's activation projected onto u (the same layer and readout).
    pub fn project(&self, dec: &Decoder, prompts: &[Vec<u32>]) -> Result<Vec<f64>> {
        let u = self.unit()?;
        activations(dec, prompts, self.layer, self.readout)?
            .iter()
            .map(|h| Ok((h * &u)?.sum_all()?.to_scalar::<f32>()? as f64))
            .collect()
    }

    /// Adds α·u to the stream after the layer at every position.
    pub fn steering(&self, alpha: f64, dtype: DType) -> Result<Intervention> {
        let add = (self.unit()? * alpha)?.to_dtype(dtype)?;
        Ok(Intervention::new(HookPoint::Block(self.layer, Site::ResidPost), Edit::Add(add)))
    }

    /// Removes the stream's component along u after the layer: x − (x·u) u at every position.
    pub fn ablation(&self) -> Result<Intervention> {
        let u = self.unit()?;
        let edit = DynamicEdit::new([], move |x: &Tensor, _: &_| {
            let u = u.to_dtype(x.dtype())?.to_device(x.device())?;
            let along = x.broadcast_mul(&u)?.sum_keepdim(D::Minus1)?; // (b, s, 1)
            Ok(x.broadcast_sub(&along.broadcast_mul(&u)?)?)
        });
        Ok(Intervention::new(HookPoint::Block(self.layer, Site::ResidPost), Edit::Dynamic(edit)))
    }

    /// The direction as a safetensors-ready map (`direction` (d,), and its layer as a tensor).
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(vec![
            ("direction".into(), self.vector.to_device(&Device::Cpu)?),
            ("layer".into(), Tensor::new(&[self.layer as u32], &Device::Cpu)?),
        ])
    }
}

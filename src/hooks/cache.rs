//! Captured activations of one forward pass, by hook point.

use super::point::HookPoint;
use crate::error::{Error, Result};
use candle_core::Tensor;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    map: BTreeMap<HookPoint, Tensor>,
}

/// Which axes a mean activation averages over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeanOver {
    /// Batch only: one mean per position (per-position mean ablation).
    Batch,
    /// Batch and positions: one mean vector (mean ablation).
    BatchAndPositions,
}

impl ActivationCache {
    pub fn insert(&mut self, p: HookPoint, t: Tensor) {
        self.map.insert(p, t);
    }

    pub fn get(&self, p: HookPoint) -> Result<&Tensor> {
        self.map
            .get(&p)
            .ok_or_else(|| Error::Hook { point: p.to_string(), msg: "was not captured in this cache".into() })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HookPoint, &Tensor)> {
        self.map.iter()
    }

    /// Mean activation at `p`, keeping the averaged axes as size 1 so it broadcasts back.
    pub fn mean(&self, p: HookPoint, over: MeanOver) -> Result<Tensor> {
        let t = self.get(p)?;
        let m = t.mean_keepdim(0)?;
        Ok(match over {
            MeanOver::Batch => m,
            MeanOver::BatchAndPositions => m.mean_keepdim(p.axes().position)?,
        })
    }
}

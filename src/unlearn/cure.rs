//! CURE's update rules (ALGORITHMS.md §7, a documented reconstruction): every module of the
//! partition has its parameter blocks and a rule. Forget-specific modules follow the forget
//! objective's gradient g_f; retain-specific ones the retain loss's g_r (or stay frozen: they
//! are then left out of the plan); task-shared ones take g_f with its component against g_r
//! removed when the two conflict (PCGrad, per module: g_f·g_r < 0 ⇒ g_f − (g_f·g_r/‖g_r‖²)·g_r);
//! every other parameter, and every other entry of a parameter a module shares, stays frozen bit
//! for bit. `analyses::cure::Partition::plan` turns a partition into a plan.

use super::select::Selected;
use crate::error::{Error, Result};
use crate::train::params::Block;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which gradient a module follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Forget,
    Retain,
    /// the forget gradient, its conflict with the retain gradient projected out
    Shared,
    /// PCGrad (Yu et al. 2020): both gradients, each with its conflict with the other projected
    /// out, summed (the baseline that treats the whole model as one task-shared module,
    /// [`CurePlan::pcgrad`])
    Pcgrad,
}

/// One module's parameter blocks and its rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub rule: Rule,
    pub blocks: Vec<Block>,
}

/// The modules an update may touch; everything else stays frozen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurePlan {
    pub groups: Vec<Group>,
}

/// How the task-shared modules' gradients met in one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conflicts {
    /// task-shared modules with a gradient on both sides
    pub shared: usize,
    /// of those, the ones whose forget and retain gradients pointed apart (g_f·g_r < 0)
    pub conflicting: usize,
    /// their mean cosine between g_f and g_r (−cos is the share of ‖g_f‖ the projection removes)
    pub mean_cosine: Option<f64>,
}

impl CurePlan {
    /// PCGrad over every parameter: one module holding the whole model, so that the forget and
    /// retain gradients meet as two whole-model vectors (CURE without its partition).
    pub fn pcgrad(vars: &BTreeMap<String, Var>) -> CurePlan {
        let blocks =
            vars.iter().map(|(name, v)| Block { name: name.clone(), axis: 0, start: 0, len: v.dims()[0] }).collect();
        CurePlan { groups: vec![Group { name: "all parameters".into(), rule: Rule::Pcgrad, blocks }] }
    }

    /// Whether a module follows the retain gradient (retain-specific or task-shared).
    pub fn needs_retain(&self) -> bool {
        self.groups.iter().any(|g| g.rule != Rule::Forget)
    }

    /// Checks the plan against the model's parameters: every block inside its parameter, no
    /// entry in two modules, a forget module present, and retain modules only with retain data.
    pub fn check(&self, vars: &BTreeMap<String, Var>, has_retain: bool) -> Result<()> {
        if !self.groups.iter().any(|g| matches!(g.rule, Rule::Forget | Rule::Pcgrad)) {
            return Err(Error::input(
                "the CURE plan has no forget-specific module: nothing follows the forget objective",
            ));
        }
        if !has_retain && self.needs_retain() {
            return Err(Error::input(
                "CURE's retain-specific and task-shared modules need the retain gradient: give retain data (alpha > 0)",
            ));
        }
        let mut taken: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for g in &self.groups {
            for b in &g.blocks {
                let var = vars.get(&b.name).ok_or_else(|| {
                    Error::input(format!("module {}: the model has no parameter `{}`", g.name, b.name))
                })?;
                let dims = var.dims();
                if dims.len() > 2 || b.axis >= dims.len() || b.start + b.len > dims[b.axis] || b.len == 0 {
                    return Err(Error::input(format!(
                        "module {}: entries {}..{} along axis {} do not fit `{}` of shape {dims:?}",
                        g.name,
                        b.start,
                        b.start + b.len,
                        b.axis,
                        b.name
                    )));
                }
                let mask = taken.entry(b.name.as_str()).or_insert_with(|| vec![0; var.elem_count()]);
                for i in block_entries(dims, b) {
                    if mask[i] != 0 {
                        return Err(Error::input(format!(
                            "module {}: `{}` has entries in two modules",
                            g.name, b.name
                        )));
                    }
                    mask[i] = 1;
                }
            }
        }
        Ok(())
    }

    /// The parameters the plan touches, each with the mask of its entries (none when whole).
    pub fn selection(&self, vars: &BTreeMap<String, Var>) -> Result<Vec<Selected>> {
        let mut masks: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for b in self.groups.iter().flat_map(|g| &g.blocks) {
            let var = &vars[&b.name];
            let mask = masks.entry(b.name.as_str()).or_insert_with(|| vec![0; var.elem_count()]);
            for i in block_entries(var.dims(), b) {
                mask[i] = 1;
            }
        }
        masks
            .into_iter()
            .map(|(name, mask)| {
                let var = vars[name].clone();
                let whole = mask.iter().all(|&m| m == 1);
                let mask = (!whole).then(|| Tensor::from_vec(mask, var.dims(), var.device())).transpose()?;
                Ok(Selected { name: name.to_string(), var, mask })
            })
            .collect()
    }

    /// The update's gradient from the forget gradient `gf` and the retain gradient `gr` (both
    /// already weighted), module by module; zero outside the modules. `gf`'s store is reused.
    pub fn combine(
        &self,
        vars: &BTreeMap<String, Var>,
        gf: GradStore,
        gr: Option<&GradStore>,
    ) -> Result<(GradStore, Conflicts)> {
        let grad = |store: Option<&GradStore>, v: &Var| -> Result<Tensor> {
            Ok(match store.and_then(|s| s.get(v.as_tensor())) {
                Some(g) => g.to_dtype(DType::F32)?,
                None => v.as_tensor().zeros_like()?.to_dtype(DType::F32)?,
            })
        };
        let mut out: BTreeMap<&str, Tensor> = BTreeMap::new();
        let mut conflicts = Conflicts::default();
        let mut cosines = Vec::new();
        for g in &self.groups {
            let parts: Vec<(&Block, Tensor, Tensor)> = g
                .blocks
                .iter()
                .map(|b| {
                    let v = &vars[&b.name];
                    let f = grad(Some(&gf), v)?.narrow(b.axis, b.start, b.len)?;
                    let r = grad(gr, v)?.narrow(b.axis, b.start, b.len)?;
                    Ok((b, f, r))
                })
                .collect::<Result<_>>()?;
            let sum = |f: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| -> Result<f64> {
                parts.iter().try_fold(0.0, |acc, (_, a, b)| Ok(acc + f(a, b)?.sum_all()?.to_scalar::<f32>()? as f64))
            };
            let updates: Vec<Tensor> = match g.rule {
                Rule::Forget => parts.iter().map(|(_, f, _)| f.clone()).collect(),
                Rule::Retain => parts.iter().map(|(_, _, r)| r.clone()).collect(),
                Rule::Shared | Rule::Pcgrad => {
                    let (dot, nr, nf) = (sum(&|a, b| a * b)?, sum(&|_, b| b.sqr())?, sum(&|a, _| a.sqr())?);
                    if nr > 0.0 && nf > 0.0 {
                        conflicts.shared += 1;
                    }
                    let conflict = dot < 0.0 && nr > 0.0 && nf > 0.0;
                    if conflict {
                        conflicts.conflicting += 1;
                        cosines.push(dot / (nf.sqrt() * nr.sqrt()));
                    }
                    // g_f − (g_f·g_r/‖g_r‖²) g_r, and for PCGrad + g_r − (g_f·g_r/‖g_f‖²) g_f
                    let (kf, kr) = if conflict { (dot / nr, dot / nf) } else { (0.0, 0.0) };
                    parts
                        .iter()
                        .map(|(_, f, r)| {
                            let f_side = (f - (r * kf)?)?;
                            Ok(match g.rule {
                                Rule::Pcgrad => (f_side + (r - (f * kr)?)?)?,
                                _ => f_side,
                            })
                        })
                        .collect::<Result<_>>()?
                }
            };
            for ((b, _, _), u) in parts.iter().zip(updates) {
                let v = &vars[&b.name];
                let base = match out.remove(b.name.as_str()) {
                    Some(t) => t,
                    None => v.as_tensor().zeros_like()?.to_dtype(DType::F32)?,
                };
                let ranges: Vec<std::ops::Range<usize>> = v
                    .dims()
                    .iter()
                    .enumerate()
                    .map(|(axis, &n)| if axis == b.axis { b.start..b.start + b.len } else { 0..n })
                    .collect();
                out.insert(b.name.as_str(), base.slice_assign(&ranges, &u.contiguous()?)?);
            }
        }
        conflicts.mean_cosine = (!cosines.is_empty()).then(|| cosines.iter().sum::<f64>() / cosines.len() as f64);
        let mut store = gf;
        for v in vars.values() {
            store.remove(v.as_tensor());
        }
        for (name, t) in out {
            let v = &vars[name];
            store.insert(v.as_tensor(), t.to_dtype(v.dtype())?);
        }
        Ok((store, conflicts))
    }
}

/// The flat indices of a block's entries in a tensor of shape `dims` (1-D or 2-D).
fn block_entries(dims: &[usize], b: &Block) -> Vec<usize> {
    let range = b.start..b.start + b.len;
    match (dims, b.axis) {
        ([_], _) => range.collect(),
        ([_, cols], 0) => range.flat_map(|r| r * cols..(r + 1) * cols).collect(),
        ([rows, cols], _) => (0..*rows).flat_map(|r| range.clone().map(move |c| r * cols + c)).collect(),
        _ => Vec::new(),
    }
}

//! Which parameters an update may touch: `--trainable` patterns over parameter names (`*`
//! matches any run of characters, e.g. `model.layers.3.*`, `*.mlp.*`, `lm_head.weight`), and
//! within a matrix one row or column (`NAME[17,:]`, `NAME[:,17]`: one MLP neuron's input or output
//! weights, as stored). Every other parameter, and every other entry of a sliced one, stays
//! frozen bit for bit: the optimiser never sees an unselected tensor, and a sliced one has its
//! gradient masked and its frozen entries put back after each step (AdamW's weight decay would
//! move them).

use crate::error::{Error, Result};
use crate::hooks::point::glob_match;
use candle_core::{Tensor, Var};
use std::collections::BTreeMap;

/// A parameter an update may touch: all of it, or the entries `mask` (same shape, u8, 1 =
/// trainable) marks.
pub struct Selected {
    pub name: String,
    pub var: Var,
    pub mask: Option<Tensor>,
}

/// One pattern: a name glob and, optionally, a row or a column.
struct Pattern<'a> {
    glob: &'a str,
    slice: Option<(usize, usize)>, // (axis, index)
}

fn parse(p: &str) -> Result<Pattern<'_>> {
    let Some(open) = p.find('[') else { return Ok(Pattern { glob: p, slice: None }) };
    let bad = || {
        Error::input(format!(
            "trainable pattern `{p}`: a slice is `NAME[i,:]` (row i) or `NAME[:,j]` (column j) of a matrix"
        ))
    };
    let inner = p[open + 1..].strip_suffix(']').ok_or_else(bad)?;
    let (a, b) = inner.split_once(',').ok_or_else(bad)?;
    let slice = match (a.trim(), b.trim()) {
        (":", j) => (1, j.parse().map_err(|_| bad())?),
        (i, ":") => (0, i.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(Pattern { glob: &p[..open], slice: Some(slice) })
}

/// The parameters whose names match any of `patterns`, in name order, each with its mask when
/// only rows or columns of it are selected; no patterns: all of them, whole. A pattern that
/// matches nothing, or slices outside a matched matrix, is an error naming it.
pub fn select_trainable(vars: &BTreeMap<String, Var>, patterns: &[String]) -> Result<Vec<Selected>> {
    if patterns.is_empty() {
        return Ok(vars.iter().map(|(n, v)| Selected { name: n.clone(), var: v.clone(), mask: None }).collect());
    }
    let parsed: Vec<Pattern> = patterns.iter().map(|p| parse(p)).collect::<Result<_>>()?;
    for (p, raw) in parsed.iter().zip(patterns) {
        if !vars.keys().any(|n| glob_match(p.glob, n)) {
            let some: Vec<&str> = vars.keys().take(6).map(String::as_str).collect();
            return Err(Error::input(format!(
                "trainable pattern `{raw}` matches no parameter (they are named like {}, …)",
                some.join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for (name, var) in vars {
        let hits: Vec<(&Pattern, &String)> =
            parsed.iter().zip(patterns).filter(|(p, _)| glob_match(p.glob, name)).collect();
        if hits.is_empty() {
            continue;
        }
        if hits.iter().any(|(p, _)| p.slice.is_none()) {
            out.push(Selected { name: name.clone(), var: var.clone(), mask: None });
            continue;
        }
        let dims = var.dims().to_vec();
        let mut mask = vec![0u8; var.elem_count()];
        for (p, raw) in hits {
            let (axis, index) = p.slice.expect("sliced patterns only here");
            if dims.len() != 2 || index >= dims[axis] {
                return Err(Error::input(format!(
                    "trainable pattern `{raw}`: {name} has shape {dims:?}, so it has no {} {index}",
                    if axis == 0 { "row" } else { "column" }
                )));
            }
            for k in 0..dims[1 - axis] {
                let (r, c) = if axis == 0 { (index, k) } else { (k, index) };
                mask[r * dims[1] + c] = 1;
            }
        }
        let mask = Tensor::from_vec(mask, dims.as_slice(), var.device())?;
        out.push(Selected { name: name.clone(), var: var.clone(), mask: Some(mask) });
    }
    Ok(out)
}

/// The whole parameters [`select_trainable`] selects, ignoring slices (for callers that
/// update whole tensors).
pub fn select_vars(vars: &BTreeMap<String, Var>, patterns: &[String]) -> Result<Vec<(String, Var)>> {
    Ok(select_trainable(vars, patterns)?.into_iter().map(|s| (s.name, s.var)).collect())
}

impl Selected {
    /// The gradient with the frozen entries zeroed (unchanged for a whole parameter).
    pub fn masked_grad(&self, grad: &Tensor) -> Result<Tensor> {
        match &self.mask {
            Some(m) => Ok((grad * m.to_dtype(grad.dtype())?)?),
            None => Ok(grad.clone()),
        }
    }

    /// Puts the frozen entries back to `frozen` (their values before the run), bit for bit.
    pub fn restore_frozen(&self, frozen: &Tensor) -> Result<()> {
        if let Some(m) = &self.mask {
            self.var.set(&m.where_cond(self.var.as_tensor(), frozen)?)?;
        }
        Ok(())
    }
}

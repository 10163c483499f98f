//! Which parameters an update may touch: `--trainable` patterns over parameter names (`*`
//! matches any run of characters, e.g. `model.layers.3.*`, `*.mlp.*`, `lm_head.weight`). Every
//! other parameter stays frozen: the optimiser never sees it, so it is bit-identical after a run.

use crate::error::{Error, Result};
use crate::hooks::point::glob_match;
use candle_core::Var;
use std::collections::BTreeMap;

/// The parameters whose names match any of `patterns`, in name order; no patterns: all of them.
/// A pattern that matches nothing is an error naming it and some of the names there are.
pub fn select_vars(vars: &BTreeMap<String, Var>, patterns: &[String]) -> Result<Vec<(String, Var)>> {
    if patterns.is_empty() {
        return Ok(vars.iter().map(|(n, v)| (n.clone(), v.clone())).collect());
    }
    for p in patterns {
        if !vars.keys().any(|n| glob_match(p, n)) {
            let some: Vec<&str> = vars.keys().take(6).map(String::as_str).collect();
            return Err(Error::input(format!(
                "trainable pattern `{p}` matches no parameter (they are named like {}, …)",
                some.join(", ")
            )));
        }
    }
    Ok(vars
        .iter()
        .filter(|(n, _)| patterns.iter().any(|p| glob_match(p, n)))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect())
}

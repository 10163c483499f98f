//! CURE's partition (ALGORITHMS.md §7, a documented reconstruction): node-level attribution of
//! every head and MLP on the forget set and on the retain set, each normalised to [0, 1], and
//! each module sorted into forget-specific, retain-specific, task-shared or outside the core
//! circuit. Every choice the paper does not publish is a setting here:
//! - the score: attribution patching's node score Σ (z' − z)·∂L/∂z at the module's output, with L
//!   the answer's sequence probability and z' the zero ablation (as CUD attributes), averaged
//!   over the set, its magnitude taken;
//! - normalisation: divided by the set's largest magnitude;
//! - "high" on a set: a normalised score of at least `threshold`, or (with `top_k`) a place among
//!   the set's k highest;
//! - the core circuit: the modules high on either set; forget-specific: high on the forget set
//!   alone; retain-specific: on the retain set alone; task-shared: on both;
//! - or, with `contrast` (a significance level), a core module is specific only when its forget
//!   and retain samples' scores differ: a two-sided permutation test of the difference of their
//!   means, Bonferroni-corrected over the core; specific to the set with the larger score, else
//!   task-shared. Two samples of one task give nearly the same profile, and a threshold alone
//!   turns its small differences into "specific" modules.

use super::stats::permutation_p;
use crate::attribution::{attribute, Ablation, AttributionConfig, Method, Metric};
use crate::data::Example;
use crate::error::{Error, Result};
use crate::graph::{GraphShape, Writer};
use crate::model::config::ModelConfig;
use crate::model::Decoder;
use crate::progress::Progress;
use crate::train::params::{Block, Trainable};
use crate::unlearn::cure::{CurePlan, Group, Rule};
use serde::{Deserialize, Serialize};

/// How modules are scored and sorted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CureSettings {
    /// `eap`, `eap-ig-inputs` or `eap-ig-activations` (see [`Method::from_name`])
    pub method: String,
    /// interpolation steps of the EAP-IG methods
    pub steps: usize,
    /// a normalised score this high counts as high on its set
    pub threshold: f64,
    /// instead: the k highest of each set count as high
    pub top_k: Option<usize>,
    pub batch: usize,
    /// a core module is specific only if its two sets' scores differ at this level (see above)
    pub contrast: Option<f64>,
    /// relabellings of the permutation test
    pub permutations: usize,
}

impl Default for CureSettings {
    fn default() -> Self {
        CureSettings {
            method: "eap-ig-inputs".into(),
            steps: 5,
            threshold: 0.2,
            top_k: None,
            batch: 8,
            contrast: None,
            permutations: 1999,
        }
    }
}

impl CureSettings {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::input(format!(
                "the threshold {} is outside [0, 1] (scores are normalised to [0, 1])",
                self.threshold
            )));
        }
        if self.top_k == Some(0) || self.batch == 0 || self.permutations == 0 {
            return Err(Error::input("top-k, the batch and the permutations must be at least 1"));
        }
        if let Some(a) = self.contrast.filter(|a| !(*a > 0.0 && *a < 1.0)) {
            return Err(Error::input(format!("the contrast's significance level {a} is outside (0, 1)")));
        }
        let m = self.attribution_method()?;
        if matches!(m, Method::Exact | Method::CleanCorrupted) {
            return Err(Error::input(format!(
                "CURE scores modules with a gradient method (eap, eap-ig-inputs, eap-ig-activations), not {}",
                m.name()
            )));
        }
        Ok(())
    }

    fn attribution_method(&self) -> Result<Method> {
        Method::from_name(&self.method, self.steps)
    }
}

/// Where a module goes, and so which update rule it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    ForgetSpecific,
    RetainSpecific,
    TaskShared,
    Outside,
}

impl Category {
    pub const ALL: [Category; 4] =
        [Category::ForgetSpecific, Category::RetainSpecific, Category::TaskShared, Category::Outside];

    pub fn name(self) -> &'static str {
        match self {
            Category::ForgetSpecific => "forget-specific",
            Category::RetainSpecific => "retain-specific",
            Category::TaskShared => "task-shared",
            Category::Outside => "outside",
        }
    }
}

/// One head or MLP with its scores and category.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Module {
    /// `a{layer}.h{head}` or `m{layer}`, the graph's node names
    pub name: String,
    pub layer: usize,
    /// the head, or None for the MLP
    pub head: Option<usize>,
    /// normalised to [0, 1]
    pub forget: f64,
    pub retain: f64,
    /// the mean node scores before normalisation (signed)
    pub forget_raw: f64,
    pub retain_raw: f64,
    /// with a contrast: the permutation p-value of the two sets' difference (core modules only)
    pub p_value: Option<f64>,
    pub category: Category,
}

/// What a partition was made for: a partition applies only to a model of this shape and these
/// weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub d_mlp: usize,
    pub vocab: usize,
    /// FNV-1a of the unembedding's f32 values, in hex
    pub unembedding_hash: String,
}

impl ModelIdentity {
    pub fn of(dec: &Decoder) -> Result<Self> {
        let cfg: &ModelConfig = &dec.cfg;
        let values: Vec<f32> = dec.unembed.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        let mut h: u64 = 0xcbf29ce484222325;
        for v in values {
            for b in v.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        Ok(ModelIdentity {
            n_layers: cfg.n_layers,
            n_heads: cfg.n_heads,
            d_model: cfg.d_model,
            d_mlp: cfg.d_mlp,
            vocab: cfg.vocab_size,
            unembedding_hash: format!("{h:016x}"),
        })
    }
}

/// A model's modules sorted for CURE.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Partition {
    pub model: ModelIdentity,
    pub settings: CureSettings,
    pub forget_samples: usize,
    pub retain_samples: usize,
    /// every head and MLP, layer by layer (heads, then the MLP)
    pub modules: Vec<Module>,
}

impl Partition {
    /// A partition file as `circuitscope cure` writes it.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::input(format!("{}: not a CURE partition (as `circuitscope cure` writes it): {e}", path.display()))
        })
    }

    /// The update plan for `model` (ALGORITHMS.md §7's rules, [`crate::unlearn::cure`]): each
    /// head's query and output blocks and each MLP by its category (retain-specific modules
    /// follow the retain loss, or are left frozen without `train_retain_specific`); a key/value
    /// head, which grouped-query attention shares among several heads, follows its heads' rule
    /// where the planned ones agree, else the task-shared one.
    pub fn plan(&self, model: &Trainable, train_retain_specific: bool) -> Result<CurePlan> {
        let rule = |c: Category| match c {
            Category::ForgetSpecific => Some(Rule::Forget),
            Category::RetainSpecific => train_retain_specific.then_some(Rule::Retain),
            Category::TaskShared => Some(Rule::Shared),
            Category::Outside => None,
        };
        let mut groups = Vec::new();
        // per (layer, key/value head): its blocks and the rules of its planned heads
        let mut kv: std::collections::BTreeMap<(usize, usize), (Vec<Block>, Vec<Rule>)> = Default::default();
        let group = model.cfg.n_heads / model.cfg.n_kv_heads;
        for m in &self.modules {
            let Some(r) = rule(m.category) else { continue };
            let blocks = match m.head {
                Some(h) => {
                    let (own, shared) = model.head_blocks(m.layer, h)?;
                    if !shared.is_empty() {
                        kv.entry((m.layer, h / group)).or_insert_with(|| (shared, Vec::new())).1.push(r);
                    }
                    own
                }
                None => model.mlp_blocks(m.layer)?,
            };
            groups.push(Group { name: m.name.clone(), rule: r, blocks });
        }
        for ((layer, g), (blocks, rules)) in kv {
            let r = if rules.iter().all(|&x| x == rules[0]) { rules[0] } else { Rule::Shared };
            groups.push(Group { name: format!("a{layer}.kv{g}"), rule: r, blocks });
        }
        Ok(CurePlan { groups })
    }

    pub fn count(&self, c: Category) -> usize {
        self.modules.iter().filter(|m| m.category == c).count()
    }

    /// An error unless this partition was made for `dec` and can drive an update (it has a
    /// forget-specific module).
    pub fn check_for(&self, dec: &Decoder, what: &str) -> Result<()> {
        let here = ModelIdentity::of(dec)?;
        if here != self.model {
            let (a, b) = (&self.model, &here);
            let shape = |m: &ModelIdentity| {
                format!(
                    "{} layers x {} heads, width {}, MLP {}, vocabulary {}",
                    m.n_layers, m.n_heads, m.d_model, m.d_mlp, m.vocab
                )
            };
            return Err(Error::input(if shape(a) == shape(b) {
                format!("{what} was made for another model of the same shape (its unembedding differs)")
            } else {
                format!("{what} was made for a model of {}, this one has {}", shape(a), shape(b))
            }));
        }
        if self.count(Category::ForgetSpecific) == 0 {
            return Err(Error::input(format!(
                "{what} has no forget-specific module: nothing would follow the forget objective (lower the threshold or \
                 raise top-k)"
            )));
        }
        Ok(())
    }
}

/// Every module's node score (heads and MLPs, as [`GraphShape`] orders writers, the input left
/// out) on a set.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleScores {
    /// the mean over the set
    pub mean: Vec<f64>,
    /// one vector per sample
    pub per_sample: Vec<Vec<f64>>,
}

/// The node scores of every module over `examples`, per sample and their mean.
pub fn module_scores(
    dec: &Decoder,
    examples: &[Example],
    s: &CureSettings,
    progress: &dyn Progress,
) -> Result<ModuleScores> {
    s.validate()?;
    if examples.is_empty() {
        return Err(Error::input("CURE needs forget and retain samples: a set is empty"));
    }
    let cfg = AttributionConfig {
        method: s.attribution_method()?,
        metric: Metric::SeqProb,
        ablation: Ablation::Zero,
        batch_size: s.batch,
        per_sample: true,
        ..AttributionConfig::default()
    };
    let a = attribute(dec, examples, &cfg, progress)?;
    let none = || Error::input("the attribution method gives no node scores");
    let modules = |v: &[f32]| -> Vec<f64> { v.iter().skip(1).map(|&x| x as f64).collect() };
    Ok(ModuleScores {
        mean: modules(&a.node_scores.ok_or_else(none)?),
        per_sample: a.per_sample_nodes.ok_or_else(none)?.iter().map(|v| modules(v)).collect(),
    })
}

/// Sorts modules by their forget and retain scores.
pub fn partition(
    dec: &Decoder,
    forget_scores: &ModuleScores,
    retain_scores: &ModuleScores,
    s: &CureSettings,
) -> Result<Partition> {
    s.validate()?;
    let (forget, retain) = (&forget_scores.mean[..], &retain_scores.mean[..]);
    let shape = GraphShape::of(&dec.cfg);
    let n = shape.n_fwd() - 1;
    if forget.len() != n || retain.len() != n {
        return Err(Error::input(format!(
            "module scores: {} forget and {} retain, the model has {n} modules",
            forget.len(),
            retain.len()
        )));
    }
    if let Some(i) = forget.iter().chain(retain).position(|x| !x.is_finite()) {
        return Err(Error::input(format!("module score {} is not finite", i % n)));
    }
    let per_sample = [forget_scores, retain_scores];
    if per_sample.iter().any(|m| m.per_sample.iter().any(|v| v.len() != n)) {
        return Err(Error::input(format!("a sample's module scores do not number the model's {n}")));
    }
    let (f, r) = (normalised(forget), normalised(retain));
    let (hf, hr) = (high(&f, s), high(&r, s));
    let core = (0..n).filter(|&i| hf[i] || hr[i]).count();
    let p_values: Vec<Option<f64>> = (0..n)
        .map(|i| {
            if s.contrast.is_none() || !(hf[i] || hr[i]) {
                return None;
            }
            let column = |m: &ModuleScores| -> Vec<f64> { m.per_sample.iter().map(|v| v[i]).collect() };
            let (a, b) = (column(forget_scores), column(retain_scores));
            (a.len() > 1 && b.len() > 1).then(|| permutation_p(&a, &b, s.permutations, i as u64))
        })
        .collect();
    let modules = (0..n)
        .map(|i| {
            let (layer, head) = match shape.writer(i + 1) {
                Writer::Head { layer, head } => (layer, Some(head)),
                Writer::Mlp { layer } => (layer, None),
                Writer::Input => unreachable!("the input is left out"),
            };
            let category = match (s.contrast, hf[i] || hr[i]) {
                (_, false) => Category::Outside,
                // specific only where the sets differ, Bonferroni over the core
                (Some(alpha), true) => match p_values[i] {
                    Some(p) if p < alpha / core as f64 => {
                        if f[i] > r[i] {
                            Category::ForgetSpecific
                        } else {
                            Category::RetainSpecific
                        }
                    }
                    _ => Category::TaskShared,
                },
                (None, true) => match (hf[i], hr[i]) {
                    (true, false) => Category::ForgetSpecific,
                    (false, true) => Category::RetainSpecific,
                    _ => Category::TaskShared,
                },
            };
            Module {
                name: shape.writer(i + 1).name(),
                layer,
                head,
                forget: f[i],
                retain: r[i],
                forget_raw: forget[i],
                retain_raw: retain[i],
                p_value: p_values[i],
                category,
            }
        })
        .collect();
    Ok(Partition {
        model: ModelIdentity::of(dec)?,
        settings: s.clone(),
        forget_samples: forget_scores.per_sample.len(),
        retain_samples: retain_scores.per_sample.len(),
        modules,
    })
}

/// |x| / max |x| (all zero when every score is 0).
fn normalised(x: &[f64]) -> Vec<f64> {
    let max = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    x.iter().map(|v| if max > 0.0 { v.abs() / max } else { 0.0 }).collect()
}

/// Which normalised scores count as high: at least the threshold, or among the k highest (ties
/// by lower index). A score of 0 is never high.
fn high(x: &[f64], s: &CureSettings) -> Vec<bool> {
    match s.top_k {
        Some(k) => {
            let mut order: Vec<usize> = (0..x.len()).collect();
            order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
            let mut out = vec![false; x.len()];
            for &i in order.iter().take(k) {
                out[i] = x[i] > 0.0;
            }
            out
        }
        None => x.iter().map(|&v| v > 0.0 && v >= s.threshold).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_is_a_threshold_or_a_rank_and_never_zero() {
        let s = CureSettings { threshold: 0.5, ..Default::default() };
        assert_eq!(high(&[1.0, 0.5, 0.49, 0.0], &s), [true, true, false, false]);
        let s = CureSettings { top_k: Some(3), ..Default::default() };
        assert_eq!(high(&[0.2, 1.0, 0.0, 0.0], &s), [true, true, false, false]);
        assert_eq!(normalised(&[-2.0, 1.0, 0.0]), [1.0, 0.5, 0.0]);
        assert_eq!(normalised(&[0.0, 0.0]), [0.0, 0.0]);
    }
}

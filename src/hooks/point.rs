//! Named hook points, TransformerLens names and meanings. This is the one place they are
//! documented; `model::decoder` fires them in this order.
//!
//! Shapes: b = batch, s = sequence, d = d_model, H = query heads, dh = head dim, f = d_mlp.
//!
//! | name | shape | meaning |
//! |---|---|---|
//! | `hook_embed` | (b,s,d) | token embeddings as they enter the stream (Gemma: already × √d) |
//! | `hook_pos_embed` | (b,s,d) | learned position embeddings (GPT-2 family only) |
//! | `blocks.{l}.hook_resid_pre` | (b,s,d) | residual stream entering layer l |
//! | `blocks.{l}.hook_q_input` | (b,s,H,d) | per head: the stream entering that head's query path, before the norm |
//! | `blocks.{l}.hook_k_input` | (b,s,H,d) | same for keys (per QUERY head under grouped-query attention) |
//! | `blocks.{l}.hook_v_input` | (b,s,H,d) | same for values (per QUERY head) |
//! | `blocks.{l}.attn.hook_q` | (b,s,H,dh) | queries, before the rotary embedding |
//! | `blocks.{l}.attn.hook_k` | (b,s,H,dh) | keys, before rotary, one per query head |
//! | `blocks.{l}.attn.hook_v` | (b,s,H,dh) | values, one per query head |
//! | `blocks.{l}.attn.hook_attn_scores` | (b,H,s,s) | scaled scores, masked entries −inf |
//! | `blocks.{l}.attn.hook_pattern` | (b,H,s,s) | attention probabilities (query, key) |
//! | `blocks.{l}.attn.hook_z` | (b,s,H,dh) | pattern-weighted values |
//! | `blocks.{l}.attn.hook_result` | (b,s,H,d) | each head's own write: z_h · W_O\[h\] (no output bias) |
//! | `blocks.{l}.hook_attn_out` | (b,s,d) | attention output (Σ heads + output bias) |
//! | `blocks.{l}.hook_resid_mid` | (b,s,d) | stream after attention (sequential-residual models only) |
//! | `blocks.{l}.hook_mlp_in` | (b,s,d) | stream entering the MLP, before its norm |
//! | `blocks.{l}.mlp.hook_pre` | (b,s,f) | MLP pre-activation (gated MLPs: the gate projection) |
//! | `blocks.{l}.mlp.hook_pre_linear` | (b,s,f) | gated MLPs only: the up projection |
//! | `blocks.{l}.mlp.hook_post` | (b,s,f) | input of the MLP output projection |
//! | `blocks.{l}.hook_mlp_out` | (b,s,d) | MLP output |
//! | `blocks.{l}.hook_resid_post` | (b,s,d) | residual stream leaving layer l |
//! | `ln_final.hook_normalized` | (b,s,d) | final-norm output, the input of the unembedding |

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// What a per-layer hook point taps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    ResidPre,
    QInput,
    KInput,
    VInput,
    Q,
    K,
    V,
    AttnScores,
    Pattern,
    Z,
    Result,
    AttnOut,
    ResidMid,
    MlpIn,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    ResidPost,
}

impl Site {
    /// In the order the decoder fires them.
    pub const ALL: [Site; 19] = [
        Site::ResidPre,
        Site::QInput,
        Site::KInput,
        Site::VInput,
        Site::Q,
        Site::K,
        Site::V,
        Site::AttnScores,
        Site::Pattern,
        Site::Z,
        Site::Result,
        Site::AttnOut,
        Site::ResidMid,
        Site::MlpIn,
        Site::MlpPre,
        Site::MlpPreLinear,
        Site::MlpPost,
        Site::MlpOut,
        Site::ResidPost,
    ];

    /// The name after `blocks.{l}.`.
    pub fn suffix(self) -> &'static str {
        match self {
            Site::ResidPre => "hook_resid_pre",
            Site::QInput => "hook_q_input",
            Site::KInput => "hook_k_input",
            Site::VInput => "hook_v_input",
            Site::Q => "attn.hook_q",
            Site::K => "attn.hook_k",
            Site::V => "attn.hook_v",
            Site::AttnScores => "attn.hook_attn_scores",
            Site::Pattern => "attn.hook_pattern",
            Site::Z => "attn.hook_z",
            Site::Result => "attn.hook_result",
            Site::AttnOut => "hook_attn_out",
            Site::ResidMid => "hook_resid_mid",
            Site::MlpIn => "hook_mlp_in",
            Site::MlpPre => "mlp.hook_pre",
            Site::MlpPreLinear => "mlp.hook_pre_linear",
            Site::MlpPost => "mlp.hook_post",
            Site::MlpOut => "hook_mlp_out",
            Site::ResidPost => "hook_resid_post",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A named place in the forward pass where activations can be read, edited or differentiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    Embed,
    PosEmbed,
    Block(usize, Site),
    LnFinal,
}

/// Where the head and position axes of a hook point's activation are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axes {
    pub position: usize,
    pub head: Option<usize>,
}

impl HookPoint {
    pub fn block(layer: usize, site: Site) -> Self {
        HookPoint::Block(layer, site)
    }

    pub fn layer(&self) -> Option<usize> {
        match self {
            HookPoint::Block(l, _) => Some(*l),
            _ => None,
        }
    }

    pub fn axes(&self) -> Axes {
        match self {
            HookPoint::Block(_, Site::AttnScores | Site::Pattern) => Axes { position: 2, head: Some(1) },
            HookPoint::Block(
                _,
                Site::QInput | Site::KInput | Site::VInput | Site::Q | Site::K | Site::V | Site::Z | Site::Result,
            ) => Axes { position: 1, head: Some(2) },
            _ => Axes { position: 1, head: None },
        }
    }

    /// Every hook point of a model with these properties, in firing order.
    pub fn all(n_layers: usize, learned_positions: bool, parallel_residual: bool, gated_mlp: bool) -> Vec<HookPoint> {
        let mut v = vec![HookPoint::Embed];
        if learned_positions {
            v.push(HookPoint::PosEmbed);
        }
        for l in 0..n_layers {
            for site in Site::ALL {
                if (site == Site::ResidMid && parallel_residual) || (site == Site::MlpPreLinear && !gated_mlp) {
                    continue;
                }
                v.push(HookPoint::Block(l, site));
            }
        }
        v.push(HookPoint::LnFinal);
        v
    }

    /// Parses a name without checking it against a model; see `HookPoint::parse_for`.
    pub fn parse(name: &str) -> Result<HookPoint> {
        name.parse()
    }

    /// Parses a name and checks it exists in `valid`, suggesting the nearest valid name if not
    /// (or saying how many layers there are, for a block beyond the last one).
    pub fn parse_for(name: &str, valid: &[HookPoint]) -> Result<HookPoint> {
        let n_layers = valid.iter().filter_map(HookPoint::layer).max().map_or(0, |l| l + 1);
        match name.parse::<HookPoint>() {
            Ok(p) if valid.contains(&p) => Ok(p),
            Ok(HookPoint::Block(layer, _)) if layer >= n_layers => Err(Error::Hook {
                point: name.to_string(),
                msg: format!(
                    "layer {layer} is out of range: this model has {n_layers} layers (0 to {})",
                    n_layers.saturating_sub(1)
                ),
            }),
            _ => Err(Error::UnknownHook {
                name: name.to_string(),
                suggestion: nearest(name, valid.iter().map(|p| p.to_string())),
            }),
        }
    }

    /// The valid points whose names match `pattern`, where `*` matches any run of characters
    /// (e.g. `blocks.*.attn.hook_pattern`). A pattern without `*` must name one valid point.
    pub fn matching(pattern: &str, valid: &[HookPoint]) -> Result<Vec<HookPoint>> {
        if !pattern.contains('*') {
            return Ok(vec![HookPoint::parse_for(pattern, valid)?]);
        }
        let found: Vec<HookPoint> = valid.iter().copied().filter(|p| glob_match(pattern, &p.to_string())).collect();
        if found.is_empty() {
            return Err(Error::UnknownHook {
                name: pattern.to_string(),
                suggestion: nearest(&pattern.replace('*', "0"), valid.iter().map(|p| p.to_string())),
            });
        }
        Ok(found)
    }
}

/// `*` matches any (possibly empty) run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => f.write_str("hook_embed"),
            HookPoint::PosEmbed => f.write_str("hook_pos_embed"),
            HookPoint::LnFinal => f.write_str("ln_final.hook_normalized"),
            HookPoint::Block(l, s) => write!(f, "blocks.{l}.{}", s.suffix()),
        }
    }
}

impl FromStr for HookPoint {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        let unknown = || Error::UnknownHook { name: name.to_string(), suggestion: None };
        match name {
            "hook_embed" => return Ok(HookPoint::Embed),
            "hook_pos_embed" => return Ok(HookPoint::PosEmbed),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            _ => {}
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
        let layer: usize = layer.parse().map_err(|_| unknown())?;
        let site = Site::ALL.into_iter().find(|s| s.suffix() == suffix).ok_or_else(unknown)?;
        Ok(HookPoint::Block(layer, site))
    }
}

/// A set of hook points of one model as a bit mask per layer: membership is a shift and an and.
#[derive(Clone, Debug, Default)]
pub struct PointSet {
    globals: u8,
    layers: Vec<u32>,
}

impl PointSet {
    pub fn insert(&mut self, p: HookPoint) {
        match p {
            HookPoint::Embed => self.globals |= 1,
            HookPoint::PosEmbed => self.globals |= 2,
            HookPoint::LnFinal => self.globals |= 4,
            HookPoint::Block(l, s) => {
                if self.layers.len() <= l {
                    self.layers.resize(l + 1, 0);
                }
                self.layers[l] |= s.bit();
            }
        }
    }

    pub fn contains(&self, p: HookPoint) -> bool {
        match p {
            HookPoint::Embed => self.globals & 1 != 0,
            HookPoint::PosEmbed => self.globals & 2 != 0,
            HookPoint::LnFinal => self.globals & 4 != 0,
            HookPoint::Block(l, s) => self.layers.get(l).is_some_and(|m| m & s.bit() != 0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.globals == 0 && self.layers.iter().all(|m| *m == 0)
    }
}

/// The candidate with the smallest edit distance to `name`, if it is reasonably close.
pub fn nearest(name: &str, candidates: impl IntoIterator<Item = String>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, &c), c))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        .filter(|(d, c)| *d <= c.len().max(name.len()) / 2)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in HookPoint::all(3, true, false, true) {
            assert_eq!(p.to_string().parse::<HookPoint>().unwrap(), p);
        }
    }

    #[test]
    fn unknown_name_suggests_nearest() {
        let valid = HookPoint::all(2, false, false, false);
        let err = HookPoint::parse_for("blocks.1.attn.hook_patern", &valid).unwrap_err();
        assert!(err.to_string().contains("blocks.1.attn.hook_pattern"), "{err}");
        let err = HookPoint::parse_for("blocks.7.hook_resid_pre", &valid).unwrap_err();
        assert!(err.to_string().contains("layer 7 is out of range: this model has 2 layers"), "{err}");
    }

    #[test]
    fn glob_patterns_select_points() {
        let valid = HookPoint::all(3, false, false, true);
        let pats = HookPoint::matching("blocks.*.attn.hook_pattern", &valid).unwrap();
        assert_eq!(pats.len(), 3);
        assert_eq!(HookPoint::matching("blocks.1.*", &valid).unwrap().len(), 19);
        assert_eq!(HookPoint::matching("*hook_resid_*", &valid).unwrap().len(), 9);
        assert_eq!(HookPoint::matching("hook_embed", &valid).unwrap(), vec![HookPoint::Embed]);
        let err = HookPoint::matching("blocks.*.attn.hook_patern", &valid).unwrap_err();
        assert!(err.to_string().contains("hook_pattern"), "{err}");
        assert!(!glob_match("a*b*c", "acb"));
        assert!(glob_match("a*b*c", "axbyc"));
        // a name without `*` matches itself only (`--trainable lm_head.weight`)
        assert!(glob_match("lm_head.weight", "lm_head.weight"));
        assert!(!glob_match("lm_head.weight", "lm_head.weight.x") && !glob_match("a", "aa"));
    }

    #[test]
    fn point_set_membership() {
        let mut s = PointSet::default();
        assert!(s.is_empty());
        s.insert(HookPoint::Block(4, Site::Z));
        s.insert(HookPoint::LnFinal);
        assert!(s.contains(HookPoint::Block(4, Site::Z)));
        assert!(!s.contains(HookPoint::Block(4, Site::Q)));
        assert!(!s.contains(HookPoint::Block(9, Site::Z)));
        assert!(s.contains(HookPoint::LnFinal));
        assert!(!s.contains(HookPoint::Embed));
    }
}

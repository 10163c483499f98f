//! What a caller asks of one forward pass: which activations to capture, which to edit, and
//! where to put gradient taps.

use super::cache::ActivationCache;
use super::point::HookPoint;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use std::fmt;
use std::sync::Arc;

/// The function of an [`Edit::Dynamic`]: (activation, cache of this run so far) → new activation.
pub type EditFn = Arc<dyn Fn(&Tensor, &ActivationCache) -> Result<Tensor> + Send + Sync>;

/// An edit computed during the forward pass from activations captured EARLIER in the same pass
/// (e.g. "add z'_u − z_u" where z_u is writer u's output in this very run).
///
/// `reads` names the hook points the function reads: the run captures them (they also appear in
/// the returned cache) and refuses a read that does not fire before the edited point, so the
/// function always sees this run's values, never a stale or missing one.
#[derive(Clone)]
pub struct DynamicEdit {
    pub reads: Vec<HookPoint>,
    pub f: EditFn,
}

impl DynamicEdit {
    pub fn new(
        reads: impl IntoIterator<Item = HookPoint>,
        f: impl Fn(&Tensor, &ActivationCache) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        DynamicEdit { reads: reads.into_iter().collect(), f: Arc::new(f) }
    }
}

impl fmt::Debug for DynamicEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reads: Vec<String> = self.reads.iter().map(|p| p.to_string()).collect();
        write!(f, "DynamicEdit {{ reads: {reads:?} }}")
    }
}

/// How an intervention changes the activation at its hook point.
///
/// Static edits (`Replace`, `Add`, `Zero`, `Scale`, `Mean`) are fixed before the pass;
/// `Dynamic` computes the new activation during the pass from what the pass captured so far.
/// Position and head selections apply to every kind alike: unselected entries keep their value.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Replace with this tensor (broadcast to the activation's shape).
    Replace(Tensor),
    /// Add this tensor (broadcast to the activation's shape).
    Add(Tensor),
    /// Set to zero.
    Zero,
    /// Multiply by a constant.
    Scale(f64),
    /// Replace with a mean activation, e.g. from `ActivationCache::mean` over a reference set.
    Mean(Tensor),
    /// Replace with `f(x, cache)`, where `cache` holds this run's captures made before this point
    /// (at least `reads`); the result must have the activation's shape.
    Dynamic(DynamicEdit),
    /// Repeat the batch n times, copy c in rows c·b..(c+1)·b (as `Tensor::repeat`): x (b, …) →
    /// (n·b, …), and every later point sees n·b rows. For a pass over n variants that share
    /// everything before this point: the shared part runs once, and the gradients of points before
    /// it come back summed over the copies. On the residual stream, in `Decoder::forward` only.
    Repeat(usize),
}

/// An edit at one hook point, optionally restricted to some positions and/or heads.
#[derive(Clone, Debug)]
pub struct Intervention {
    pub point: HookPoint,
    pub edit: Edit,
    /// Sequence positions to edit (query positions for `attn_scores`/`pattern`); `None` = all.
    pub positions: Option<Vec<usize>>,
    /// Heads to edit, for per-head hook points; `None` = all.
    pub heads: Option<Vec<usize>>,
}

impl Intervention {
    pub fn new(point: HookPoint, edit: Edit) -> Self {
        Intervention { point, edit, positions: None, heads: None }
    }

    /// Patches `point` from another run's cache (activation patching).
    pub fn patch_from(point: HookPoint, cache: &ActivationCache) -> Result<Self> {
        Ok(Self::new(point, Edit::Replace(cache.get(point)?.clone())))
    }

    /// An edit computed during the pass from the activations at `reads`, captured earlier in the
    /// same pass (see [`DynamicEdit`]).
    pub fn dynamic(
        point: HookPoint,
        reads: impl IntoIterator<Item = HookPoint>,
        f: impl Fn(&Tensor, &ActivationCache) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        Self::new(point, Edit::Dynamic(DynamicEdit::new(reads, f)))
    }

    pub fn at_positions(mut self, positions: Vec<usize>) -> Self {
        self.positions = Some(positions);
        self
    }

    pub fn at_heads(mut self, heads: Vec<usize>) -> Self {
        self.heads = Some(heads);
        self
    }

    /// Applies the edit to `x`, the activation at `self.point`; `cache` holds the run's captures
    /// so far (only [`Edit::Dynamic`] reads it).
    pub fn apply(&self, x: &Tensor, cache: &ActivationCache) -> Result<Tensor> {
        let hook_err = |msg: String| Error::Hook { point: self.point.to_string(), msg };
        let fit = |t: &Tensor, what: &str| -> Result<Tensor> {
            // An edit made on another device (a CPU cache applied to a GPU model) moves to x's.
            t.to_dtype(x.dtype())?.to_device(x.device())?.broadcast_as(x.shape()).map_err(|_| {
                hook_err(format!(
                    "{what} tensor of shape {:?} does not broadcast to the activation's shape {:?}",
                    t.dims(),
                    x.dims()
                ))
            })
        };
        let edited = match &self.edit {
            Edit::Replace(t) => fit(t, "replacement")?,
            Edit::Mean(t) => fit(t, "mean")?,
            Edit::Add(t) => (x + fit(t, "added")?)?,
            Edit::Zero => x.zeros_like()?,
            Edit::Scale(c) => x.affine(*c, 0.0)?,
            Edit::Repeat(n) => {
                if self.positions.is_some() || self.heads.is_some() {
                    return Err(hook_err("a repeat of the batch cannot be restricted to positions or heads".into()));
                }
                if *n == 0 {
                    return Err(hook_err("the batch must be repeated at least once".into()));
                }
                let mut times = vec![1; x.rank()];
                times[0] = *n;
                return Ok(x.repeat(times)?);
            }
            Edit::Dynamic(d) => {
                let y = (d.f)(x, cache)?;
                if y.dims() != x.dims() {
                    return Err(hook_err(format!(
                        "the dynamic edit returned shape {:?}, the activation has shape {:?}",
                        y.dims(),
                        x.dims()
                    )));
                }
                y.to_dtype(x.dtype())?
            }
        };
        if self.positions.is_none() && self.heads.is_none() {
            return Ok(edited);
        }
        let mask = self.selection_mask(x).map_err(|e| match e {
            Error::Input(msg) => hook_err(msg),
            other => other,
        })?;
        // x + (edited − x)·mask keeps the gradient path through both.
        Ok((x + (edited - x)?.broadcast_mul(&mask)?)?)
    }

    /// A 0/1 mask broadcastable to `x`, 1 at the selected positions and heads.
    fn selection_mask(&self, x: &Tensor) -> Result<Tensor> {
        let axes = self.point.axes();
        let mut dims = vec![1usize; x.rank()];
        let n_pos = x.dim(axes.position)?;
        dims[axes.position] = n_pos;
        let pos_sel = selected(self.positions.as_deref(), n_pos, "position")?;
        let head_sel = match (axes.head, &self.heads) {
            (Some(ax), heads) => {
                let n = x.dim(ax)?;
                dims[ax] = n;
                selected(heads.as_deref(), n, "head")?
            }
            (None, Some(_)) => return Err(Error::input("this hook point has no head axis; drop the head selection")),
            (None, None) => vec![true],
        };
        // Fill in memory order of the two axes (position/head order depends on the point).
        let mut values = Vec::with_capacity(pos_sel.len() * head_sel.len());
        let head_first = axes.head.is_some_and(|h| h < axes.position);
        for a in 0..if head_first { head_sel.len() } else { pos_sel.len() } {
            for b in 0..if head_first { pos_sel.len() } else { head_sel.len() } {
                let (p, h) = if head_first { (b, a) } else { (a, b) };
                values.push(if pos_sel[p] && head_sel[h] { 1f32 } else { 0f32 });
            }
        }
        Ok(Tensor::from_vec(values, dims, x.device())?.to_dtype(x.dtype())?)
    }
}

fn selected(sel: Option<&[usize]>, n: usize, what: &str) -> Result<Vec<bool>> {
    let mut v = vec![sel.is_none(); n];
    for &i in sel.unwrap_or(&[]) {
        if i >= n {
            return Err(Error::input(format!("{what} {i} is out of range (there are {n})")));
        }
        v[i] = true;
    }
    Ok(v)
}

type PointFilter = Arc<dyn Fn(&HookPoint) -> bool + Send + Sync>;

/// Which activations a forward pass keeps.
#[derive(Clone, Default)]
pub enum Capture {
    #[default]
    Nothing,
    All,
    Points(Vec<HookPoint>),
    Where(PointFilter),
}

/// Everything a forward pass should do besides computing logits. The empty set costs nothing.
#[derive(Clone, Default)]
pub struct HookSet {
    pub capture: Capture,
    pub interventions: Vec<Intervention>,
    pub taps: Vec<HookPoint>,
    /// Use only differentiable ops even without taps (e.g. to differentiate w.r.t. weights).
    pub differentiable: bool,
    /// Dtype in which gradient taps are created (defaults to the activation's dtype).
    pub tap_dtype: Option<DType>,
    /// Differentiable, but candle's fused GeLU (whose backward uses ~6-digit constants) is good
    /// enough: training, where speed matters more than the last digits of a gradient.
    pub approximate_gradients: bool,
    /// Plain candle ops instead of the CPU's fused ones: the reference the fused ops (and their
    /// backward passes) are checked against; slower.
    pub composed: bool,
    /// (n,) u32 flat indices `item·s + position`: unembed only these positions, and return
    /// logits (n, V) instead of (b, s, V). A metric that reads a few positions (attribution's
    /// answer rows, an unlearning loss's answer tokens) skips the rest of the unembedding, a
    /// fifth of SmolLM2's forward and backward.
    pub logit_rows: Option<Tensor>,
}

impl HookSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn capture_all(mut self) -> Self {
        self.capture = Capture::All;
        self
    }

    pub fn capture(mut self, points: impl IntoIterator<Item = HookPoint>) -> Self {
        let mut v = match std::mem::take(&mut self.capture) {
            Capture::Points(v) => v,
            _ => Vec::new(),
        };
        v.extend(points);
        self.capture = Capture::Points(v);
        self
    }

    /// Captures every hook point for which `filter` is true (e.g. a name filter).
    pub fn capture_where(mut self, filter: impl Fn(&HookPoint) -> bool + Send + Sync + 'static) -> Self {
        self.capture = Capture::Where(Arc::new(filter));
        self
    }

    pub fn intervene(mut self, intervention: Intervention) -> Self {
        self.interventions.push(intervention);
        self
    }

    /// Gradient taps: after `backward`, d(scalar)/d(activation) at each of these points.
    pub fn tap(mut self, points: impl IntoIterator<Item = HookPoint>) -> Self {
        self.taps.extend(points);
        self
    }

    pub fn differentiable(mut self) -> Self {
        self.differentiable = true;
        self
    }

    /// Plain candle ops only (see [`HookSet::composed`]).
    pub fn composed(mut self) -> Self {
        self.composed = true;
        self
    }

    /// Logits at these flat positions only (see [`HookSet::logit_rows`]).
    pub fn logits_at(mut self, rows: &Tensor) -> Self {
        self.logit_rows = Some(rows.clone());
        self
    }

    /// Differentiable with approximate activation gradients, for training weights.
    pub fn training(mut self) -> Self {
        self.differentiable = true;
        self.approximate_gradients = true;
        self
    }

    pub fn captures(&self, p: &HookPoint) -> bool {
        match &self.capture {
            Capture::Nothing => false,
            Capture::All => true,
            Capture::Points(v) => v.contains(p),
            Capture::Where(f) => f(p),
        }
    }
}

//! Layer 4: attribution of a metric to the edges and nodes of the graph (EAP, EAP-IG, exact
//! patching), metrics, per-sample scores and faithfulness. See ALGORITHMS.md §2 and §4.
//!
//! - [`data`]: tokenised [`Example`]s and right-padded [`Batch`]es
//! - [`metric`]: per-item metrics and the loss sign convention
//! - [`writers`]: where the graph's writers and readers live in the forward pass; ablations
//! - [`edge`]: the gradient methods; [`exact`]: exact edge patching
//! - [`mod@faithfulness`]: circuits evaluated by patching the edges outside them; [`sweep`]: faithfulness
//!   curves, CPR and CMD
//!
//! ```no_run
//! use circuitscope::attribution::{attribute, AttributionConfig, Example, Method, NoProgress};
//! use circuitscope::model::{LoadOptions, Model};
//! # fn main() -> circuitscope::Result<()> {
//! let model = Model::load("tests/fixtures/parity/gpt2", LoadOptions::default())?;
//! let examples = vec![Example::pair(vec![5, 17, 3, 40], vec![5, 17, 3, 41], 7, 9)];
//! let cfg = AttributionConfig { method: Method::EapIgInputs { steps: 5 }, ..Default::default() };
//! let out = attribute(&model.decoder, &examples, &cfg, &NoProgress)?;
//! println!("{} forwards, {} backwards", out.passes.forwards, out.passes.backwards);
//! # Ok(())
//! # }
//! ```

pub mod data;
pub mod edge;
pub mod exact;
pub mod faithfulness;
pub mod head_grads;
pub mod metric;
mod names;
mod per_sample;
pub mod reader_fix;
mod runs;
pub mod settings;
pub mod sweep;
pub mod writers;

pub use crate::progress::{NoProgress, Progress};
pub use data::{batches, batches_on, Batch, Example, Target};
pub use faithfulness::{faithfulness, Faithfulness, FaithfulnessConfig};
pub use head_grads::QkvGradients;
pub use metric::Metric;
pub use names::AblationKind;
pub use reader_fix::ReaderFix;
pub use runs::PassCount;
pub use settings::DataSettings;
pub use sweep::{default_points, faithfulness_sweep, faithfulness_sweep_with, Sweep, SweepPoint, SweepSelection};
pub use writers::Ablation;

use crate::error::Result;
use crate::graph::{EdgeScores, GraphShape};
use crate::model::Decoder;
use candle_core::DType;
use runs::{Corruption, Tracker};

/// An attribution method (ALGORITHMS.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// gradient at the clean input: 2 forwards + 1 backward per batch
    Eap,
    /// gradients averaged over embeddings e' + (k/m)(e − e'), k = 0..m−1
    EapIgInputs { steps: usize },
    /// each writer group's output interpolated in turn, α = k/m, k = 1..m; total ÷ (2L+1)·m
    EapIgActivations { steps: usize },
    /// the mean of the gradients at the clean and at the corrupted input
    CleanCorrupted,
    /// each edge patched alone; ΔL is its score (|E| forwards' worth)
    Exact,
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Eap => "eap",
            Method::EapIgInputs { .. } => "eap-ig-inputs",
            Method::EapIgActivations { .. } => "eap-ig-activations",
            Method::CleanCorrupted => "clean-corrupted",
            Method::Exact => "exact",
        }
    }
}

/// What to attribute and how.
#[derive(Clone, Debug)]
pub struct AttributionConfig {
    pub method: Method,
    pub metric: Metric,
    pub ablation: Ablation,
    /// items per forward pass
    pub batch_size: usize,
    /// also return one score matrix per item
    pub per_sample: bool,
    /// at most this many rows per forward pass: exact patching's items × edges patched together,
    /// EAP-IG's items × interpolation steps (at least one step per pass)
    pub max_rows: usize,
    /// how the gradient methods get the per-head q/k/v input gradients
    pub qkv_gradients: QkvGradients,
    /// gradient methods: score the edges into these readers exactly up to the reader's output
    /// ([`reader_fix`]; the QK fix is AtP*'s)
    pub fix: ReaderFix,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            method: Method::EapIgInputs { steps: 5 },
            metric: Metric::LogitDiff,
            ablation: Ablation::Patching,
            batch_size: 8,
            per_sample: false,
            max_rows: 64,
            qkv_gradients: QkvGradients::Analytic,
            fix: ReaderFix::default(),
        }
    }
}

/// The result of [`attribute`]. Scores are of the loss (see [`metric`]), averaged over items.
#[derive(Clone, Debug)]
pub struct Attribution {
    /// edge scores in the EAP-IG layout (n_fwd, n_bwd)
    pub scores: EdgeScores,
    /// node scores (n_fwd,): Σ (z'_u − z_u)·∂L/∂z_u at each writer's output, with the method's
    /// gradient averaging; gradient methods only
    pub node_scores: Option<Vec<f32>>,
    /// one score matrix per item, when asked for
    pub per_sample: Option<Vec<EdgeScores>>,
    /// one node-score vector per item, when per-sample scores were asked for (gradient methods)
    pub per_sample_nodes: Option<Vec<Vec<f32>>>,
    /// mean metric value of the clean run
    pub clean_metric: f64,
    /// mean metric value of the corrupted run (patching only)
    pub corrupted_metric: Option<f64>,
    pub passes: PassCount,
}

/// Attributes `cfg.metric` over `examples` to every edge (and node) of the graph.
pub fn attribute(
    decoder: &Decoder,
    examples: &[Example],
    cfg: &AttributionConfig,
    progress: &dyn Progress,
) -> Result<Attribution> {
    let shape = GraphShape::of(&decoder.cfg);
    let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
    cfg.validate()?;
    let batches = batches_on(examples, cfg.batch_size, decoder.device())?;
    if cfg.ablation.needs_corrupted_prompts() {
        batches.iter().try_for_each(|b| b.corrupted().map(|_| ()))?;
    }
    let planned: u64 = Corruption::setup_forwards(&cfg.ablation, cfg.batch_size)
        + batches
            .iter()
            .map(|b| {
                Corruption::forwards_per_batch(&cfg.ablation)
                    + match cfg.method {
                        Method::Exact => exact::forwards_per_batch(&decoder.cfg, b.len(), cfg.max_rows),
                        m => edge::forwards_per_batch(&m, decoder.cfg.n_layers, b.len(), cfg.max_rows),
                    }
            })
            .sum::<u64>();
    let mut track = Tracker::new(planned, progress);
    let corruption = Corruption::prepare(decoder, &cfg.ablation, cfg.batch_size, &mut track)?;

    let mut total = vec![0f64; nf * nb];
    let mut nodes_total = vec![0f64; nf];
    let mut has_nodes = true;
    let mut per_sample = cfg.per_sample.then(Vec::new);
    let mut per_sample_nodes = cfg.per_sample.then(Vec::new);
    let (mut clean_metric, mut corrupted_metric) = (0.0, Some(0.0));
    for batch in &batches {
        let scores = match cfg.method {
            Method::Exact => exact::exact_scores(decoder, batch, cfg.metric, &corruption, cfg.max_rows, &mut track)?,
            m => edge::gradient_scores(decoder, batch, &m, cfg, &corruption, &mut track)?,
        };
        let sum: Vec<f64> = scores.sum.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
        clean_metric += scores.clean_values.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        corrupted_metric = match (&scores.corrupted_values, corrupted_metric) {
            (Some(v), Some(c)) => Some(c + v.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?),
            _ => None,
        };
        match &scores.nodes {
            Some(nodes) => {
                let nodes: Vec<Vec<f32>> = nodes.to_dtype(DType::F32)?.to_vec2()?;
                for item in &nodes {
                    nodes_total.iter_mut().zip(item).for_each(|(t, s)| *t += f64::from(*s));
                }
                if let Some(v) = per_sample_nodes.as_mut() {
                    v.extend(nodes);
                }
            }
            None => has_nodes = false,
        }
        if let (Some(v), Some(items)) = (per_sample.as_mut(), &scores.per_item) {
            for item in items.to_dtype(DType::F32)?.to_vec3::<f32>()? {
                v.push(EdgeScores::from_matrix(shape, item.into_iter().flatten().collect()));
            }
        }
    }
    let n = examples.len() as f64;
    let mean = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|x| (x / n) as f32).collect() };
    Ok(Attribution {
        scores: EdgeScores::from_matrix(shape, mean(total)),
        node_scores: has_nodes.then(|| mean(nodes_total)),
        per_sample,
        per_sample_nodes: if has_nodes { per_sample_nodes } else { None },
        clean_metric: clean_metric / n,
        corrupted_metric: corrupted_metric.map(|c| c / n),
        passes: track.passes,
    })
}

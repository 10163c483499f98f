//! Faithfulness curves (ALGORITHMS.md §4): circuits re-selected from one set of edge scores at
//! increasing sizes, all evaluated in one [`faithfulness`] call (which shares the clean and
//! corrupted runs), and summarised by CPR and CMD ([`curve_areas`], MIB's definitions).
//!
//! Each circuit is selected ([`SweepSelection`]) and then pruned, as EAP-IG does by default, so
//! a circuit may hold fewer edges than asked for; the curve's x is the edge count after pruning
//! (top-n and greedy circuits are nested, so that count never falls as n grows), normalised by
//! the graph's edge count.

use super::faithfulness::{faithfulness, FaithfulnessConfig};
use super::runs::PassCount;
use super::Example;
use crate::error::{Error, Result};
use crate::graph::{curve_areas, Circuit, CurveAreas, EdgeScores};
use crate::model::Decoder;
use crate::progress::Progress;
use serde_json::json;

/// How each circuit of a sweep is chosen from the scores (then pruned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepSelection {
    /// the n edges of largest |score| ([`Circuit::top_n`])
    TopN,
    /// grown from the logits n times ([`Circuit::greedy`])
    Greedy,
}

impl SweepSelection {
    pub const ALL: [SweepSelection; 2] = [SweepSelection::TopN, SweepSelection::Greedy];

    pub fn name(self) -> &'static str {
        match self {
            SweepSelection::TopN => "top-n",
            SweepSelection::Greedy => "greedy",
        }
    }

    pub fn from_name(name: &str) -> Result<SweepSelection> {
        SweepSelection::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::input(format!("unknown selection `{name}` (known: top-n, greedy)")))
    }

    /// The pruned circuit of `n` selected edges.
    pub fn select(self, scores: &EdgeScores, n: usize) -> Result<Circuit> {
        Ok(match self {
            SweepSelection::TopN => Circuit::top_n(scores, n)?,
            SweepSelection::Greedy => Circuit::greedy(scores, n)?,
        }
        .pruned())
    }
}

/// Edge counts 1, 2, 5, 10, 20, 50, … below `n_edges`, then `n_edges` itself (the full graph).
pub fn default_points(n_edges: usize) -> Vec<usize> {
    let mut points = Vec::new();
    let mut decade = 1usize;
    'outer: loop {
        for m in [1, 2, 5] {
            let n = m * decade;
            if n >= n_edges {
                break 'outer;
            }
            points.push(n);
        }
        decade *= 10;
    }
    if n_edges > 0 {
        points.push(n_edges);
    }
    points
}

/// One circuit of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    /// edges asked for
    pub requested: usize,
    /// edges in the circuit after pruning
    pub edges: usize,
    /// writer nodes in the circuit after pruning (`logits` not counted)
    pub nodes: usize,
    /// M(circuit), the mean metric value
    pub metric: f64,
    /// normalised faithfulness (M(circuit) − M(corrupted)) / (M(model) − M(corrupted))
    pub faithfulness: f64,
}

/// A faithfulness curve and its areas.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub selection: SweepSelection,
    /// edges in the whole graph: the x normalisation of the areas
    pub total_edges: usize,
    /// M(model)
    pub model: f64,
    /// M(corrupted)
    pub corrupted: f64,
    /// by requested edge count, ascending
    pub points: Vec<SweepPoint>,
    pub areas: CurveAreas,
    pub passes: PassCount,
}

impl Sweep {
    /// (edges after pruning, normalised faithfulness) per point: the curve whose areas are reported.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        self.points.iter().map(|p| (p.edges as f64, p.faithfulness)).collect()
    }

    /// The smallest circuit of the sweep (fewest edges after pruning) whose normalised
    /// faithfulness reaches `target`; none if no point does (a non-finite faithfulness, from a
    /// model and corrupted run that score alike, reaches nothing). Faithfulness need not grow with the
    /// edge count, so this is the first point to reach it, not the start of a plateau.
    pub fn smallest_reaching(&self, target: f64) -> Option<&SweepPoint> {
        self.points.iter().filter(|p| p.faithfulness.is_finite() && p.faithfulness >= target).min_by_key(|p| p.edges)
    }

    /// The sweep as JSON (NaN and infinities become `null`), with the smallest circuit that
    /// reaches faithfulness `target` (`null` if none does).
    pub fn to_json(&self, target: f64) -> serde_json::Value {
        let points: Vec<serde_json::Value> = self
            .points
            .iter()
            .map(|p| {
                json!({"requested_edges": p.requested, "edges": p.edges, "nodes": p.nodes, "metric": p.metric,
                       "faithfulness": p.faithfulness})
            })
            .collect();
        let smallest = self.smallest_reaching(target).map(|p| {
            json!({"requested_edges": p.requested, "edges": p.edges, "nodes": p.nodes, "faithfulness": p.faithfulness})
        });
        json!({
            "selection": self.selection.name(), "pruned": true, "total_edges": self.total_edges,
            "model_metric": self.model, "corrupted_metric": self.corrupted,
            "cpr": self.areas.cpr, "cmd": self.areas.cmd, "points": points,
            "target": target, "smallest_reaching_target": smallest,
            "passes": {"forwards": self.passes.forwards, "backwards": self.passes.backwards},
        })
    }
}

/// Selects a circuit of each size in `points` from `scores` and evaluates them all on
/// `examples` in one [`faithfulness`] call. Sizes are sorted and deduplicated; each must be
/// between 1 and the graph's edge count.
pub fn faithfulness_sweep(
    decoder: &Decoder,
    examples: &[Example],
    scores: &EdgeScores,
    selection: SweepSelection,
    points: &[usize],
    cfg: &FaithfulnessConfig,
    progress: &dyn Progress,
) -> Result<Sweep> {
    Ok(faithfulness_sweep_with(decoder, examples, scores, selection, points, &[], cfg, progress)?.0)
}

/// [`faithfulness_sweep`] that also evaluates the `extra` circuits (edge masks) in the same
/// passes; returns the sweep and their normalised faithfulness.
#[allow(clippy::too_many_arguments)]
pub fn faithfulness_sweep_with(
    decoder: &Decoder,
    examples: &[Example],
    scores: &EdgeScores,
    selection: SweepSelection,
    points: &[usize],
    extra: &[Vec<bool>],
    cfg: &FaithfulnessConfig,
    progress: &dyn Progress,
) -> Result<(Sweep, Vec<f64>)> {
    let total_edges = scores.shape.n_edges();
    let mut requested = points.to_vec();
    requested.sort_unstable();
    requested.dedup();
    if requested.is_empty() {
        return Err(Error::input("a faithfulness sweep needs at least one edge count"));
    }
    if let Some(&bad) = requested.iter().find(|&&n| n == 0 || n > total_edges) {
        return Err(Error::input(format!(
            "sweep point {bad} is out of range: edge counts must be between 1 and the graph's {total_edges} edges"
        )));
    }
    let circuits = requested.iter().map(|&n| selection.select(scores, n)).collect::<Result<Vec<_>>>()?;
    let mut masks: Vec<Vec<bool>> = circuits.iter().map(Circuit::edge_mask).collect();
    masks.extend_from_slice(extra);
    let f = faithfulness(decoder, examples, &masks, cfg, progress)?;
    let points: Vec<SweepPoint> = requested
        .iter()
        .zip(&circuits)
        .zip(f.circuits.iter().zip(&f.normalised))
        .map(|((&requested, c), (&metric, &faithfulness))| SweepPoint {
            requested,
            edges: c.n_edges_in_graph(),
            nodes: c.n_nodes_in_graph(),
            metric,
            faithfulness,
        })
        .collect();
    let mut curve: Vec<(f64, f64)> = points.iter().map(|p| (p.edges as f64, p.faithfulness)).collect();
    // Nested selections keep the pruned counts sorted already; a stable sort guards the areas.
    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    let areas = curve_areas(&curve, total_edges as f64);
    let extra_faithfulness = f.normalised[circuits.len()..].to_vec();
    let sweep =
        Sweep { selection, total_edges, model: f.model, corrupted: f.corrupted, points, areas, passes: f.passes };
    Ok((sweep, extra_faithfulness))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphShape;

    #[test]
    fn default_points_are_one_two_five_then_the_whole_graph() {
        assert_eq!(default_points(1), vec![1]);
        assert_eq!(default_points(2), vec![1, 2]);
        assert_eq!(default_points(37), vec![1, 2, 5, 10, 20, 37]);
        assert_eq!(default_points(50), vec![1, 2, 5, 10, 20, 50]);
        assert_eq!(*default_points(32_491).last().unwrap(), 32_491);
        assert!(default_points(0).is_empty());
    }

    #[test]
    fn selections_by_name_and_nested_pruned_circuits() {
        for s in SweepSelection::ALL {
            assert_eq!(SweepSelection::from_name(s.name()).unwrap(), s);
        }
        assert!(SweepSelection::from_name("topn").unwrap_err().to_string().contains("top-n"));
        let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let mut s = EdgeScores::zeros(shape);
        for (i, (w, r)) in shape.edges().enumerate() {
            s.set(w, r, ((i * 31 % 17) as f32 - 8.0) / 8.0);
        }
        for sel in SweepSelection::ALL {
            let counts: Vec<usize> = default_points(shape.n_edges())
                .into_iter()
                .map(|n| sel.select(&s, n).unwrap().n_edges_in_graph())
                .collect();
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{sel:?}: {counts:?}");
            assert_eq!(*counts.last().unwrap(), shape.n_edges());
        }
    }

    #[test]
    fn the_smallest_circuit_reaching_a_target_is_the_first_point_at_or_above_it() {
        let point = |edges: usize, faithfulness: f64| SweepPoint {
            requested: edges,
            edges,
            nodes: 1,
            metric: 0.0,
            faithfulness,
        };
        let sweep = Sweep {
            selection: SweepSelection::Greedy,
            total_edges: 100,
            model: 1.0,
            corrupted: 0.0,
            points: vec![
                point(5, 0.3),
                point(10, f64::NAN),
                point(15, f64::INFINITY),
                point(20, 0.85),
                point(50, 0.7),
                point(100, 1.0),
            ],
            areas: CurveAreas { cpr: 0.0, cmd: 0.0 },
            passes: PassCount::default(),
        };
        assert_eq!(sweep.smallest_reaching(0.8).map(|p| p.edges), Some(20));
        assert_eq!(sweep.smallest_reaching(0.85).map(|p| p.edges), Some(20));
        assert_eq!(sweep.smallest_reaching(0.9).map(|p| p.edges), Some(100));
        assert!(sweep.smallest_reaching(1.5).is_none());
        let j = sweep.to_json(0.8);
        assert_eq!(j["target"], 0.8);
        assert_eq!(j["smallest_reaching_target"]["edges"], 20);
        assert!(sweep.to_json(1.5)["smallest_reaching_target"].is_null());
        assert!(j["points"][1]["faithfulness"].is_null());
    }
}

//! CUD (ALGORITHMS.md §5, steps 1, 2, 4 and 5): per-sample EAP-IG circuits and the anchor circuits
//! of the easy and hard sets ([`sample_circuits`], [`anchor_circuit`]), a circuit as a vector over
//! every real edge of the graph, the similarity of two such vectors, circuit-guided unlearning
//! difficulty from a sample's distances to the two anchors, and the circuit's layer structure.

use crate::attribution::{attribute, Ablation, AttributionConfig, Method, Metric};
use crate::data::Example;
use crate::error::{Error, Result};
use crate::graph::{Circuit, EdgeScores, Writer};
use crate::model::Decoder;
use crate::progress::Progress;
use serde::{Deserialize, Serialize};

/// How a circuit becomes a vector over the graph's edges (in `GraphShape::edges` order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitVector {
    /// 1 for an edge in the circuit, else 0
    Binary,
    /// the edge's score for an edge in the circuit, else 0 (the reference's scoring code)
    Weighted,
}

/// How alike two circuit vectors are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Similarity {
    /// a·b / (|a| |b|); 0 when either vector is zero
    Cosine,
    /// Σ min(|a|, |b|) / Σ max(|a|, |b|) (for binary vectors, |A ∩ B| / |A ∪ B|); 1 for two zero
    /// vectors
    Jaccard,
    /// the share of edges on which the two circuits agree (in both, or in neither)
    Hamming,
}

/// `circuit` as a vector over every real edge of its graph.
pub fn circuit_vector(circuit: &Circuit, kind: CircuitVector) -> Vec<f32> {
    let shape = circuit.shape();
    let nb = shape.n_bwd();
    let scores = &circuit.scores().scores;
    shape
        .edges()
        .map(|(w, r)| match (circuit.edge_in_graph(w, r), kind) {
            (false, _) => 0.0,
            (true, CircuitVector::Binary) => 1.0,
            (true, CircuitVector::Weighted) => scores[w * nb + r],
        })
        .collect()
}

/// The similarity of two circuit vectors of the same graph.
pub fn similarity(a: &[f32], b: &[f32], kind: Similarity) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::input(format!("circuit vectors of {} and {} edges: not the same graph", a.len(), b.len())));
    }
    let pairs = a.iter().zip(b).map(|(&x, &y)| (x as f64, y as f64));
    Ok(match kind {
        Similarity::Cosine => {
            let (dot, na, nb) = pairs.fold((0.0, 0.0, 0.0), |(d, p, q), (x, y)| (d + x * y, p + x * x, q + y * y));
            if na == 0.0 || nb == 0.0 {
                0.0
            } else {
                dot / (na.sqrt() * nb.sqrt())
            }
        }
        Similarity::Jaccard => {
            let (lo, hi) =
                pairs.fold((0.0, 0.0), |(l, h), (x, y)| (l + x.abs().min(y.abs()), h + x.abs().max(y.abs())));
            if hi == 0.0 {
                1.0
            } else {
                lo / hi
            }
        }
        Similarity::Hamming => {
            let n = a.len().max(1) as f64;
            pairs.filter(|&(x, y)| (x != 0.0) == (y != 0.0)).count() as f64 / n
        }
    })
}

/// CUD(q) = d_E / (d_E + d_H), d_X = max(0, 1 − sim(q, X)), clamped to [0, 1]; 0.5 when both
/// distances are ~0. 1 = like the hard anchors (hard to unlearn), 0 = like the easy ones.
pub fn cud(sample: &[f32], easy: &[f32], hard: &[f32], kind: Similarity) -> Result<f64> {
    let d_e = (1.0 - similarity(sample, easy, kind)?).max(0.0);
    let d_h = (1.0 - similarity(sample, hard, kind)?).max(0.0);
    if d_e + d_h < 1e-12 {
        return Ok(0.5);
    }
    Ok((d_e / (d_e + d_h)).clamp(0.0, 1.0))
}

/// How CUD attributes and compares circuits (ALGORITHMS.md §5: EAP-IG on activations, m = 5,
/// zero ablation, the answer's probability, greedy 75 edges, cosine).
#[derive(Clone, Debug)]
pub struct CudSettings {
    /// the attribution method (the reference's: EAP-IG on activations, m = 5)
    pub method: Method,
    pub edges: usize,
    pub vector: CircuitVector,
    pub similarity: Similarity,
    pub batch: usize,
}

impl Default for CudSettings {
    fn default() -> Self {
        CudSettings {
            method: Method::EapIgActivations { steps: 5 },
            edges: 75,
            vector: CircuitVector::Weighted,
            similarity: Similarity::Cosine,
            batch: 8,
        }
    }
}

impl Serialize for CudSettings {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        serde_json::json!({
            "method": self.method.name(), "steps": self.method.steps(), "edges": self.edges,
            "vector": self.vector, "similarity": self.similarity, "batch": self.batch,
        })
        .serialize(ser)
    }
}

/// A per-sample circuit's distances to the two anchors, and its CUD.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Distances {
    pub cud: f64,
    /// 1 − similarity to the easy and to the hard anchor circuit (at least 0)
    pub d_easy: f64,
    pub d_hard: f64,
}

/// A circuit's layer structure (ALGORITHMS.md §5, step 5: reconstructed definitions).
#[derive(Clone, Debug, Serialize)]
pub struct Structure {
    pub edges: usize,
    /// the edges' writer layers averaged with |score| as weight (the input counts as layer −1;
    /// NaN for a circuit without edges)
    pub mean_writer_layer: f64,
    /// the deepest writer layer (−1: only the input writes)
    pub deepest_layer: i64,
    /// edges on the longest input → logits path (`None`: no such path)
    pub longest_path: Option<usize>,
    /// edges by writer layer: entry 0 the input, entry l + 1 layer l
    pub edges_per_layer: Vec<usize>,
}

/// The attribution CUD runs: its method under zero ablation, the answer's probability.
fn attribution_config(s: &CudSettings, per_sample: bool) -> AttributionConfig {
    AttributionConfig {
        method: s.method,
        metric: Metric::SeqProb,
        ablation: Ablation::Zero,
        batch_size: s.batch,
        per_sample,
        ..AttributionConfig::default()
    }
}

/// The greedy circuit of `edges` edges (pruned) of a score matrix; an error when a score is not
/// finite (greedy would skip such edges and leave a silently empty circuit).
fn circuit_of(scores: &EdgeScores, edges: usize, method: Method) -> Result<Circuit> {
    let nb = scores.shape.n_bwd();
    if let Some((w, r)) = scores.shape.edges().find(|&(w, r)| !scores.scores[w * nb + r].is_finite()) {
        return Err(Error::input(format!(
            "{} gave a non-finite score (edge {}): the gradient overflowed f32. Under zero ablation EAP-IG on \
             inputs evaluates the model at an all-zero input, where RMSNorm's gradient is 1/√ε per layer; use \
             eap-ig-activations (α > 0 only) or eap",
            method.name(),
            scores.shape.edge_name_of(w, r)
        )));
    }
    Ok(Circuit::greedy(scores, edges.min(scores.shape.n_edges()))?.pruned())
}

/// The layer of a writer (the input: −1).
fn writer_layer(w: Writer) -> i64 {
    match w {
        Writer::Input => -1,
        Writer::Head { layer, .. } | Writer::Mlp { layer } => layer as i64,
    }
}

/// The anchor circuit of a set of samples: attributed jointly (scores averaged over the set),
/// then greedy.
pub fn anchor_circuit(dec: &Decoder, samples: &[Example], s: &CudSettings, progress: &dyn Progress) -> Result<Circuit> {
    if samples.is_empty() {
        return Err(Error::input("an anchor set is empty"));
    }
    circuit_of(&attribute(dec, samples, &attribution_config(s, false), progress)?.scores, s.edges, s.method)
}

/// Each forget sample's greedy circuit from per-sample attribution (several samples per pass,
/// scores kept per sample).
pub fn sample_circuits(
    dec: &Decoder,
    forget: &[Example],
    s: &CudSettings,
    progress: &dyn Progress,
) -> Result<Vec<Circuit>> {
    let per_sample = attribute(dec, forget, &attribution_config(s, true), progress)?
        .per_sample
        .ok_or_else(|| Error::input("the attribution returned no per-sample scores"))?;
    per_sample.iter().map(|scores| circuit_of(scores, s.edges, s.method)).collect()
}

/// A sample circuit's distances to the easy and hard anchor circuits, and its CUD.
pub fn distances(sample: &Circuit, easy: &Circuit, hard: &Circuit, s: &CudSettings) -> Result<Distances> {
    let (v, ve, vh) =
        (circuit_vector(sample, s.vector), circuit_vector(easy, s.vector), circuit_vector(hard, s.vector));
    Ok(Distances {
        cud: cud(&v, &ve, &vh, s.similarity)?,
        d_easy: (1.0 - similarity(&v, &ve, s.similarity)?).max(0.0),
        d_hard: (1.0 - similarity(&v, &vh, s.similarity)?).max(0.0),
    })
}

/// A circuit's [`Structure`].
pub fn structure(c: &Circuit) -> Structure {
    let shape = c.shape();
    let (mut weight, mut sum, mut deepest) = (0.0, 0.0, -1i64);
    for (w, _, score) in c.edges_in_graph() {
        let layer = writer_layer(shape.writer(w));
        weight += score.abs() as f64;
        sum += score.abs() as f64 * layer as f64;
        deepest = deepest.max(layer);
    }
    Structure {
        edges: c.n_edges_in_graph(),
        mean_writer_layer: if weight > 0.0 { sum / weight } else { f64::NAN },
        deepest_layer: deepest,
        longest_path: c.longest_path(),
        edges_per_layer: c.edges_per_layer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarities_by_hand() {
        let (a, b) = ([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]);
        assert!((similarity(&a, &b, Similarity::Cosine).unwrap() - 0.5).abs() < 1e-12);
        assert!((similarity(&a, &b, Similarity::Jaccard).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((similarity(&a, &b, Similarity::Hamming).unwrap() - 0.5).abs() < 1e-12);
        // weighted: Σ min |·| / Σ max |·| = (1 + 0) / (2 + 1) with a = (2, −1), b = (1, 0)
        assert!((similarity(&[2.0, -1.0], &[1.0, 0.0], Similarity::Jaccard).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(similarity(&[0.0, 0.0], &[1.0, 0.0], Similarity::Cosine).unwrap(), 0.0);
        assert!(similarity(&[1.0], &[1.0, 0.0], Similarity::Cosine).is_err());
    }

    #[test]
    fn a_circuit_vector_has_one_entry_per_real_edge() {
        use crate::graph::{EdgeScores, GraphShape};
        let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let n = shape.n_fwd() * shape.n_bwd();
        // distinct scores on every cell; the top 3 by |score| are the last three real edges
        let scores = EdgeScores::from_matrix(shape, (0..n).map(|i| i as f32 + 1.0).collect());
        let c = Circuit::top_n(&scores, 3).unwrap();
        let edges: Vec<(usize, usize)> = shape.edges().collect();
        let (bin, wt) = (circuit_vector(&c, CircuitVector::Binary), circuit_vector(&c, CircuitVector::Weighted));
        assert_eq!((bin.len(), wt.len()), (shape.n_edges(), shape.n_edges()));
        assert_eq!(bin.iter().filter(|&&x| x == 1.0).count(), 3);
        for (k, &(w, r)) in edges.iter().enumerate() {
            let inside = c.edge_in_graph(w, r);
            assert_eq!(bin[k] == 1.0, inside);
            assert_eq!(wt[k], if inside { scores.scores[w * shape.n_bwd() + r] } else { 0.0 });
        }
    }

    #[test]
    fn a_non_finite_score_is_an_error_not_an_empty_circuit() {
        use crate::graph::{EdgeScores, GraphShape};
        let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let mut m: Vec<f32> = (0..shape.n_fwd() * shape.n_bwd()).map(|i| i as f32).collect();
        assert!(circuit_of(&EdgeScores::from_matrix(shape, m.clone()), 5, Method::Eap).is_ok());
        let (w, r) = shape.edges().nth(3).unwrap();
        m[w * shape.n_bwd() + r] = f32::NAN;
        let err = circuit_of(&EdgeScores::from_matrix(shape, m), 5, Method::EapIgInputs { steps: 5 }).unwrap_err();
        assert!(err.to_string().contains("eap-ig-inputs gave a non-finite score"), "{err}");
    }

    #[test]
    fn cud_is_the_share_of_distance_to_the_easy_anchor() {
        let (easy, hard) = ([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]);
        assert!(cud(&easy, &easy, &hard, Similarity::Cosine).unwrap() < 1e-12, "the easy anchor itself");
        assert!(cud(&hard, &easy, &hard, Similarity::Cosine).unwrap() > 1.0 - 1e-12, "the hard anchor itself");
        // half of each: cosine 1/√2 to both, so equally far
        let mid = [1.0, 0.0, 1.0, 0.0];
        assert!((cud(&mid, &easy, &hard, Similarity::Cosine).unwrap() - 0.5).abs() < 1e-12);
        // both anchors equal to the sample: no distance to either
        assert_eq!(cud(&easy, &easy, &easy, Similarity::Jaccard).unwrap(), 0.5);
        // a sample nearer the hard anchor scores above 0.5
        let near_hard = [0.0, 1.0, 1.0, 1.0];
        assert!(cud(&near_hard, &easy, &hard, Similarity::Cosine).unwrap() > 0.5);
    }
}

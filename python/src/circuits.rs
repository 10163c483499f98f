//! Attribution, circuits and their faithfulness: `attribute` scores every edge of the graph
//! (a `Circuit` with no edge selected), the selections make circuits, which draw and export
//! themselves; `faithfulness`, `faithfulness_curve` and `compare` evaluate them.

use crate::arrays::{vec_array, Array};
use crate::model::PyModel;
use crate::{err, to_json, OrPy};
use circuitscope::analyses::compare::{agreement, rank_pairs_by_writer};
use circuitscope::analyses::cud::structure;
use circuitscope::attribution::default_points;
use circuitscope::attribution::{
    attribute as attribute_edges, faithfulness as faithfulness_of, faithfulness_sweep, Ablation, AblationKind,
    AttributionConfig, DataSettings, Example, FaithfulnessConfig, Method, Metric, ReaderFix, SweepSelection,
};
use circuitscope::data::ExampleFile;
use circuitscope::graph::Circuit;
use circuitscope::progress::NoProgress;
use circuitscope::render::{circuit_svg, write_picture, CircuitSvgOptions, LinePlot, Series};
use pyo3::prelude::*;
use std::path::Path;

/// Edge scores over the model's graph, and which edges and nodes are in the circuit (none for
/// the scores `attribute` returns; a selection's for a circuit).
#[pyclass(name = "Circuit", module = "circuitscope._native", frozen)]
#[derive(Clone)]
pub struct PyCircuit {
    pub inner: Circuit,
}

/// How a drawing looks: (compact, width in points, greyscale, a layer's heads as one node, a
/// CURE partition's JSON colouring the modules).
type Style<'a> = (bool, Option<f64>, bool, bool, Option<&'a str>);

/// A data file read for a model: its examples, the metric and the ablation (the data kind's
/// defaults where not given; the mean ablations average over the data's own prompts).
pub struct Data {
    pub examples: Vec<Example>,
    pub metric: Metric,
    pub intervention: AblationKind,
    pub ablation: Ablation,
}

pub fn read_data(
    model: &PyModel,
    path: &str,
    limit: Option<usize>,
    metric: Option<&str>,
    intervention: Option<&str>,
) -> PyResult<Data> {
    let metric = metric.map(str::parse::<Metric>).transpose().py()?;
    let intervention = intervention.map(AblationKind::from_name).transpose().py()?;
    if limit == Some(0) {
        return Err(err(anyhow::anyhow!("limit must be at least 1")));
    }
    let mut file = ExampleFile::read(Path::new(path)).py()?;
    if let Some(n) = limit {
        file.truncate(n);
    }
    let s =
        DataSettings::for_data(file.kind(), metric, intervention).map_err(|e| err(anyhow::anyhow!("{path}: {e}")))?;
    let examples = file.examples(model.tokenizer()?).py()?;
    let ablation = s.intervention.ablation(|| examples.iter().map(|e| e.clean.clone()).collect());
    Ok(Data { examples, metric: s.metric, intervention: s.intervention, ablation })
}

fn check_graph(model: &PyModel, c: &Circuit) -> PyResult<()> {
    let want = circuitscope::graph::GraphShape::of(&model.decoder().cfg);
    if c.shape() != want {
        return Err(err(anyhow::anyhow!(
            "the circuit is for a graph of {}, but the model has {}",
            c.shape().describe(),
            want.describe()
        )));
    }
    Ok(())
}

impl PyCircuit {
    fn selected(&self, mut c: Circuit, prune: bool) -> PyCircuit {
        if prune {
            c.prune();
        }
        c.set_node_scores(self.inner.node_scores().map(<[f32]>::to_vec));
        c.set_d_model(self.inner.d_model());
        PyCircuit { inner: c }
    }

    fn check_count(&self, n: usize, what: &str) -> PyResult<()> {
        let total = self.inner.shape().n_edges();
        if n == 0 || n > total {
            return Err(err(anyhow::anyhow!(
                "{what} {n} is out of range: the graph has {total} edges (give 1 to {total})"
            )));
        }
        Ok(())
    }

    fn svg(&self, title: &str, style: Style<'_>) -> PyResult<String> {
        if let Some(w) = style.1.filter(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(err(anyhow::anyhow!("width {w}: give the drawing's width in points, above 0 (e.g. 240)")));
        }
        let fills = match style.4 {
            Some(text) => {
                let p: circuitscope::analyses::cure::Partition = serde_json::from_str(text)
                    .map_err(|e| err(anyhow::anyhow!("partition: not a CURE partition: {e}")))?;
                Some(circuitscope::render::cure_svg::partition_fills(&p, &self.inner.shape()).py()?)
            }
            None => None,
        };
        let opts = CircuitSvgOptions {
            title: title.to_string(),
            compact: style.0,
            width_pt: style.1,
            greyscale: style.2,
            group_heads: style.3,
            fills,
            ..Default::default()
        };
        Ok(circuit_svg(&self.inner, &opts))
    }
}

#[pymethods]
impl PyCircuit {
    /// Reads a scores or circuit JSON (the EAP-IG/MIB layout).
    #[staticmethod]
    fn load(path: &str) -> PyResult<PyCircuit> {
        Ok(PyCircuit { inner: Circuit::read_json(Path::new(path)).py()? })
    }

    /// Edges and nodes in the circuit (0 for plain scores).
    #[getter]
    fn n_edges(&self) -> usize {
        self.inner.n_edges_in_graph()
    }

    #[getter]
    fn n_nodes(&self) -> usize {
        self.inner.n_nodes_in_graph()
    }

    /// Edges of the whole graph.
    #[getter]
    fn n_graph_edges(&self) -> usize {
        self.inner.shape().n_edges()
    }

    /// (n_layers, n_heads, parallel_residual) of the graph.
    #[getter]
    fn graph(&self) -> (usize, usize, bool) {
        let s = self.inner.shape();
        (s.n_layers, s.n_heads, s.parallel_residual)
    }

    /// The score matrix (writers × readers, the EAP-IG layout; 0 where there is no edge).
    fn score_matrix<'py>(&self, py: Python<'py>) -> Array<'py> {
        let s = self.inner.scores();
        vec_array(py, &s.scores, vec![s.shape.n_fwd(), s.shape.n_bwd()])
    }

    fn writer_names(&self) -> Vec<String> {
        let s = self.inner.shape();
        (0..s.n_fwd()).map(|w| s.node_name(w)).collect()
    }

    fn reader_names(&self) -> Vec<String> {
        let s = self.inner.shape();
        (0..s.n_bwd()).map(|r| s.reader(r).name()).collect()
    }

    /// Every edge as (name, score), the largest |score| first; with `in_circuit` only the
    /// circuit's.
    #[pyo3(signature = (in_circuit = false))]
    fn edges(&self, in_circuit: bool) -> Vec<(String, f32)> {
        let shape = self.inner.shape();
        let mut e: Vec<(usize, usize, f32)> =
            if in_circuit { self.inner.edges_in_graph().collect() } else { self.inner.scores().edges().collect() };
        e.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()).then((x.0, x.1).cmp(&(y.0, y.1))));
        e.into_iter().map(|(w, r, s)| (shape.edge_name_of(w, r), s)).collect()
    }

    /// The circuit's nodes, by name.
    fn nodes(&self) -> Vec<String> {
        let shape = self.inner.shape();
        (0..shape.n_nodes()).filter(|&n| self.inner.node_in_graph(n)).map(|n| shape.node_name(n)).collect()
    }

    /// Node scores (writers, then logits as NaN) where the attribution gave them.
    fn node_scores(&self) -> Option<Vec<(String, f32)>> {
        let shape = self.inner.shape();
        self.inner.node_scores().map(|s| s.iter().enumerate().map(|(n, &v)| (shape.node_name(n), v)).collect())
    }

    /// The `n` edges of largest |score|, then pruned to the input → logits paths.
    #[pyo3(signature = (n, prune = true))]
    fn top_n(&self, n: usize, prune: bool) -> PyResult<PyCircuit> {
        self.check_count(n, "top_n")?;
        Ok(self.selected(Circuit::top_n(self.inner.scores(), n).py()?, prune))
    }

    /// `n` edges grown greedily from the logits, then pruned.
    #[pyo3(signature = (n, prune = true))]
    fn greedy(&self, n: usize, prune: bool) -> PyResult<PyCircuit> {
        self.check_count(n, "greedy")?;
        Ok(self.selected(Circuit::greedy(self.inner.scores(), n).py()?, prune))
    }

    /// The edges with |score| ≥ `t`, then pruned.
    #[pyo3(signature = (t, prune = true))]
    fn threshold(&self, t: f32, prune: bool) -> PyResult<PyCircuit> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(err(anyhow::anyhow!("threshold {t}: give a finite |score| of at least 0")));
        }
        Ok(self.selected(Circuit::threshold(self.inner.scores(), t), prune))
    }

    /// Layer structure as JSON: edges, |score|-weighted mean writer layer, deepest layer, the
    /// longest input → logits path, edges per writer layer.
    fn structure_json(&self) -> PyResult<String> {
        to_json(&structure(&self.inner))
    }

    /// The drawing: `compact` keeps only the circuit's layers and nodes, `width` sets the page
    /// width in points, `greyscale` draws in greys, `group_heads` draws each layer's heads as
    /// one node (edges between the same nodes merged, their scores summed), `partition` (a
    /// CURE partition's JSON text) colours each head and MLP by its category.
    #[pyo3(signature = (title = "", compact = false, width = None, greyscale = false, group_heads = false, partition = None))]
    fn to_svg(
        &self,
        title: &str,
        compact: bool,
        width: Option<f64>,
        greyscale: bool,
        group_heads: bool,
        partition: Option<&str>,
    ) -> PyResult<String> {
        self.svg(title, (compact, width, greyscale, group_heads, partition))
    }

    /// One self-contained HTML page to explore the circuit in a browser (see `circuitscope view`).
    #[pyo3(signature = (title = "", compact = false))]
    fn to_html(&self, title: &str, compact: bool) -> String {
        let opts = CircuitSvgOptions { title: title.to_string(), compact, ..Default::default() };
        circuitscope::render::view::circuit_html(&self.inner, &opts)
    }

    #[pyo3(signature = (title = ""))]
    fn to_dot(&self, title: &str) -> String {
        self.inner.to_dot(title)
    }

    /// The EAP-IG/MIB JSON.
    fn to_json(&self) -> String {
        self.inner.to_json_string()
    }

    /// Writes the circuit as `.json`, `.dot` or the `.html` page, or draws it as `.svg`, `.pdf` or
    /// `.png`, chosen by the extension (atomically).
    #[pyo3(signature = (path, title = "", compact = false, width = None, greyscale = false, group_heads = false, partition = None))]
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        path: &str,
        title: &str,
        compact: bool,
        width: Option<f64>,
        greyscale: bool,
        group_heads: bool,
        partition: Option<&str>,
    ) -> PyResult<()> {
        let p = Path::new(path);
        let text = match p.extension().and_then(|e| e.to_str()) {
            Some("json") => self.to_json(),
            Some("dot") => self.inner.to_dot(title),
            Some("html") => self.to_html(title, compact),
            Some("svg" | "pdf" | "png") => {
                return write_picture(p, &self.svg(title, (compact, width, greyscale, group_heads, partition))?).py()
            }
            _ => {
                return Err(err(anyhow::anyhow!(
                    "{path}: give a file name ending in .json, .dot, .html, .svg, .pdf or .png"
                )))
            }
        };
        circuitscope::fsutil::write_atomic(p, text.as_bytes()).py()
    }
}

/// Scores every edge of `model`'s graph on a data file: (scores, meta JSON, per-sample scores).
#[pyfunction]
#[pyo3(signature = (model, data, method, steps, metric, intervention, limit, batch_size, max_rows, qk_fix, mlp_fix, per_sample))]
#[allow(clippy::too_many_arguments)]
pub fn attribute<'py>(
    py: Python<'py>,
    model: &PyModel,
    data: &str,
    method: &str,
    steps: usize,
    metric: Option<&str>,
    intervention: Option<&str>,
    limit: Option<usize>,
    batch_size: usize,
    max_rows: usize,
    qk_fix: bool,
    mlp_fix: bool,
    per_sample: bool,
) -> PyResult<(PyCircuit, String, Option<Array<'py>>)> {
    let method = Method::from_name(method, steps).py()?;
    if method.steps() == Some(0) || batch_size == 0 || max_rows == 0 {
        return Err(err(anyhow::anyhow!("steps, batch_size and max_rows must be at least 1")));
    }
    if (qk_fix || mlp_fix) && method == Method::Exact {
        return Err(err(anyhow::anyhow!(
            "qk_fix and mlp_fix apply to the gradient methods; exact patching needs no fix"
        )));
    }
    let d = read_data(model, data, limit, metric, intervention)?;
    let cfg = AttributionConfig {
        method,
        metric: d.metric,
        ablation: d.ablation,
        batch_size,
        per_sample,
        max_rows,
        fix: ReaderFix { qk: qk_fix, mlp: mlp_fix },
        ..Default::default()
    };
    let dec = model.decoder();
    let t = std::time::Instant::now();
    let result = py.detach(|| attribute_edges(dec, &d.examples, &cfg, &NoProgress)).py()?;
    let seconds = t.elapsed().as_secs_f64();
    let mut circuit = Circuit::empty(result.scores.clone()).with_d_model(dec.cfg.d_model);
    if let Some(nodes) = &result.node_scores {
        let mut nodes = nodes.clone();
        nodes.push(f32::NAN); // the logits node is not scored
        circuit.set_node_scores(Some(nodes));
    }
    let meta = to_json(&serde_json::json!({
        "method": method.name(), "steps": method.steps(), "metric": d.metric.name(),
        "intervention": d.intervention.name(), "data": data, "n_items": d.examples.len(),
        "clean_metric": result.clean_metric, "corrupted_metric": result.corrupted_metric,
        "passes": {"forwards": result.passes.forwards, "backwards": result.passes.backwards}, "seconds": seconds,
    }))?;
    let per_sample = result.per_sample.as_ref().map(|all| {
        let shape = result.scores.shape;
        let flat: Vec<f32> = all.iter().flat_map(|s| s.scores.iter().copied()).collect();
        vec_array(py, &flat, vec![all.len(), shape.n_fwd(), shape.n_bwd()])
    });
    Ok((PyCircuit { inner: circuit }, meta, per_sample))
}

/// Normalised faithfulness of each circuit on a data file, as JSON.
#[pyfunction]
#[pyo3(signature = (model, data, circuits, metric, intervention, limit, batch_size))]
#[allow(clippy::too_many_arguments)]
pub fn faithfulness(
    py: Python<'_>,
    model: &PyModel,
    data: &str,
    circuits: Vec<PyRef<'_, PyCircuit>>,
    metric: Option<&str>,
    intervention: Option<&str>,
    limit: Option<usize>,
    batch_size: usize,
) -> PyResult<String> {
    let d = read_data(model, data, limit, metric, intervention)?;
    for c in &circuits {
        check_graph(model, &c.inner)?;
    }
    let masks: Vec<Vec<bool>> = circuits.iter().map(|c| c.inner.edge_mask()).collect();
    let cfg = FaithfulnessConfig { metric: d.metric, ablation: d.ablation, batch_size: batch_size.max(1) };
    let dec = model.decoder();
    let f = py.detach(|| faithfulness_of(dec, &d.examples, &masks, &cfg, &NoProgress)).py()?;
    to_json(&serde_json::json!({
        "model": f.model, "corrupted": f.corrupted, "circuits": f.circuits, "normalised": f.normalised,
        "metric": d.metric.name(), "intervention": d.intervention.name(), "n_items": d.examples.len(),
    }))
}

/// Faithfulness of circuits re-selected from `scores` at increasing edge counts: (JSON with the
/// points, CPR and CMD, the curve's SVG).
#[pyfunction]
#[pyo3(signature = (model, data, scores, points, selection, target, metric, intervention, limit, batch_size, title))]
#[allow(clippy::too_many_arguments)]
pub fn faithfulness_curve(
    py: Python<'_>,
    model: &PyModel,
    data: &str,
    scores: &PyCircuit,
    points: Option<Vec<usize>>,
    selection: &str,
    target: f64,
    metric: Option<&str>,
    intervention: Option<&str>,
    limit: Option<usize>,
    batch_size: usize,
    title: &str,
) -> PyResult<(String, String)> {
    check_graph(model, &scores.inner)?;
    let selection = SweepSelection::from_name(selection).py()?;
    let n_edges = scores.inner.shape().n_edges();
    let points = points.unwrap_or_else(|| default_points(n_edges));
    if let Some(bad) = points.iter().find(|&&n| n == 0 || n > n_edges) {
        return Err(err(anyhow::anyhow!(
            "points: {bad} is out of range: the graph has {n_edges} edges (give 1 to {n_edges})"
        )));
    }
    let d = read_data(model, data, limit, metric, intervention)?;
    let cfg = FaithfulnessConfig { metric: d.metric, ablation: d.ablation, batch_size: batch_size.max(1) };
    let dec = model.decoder();
    let s = scores.inner.scores();
    let sweep = py.detach(|| faithfulness_sweep(dec, &d.examples, s, selection, &points, &cfg, &NoProgress)).py()?;
    let svg = LinePlot::faithfulness(title, vec![Series::new(selection.name(), sweep.curve())]).to_svg().py()?;
    Ok((to_json(&sweep.to_json(target))?, svg))
}

/// How far two score sets agree over every edge: (JSON: Spearman, Pearson, top-n overlaps, by
/// kind of edge; the rank-against-rank SVG).
#[pyfunction]
#[pyo3(signature = (a, b, tops, label_a, label_b))]
pub fn compare(
    a: &PyCircuit,
    b: &PyCircuit,
    tops: Option<Vec<usize>>,
    label_a: &str,
    label_b: &str,
) -> PyResult<(String, String)> {
    let (sa, sb) = (a.inner.scores(), b.inner.scores());
    let n = sa.shape.n_edges();
    let tops = tops.unwrap_or_else(|| vec![10.min(n), n.div_ceil(20), n.div_ceil(10)]);
    let g = agreement(sa, sb, &tops).py()?;
    let title = format!("Edge ranks: Spearman {:.3} (signed), {:.3} (|score|)", g.spearman, g.spearman_abs);
    let series: Vec<Series> =
        rank_pairs_by_writer(sa, sb, 5000).into_iter().map(|(kind, pairs)| Series::new(kind, pairs)).collect();
    let svg = LinePlot::scatter(
        title,
        format!("rank in {label_a} (fraction)"),
        format!("rank in {label_b} (fraction)"),
        series,
    )
    .to_svg()
    .py()?;
    Ok((to_json(&g)?, svg))
}

/// Writes a picture (SVG text) as `.svg`, `.pdf` or `.png`, chosen by the extension.
#[pyfunction]
pub fn save_picture(path: &str, svg: &str) -> PyResult<()> {
    write_picture(Path::new(path), svg).py()
}

/// A line or scatter plot of named series of (x, y) points, as SVG: the library's own chart.
#[pyfunction]
#[pyo3(signature = (title, x_label, y_label, series, scatter))]
pub fn line_plot_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: Vec<(String, Vec<(f64, f64)>)>,
    scatter: bool,
) -> PyResult<String> {
    let series: Vec<Series> = series.into_iter().map(|(n, p)| Series::new(n, p)).collect();
    if scatter {
        LinePlot::scatter(title, x_label, y_label, series).to_svg().py()
    } else {
        let mut p = LinePlot::new(title, x_label, y_label);
        p.series = series;
        p.to_svg().py()
    }
}

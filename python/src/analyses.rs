//! Unlearning and what unlearning research reads off circuits: unlearning runs, answer scores,
//! TOFU's evaluation, CUD, concept vectors and CURE's partition.

use crate::circuits::PyCircuit;
use crate::model::PyModel;
use crate::{err, to_json, OrPy};
use circuitscope::analyses::concepts::{self, ConceptTokens, FindOptions, ValidateOptions, ValueVector};
use circuitscope::analyses::cud::{anchor_circuit, distances, sample_circuits, CudSettings};
use circuitscope::analyses::cure::{module_scores, partition, CureSettings, Partition};
use circuitscope::attribution::{Example, Method as Attribution};
use circuitscope::data::{ExampleFile, PerturbedQa, QaPair};
use circuitscope::progress::NoProgress;
use circuitscope::unlearn::anchors::run_method;
use circuitscope::unlearn::answers::token_stats;
use circuitscope::unlearn::evaluate::{read_question_set, score_questions, ScoreOptions, TofuScores};
use circuitscope::unlearn::{needle_config, Method, UnlearnConfig, Unlearner};
use pyo3::prelude::*;
use std::path::Path;

/// A question/answer file as the model's prompts (its chat template, else `Question: …\nAnswer:`).
fn qa(model: &PyModel, path: &str, limit: Option<usize>) -> PyResult<(Vec<QaPair>, Vec<Example>)> {
    if limit == Some(0) {
        return Err(err(anyhow::anyhow!("limit must be at least 1")));
    }
    let mut f = ExampleFile::read(Path::new(path)).py()?;
    if let Some(n) = limit {
        f.truncate(n);
    }
    let examples = f.qa_examples_within(model.tokenizer()?, &model.format()?, model.decoder().cfg.n_ctx).py()?;
    let pairs = f.qa_pairs().map(<[QaPair]>::to_vec).unwrap_or_default();
    Ok((pairs, examples))
}

fn subset(examples: &[Example], indices: Option<Vec<usize>>, what: &str) -> PyResult<Vec<Example>> {
    let Some(idx) = indices else { return Ok(examples.to_vec()) };
    idx.iter()
        .map(|&i| {
            examples.get(i).cloned().ok_or_else(|| {
                err(anyhow::anyhow!("{what}: sample {i} is out of range (the set has {})", examples.len()))
            })
        })
        .collect()
}

/// Unlearns `forget` from `model` (keeping `retain` where the method has a retain term): the
/// unlearned model (in memory; `save` writes it) and the run's record as JSON.
#[pyfunction]
#[pyo3(signature = (model, forget, retain, method, limit, epochs, lr, batch, alpha, seed, needle, partition))]
#[allow(clippy::too_many_arguments)]
pub fn unlearn(
    py: Python<'_>,
    model: &PyModel,
    forget: &str,
    retain: Option<&str>,
    method: &str,
    limit: Option<usize>,
    epochs: Option<usize>,
    lr: Option<f64>,
    batch: Option<usize>,
    alpha: Option<f64>,
    seed: Option<u64>,
    needle: Option<(usize, usize, f64)>,
    partition: Option<&str>,
) -> PyResult<(PyModel, String)> {
    let m = Method::from_name(method).py()?;
    let mut cfg = UnlearnConfig::documented(m);
    cfg.epochs = epochs.unwrap_or(cfg.epochs);
    cfg.lr = lr.unwrap_or(cfg.lr);
    cfg.batch = batch.unwrap_or(cfg.batch);
    cfg.alpha = alpha.unwrap_or(cfg.alpha);
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.validate().py()?;
    if cfg.alpha > 0.0 && retain.is_none() {
        return Err(err(anyhow::anyhow!(
            "method {method} keeps a retain set (alpha = {}): give retain=…, or alpha=0",
            cfg.alpha
        )));
    }
    let (_, forget_ex) = qa(model, forget, limit)?;
    let retain_ex = match (retain, cfg.alpha > 0.0) {
        (Some(p), true) => qa(model, p, limit)?.1,
        _ => Vec::new(),
    };
    let reference = model.decoder();
    cfg.fit_rmu(reference, &forget_ex, None, None).py()?;
    let trainable = model.trainable()?;
    match (m, needle) {
        (Method::Needle, Some((layer, dim, sigma))) => {
            cfg = needle_config(&trainable, &cfg, layer, dim, sigma, cfg.seed).py()?;
        }
        (Method::Needle, None) => {
            return Err(err(anyhow::anyhow!("needle needs its value vector: needle=(layer, dim, sigma)")))
        }
        _ => {}
    }
    if m == Method::Cure {
        let text = partition.ok_or_else(|| err(anyhow::anyhow!("cure needs a partition (cure_partition(…))")))?;
        let p: Partition =
            serde_json::from_str(text).map_err(|e| err(anyhow::anyhow!("partition: not a CURE partition: {e}")))?;
        p.check_for(reference, "the partition").py()?;
        cfg.cure = Some(p.plan(&trainable, true).py()?);
    }
    let log = py
        .detach(|| -> circuitscope::Result<_> {
            let mut run = Unlearner::new(&trainable, Some(reference), &forget_ex, &retain_ex, &cfg)?;
            while run.step()?.is_some() {}
            Ok(run.log().to_vec())
        })
        .py()?;
    let record = to_json(&serde_json::json!({"method": method, "config": cfg, "steps": log,
        "forget": forget, "retain": retain, "seconds": log.last().map_or(0.0, |s| s.seconds)}))?;
    Ok((model.with_weights(trainable)?, record))
}

/// Per question/answer sample: the answer's mean NLL per token, its probability exp(−NLL), and
/// whether greedy decoding reproduces it exactly (teacher-forced argmax), as JSON.
#[pyfunction]
#[pyo3(signature = (model, data, limit, batch))]
pub fn answer_scores(
    py: Python<'_>,
    model: &PyModel,
    data: &str,
    limit: Option<usize>,
    batch: usize,
) -> PyResult<String> {
    let (pairs, examples) = qa(model, data, limit)?;
    let dec = model.decoder();
    let stats = py.detach(|| token_stats(dec, &examples, batch.max(1))).py()?;
    let rows: Vec<serde_json::Value> = stats
        .iter()
        .zip(&pairs)
        .map(|(s, p)| {
            let nll = s.mean_nll();
            serde_json::json!({"question": p.question, "answer": p.answer, "nll": nll, "probability": (-nll).exp(),
                "exact": s.argmax.iter().all(|&h| h), "tokens": s.len()})
        })
        .collect();
    to_json(&rows)
}

/// TOFU's evaluation of `model` (ALGORITHMS.md §9): JSON with the summary (forget quality against
/// `retain_model`, model utility, each set's aggregates, MIA AUCs, privleak) and every
/// question's scores.
#[pyfunction]
#[pyo3(signature = (model, forget, retain, real_authors, world_facts, holdout, retain_model, limit, max_new_tokens, batch))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_unlearning(
    py: Python<'_>,
    model: &PyModel,
    forget: &str,
    retain: &str,
    real_authors: Option<&str>,
    world_facts: Option<&str>,
    holdout: Option<&str>,
    retain_model: Option<&PyModel>,
    limit: Option<usize>,
    max_new_tokens: usize,
    batch: usize,
) -> PyResult<String> {
    let set = |p: &str, need_options: bool| read_question_set(Path::new(p), limit, need_options).py();
    let sets = (
        set(forget, true)?,
        set(retain, true)?,
        real_authors.map(|p| set(p, true)).transpose()?,
        world_facts.map(|p| set(p, true)).transpose()?,
    );
    let holdout = holdout.map(|p| set(p, false)).transpose()?;
    let (tok, format) = (model.tokenizer()?, model.format()?);
    let opts = ScoreOptions { batch: batch.max(1), max_new_tokens, generate: true };
    let forced = ScoreOptions { generate: false, ..opts.clone() };
    let score = |m: &PyModel, rows: &[PerturbedQa], o: &ScoreOptions| {
        score_questions(m.decoder(), tok, &format, rows, o, &NoProgress)
    };
    let scores = py
        .detach(|| -> circuitscope::Result<TofuScores> {
            Ok(TofuScores {
                forget: score(model, &sets.0, &opts)?,
                retain: score(model, &sets.1, &opts)?,
                real_authors: sets.2.as_deref().map(|r| score(model, r, &opts)).transpose()?,
                world_facts: sets.3.as_deref().map(|r| score(model, r, &opts)).transpose()?,
                holdout: holdout.as_deref().map(|r| score(model, r, &forced)).transpose()?,
                retain_model_forget: retain_model.map(|m| score(m, &sets.0, &forced)).transpose()?,
                retain_model_holdout: match (retain_model, &holdout) {
                    (Some(m), Some(h)) => Some(score(m, h, &forced)?),
                    _ => None,
                },
            })
        })
        .py()?;
    let questions: Vec<serde_json::Value> =
        scores.questions_jsonl().py()?.lines().map(serde_json::from_str).collect::<Result<_, _>>().py()?;
    to_json(&serde_json::json!({"summary": scores.summary().py()?, "questions": questions}))
}

/// One unlearning method run on the whole forget set from `model`'s weights, and the k samples it
/// forgets best (easy) and least (hard; k: a quarter of the set unless given): CUD's anchors
/// (ALGORITHMS.md §5), as JSON.
#[pyfunction]
#[pyo3(signature = (model, forget, retain, method, k, limit))]
pub fn anchor_run(
    py: Python<'_>,
    model: &PyModel,
    forget: &str,
    retain: Option<&str>,
    method: &str,
    k: Option<usize>,
    limit: Option<usize>,
) -> PyResult<String> {
    if model.modified() {
        return Err(err(anyhow::anyhow!("anchors start from a checkpoint: save this model and load the saved folder")));
    }
    let mut cfg = UnlearnConfig::documented(Method::from_name(method).py()?);
    let (_, forget_ex) = qa(model, forget, limit)?;
    let retain_ex = match (retain, cfg.alpha > 0.0) {
        (Some(p), true) => qa(model, p, limit)?.1,
        (None, true) => return Err(err(anyhow::anyhow!("method {method} keeps a retain set: give retain=…"))),
        _ => Vec::new(),
    };
    let k = k.unwrap_or((forget_ex.len() / 4).max(1));
    if k == 0 || k > forget_ex.len() {
        return Err(err(anyhow::anyhow!("k {k}: give 1 to {}, the forget set's samples", forget_ex.len())));
    }
    let dec = model.decoder();
    cfg.fit_rmu(dec, &forget_ex, None, None).py()?;
    let path = model.base.path.clone();
    let run = py.detach(|| run_method(&path, dec, method, &forget_ex, &retain_ex, &cfg, k, &NoProgress)).py()?;
    to_json(&run)
}

/// Both consensus sets of the methods' easy and hard sets, less the contested samples (in both),
/// returned third: `(easy, hard, contested)`.
#[pyfunction]
pub fn anchor_consensus_sets(easy: Vec<Vec<usize>>, hard: Vec<Vec<usize>>) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (easy, hard): (Vec<&[usize]>, Vec<&[usize]>) =
        (easy.iter().map(Vec::as_slice).collect(), hard.iter().map(Vec::as_slice).collect());
    let c = circuitscope::unlearn::anchors::Consensus::of_sets(&easy, &hard);
    (c.easy, c.hard, c.contested)
}

fn cud_settings(edges: usize, method: &str, steps: usize, batch: usize) -> PyResult<CudSettings> {
    let method = Attribution::from_name(method, steps).py()?;
    Ok(CudSettings { method, edges, batch: batch.max(1), ..Default::default() })
}

/// Circuits of forget samples (`indices`; all by default): with `joint`, one anchor circuit of
/// them all (attributed jointly); else each sample's own (per-sample attribution). Greedy `edges`.
#[pyfunction]
#[pyo3(signature = (model, forget, indices, limit, edges, method, steps, batch, joint))]
#[allow(clippy::too_many_arguments)]
pub fn cud_circuits(
    py: Python<'_>,
    model: &PyModel,
    forget: &str,
    indices: Option<Vec<usize>>,
    limit: Option<usize>,
    edges: usize,
    method: &str,
    steps: usize,
    batch: usize,
    joint: bool,
) -> PyResult<Vec<PyCircuit>> {
    let s = cud_settings(edges, method, steps, batch)?;
    let samples = subset(&qa(model, forget, limit)?.1, indices, "indices")?;
    let dec = model.decoder();
    let circuits = py
        .detach(|| match joint {
            true => anchor_circuit(dec, &samples, &s, &NoProgress).map(|c| vec![c]),
            false => sample_circuits(dec, &samples, &s, &NoProgress),
        })
        .py()?;
    Ok(circuits.into_iter().map(|c| PyCircuit { inner: c.with_d_model(dec.cfg.d_model) }).collect())
}

/// A sample circuit's CUD against the easy and hard anchor circuits (weighted edge vectors,
/// cosine), as JSON {cud, d_easy, d_hard}.
#[pyfunction]
pub fn cud_distances(sample: &PyCircuit, easy: &PyCircuit, hard: &PyCircuit) -> PyResult<String> {
    to_json(&distances(&sample.inner, &easy.inner, &hard.inner, &CudSettings::default()).py()?)
}

/// The value vectors whose unembedding projection ranks `terms`' tokens highest, best first, as
/// JSON.
#[pyfunction]
#[pyo3(signature = (model, terms, candidates))]
pub fn concept_find(py: Python<'_>, model: &PyModel, terms: &str, candidates: usize) -> PyResult<String> {
    let tok = model.tokenizer()?;
    let concept = ConceptTokens::from_terms(tok, terms).py()?;
    let opts = FindOptions { candidates, ..Default::default() };
    let dec = model.decoder();
    to_json(&py.detach(|| concepts::find(dec, Some(tok), &concept, &opts, &NoProgress)).py()?)
}

/// Noise validation of value vector (`layer`, `dim`): the edited model's answers against the
/// original's on the concept's questions and on unrelated ones, as JSON.
#[pyfunction]
#[pyo3(signature = (model, layer, dim, concept_questions, unrelated_questions, sigma, seeds, max_new_tokens, template))]
#[allow(clippy::too_many_arguments)]
pub fn concept_validate(
    py: Python<'_>,
    model: &PyModel,
    layer: usize,
    dim: usize,
    concept_questions: Vec<String>,
    unrelated_questions: Vec<String>,
    sigma: f64,
    seeds: Vec<u64>,
    max_new_tokens: usize,
    template: String,
) -> PyResult<String> {
    let tok = model.tokenizer()?;
    let opts = ValidateOptions { sigma, seeds, max_new_tokens, template };
    let dec = model.decoder();
    let vv = ValueVector { layer, dim };
    let v = py
        .detach(|| concepts::validate(dec, tok, vv, &concept_questions, &unrelated_questions, &opts, &NoProgress))
        .py()?;
    to_json(&v)
}

/// The value vectors of `before` against `after` (cosine, L2, top-200 Jaccard, the concept's
/// tokens kept), as JSON.
#[pyfunction]
#[pyo3(signature = (before, after, vectors, terms))]
pub fn concept_audit(
    before: &PyModel,
    after: &PyModel,
    vectors: Vec<(usize, usize)>,
    terms: Option<&str>,
) -> PyResult<String> {
    let concept = terms.map(|t| ConceptTokens::from_terms(before.tokenizer()?, t).py()).transpose()?;
    let vectors: Vec<ValueVector> = vectors.into_iter().map(|(layer, dim)| ValueVector { layer, dim }).collect();
    to_json(&concepts::audit(before.decoder(), after.decoder(), &vectors, concept.as_ref()).py()?)
}

/// CURE's partition of the heads and MLPs (forget-specific, retain-specific, task-shared,
/// outside): (JSON as `circuitscope cure` writes it, its SVG).
#[pyfunction]
#[pyo3(signature = (model, forget, retain, limit, method, steps, threshold, top_k, contrast, permutations, batch, title))]
#[allow(clippy::too_many_arguments)]
pub fn cure_partition(
    py: Python<'_>,
    model: &PyModel,
    forget: &str,
    retain: &str,
    limit: Option<usize>,
    method: String,
    steps: usize,
    threshold: f64,
    top_k: Option<usize>,
    contrast: Option<f64>,
    permutations: usize,
    batch: usize,
    title: &str,
) -> PyResult<(String, String)> {
    let s = CureSettings { method, steps, threshold, top_k, contrast, permutations, batch: batch.max(1) };
    s.validate().py()?;
    let (f, r) = (qa(model, forget, limit)?.1, qa(model, retain, limit)?.1);
    let dec = model.decoder();
    let p = py
        .detach(|| -> circuitscope::Result<_> {
            let (fs, rs) = (module_scores(dec, &f, &s, &NoProgress)?, module_scores(dec, &r, &s, &NoProgress)?);
            partition(dec, &fs, &rs, &s)
        })
        .py()?;
    Ok((to_json(&p)?, circuitscope::render::cure_svg::cure_svg(&p, title)))
}

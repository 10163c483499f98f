//! `circuitscope cure-sweep`: CURE against grad-diff, NPO and SimNPO at matched forgetting.
//! Each method's strength (its learning rate, a multiple of its documented one) is swept; every
//! run is measured on the forget set, the retain set and the world facts, with TOFU's model
//! utility and the share of parameters it changed; utility is compared where the methods forget
//! equally (interpolated).

use super::common::check_output_dir;
use super::eval_unlearning::read_with_options;
use super::model::load;
use super::progress::bar;
use super::unlearn::{measure_set, qa_file};
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::fsutil::write_atomic;
use circuitscope::render::{LinePlot, Series};
use circuitscope::train::params::Trainable;
use circuitscope::unlearn::evaluate::{model_utility, score_questions, ScoreOptions, SetKind, SetSummary};
use circuitscope::unlearn::{unlearn, Method, UnlearnConfig};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CureSweepArgs {
    /// the model (default: the bundled models/world-gpt2)
    pub model: Option<PathBuf>,
    /// the world folder (forget10, retain90 and world.jsonl; default: the bundled circuits/world)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// a partition to use (default: `cure` on 100 forget and 100 retain answers, --top-k)
    #[arg(long)]
    pub partition: Option<PathBuf>,
    /// the default partition's core: each set's k highest modules
    #[arg(long, default_value_t = 7)]
    pub top_k: usize,
    /// multiples of each method's documented learning rate, comma-separated
    #[arg(long, default_value = "0.5,1,2,4")]
    pub strengths: String,
    /// forget the first N answers of forget10 only
    #[arg(long)]
    pub limit: Option<usize>,
    /// retain answers in the retain loss (the first N of retain90)
    #[arg(long, default_value_t = 200)]
    pub retain: usize,
    /// the forget answer probability at which the methods are compared
    #[arg(long, default_value_t = 0.5)]
    pub at: f64,
    /// the report folder: sweep.json, tradeoff.svg (forget probability against model utility),
    /// partition.json
    #[arg(long, default_value = "cure-sweep")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
}

#[derive(Serialize)]
struct RunRecord {
    method: String,
    strength: f64,
    lr: f64,
    /// exp(−NLL per token) of the forget answers: their geometric-mean token probability
    forget_probability: f64,
    forget_exact: f64,
    retain_exact: f64,
    world_exact: f64,
    /// TOFU's model utility (retain, real authors, world facts: probability, ROUGE-L, truth ratio)
    model_utility: f64,
    /// the share of the model's parameter entries the run changed
    changed: f64,
}

pub fn run(a: &CureSweepArgs) -> Result<()> {
    a.pictures.format()?;
    let strengths = parse_strengths(&a.strengths)?;
    if !(0.0..=1.0).contains(&a.at) {
        bail!("--at {}: give a probability in [0, 1]", a.at);
    }
    check_output_dir(&a.out, a.force)?;
    let model_path = a.model.clone().unwrap_or_else(|| super::demo::bundled("models/world-gpt2"));
    let data = a.data.clone().unwrap_or_else(|| super::demo::bundled("circuits/world"));
    let (model, _) = load(&model_path, DType::F32)?;
    let format = super::model::prompt_format(&model, None)?;
    let (_, forget) = qa_file(&data.join("forget10.jsonl"), a.limit, &model, &format)?;
    let (_, retain) = qa_file(&data.join("retain90.jsonl"), Some(a.retain), &model, &format)?;
    let (_, retain_eval) = qa_file(&data.join("retain90.jsonl"), Some(a.retain * 2), &model, &format)?;
    if retain_eval.len() <= a.retain {
        bail!(
            "{}: {} records leave none beyond the first {} (the retain loss's) to measure",
            data.join("retain90.jsonl").display(),
            retain_eval.len(),
            a.retain
        );
    }
    let retain_eval = &retain_eval[a.retain..];
    let (_, world) = qa_file(&data.join("world.jsonl"), None, &model, &format)?;
    let utility_sets: Vec<(Vec<circuitscope::data::PerturbedQa>, PathBuf, SetKind)> = [
        ("retain_perturbed.jsonl", SetKind::Retain),
        ("real_authors_perturbed.jsonl", SetKind::Options),
        ("world_facts_perturbed.jsonl", SetKind::Options),
    ]
    .into_iter()
    .map(|(f, kind)| Ok((read_with_options(&data.join(f), None)?, data.join(f), kind)))
    .collect::<Result<_>>()?;
    let dec = &model.decoder;

    let part = super::cure::partition_or(
        dec,
        a.partition.as_deref(),
        a.top_k,
        &forget[..100.min(forget.len())],
        &retain[..100.min(retain.len())],
    )?;
    let counts = super::cure::partition_counts(&part);

    let original = Trainable::load(&model.path, dec.device())?;
    let total: usize = original.vars.values().map(|v| v.elem_count()).sum();
    let before: Vec<(String, Vec<f32>)> = original
        .vars
        .iter()
        .map(|(n, v)| Ok((n.clone(), v.as_tensor().flatten_all()?.to_vec1()?)))
        .collect::<Result<_>>()?;
    let opts = ScoreOptions { batch: 8, max_new_tokens: 200, generate: true };
    let tok = model.tokenizer()?;
    let utility = |d: &circuitscope::model::Decoder| -> Result<f64> {
        let s: Vec<SetSummary> = utility_sets
            .iter()
            .map(|(items, path, kind)| {
                let pb = bar(0, "model utility");
                let scores = score_questions(d, tok, &format, items, &opts, &pb)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                pb.finish_and_clear();
                Ok(SetSummary::of(&scores, *kind))
            })
            .collect::<Result<_>>()?;
        Ok(model_utility(&s[0], &s[1], &s[2]).1)
    };
    let measure = |d: &circuitscope::model::Decoder| -> Result<(f64, f64, f64, f64, f64)> {
        let (nll, fx) = measure_set(d, &forget, 8)?;
        Ok(((-nll).exp(), fx, measure_set(d, retain_eval, 8)?.1, measure_set(d, &world, 8)?.1, utility(d)?))
    };
    let (p0, fx0, rx0, wx0, mu0) = measure(dec)?;
    println!(
        "before: forget probability {p0:.3}, forget exact {:.1} %, retain exact {:.1} %, world exact {:.1} %, model \
         utility {mu0:.3}",
        100.0 * fx0,
        100.0 * rx0,
        100.0 * wx0
    );
    let mut runs = Vec::new();
    for method in [Method::Cure, Method::GradDiff, Method::Npo, Method::SimNpo] {
        for &k in &strengths {
            let t = Trainable::load(&model.path, dec.device())?;
            let base = UnlearnConfig::documented(method);
            let mut cfg = UnlearnConfig { lr: base.lr * k, ..base };
            if method == Method::Cure {
                cfg.cure = Some(part.plan(&t, true)?);
            }
            let pb = bar(0, &format!("{} × {k}", method.name()));
            unlearn(&t, Some(dec), &forget, &retain, &cfg, &pb)?;
            pb.finish_and_clear();
            let (p, fx, rx, wx, mu) = measure(&t.decoder()?)?;
            let mut changed = 0usize;
            for (n, old) in &before {
                let now: Vec<f32> = t.vars[n].as_tensor().flatten_all()?.to_vec1()?;
                changed += old.iter().zip(&now).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
            }
            let r = RunRecord {
                method: method.name().into(),
                strength: k,
                lr: cfg.lr,
                forget_probability: p,
                forget_exact: fx,
                retain_exact: rx,
                world_exact: wx,
                model_utility: mu,
                changed: changed as f64 / total as f64,
            };
            println!(
                "{:<9} × {k:<4} forget p {:.3}, exact {:>5.1} % | retain exact {:>5.1} % | world exact {:>5.1} % | utility \
                 {:.3} | changed {:.2} %",
                r.method,
                r.forget_probability,
                100.0 * r.forget_exact,
                100.0 * r.retain_exact,
                100.0 * r.world_exact,
                r.model_utility,
                100.0 * r.changed
            );
            runs.push(r);
        }
    }
    // each method's retain and world accuracy and model utility at forget probability `at`,
    // interpolated between the two runs around it
    let mut matched = Vec::new();
    for m in ["cure", "grad-diff", "npo", "simnpo"] {
        let mut pts: Vec<&RunRecord> = runs.iter().filter(|r| r.method == m).collect();
        pts.sort_by(|x, y| x.forget_probability.total_cmp(&y.forget_probability));
        let around = pts.windows(2).find(|w| w[0].forget_probability <= a.at && a.at <= w[1].forget_probability);
        let at = around.map(|w| {
            let span = w[1].forget_probability - w[0].forget_probability;
            let t = if span > 0.0 { (a.at - w[0].forget_probability) / span } else { 0.0 };
            let lerp = |f: fn(&RunRecord) -> f64| f(w[0]) + t * (f(w[1]) - f(w[0]));
            (lerp(|r| r.retain_exact), lerp(|r| r.world_exact), lerp(|r| r.model_utility))
        });
        match at {
            Some((rx, wx, mu)) => println!(
                "at forget probability {}: {m:<9} retain exact {:.1} %, world exact {:.1} %, model utility {mu:.3}",
                a.at,
                100.0 * rx,
                100.0 * wx
            ),
            None => println!("at forget probability {}: {m:<9} not reached by the sweep", a.at),
        }
        matched.push(serde_json::json!({
            "method": m, "retain_exact": at.map(|x| x.0), "world_exact": at.map(|x| x.1), "model_utility": at.map(|x| x.2),
        }));
    }
    let mut plot = LinePlot::new(
        "Forgetting against utility on the bundled world (forget10)",
        "forget answer probability exp(−NLL/token) (lower = more forgotten)",
        "model utility (TOFU)",
    );
    plot.lines = true;
    plot.series = ["cure", "grad-diff", "npo", "simnpo"]
        .iter()
        .map(|m| {
            let mut pts: Vec<(f64, f64)> =
                runs.iter().filter(|r| r.method == *m).map(|r| (r.forget_probability, r.model_utility)).collect();
            pts.sort_by(|x, y| x.0.total_cmp(&y.0));
            Series::new(*m, pts)
        })
        .collect();
    let record = serde_json::json!({
        "model": model_path,
        "before": { "forget_probability": p0, "forget_exact": fx0, "retain_exact": rx0, "world_exact": wx0, "model_utility": mu0 },
        "partition_counts": counts, "runs": runs, "matched_at": a.at, "matched": matched,
    });
    let pictures = a.pictures.convert(vec![(a.out.join("tradeoff.svg"), plot.to_svg()?.into_bytes())])?;
    std::fs::create_dir_all(&a.out)?;
    write_atomic(&a.out.join("sweep.json"), (serde_json::to_string_pretty(&record)? + "\n").as_bytes())?;
    for (path, bytes) in &pictures {
        write_atomic(path, bytes)?;
    }
    write_atomic(&a.out.join("partition.json"), (serde_json::to_string_pretty(&part)? + "\n").as_bytes())?;
    println!("wrote {}", a.out.display());
    Ok(())
}

/// `--strengths`: comma-separated positive multiples of a method's documented learning rate.
pub(super) fn parse_strengths(text: &str) -> Result<Vec<f64>> {
    let strengths: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>().map_err(|_| anyhow::anyhow!("--strengths {text}: expected numbers")))
        .collect::<Result<_>>()?;
    if strengths.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
        bail!("--strengths {text}: each must be a positive number");
    }
    Ok(strengths)
}

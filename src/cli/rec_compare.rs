//! `circuitscope rec-compare`: CURE in its own setting. The forget readers of a recommendation
//! world are unlearned from the recommender trained on every reader, by CURE and by the
//! baselines applied to all parameters (grad-ascent, grad-diff, NPO, and PCGrad: CURE's
//! objectives without its partition), each swept over its strength. Every run is measured as
//! recommender-unlearning papers measure it (`eval-rec`): utility on the retained readers' test
//! interactions; forgetting against the model retrained without the forget readers. The methods
//! are compared at matched forgetting: where the forget readers' AUC falls to the retrained
//! model's, interpolated between the two runs around it.

use super::common::check_output_dir;
use super::model::load;
use super::progress::bar;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::data::{Example, PromptFormat};
use circuitscope::fsutil::write_atomic;
use circuitscope::model::{Decoder, Model};
use circuitscope::render::{LinePlot, Series};
use circuitscope::train::params::Trainable;
use circuitscope::unlearn::cure::CurePlan;
use circuitscope::unlearn::recommend::{forgetting, read_interactions, utility, yes_probability, Forgetting, Utility};
use circuitscope::unlearn::{unlearn, Method, UnlearnConfig};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct RecCompareArgs {
    /// the recommender trained on every reader [default: the bundled models/rec-gpt2-tuned]
    pub model: Option<PathBuf>,
    /// the recommender retrained without the forget readers [default: the bundled
    /// models/rec-gpt2-tuned-retain95]
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// the recommendation world [default: the bundled circuits/rec-world]
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// the forget readers: forget01 or forget05 (the reference must be retrained without them)
    #[arg(long, default_value = "forget05")]
    pub forget: String,
    /// the retained readers' training interactions in the retain loss and the partition's retain
    /// set (the first N of the world's retain file)
    #[arg(long, default_value_t = 240)]
    pub retain: usize,
    /// a partition to use (default: `cure` on the forget and retain interactions, --top-k)
    #[arg(long)]
    pub partition: Option<PathBuf>,
    /// the default partition's core: each set's k highest modules
    #[arg(long, default_value_t = 7)]
    pub top_k: usize,
    /// multiples of each method's documented learning rate, comma-separated
    #[arg(long, default_value = "0.3,1,3,10")]
    pub strengths: String,
    /// the forget readers' AUC at which the methods are compared [default: the retrained
    /// model's]
    #[arg(long)]
    pub at: Option<f64>,
    /// the report folder: compare.json, table.md, tradeoff.svg, partition.json
    #[arg(long, default_value = "rec-compare")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
}

/// One model's recommendation figures.
#[derive(Clone, Copy, Debug, Serialize)]
struct Measured {
    /// the retained readers' test interactions
    utility: Utility,
    /// the forget readers' training interactions against the retrained model
    forgetting: Forgetting,
}

#[derive(Serialize)]
struct RunRecord {
    method: String,
    strength: f64,
    lr: f64,
    /// wall-clock seconds of the unlearning run
    seconds: f64,
    measured: Measured,
}

/// The methods compared: (name, the loop's method, whether the update is PCGrad over the whole
/// model). CURE and PCGrad share NPO's forget objective and the retain NLL.
const METHODS: [(&str, Method, bool); 5] = [
    ("cure", Method::Cure, false),
    ("pcgrad", Method::Cure, true),
    ("grad-ascent", Method::GradAscent, false),
    ("grad-diff", Method::GradDiff, false),
    ("npo", Method::Npo, false),
];

/// A file's interactions, as examples answered with their label, and their Yes/No pairs.
pub(super) struct Interactions {
    pub(super) answered: Vec<Example>,
    pairs: Vec<[Example; 2]>,
    labels: Vec<bool>,
}

pub(super) fn interactions(
    model: &Model,
    format: &PromptFormat,
    file: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Interactions> {
    let f = read_interactions(file, model.tokenizer()?, format, model.cfg().n_ctx)?;
    let kept: Vec<usize> = (0..f.rows.len()).filter(|&i| keep(&f.rows[i].reader)).collect();
    if kept.is_empty() {
        bail!("{}: no interaction of the readers asked for", file.display());
    }
    Ok(Interactions {
        answered: kept.iter().map(|&i| f.pairs[i][usize::from(!f.labels[i])].clone()).collect(),
        pairs: kept.iter().map(|&i| f.pairs[i].clone()).collect(),
        labels: kept.iter().map(|&i| f.labels[i]).collect(),
    })
}

/// A forget reader the model was trained on, by its card ([`super::train_rec::card_left_out`]);
/// none when the card says nothing (no card, or a malformed one, is no evidence either way).
fn trained_on_forget_reader(model: &Path, forget: &BTreeSet<String>) -> Option<String> {
    let left_out = super::train_rec::card_left_out(model).ok()?.map(|l| l.1).unwrap_or_default();
    forget.iter().find(|r| !left_out.contains(r.as_str())).cloned()
}

/// A model card's training time (`training.json`'s seconds, with its rec-tuning's), if it has
/// one.
fn training_seconds(model: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(model.join("training.json")).ok()?;
    let log = serde_json::from_str::<serde_json::Value>(&text).ok()?;
    Some(log["seconds"].as_f64()? + log["rec_tune"]["seconds"].as_f64().unwrap_or(0.0))
}

pub fn run(a: &RecCompareArgs) -> Result<()> {
    a.pictures.format()?;
    let strengths = super::cure_sweep::parse_strengths(&a.strengths)?;
    if let Some(at) = a.at {
        if !(0.0..=1.0).contains(&at) {
            bail!("--at {at}: an AUC lies in [0, 1]");
        }
    }
    if a.retain == 0 {
        bail!("--retain must be at least 1");
    }
    check_output_dir(&a.out, a.force)?;
    let model_path = a.model.clone().unwrap_or_else(|| super::demo::bundled("models/rec-gpt2-tuned"));
    let reference_path = a.reference.clone().unwrap_or_else(|| super::demo::bundled("models/rec-gpt2-tuned-retain95"));
    let world = a.world.clone().unwrap_or_else(|| super::demo::bundled("circuits/rec-world"));
    let forget: BTreeSet<String> = circuitscope::world::recommend::forget_readers(&world, &a.forget)
        .with_context(|| format!("--forget {}", a.forget))?;
    let retain_file = world.join(if a.forget == "forget01" { "retain99.jsonl" } else { "retain95.jsonl" });

    let (model, _) = load(&model_path, DType::F32)?;
    let (reference, _) = load(&reference_path, DType::F32)?;
    let vocabulary = |m: &Path| std::fs::read(m.join("tokenizer.json")).ok();
    if vocabulary(&model.path) != vocabulary(&reference.path) {
        bail!(
            "{} and {} have different vocabularies: the reference must be retrained with the original's tokenizer \
             (`train --tokenizer`)",
            model_path.display(),
            reference_path.display()
        );
    }
    if let Some(seen) = trained_on_forget_reader(&reference.path, &forget) {
        bail!(
            "{}: its model card says it was trained on {seen}, a reader of {}; the reference must be retrained \
             without every forget reader (`train --without {}`)",
            reference_path.display(),
            a.forget,
            a.forget
        );
    }
    let format = PromptFormat::parse("{question} Answer:")?;
    let train = world.join("train.jsonl");
    let forget_set = interactions(&model, &format, &train, |r| forget.contains(r))?;
    let retain_all = interactions(&model, &format, &retain_file, |r| !forget.contains(r))?;
    let retain: Vec<Example> = retain_all.answered.into_iter().take(a.retain).collect();
    let test = interactions(&model, &format, &world.join("test.jsonl"), |r| !forget.contains(r))?;
    println!(
        "{} forget readers ({}): {} training interactions; retain loss on {} of the others'; utility on {} test \
         interactions",
        forget.len(),
        a.forget,
        forget_set.answered.len(),
        retain.len(),
        test.labels.len()
    );

    let p_reference = yes_probability(&reference.decoder, &forget_set.pairs, a.batch)?;
    let measure = |d: &Decoder| -> Result<Measured> {
        let p = yes_probability(d, &test.pairs, a.batch)?;
        let pf = yes_probability(d, &forget_set.pairs, a.batch)?;
        Ok(Measured {
            utility: utility(&p, &test.labels)?,
            forgetting: forgetting(&pf, &p_reference, &forget_set.labels)?,
        })
    };
    let original = measure(&model.decoder)?;
    let retrained = measure(&reference.decoder)?;
    let target = a.at.unwrap_or(retrained.forgetting.auc);
    let show = |name: &str, m: &Measured, seconds: Option<f64>| {
        println!(
            "{name:<22} forget AUC {:.3} | JS {:.4} KL {:.4} | retained AUC {:.3} acc {:.3} log loss {:.3}{}",
            m.forgetting.auc,
            m.forgetting.js,
            m.forgetting.kl,
            m.utility.auc,
            m.utility.accuracy,
            m.utility.log_loss,
            seconds.map_or(String::new(), |s| format!(" | {s:.1} s"))
        )
    };
    show("original", &original, None);
    show("retrained (reference)", &retrained, training_seconds(&reference_path));

    let dec = &model.decoder;
    let part = super::cure::partition_or(dec, a.partition.as_deref(), a.top_k, &forget_set.answered, &retain)?;
    let counts = super::cure::partition_counts(&part);
    super::cure::print_partition(&part);

    let mut runs = Vec::new();
    for (name, method, pcgrad) in METHODS {
        for &k in &strengths {
            let t = Trainable::load(&model.path, dec.device())?;
            let base = UnlearnConfig::documented(method);
            let mut cfg = UnlearnConfig { lr: base.lr * k, ..base };
            cfg.cure = match (method, pcgrad) {
                (Method::Cure, true) => Some(CurePlan::pcgrad(&t.vars)),
                (Method::Cure, false) => Some(part.plan(&t, true)?),
                _ => None,
            };
            let pb = bar(0, &format!("{name} × {k}"));
            let start = std::time::Instant::now();
            unlearn(&t, Some(dec), &forget_set.answered, &retain, &cfg, &pb)?;
            let seconds = start.elapsed().as_secs_f64();
            pb.finish_and_clear();
            let r =
                RunRecord { method: name.into(), strength: k, lr: cfg.lr, seconds, measured: measure(&t.decoder()?)? };
            show(&format!("{name} × {k}"), &r.measured, Some(seconds));
            runs.push(r);
        }
    }

    let matched: Vec<Matched> = METHODS.iter().map(|(name, ..)| Matched::of(name, &original, &runs, target)).collect();
    let closest: Vec<&RunRecord> = METHODS
        .iter()
        .filter_map(|(name, ..)| {
            runs.iter()
                .filter(|r| r.method == *name)
                .min_by(|x, y| x.measured.forgetting.js.total_cmp(&y.measured.forgetting.js))
        })
        .collect();
    let table = table(&original, &retrained, training_seconds(&reference_path), &matched, target, &a.forget)
        + &closest_table(&closest);
    println!("\n{table}");
    let mut plot = LinePlot::new(
        format!("Unlearning {} of {} readers from the recommender", forget.len(), a.forget),
        "forget readers' AUC (their training interactions; the retrained model's is the goal)",
        "retained readers' test AUC",
    );
    plot.series = METHODS
        .iter()
        .map(|(name, ..)| {
            let pts =
                runs.iter().filter(|r| r.method == *name).map(|r| (r.measured.forgetting.auc, r.measured.utility.auc));
            Series::new(*name, pts.collect())
        })
        .chain([
            Series::new("original", vec![(original.forgetting.auc, original.utility.auc)]),
            Series::new("retrained", vec![(retrained.forgetting.auc, retrained.utility.auc)]),
        ])
        .collect();
    let record = serde_json::json!({
        "model": model_path, "reference": reference_path, "world": world, "forget": a.forget,
        "forget_readers": forget, "retain_interactions": retain.len(), "strengths": strengths,
        "original": original, "retrained": retrained, "retrained_seconds": training_seconds(&reference_path),
        "partition_counts": counts, "runs": runs, "matched_at_forget_auc": target, "matched": matched,
    });
    let pictures = a.pictures.convert(vec![(a.out.join("tradeoff.svg"), plot.to_svg()?.into_bytes())])?;
    std::fs::create_dir_all(&a.out)?;
    write_atomic(&a.out.join("compare.json"), (serde_json::to_string_pretty(&record)? + "\n").as_bytes())?;
    write_atomic(&a.out.join("table.md"), table.as_bytes())?;
    write_atomic(&a.out.join("partition.json"), (serde_json::to_string_pretty(&part)? + "\n").as_bytes())?;
    for (path, bytes) in &pictures {
        write_atomic(path, bytes)?;
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

/// A method at matched forgetting: its figures interpolated (in the order of its strengths, the
/// original model standing at strength 0) between the two runs whose forget AUCs lie around the
/// target; none if no two do.
#[derive(Serialize)]
struct Matched {
    method: String,
    /// the strength the interpolation lands on
    strength: Option<f64>,
    js: Option<f64>,
    kl: Option<f64>,
    auc: Option<f64>,
    accuracy: Option<f64>,
    log_loss: Option<f64>,
    seconds: Option<f64>,
    /// the forget AUCs the sweep spanned (from its weakest to its strongest run)
    spanned: (f64, f64),
}

impl Matched {
    fn of(name: &str, original: &Measured, runs: &[RunRecord], target: f64) -> Matched {
        let start = RunRecord { method: name.into(), strength: 0.0, lr: 0.0, seconds: 0.0, measured: *original };
        let pts: Vec<&RunRecord> = std::iter::once(&start).chain(runs.iter().filter(|r| r.method == name)).collect();
        let auc = |r: &RunRecord| r.measured.forgetting.auc;
        let around = pts.windows(2).find(|w| (auc(w[0]) - target) * (auc(w[1]) - target) <= 0.0);
        let lerp = |f: &dyn Fn(&RunRecord) -> f64| -> Option<f64> {
            around.map(|w| {
                let span = auc(w[1]) - auc(w[0]);
                let t = if span != 0.0 { (target - auc(w[0])) / span } else { 0.0 };
                f(w[0]) + t * (f(w[1]) - f(w[0]))
            })
        };
        Matched {
            method: name.into(),
            strength: lerp(&|r| r.strength),
            js: lerp(&|r| r.measured.forgetting.js),
            kl: lerp(&|r| r.measured.forgetting.kl),
            auc: lerp(&|r| r.measured.utility.auc),
            accuracy: lerp(&|r| r.measured.utility.accuracy),
            log_loss: lerp(&|r| r.measured.utility.log_loss),
            seconds: lerp(&|r| r.seconds),
            spanned: (pts.first().map_or(f64::NAN, |r| auc(r)), pts.last().map_or(f64::NAN, |r| auc(r))),
        }
    }
}

/// Each method's run closest to the retrained model (the lowest JS on the forget readers), as a
/// Markdown table.
fn closest_table(closest: &[&RunRecord]) -> String {
    let mut s =
        "\nEach method's run closest to the retrained model (lowest JS on the forget readers):\n\n| method | lr \
                 multiple | forget AUC | JS ↓ | KL ↓ | retained AUC ↑ | accuracy ↑ | log loss ↓ | time (s) |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            .to_string();
    for r in closest {
        let (f, u) = (&r.measured.forgetting, &r.measured.utility);
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {:.1} |\n",
            r.method, r.strength, f.auc, f.js, f.kl, u.auc, u.accuracy, u.log_loss, r.seconds
        ));
    }
    s
}

/// The comparison as a Markdown table: the original, the retrained reference, and each method
/// at matched forgetting.
fn table(
    original: &Measured,
    retrained: &Measured,
    retrain_seconds: Option<f64>,
    matched: &[Matched],
    target: f64,
    forget: &str,
) -> String {
    let f = |x: Option<f64>, d: usize| x.map_or("–".to_string(), |v| format!("{v:.d$}"));
    let mut s = format!(
        "Forget set `{forget}`; methods compared where the forget readers' AUC is {target:.3}.\n\n| model | lr multiple | forget \
         AUC | JS ↓ | KL ↓ | retained AUC ↑ | accuracy ↑ | log loss ↓ | time (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let row = |name: &str, m: &Measured, seconds: Option<f64>| {
        format!(
            "| {name} | – | {:.3} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {} |\n",
            m.forgetting.auc,
            m.forgetting.js,
            m.forgetting.kl,
            m.utility.auc,
            m.utility.accuracy,
            m.utility.log_loss,
            f(seconds, 0)
        )
    };
    s.push_str(&row("original (no unlearning)", original, None));
    s.push_str(&row("retrained without the forget readers", retrained, retrain_seconds));
    for m in matched {
        match m.strength {
            Some(k) => s.push_str(&format!(
                "| {} | {k:.2} | {target:.3} | {} | {} | {} | {} | {} | {} |\n",
                m.method,
                f(m.js, 4),
                f(m.kl, 4),
                f(m.auc, 3),
                f(m.accuracy, 3),
                f(m.log_loss, 3),
                f(m.seconds, 1)
            )),
            None => s.push_str(&format!(
                "| {} | not reached: forget AUC {:.3} → {:.3} over the sweep | | | | | | | |\n",
                m.method, m.spanned.0, m.spanned.1
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: &str, strength: f64, forget_auc: f64, auc: f64) -> RunRecord {
        RunRecord {
            method: method.into(),
            strength,
            lr: strength * 1e-5,
            seconds: 10.0 * strength,
            measured: Measured {
                utility: Utility { auc, accuracy: auc - 0.1, log_loss: 1.0 - auc, n: 10 },
                forgetting: Forgetting {
                    js: 0.1 * forget_auc,
                    kl: 0.2 * forget_auc,
                    auc: forget_auc,
                    reference_auc: 0.7,
                    n: 5,
                },
            },
        }
    }

    /// Between the two runs around the target forget AUC, linearly in it; none when the sweep
    /// never crosses it (also when the forget AUC comes back up past it).
    #[test]
    fn matched_forgetting_interpolates_between_the_runs_around_the_target() {
        let runs = vec![
            run("npo", 1.0, 0.95, 0.9),
            run("npo", 3.0, 0.8, 0.85),
            run("npo", 10.0, 0.6, 0.7),
            run("cure", 1.0, 0.9, 0.9),
        ];
        let original = measured(0.99);
        let m = Matched::of("npo", &original, &runs, 0.7);
        // halfway from 0.8 to 0.6
        let near = |x: Option<f64>, want: f64| assert!((x.unwrap() - want).abs() < 1e-12, "{x:?} against {want}");
        near(m.strength, 6.5);
        near(m.auc, 0.775);
        near(m.accuracy, 0.675);
        near(m.js, 0.07);
        near(m.seconds, 65.0);
        assert_eq!(m.spanned, (0.99, 0.6));
        // the original stands at strength 0: between it (0.99) and the first run (0.95)
        let m = Matched::of("npo", &original, &runs, 0.97);
        near(m.strength, 0.5);
        near(m.seconds, 5.0);
        let m = Matched::of("cure", &original, &runs, 0.7);
        assert!(m.strength.is_none() && m.auc.is_none());
        let npo = Matched::of("npo", &original, &runs, 0.7);
        let t = table(&original, &measured(0.7), Some(100.0), &[npo, m], 0.7, "forget05") + &closest_table(&[&runs[1]]);
        assert!(
            t.contains("| npo | 6.50 | 0.700 |") && t.contains("| cure | not reached: forget AUC 0.990 → 0.900"),
            "{t}"
        );
        assert!(t.contains("| npo | 3 | 0.800 | 0.0800 |"), "{t}");
        assert_eq!(
            t.lines().filter(|l| l.starts_with('|')).map(|l| l.matches('|').count()).collect::<BTreeSet<_>>().len(),
            1
        );
    }

    fn measured(forget_auc: f64) -> Measured {
        run("x", 1.0, forget_auc, 0.8).measured
    }
}

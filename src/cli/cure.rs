//! `circuitscope cure`: CURE's partition of a model's heads and MLPs into forget-specific,
//! retain-specific, task-shared and outside, from node attribution on the forget and retain sets.

use super::common::{check_output, check_picture};
use super::model::load;
use super::progress::bar;
use anyhow::Result;
use candle_core::DType;
use circuitscope::analyses::cure::{module_scores, partition, Category, CureSettings, ModuleScores, Partition};
use circuitscope::fsutil::write_atomic;
use circuitscope::render::cure_svg::cure_svg;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct CureArgs {
    pub model: PathBuf,
    /// the forget set (JSONL question/answer records)
    #[arg(long)]
    pub forget: PathBuf,
    /// the retain set
    #[arg(long)]
    pub retain: PathBuf,
    /// the partition as JSON (what `unlearn --method cure --partition` reads)
    #[arg(long)]
    pub out: PathBuf,
    /// the layer × module grid coloured by category, with the scores
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// node attribution: eap, eap-ig-inputs or eap-ig-activations
    #[arg(long, default_value = "eap-ig-inputs")]
    pub attribution: String,
    /// EAP-IG's interpolation steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// a normalised score (score / the set's largest) this high counts as high on its set
    #[arg(long, default_value_t = 0.2, allow_hyphen_values = true)]
    pub threshold: f64,
    /// instead of --threshold: each set's k highest modules count as high
    #[arg(long)]
    pub top_k: Option<usize>,
    /// a core module is specific only if its forget and retain samples' scores differ at this
    /// level (permutation test of the means, Bonferroni over the core), else task-shared
    #[arg(long)]
    pub contrast: Option<f64>,
    /// the first N records of each set
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
}

pub fn run(a: &CureArgs) -> Result<()> {
    let settings = CureSettings {
        method: a.attribution.clone(),
        steps: a.steps,
        threshold: a.threshold,
        top_k: a.top_k,
        batch: a.batch,
        contrast: a.contrast,
        ..CureSettings::default()
    };
    settings.validate()?;
    check_output(&a.out, "--out")?;
    if let Some(p) = &a.svg {
        check_picture(p, "--svg")?;
    }
    let (model, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&model)?;
    let (_, forget) = super::unlearn::qa_file(&a.forget, a.limit, &model, &format)?;
    let (_, retain) = super::unlearn::qa_file(&a.retain, a.limit, &model, &format)?;
    let scores = |set: &[circuitscope::data::Example], what: &str| -> Result<ModuleScores> {
        let pb = bar(0, &format!("attributing the {what} set"));
        let s = module_scores(&model.decoder, set, &settings, &pb)?;
        pb.finish_and_clear();
        Ok(s)
    };
    let t = std::time::Instant::now();
    let (f, r) = (scores(&forget, "forget")?, scores(&retain, "retain")?);
    let p = partition(&model.decoder, &f, &r, &settings)?;
    println!(
        "CURE partition of {} ({} forget, {} retain samples; {} node scores; high = {}) in {:.1} s",
        a.model.display(),
        forget.len(),
        retain.len(),
        settings.method,
        settings
            .top_k
            .map_or(format!("normalised score ≥ {}", settings.threshold), |k| format!("top {k} of its set")),
        t.elapsed().as_secs_f64()
    );
    print_partition(&p);
    if p.count(Category::ForgetSpecific) == 0 {
        eprintln!("warning: no module is forget-specific; `unlearn --method cure` needs one (lower --threshold)");
    }
    write_partition(&p, &a.out)?;
    if let Some(svg) = &a.svg {
        let title = format!("CURE partition: {} forget / {} retain samples", forget.len(), retain.len());
        circuitscope::render::write_picture(svg, &cure_svg(&p, &title))?;
        println!("wrote {}", svg.display());
    }
    Ok(())
}

/// Counts per category and each category's modules, strongest first.
pub fn print_partition(p: &Partition) {
    for c in Category::ALL {
        let mut ms: Vec<_> = p.modules.iter().filter(|m| m.category == c).collect();
        ms.sort_by(|a, b| b.forget.max(b.retain).total_cmp(&a.forget.max(a.retain)));
        let shown: Vec<String> =
            ms.iter().take(12).map(|m| format!("{} ({:.2}/{:.2})", m.name, m.forget, m.retain)).collect();
        let more = if ms.len() > 12 { format!(", … {} more", ms.len() - 12) } else { String::new() };
        if c == Category::Outside {
            println!("{:<16} {:>4}", c.name(), ms.len());
        } else {
            println!("{:<16} {:>4}  {}{more}", c.name(), ms.len(), shown.join(", "));
        }
    }
}

/// The partition file given, else CURE's partition of `dec` from `forget` and `retain` (each
/// set's `top_k` highest modules); checked to drive an update of `dec`.
pub(super) fn partition_or(
    dec: &circuitscope::model::Decoder,
    file: Option<&std::path::Path>,
    top_k: usize,
    forget: &[circuitscope::data::Example],
    retain: &[circuitscope::data::Example],
) -> Result<Partition> {
    let part = match file {
        Some(p) => Partition::read(p)?,
        None => {
            let s = CureSettings { top_k: Some(top_k), ..Default::default() };
            let pb = bar(0, "CURE partition");
            let f = module_scores(dec, forget, &s, &pb)?;
            let r = module_scores(dec, retain, &s, &pb)?;
            pb.finish_and_clear();
            partition(dec, &f, &r, &s)?
        }
    };
    part.check_for(dec, "the partition")?;
    Ok(part)
}

/// "N category" per category, printed as the partition's one-line summary.
pub(super) fn partition_counts(part: &Partition) -> Vec<String> {
    let counts: Vec<String> = Category::ALL.iter().map(|&c| format!("{} {}", part.count(c), c.name())).collect();
    println!("partition: {}", counts.join(", "));
    counts
}

pub fn write_partition(p: &Partition, path: &Path) -> Result<()> {
    write_atomic(path, (serde_json::to_string_pretty(p)? + "\n").as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

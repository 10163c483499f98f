//! `circuitscope validate-cud`: does CUD predict which samples unlearning finds hard, on samples it
//! has never seen? On the bundled world (ALGORITHMS.md §5; the protocol is ours): the forget10
//! people split in halves A and B; anchors from unlearning runs on A only; CUD of B before any
//! unlearning of B; B unlearned with each method, a sample's measured difficulty its answer
//! probability afterwards averaged over the methods; CUD against baselines (answer NLL before,
//! answer length, MRD, random) by Spearman's ρ and the AUROC for the hardest third with bootstrap
//! intervals; CUD's easiest and hardest quarters of B unlearned apart with the same budget; and
//! the structural signature (are the hardest third's circuits deeper and longer?).

use super::common::check_output_dir;
use super::cud::csv_field;
use super::model::load;
use super::progress::bar;
use super::unlearn::qa_file;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::analyses::cud::{anchor_circuit, distances, sample_circuits, structure, CudSettings, Structure};
use circuitscope::analyses::cud_validation::{assess, hardest_third, structure_tests, PredictorReport};
use circuitscope::analyses::mrd::{mrd, MrdSettings};
use circuitscope::analyses::stats::permutation_p;
use circuitscope::attribution::Method as Attribution;
use circuitscope::data::{Example, QaPair};
use circuitscope::model::Model;
use circuitscope::render::cud_plots::{distribution, layer_profile};
use circuitscope::render::{circuit_svg, CircuitSvgOptions, LinePlot, Series};
use circuitscope::rng::Rng;
use circuitscope::train::Trainable;
use circuitscope::unlearn::anchors::{run_method, sample_nll, Consensus, MethodRun};
use circuitscope::unlearn::finetune::{data_fingerprint, differences};
use circuitscope::unlearn::{Method, UnlearnConfig};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ValidateCudArgs {
    /// the model (default: the bundled models/world-gpt2)
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// the world folder with forget10.jsonl and retain90.jsonl (default: the bundled circuits/world)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// the forget set to split (default: the world folder's forget10.jsonl); split by person when
    /// every record names one, else by sample
    #[arg(long)]
    pub forget: Option<PathBuf>,
    /// the retain set the methods keep (default: the world folder's retain90.jsonl)
    #[arg(long)]
    pub retain: Option<PathBuf>,
    /// the methods that unlearn half B and CUD's quarters, whose results are the measured
    /// difficulty [default: --methods]
    #[arg(long)]
    pub measure_methods: Option<String>,
    /// CUD's attribution: eap-ig-activations (the reference's), eap-ig-inputs or eap
    #[arg(long, default_value = "eap-ig-activations")]
    pub attribution: String,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
    /// the report folder (refused if it exists and is not empty, unless --force)
    #[arg(long, default_value = "cud-validation")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
    /// the unlearning methods, each at its documented settings
    #[arg(long, default_value = "grad-diff,npo,simnpo,rmu")]
    pub methods: String,
    /// edges per greedy circuit
    #[arg(long, default_value_t = 75)]
    pub edges: usize,
    /// EAP-IG (activations) interpolation steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// MRD's weight perturbations
    #[arg(long, default_value_t = 100)]
    pub mrd_draws: usize,
    /// bootstrap resamples and permutations of every interval and test
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,
    /// the seed of the people's split, the random baseline, MRD and the resampling
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// keep each finished unlearning run (anchors on A, B, the quarters) in this folder; run again
    /// with the same folder, the runs it holds are read back instead of repeated (one made with
    /// other settings or data is refused, naming what differs)
    #[arg(long)]
    pub work: Option<PathBuf>,
}

/// A set of forget samples: their records and tokenised examples.
pub(super) struct Samples {
    pub pairs: Vec<QaPair>,
    pub examples: Vec<Example>,
}

impl Samples {
    pub fn subset(&self, idx: &[usize]) -> Samples {
        Samples {
            pairs: idx.iter().map(|&i| self.pairs[i].clone()).collect(),
            examples: idx.iter().map(|&i| self.examples[i].clone()).collect(),
        }
    }
}

/// The forget set's groups (its people when every record names one, else each sample alone) in a
/// seeded order, split in halves: the sample indices of A and of B, and what was split.
pub(super) fn split_halves(pairs: &[QaPair], seed: u64, file: &Path) -> Result<(Vec<usize>, Vec<usize>, &'static str)> {
    let by_person = pairs.iter().all(|p| p.person.is_some());
    let key = |i: usize| if by_person { pairs[i].person.clone().unwrap_or_default() } else { i.to_string() };
    let mut groups: Vec<String> = Vec::new();
    for i in 0..pairs.len() {
        if !groups.contains(&key(i)) {
            groups.push(key(i));
        }
    }
    let what = if by_person { "people" } else { "samples" };
    if groups.len() < 4 {
        bail!("{}: {} {what}; validate-cud needs at least 4 to split in halves", file.display(), groups.len());
    }
    Rng::stream(seed, "validate-cud split").shuffle(&mut groups);
    let in_a = &groups[..groups.len() / 2];
    let (a, b): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&i| in_a.contains(&key(i)));
    Ok((a, b, what))
}

/// Runs each method on `forget` from the original weights.
pub(super) fn run_methods(
    model: &Model,
    methods: &[Method],
    forget: &[Example],
    retain: &[Example],
    k: usize,
    what: &str,
    work: Option<&Path>,
) -> Result<Vec<MethodRun>> {
    let mut runs = Vec::new();
    for m in methods {
        let mut cfg = UnlearnConfig::documented(*m);
        cfg.fit_rmu(&model.decoder, forget, None, None)?;
        let settings = json!({
            "model": model.path, "method": m.name(), "config": cfg, "k": k,
            "forget": data_fingerprint(forget), "retain": data_fingerprint(retain),
        });
        let file = work.map(|w| w.join(format!("{}-{}.json", what.replace(' ', "-"), m.name())));
        if let Some(f) = &file {
            if let Some(run) = kept_run(f, &settings)? {
                println!("{what}: {} read back from {}", m.name(), f.display());
                runs.push(run);
                continue;
            }
        }
        let pb = bar(0, &format!("{what}: {}", m.name()));
        let run = run_method(&model.path, &model.decoder, m.name(), forget, retain, &cfg, k, &pb)?;
        pb.finish_and_clear();
        if let Some(f) = &file {
            let dir = f.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let bytes = serde_json::to_string_pretty(&json!({"settings": settings, "run": run}))? + "\n";
            circuitscope::fsutil::write_atomic(f, bytes.as_bytes())?;
        }
        runs.push(run);
    }
    Ok(runs)
}

/// A run `--work` kept in `file`, if there is one; an error if it was made with other settings.
fn kept_run(file: &Path, settings: &serde_json::Value) -> Result<Option<MethodRun>> {
    if !file.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let kept: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not a run validate-cud kept", file.display()))?;
    let changed = differences(&kept["settings"], settings);
    if !changed.is_empty() {
        bail!(
            "{}: this run was made with other settings ({}); give another --work folder or remove this one",
            file.display(),
            changed.join("; ")
        );
    }
    let run = serde_json::from_value(kept["run"].clone())
        .with_context(|| format!("{}: `run` is not an unlearning run's record", file.display()))?;
    Ok(Some(run))
}

pub(super) fn p_of(nll: &[f64]) -> Vec<f64> {
    nll.iter().map(|x| (-x).exp()).collect()
}

pub fn run(a: &ValidateCudArgs) -> Result<()> {
    a.pictures.format()?;
    let start = std::time::Instant::now();
    let model_path = a.model.clone().unwrap_or_else(|| super::demo::bundled("models/world-gpt2"));
    let data = a.data.clone().unwrap_or_else(|| super::demo::bundled("circuits/world"));
    let parse = |list: &str| -> Result<Vec<Method>> {
        Ok(list.split(',').map(|m| Method::from_name(m.trim())).collect::<Result<_, _>>()?)
    };
    let methods = parse(&a.methods)?;
    let measure = parse(a.measure_methods.as_deref().unwrap_or(&a.methods))?;
    let attribution = Attribution::from_name(&a.attribution, a.steps)?;
    if !matches!(attribution, Attribution::Eap | Attribution::EapIgInputs { .. } | Attribution::EapIgActivations { .. })
    {
        bail!("--attribution {}: CUD attributes with eap-ig-activations, eap-ig-inputs or eap", a.attribution);
    }
    if a.edges == 0 || a.steps == 0 || a.mrd_draws == 0 || a.resamples == 0 {
        bail!("--edges, --steps, --mrd-draws and --resamples must be at least 1");
    }
    check_output_dir(&a.out, a.force)?;
    let (model, _) = load(&model_path, DType::F32)?;
    let format = a.prompt.format(&model)?;
    let forget_file = a.forget.clone().unwrap_or_else(|| data.join("forget10.jsonl"));
    let retain_file = a.retain.clone().unwrap_or_else(|| data.join("retain90.jsonl"));
    let (pairs, examples) = qa_file(&forget_file, None, &model, &format)?;
    let (_, retain) = qa_file(&retain_file, None, &model, &format)?;
    let all = Samples { pairs, examples };
    let (ia, ib, split_by) = split_halves(&all.pairs, a.seed, &forget_file)?;
    let (sa, sb) = (all.subset(&ia), all.subset(&ib));
    println!(
        "validate-cud: {} samples in half A, {} in half B (split by {split_by}); anchors from {}; measured by {}",
        ia.len(),
        ib.len(),
        a.methods,
        a.measure_methods.as_deref().unwrap_or(&a.methods)
    );

    // 1. anchors from A only
    let k = (sa.examples.len() / 4).max(1);
    let runs_a = run_methods(&model, &methods, &sa.examples, &retain, k, "anchors on A", a.work.as_deref())?;
    let agreed = Consensus::of(&runs_a);
    if agreed.easy.is_empty() || agreed.hard.is_empty() {
        bail!("the methods agree on no easy or no hard sample of half A (consensus {})", agreed.describe());
    }
    let (easy_a, hard_a) = (&agreed.easy, &agreed.hard);
    let settings = CudSettings { method: attribution, edges: a.edges, ..Default::default() };
    let anchor = |idx: &[usize], what: &str| -> Result<circuitscope::graph::Circuit> {
        let pb = bar(0, what);
        let c = anchor_circuit(&model.decoder, &sa.subset(idx).examples, &settings, &pb)?;
        pb.finish_and_clear();
        Ok(c)
    };
    let (easy, hard) = (anchor(easy_a, "easy anchor")?, anchor(hard_a, "hard anchor")?);

    // 2. CUD of B, before any unlearning of B
    let t = std::time::Instant::now();
    let pb = bar(0, "CUD of B");
    let circuits = sample_circuits(&model.decoder, &sb.examples, &settings, &pb)?;
    pb.finish_and_clear();
    let cud: Vec<f64> =
        circuits.iter().map(|c| distances(c, &easy, &hard, &settings).map(|d| d.cud)).collect::<Result<_, _>>()?;
    let structures: Vec<Structure> = circuits.iter().map(structure).collect();
    let cud_seconds = t.elapsed().as_secs_f64();

    // baselines, also before unlearning B
    let nll_before = sample_nll(&model.decoder, &sb.examples, 8)?;
    let length: Vec<f64> = sb.examples.iter().map(|e| (e.clean.len() - prompt_len(e)) as f64).collect();
    let trainable = Trainable::load(&model.path, model.decoder.device())?;
    let pb = bar(0, "MRD");
    let mrd_settings = MrdSettings { draws: a.mrd_draws, seed: a.seed, ..Default::default() };
    let mrd_b = mrd(&trainable, &sb.examples, &mrd_settings, &pb)?;
    pb.finish_and_clear();
    let mut rng = Rng::stream(a.seed, "validate-cud random");
    let random: Vec<f64> =
        (0..sb.examples.len()).map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64).collect();

    // 3. unlearn B with each method: measured difficulty
    let runs_b = run_methods(&model, &measure, &sb.examples, &retain, 1, "unlearning B", a.work.as_deref())?;
    let p_after: Vec<Vec<f64>> = runs_b.iter().map(|r| p_of(&r.nll_after)).collect();
    let measured: Vec<f64> =
        (0..sb.examples.len()).map(|i| p_after.iter().map(|p| p[i]).sum::<f64>() / p_after.len() as f64).collect();

    // 4. predictors against the measured difficulty
    let neg_nll: Vec<f64> = nll_before.iter().map(|x| -x).collect();
    let predictors: Vec<PredictorReport> = [
        ("CUD", &cud),
        ("answer NLL before (lower = harder)", &neg_nll),
        ("answer length in tokens (longer = harder)", &length),
        ("MRD (higher = harder)", &mrd_b),
        ("random", &random),
    ]
    .iter()
    .map(|(name, p)| assess(name, p, &measured, a.resamples, a.seed))
    .collect::<Result<_, _>>()?;

    // 5. CUD's easiest and hardest quarters of B unlearned apart, with the same budget
    let mut order: Vec<usize> = (0..cud.len()).collect();
    order.sort_by(|&x, &y| cud[x].total_cmp(&cud[y]).then(x.cmp(&y)));
    let q = cud.len() / 4;
    let (easy_q, hard_q) = (order[..q].to_vec(), order[order.len() - q..].to_vec());
    let p_before = p_of(&nll_before);
    let mut quarter_rows = Vec::new();
    let (mut drop_easy, mut drop_hard) = (vec![0.0; q], vec![0.0; q]);
    for m in &measure {
        let mut row = json!({"method": m.name()});
        for (name, idx, drops) in [("easiest", &easy_q, &mut drop_easy), ("hardest", &hard_q, &mut drop_hard)] {
            let part = sb.subset(idx);
            let run =
                run_methods(&model, &[*m], &part.examples, &retain, 1, &format!("{name} quarter"), a.work.as_deref())?
                    .remove(0);
            let after = p_of(&run.nll_after);
            let d: Vec<f64> = idx.iter().zip(&after).map(|(&i, pa)| p_before[i] - pa).collect();
            for (acc, x) in drops.iter_mut().zip(&d) {
                *acc += x / measure.len() as f64;
            }
            row[name] = json!({"forgetting": d.iter().sum::<f64>() / d.len() as f64, "steps": run.steps.len()});
        }
        quarter_rows.push(row);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let quarter_p = permutation_p(&drop_easy, &drop_hard, a.resamples, a.seed);

    // 6. the structural signature
    let signature = structure_tests(&structures, &measured, a.resamples, a.seed);

    // the report
    let hard_third = hardest_third(&measured);
    let idx_of = |want: bool| (0..measured.len()).filter(|&i| hard_third[i] == want).collect::<Vec<_>>();
    let (hard_idx, rest_idx) = (idx_of(true), idx_of(false));
    let mut table = format!(
        "Half A: {} samples ({} {split_by}), anchors from {} methods (consensus: {}). Half B: {} \
         samples, scored with {} before any unlearning of B; measured difficulty = answer probability after \
         unlearning B, mean over {} (mean {:.3}). 95 % bootstrap intervals over B's samples ({} resamples).\n\n\
         | predictor of difficulty | Spearman ρ with measured difficulty | AUROC for the hardest third |\n|---|---:|---:|\n",
        ia.len(),
        if split_by == "people" { count_people(&sa.pairs) } else { ia.len() },
        methods.len(),
        agreed.describe(),
        ib.len(),
        attribution.name(),
        a.measure_methods.as_deref().unwrap_or(&a.methods),
        mean(&measured),
        a.resamples
    );
    // a constant predictor (one-token answers' length) has no rank correlation and no ranking
    let cell = |e: &circuitscope::analyses::stats::Estimate, constant: bool| {
        if constant {
            "– (constant)".to_string()
        } else {
            format!("{:.3} [{:.3}, {:.3}]", e.value, e.lo, e.hi)
        }
    };
    for (p, values) in predictors.iter().zip([&cud, &neg_nll, &length, &mrd_b, &random]) {
        let constant = values.iter().all(|v| v == &values[0]);
        let _ = writeln!(
            table,
            "| {} | {} | {} |",
            p.name,
            cell(&p.spearman, constant),
            cell(&p.auroc_hardest_third, constant)
        );
    }
    let _ = write!(
        table,
        "\nCUD's easiest and hardest quarters of B ({q} samples each) unlearned apart, each method at its documented \
         settings (the same steps for both); forgetting = drop in answer probability:\n\n\
         | method | forgetting, CUD-easiest quarter | forgetting, CUD-hardest quarter |\n|---|---:|---:|\n"
    );
    for r in &quarter_rows {
        let _ = writeln!(
            table,
            "| {} | {:.3} | {:.3} |",
            r["method"].as_str().unwrap_or_default(),
            r["easiest"]["forgetting"].as_f64().unwrap_or(f64::NAN),
            r["hardest"]["forgetting"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let _ = write!(
        table,
        "| mean over methods | {:.3} | {:.3} |\n\nDifference (easiest − hardest): {:.3}, permutation p = {:.4} \
         (two-sided, per-sample forgetting averaged over methods).\n\n\
         Structural signature: the circuits of B's measured-hardest third ({} samples) against the rest ({}):\n\n\
         | feature | hardest third (mean) | rest (mean) | permutation p | Spearman ρ with difficulty |\n|---|---:|---:|---:|---:|\n",
        mean(&drop_easy),
        mean(&drop_hard),
        mean(&drop_easy) - mean(&drop_hard),
        quarter_p,
        hard_idx.len(),
        rest_idx.len()
    );
    for s in &signature {
        let rho = if s.spearman.is_finite() { format!("{:.3}", s.spearman) } else { "– (constant)".into() };
        let _ = writeln!(
            table,
            "| {} | {:.3} | {:.3} | {:.4} | {rho} |",
            s.feature, s.hardest_third_mean, s.rest_mean, s.p
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let _ = writeln!(
        table,
        "\nCUD of B took {cud_seconds:.1} s ({:.2} s per sample); the whole validation {seconds:.0} s.",
        cud_seconds / ib.len() as f64
    );
    print!("{table}");

    let mut samples_csv = String::from("person,question,cud,measured_difficulty,nll_before,answer_tokens,mrd,random,mean_writer_layer,deepest_layer,longest_path\n");
    for i in 0..ib.len() {
        let s = &structures[i];
        let _ = writeln!(
            samples_csv,
            "{},{},{:.6},{:.6},{:.6},{},{:.6e},{:.6},{:.4},{},{}",
            csv_field(sb.pairs[i].person.as_deref().unwrap_or_default()),
            csv_field(&sb.pairs[i].question),
            cud[i],
            measured[i],
            nll_before[i],
            length[i],
            mrd_b[i],
            random[i],
            s.mean_writer_layer,
            s.deepest_layer,
            s.longest_path.map_or(String::new(), |p| p.to_string())
        );
    }
    let report = json!({
        "model": model_path, "forget": forget_file, "retain": retain_file, "split_by": split_by,
        "prompt_format": format, "seed": a.seed, "resamples": a.resamples,
        "half_a": {"samples": ia, "people": count_people(&sa.pairs)}, "half_b": {"samples": ib, "people": count_people(&sb.pairs)},
        "anchors": {"methods": runs_a, "consensus": {"easy": easy_a, "hard": hard_a, "contested": agreed.contested}},
        "cud_settings": settings, "mrd": mrd_settings,
        "unlearning_b": runs_b.iter().map(|r| json!({"method": r.method, "config": r.config, "steps": r.steps.len(), "nll_after": r.nll_after})).collect::<Vec<_>>(),
        "predictors": predictors,
        "quarters": {"easiest": easy_q, "hardest": hard_q, "per_method": quarter_rows,
            "forgetting_easiest": mean(&drop_easy), "forgetting_hardest": mean(&drop_hard), "p": quarter_p},
        "signature": signature, "cud_seconds": cud_seconds, "seconds": seconds,
    });
    let scatter = LinePlot::scatter(
        format!("CUD against measured difficulty ({} held-out samples)", cud.len()),
        "CUD (before unlearning)",
        "answer probability after unlearning (mean over methods)",
        vec![Series::new("half B", cud.iter().copied().zip(measured.iter().copied()).collect())],
    );
    let pick = |idx: &[usize]| idx.iter().map(|&i| structures[i].edges_per_layer.clone()).collect::<Vec<_>>();
    let layers = layer_profile(
        "Where the circuits' edges start: measured-hardest third against the rest",
        &[
            ("measured-hardest third".into(), pick(&hard_idx)),
            ("rest".into(), pick(&rest_idx)),
            ("easy anchor".into(), vec![easy.edges_per_layer()]),
            ("hard anchor".into(), vec![hard.edges_per_layer()]),
        ],
    );
    let dist = distribution(&format!("CUD of half B ({} samples)", cud.len()), &cud, "CUD");
    let drawing = |c: &circuitscope::graph::Circuit, kind: &str, n: usize| {
        let title = format!("{kind} anchor circuit: {n} samples of half A, {} edges", c.n_edges_in_graph());
        circuit_svg(c, &CircuitSvgOptions { title, ..Default::default() }).into_bytes()
    };
    let files: Vec<(PathBuf, Vec<u8>)> = vec![
        ("validation.json".into(), (serde_json::to_string_pretty(&report)? + "\n").into_bytes()),
        ("table.md".into(), table.into_bytes()),
        ("samples.csv".into(), samples_csv.into_bytes()),
        ("cud-vs-difficulty.svg".into(), scatter.to_svg()?.into_bytes()),
        ("layers.svg".into(), layers.to_svg()?.into_bytes()),
        ("distribution.svg".into(), dist.to_svg()?.into_bytes()),
        ("anchor-easy.svg".into(), drawing(&easy, "easy", easy_a.len())),
        ("anchor-hard.svg".into(), drawing(&hard, "hard", hard_a.len())),
    ];
    let files = a.pictures.convert(files)?;
    circuitscope::fsutil::write_dir_atomic(&a.out, |dir| {
        for (name, bytes) in &files {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| circuitscope::Error::io(&p, e))?;
        }
        Ok(())
    })?;
    println!("wrote {} in {seconds:.0} s", a.out.display());
    Ok(())
}

fn prompt_len(e: &Example) -> usize {
    match e.target {
        circuitscope::data::Target::Sequence { prompt_len } => prompt_len,
        _ => e.clean.len(),
    }
}

fn count_people(pairs: &[QaPair]) -> usize {
    let mut names: Vec<&str> = pairs.iter().filter_map(|p| p.person.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

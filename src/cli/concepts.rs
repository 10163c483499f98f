//! `circuitscope concepts`: MLP value vectors as concept vectors (ALGORITHMS.md §6). Without a
//! subcommand it shows one vector's vocabulary projection (`--layer --dim`) or scans the model
//! for a concept's vectors (`--find`); `validate` adds noise to a vector and scores how the
//! answers move; `audit` compares vectors between a model and its unlearned copy.

use super::common::{check_output, check_picture};
use super::model::load;
use super::progress::bar;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::analyses::concepts::audit::check_comparable;
use circuitscope::analyses::concepts::{
    audit, find, read_concepts, top_tokens, validate, ConceptEntry, ConceptTokens, Direction, FindOptions, Readout,
    ValidateOptions, ValueVector, VectorAudit,
};
use circuitscope::fsutil::write_atomic;
use circuitscope::hooks::HookSet;
use circuitscope::model::inspect::{greedy_batch, GREEDY_ROWS};
use circuitscope::render::charts::BarChart;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ConceptsCommand {
    #[command(subcommand)]
    pub sub: Option<ConceptsSub>,
    #[command(flatten)]
    pub show: ShowArgs,
}

#[derive(clap::Subcommand)]
pub enum ConceptsSub {
    /// Gaussian noise on a value vector: greedy answers of the edited model against the original's
    /// (BLEU, ROUGE-L F, as ConceptVectors scores them) on the concept's questions and unrelated ones.
    Validate(ValidateArgs),
    /// Value vectors of a model against another (e.g. after unlearning): cosine, L2 distance,
    /// Jaccard of the top-200 tokens, and the share of concept tokens kept.
    Audit(AuditArgs),
    /// A concept as a direction in activation space: the difference of mean residual activations
    /// between concept and control prompts at a layer; projections of prompts onto it, and
    /// generations steered along it or with it ablated.
    Direction(DirectionArgs),
}

#[derive(clap::Args)]
pub struct DirectionArgs {
    pub model: PathBuf,
    /// the layer whose output stream (hook_resid_post) is read
    #[arg(long)]
    pub layer: usize,
    /// prompts that evoke the concept (one per line, or JSONL with `question` or `text`)
    #[arg(long)]
    pub concept: PathBuf,
    /// control prompts, in the same forms
    #[arg(long)]
    pub control: PathBuf,
    /// `last` token or `mean` over the tokens
    #[arg(long, default_value = "last")]
    pub readout: String,
    /// prompts to project onto the direction
    #[arg(long)]
    pub project: Option<PathBuf>,
    /// prompts to continue greedily without and with the intervention (--steer or --ablate)
    #[arg(long)]
    pub generate: Option<PathBuf>,
    /// add α times the unit direction at every position
    #[arg(long, allow_hyphen_values = true, conflicts_with = "ablate")]
    pub steer: Option<f64>,
    /// project the direction out of the stream
    #[arg(long)]
    pub ablate: bool,
    #[arg(long, default_value_t = 30)]
    pub max_new_tokens: usize,
    /// the direction (safetensors: `direction`, `layer`)
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// everything as JSON
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[arg(required = true)]
    pub model: Option<PathBuf>,
    /// the vector's layer (with --dim: show its projection)
    #[arg(long, requires = "dim", conflicts_with = "find")]
    pub layer: Option<usize>,
    /// the vector's hidden unit
    #[arg(long, requires = "layer")]
    pub dim: Option<usize>,
    /// scan every value vector for these keywords (whitespace-separated) and rank them
    #[arg(long, required_unless_present_any = ["layer", "text", "concepts"])]
    pub find: Option<String>,
    /// scan for the 50 most frequent words of this text file (e.g. the concept's Wikipedia
    /// article) instead of, or besides, keywords
    #[arg(long, conflicts_with = "layer")]
    pub text: Option<PathBuf>,
    /// with --text: weigh its words against these texts (other concepts' articles), TF-IDF
    #[arg(long, requires = "text", num_args = 1..)]
    pub background: Vec<PathBuf>,
    /// scan for a concept of this ConceptVectors JSON: its name as keywords, its article's words
    /// against the other entries' articles
    #[arg(long, requires = "concept", conflicts_with_all = ["layer", "text"])]
    pub concepts: Option<PathBuf>,
    /// the entry of --concepts (its `Concept` or id)
    #[arg(long, requires = "concepts")]
    pub concept: Option<String>,
    /// layers to scan, `a..b` (all by default)
    #[arg(long)]
    pub layers: Option<String>,
    /// candidates to list
    #[arg(long, default_value_t = 10)]
    pub candidates: usize,
    /// tokens to list per vector
    #[arg(long, default_value_t = 30)]
    pub k: usize,
    /// draw the projection's top tokens (or the candidates' scores): .svg, .pdf or .png
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// write the result as JSON
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    pub model: PathBuf,
    #[arg(long)]
    pub layer: usize,
    #[arg(long)]
    pub dim: usize,
    /// the concept's questions: JSONL with a `question` field, or one question per line
    #[arg(long, required_unless_present = "concepts")]
    pub questions: Option<PathBuf>,
    /// unrelated questions, in the same forms
    #[arg(long, required_unless_present = "concepts")]
    pub unrelated: Option<PathBuf>,
    /// take the questions from this ConceptVectors JSON instead (its `QA` and `unrelated_QA`)
    #[arg(long, requires = "concept", conflicts_with_all = ["questions", "unrelated"])]
    pub concepts: Option<PathBuf>,
    /// the entry of --concepts (its `Concept` or id)
    #[arg(long)]
    pub concept: Option<String>,
    /// the noise's standard deviation
    #[arg(long, default_value_t = 0.1)]
    pub sigma: f64,
    /// noise seeds, comma-separated (the reference draws once, with 8888)
    #[arg(long, default_value = "8888,1,2")]
    pub seeds: String,
    #[arg(long, default_value_t = 100)]
    pub max_new_tokens: usize,
    /// the prompt; {q} stands for the question
    #[arg(long, default_value = "Question: {q}\n Answer:")]
    pub template: String,
    /// the validation as JSON (every answer included)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// the model before (e.g. before unlearning)
    pub model: PathBuf,
    /// the model after
    #[arg(long)]
    pub against: PathBuf,
    #[arg(long, requires = "dim", required_unless_present = "concepts", conflicts_with = "concepts")]
    pub layer: Option<usize>,
    #[arg(long, requires = "layer")]
    pub dim: Option<usize>,
    /// every vector of a ConceptVectors JSON (each with its Wikipedia article's tokens)
    #[arg(long)]
    pub concepts: Option<PathBuf>,
    /// the concept's tokens for --layer/--dim: keywords
    #[arg(long)]
    pub terms: Option<String>,
    /// … or a text file's content tokens
    #[arg(long)]
    pub text: Option<PathBuf>,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(c: &ConceptsCommand) -> Result<()> {
    match &c.sub {
        Some(ConceptsSub::Validate(v)) => run_validate(v),
        Some(ConceptsSub::Audit(a)) => run_audit(a),
        Some(ConceptsSub::Direction(d)) => run_direction(d),
        None => run_show(&c.show),
    }
}

fn outputs(paths: &[(&Option<PathBuf>, &str)]) -> Result<()> {
    for (p, flag) in paths {
        match p {
            Some(p) if *flag == "--svg" => check_picture(p, flag)?,
            Some(p) => check_output(p, flag)?,
            None => {}
        }
    }
    Ok(())
}

fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<()> {
    if let Some(p) = path {
        write_atomic(p, (serde_json::to_string_pretty(value)? + "\n").as_bytes())?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// `a..b` → a..b.
fn parse_layers(s: &str) -> Result<std::ops::Range<usize>> {
    let parsed = s.split_once("..").and_then(|(a, b)| Some(a.trim().parse().ok()?..b.trim().parse().ok()?));
    parsed.with_context(|| format!("--layers {s}: expected a range `a..b` of layers, e.g. 10..20"))
}

/// How many of a text's most frequent words the scan looks for.
const SALIENT: usize = 50;

/// A reference text: where it came from (for messages) and what it says.
struct Text {
    name: String,
    body: String,
}

impl Text {
    fn read(p: &Path) -> Result<Self> {
        let body = std::fs::read_to_string(p).with_context(|| format!("--text {}", p.display()))?;
        Ok(Text { name: format!("--text {}", p.display()), body })
    }
}

/// The concept's tokens from keywords and/or a text: for the scan (`salient`) the text's words
/// most particular to it against `background`, for the audit all its content tokens.
fn concept_tokens(
    tok: &circuitscope::model::Tokenizer,
    terms: Option<&str>,
    text: Option<&Text>,
    background: &[String],
    salient: bool,
) -> Result<Option<ConceptTokens>> {
    let mut out: Option<ConceptTokens> = None;
    if let Some(t) = terms {
        out = Some(ConceptTokens::from_terms(tok, t)?);
    }
    if let Some(text) = text {
        let t = if salient {
            ConceptTokens::salient_from_text(tok, &text.body, background, SALIENT)
        } else {
            ConceptTokens::from_text(tok, &text.body)
        };
        let t = t.with_context(|| text.name.clone())?;
        out = Some(match out {
            Some(mut o) => {
                o.ids.extend(t.ids);
                o
            }
            None => t,
        });
    }
    Ok(out)
}

fn run_show(a: &ShowArgs) -> Result<()> {
    let model_path = a.model.as_ref().expect("clap requires the model");
    outputs(&[(&a.svg, "--svg"), (&a.out, "--out")])?;
    let layers = a.layers.as_deref().map(parse_layers).transpose()?;
    let (model, _) = load(model_path, DType::F32)?;
    let (dec, tok) = (&model.decoder, model.tokenizer()?);
    if let (Some(layer), Some(dim)) = (a.layer, a.dim) {
        let vv = ValueVector { layer, dim };
        let top = top_tokens(dec, tok, vv, a.k)?;
        println!(
            "value vector {vv} of {} (layer {layer}, hidden unit {dim}): top {} tokens",
            model_path.display(),
            a.k
        );
        for (i, t) in top.iter().enumerate() {
            println!("{:>4}  {:>9.4}  {:?}", i + 1, t.score, t.token);
        }
        if let Some(p) = &a.svg {
            let mut chart = BarChart::new(format!("value vector {vv}: vocabulary projection"), "token", "logit");
            chart.categories = top.iter().map(|t| t.token.trim().to_string()).collect();
            chart.series = vec![("W_U · v".into(), top.iter().map(|t| t.score as f64).collect())];
            chart.write(p)?;
            println!("wrote {}", p.display());
        }
        return write_json(&a.out, &json!({ "model": model_path, "vector": vv, "top_tokens": top }));
    }
    let (terms, text, background) = match &a.concepts {
        Some(file) => {
            let entries = read_concepts(file)?;
            let e = entry_named(file, &entries, a.concept.as_deref().expect("clap requires --concept"))?;
            let terms =
                [a.find.as_deref(), Some(e.concept.as_str())].into_iter().flatten().collect::<Vec<_>>().join(" ");
            let text = Text {
                name: format!("{}: concept `{}`'s article", file.display(), e.concept),
                body: e.wikipedia.clone(),
            };
            let others = entries.iter().filter(|o| o.id != e.id).map(|o| o.wikipedia.clone()).collect();
            (Some(terms), Some(text), others)
        }
        None => {
            let background = a
                .background
                .iter()
                .map(|p| std::fs::read_to_string(p).with_context(|| format!("--background {}", p.display())))
                .collect::<Result<Vec<_>>>()?;
            (a.find.clone(), a.text.as_deref().map(Text::read).transpose()?, background)
        }
    };
    let concept = concept_tokens(tok, terms.as_deref(), text.as_ref(), &background, true)?
        .expect("clap requires --find, --text or --concepts");
    let opts = FindOptions { layers, candidates: a.candidates, ..Default::default() };
    let t = Instant::now();
    let pb = bar(0, "scanning");
    let found = find(dec, Some(tok), &concept, &opts, &pb)?;
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let scanned = opts.layers.clone().unwrap_or(0..dec.cfg.n_layers).len() * dec.cfg.d_mlp;
    println!(
        "{scanned} value vectors scanned for {} concept tokens in {secs:.2} s; score = mean of the {} highest standardised \
         logits of the concept's tokens",
        concept.len(),
        opts.q.min(concept.len())
    );
    println!("{:>4}  {:<10} {:>7} {:>8}  top tokens", "rank", "vector", "score", "overlap");
    for (i, c) in found.iter().enumerate() {
        let tokens: Vec<String> = c.top_tokens.iter().take(8).map(|t| format!("{:?}", t.token)).collect();
        println!(
            "{:>4}  {:<10} {:>7.3} {:>5}/200  {}",
            i + 1,
            c.vector.to_string(),
            c.score,
            c.overlap,
            tokens.join(" ")
        );
    }
    if let Some(p) = &a.svg {
        let mut chart = BarChart::new("value vectors ranked for the concept", "vector", "score (standard deviations)");
        chart.categories = found.iter().map(|c| c.vector.to_string()).collect();
        chart.series = vec![("score".into(), found.iter().map(|c| c.score).collect())];
        chart.write(p)?;
        println!("wrote {}", p.display());
    }
    write_json(
        &a.out,
        &json!({ "model": model_path, "terms": terms, "text": text.as_ref().map(|t| &t.name),
                 "background_texts": background.len(), "concept_tokens": concept.len(),
                 "scanned": scanned, "seconds": secs, "candidates": found }),
    )
}

/// Questions from JSONL (a `question` or `text` field) or plain lines.
fn read_questions(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        if line.trim_start().starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            match v.get("question").or_else(|| v.get("text")).and_then(|q| q.as_str()) {
                Some(q) => out.push(q.to_string()),
                None => bail!("{} line {}: no string field `question` or `text`", path.display(), i + 1),
            }
        } else {
            out.push(line.to_string());
        }
    }
    if out.is_empty() {
        bail!("{}: no questions", path.display());
    }
    Ok(out)
}

/// The entry of a ConceptVectors file called `name` (its `Concept` or id).
fn entry_named<'e>(file: &Path, entries: &'e [ConceptEntry], name: &str) -> Result<&'e ConceptEntry> {
    match entries.iter().find(|e| e.concept == name || e.id == name) {
        Some(e) => Ok(e),
        None => {
            let names: Vec<&str> = entries.iter().map(|e| e.concept.as_str()).collect();
            bail!("{}: no concept `{name}` (it has: {})", file.display(), names.join(", "))
        }
    }
}

fn run_validate(a: &ValidateArgs) -> Result<()> {
    outputs(&[(&a.out, "--out")])?;
    let seeds = a
        .seeds
        .split(',')
        .map(|s| s.trim().parse::<u64>().with_context(|| format!("--seeds {}: expected integers", a.seeds)))
        .collect::<Result<Vec<_>>>()?;
    let (questions, unrelated) = match &a.concepts {
        Some(file) => {
            let entries = read_concepts(file)?;
            let e = entry_named(file, &entries, a.concept.as_deref().expect("clap requires --concept"))?;
            (e.questions.clone(), e.unrelated.clone())
        }
        None => (
            read_questions(a.questions.as_ref().expect("clap requires --questions"))?,
            read_questions(a.unrelated.as_ref().expect("clap requires --unrelated"))?,
        ),
    };
    let (model, _) = load(&a.model, DType::F32)?;
    let vv = ValueVector { layer: a.layer, dim: a.dim };
    vv.check(&model.decoder)?;
    let opts =
        ValidateOptions { sigma: a.sigma, seeds, max_new_tokens: a.max_new_tokens, template: a.template.clone() };
    let t = Instant::now();
    let pb = bar(0, "answering");
    let v = validate(&model.decoder, model.tokenizer()?, vv, &questions, &unrelated, &opts, &pb)?;
    pb.finish_and_clear();
    let ((cb, cr), (ub, ur)) = (v.concept.means(), v.unrelated.means());
    println!(
        "value vector {vv}: ‖v‖ = {:.3}, noise σ = {} (‖ε‖ ≈ {:.3}), {} seeds, {:.1} s",
        v.vector_norm,
        a.sigma,
        v.noise_norm,
        opts.seeds.len(),
        t.elapsed().as_secs_f64()
    );
    println!("{:<22} {:>9} {:>9} {:>10} {:>10}", "questions", "n", "BLEU", "ROUGE-L F", "unchanged");
    let (cu, uu) = (v.concept.unchanged_mean(), v.unrelated.unchanged_mean());
    println!("{:<22} {:>9} {:>9.3} {:>10.3} {:>10.3}", "concept", questions.len(), cb, cr, cu);
    println!("{:<22} {:>9} {:>9.3} {:>10.3} {:>10.3}", "unrelated", unrelated.len(), ub, ur, uu);
    println!(
        "(1 = the edited model answers exactly as the original; a causal vector lowers the concept row only; BLEU and \
         ROUGE-L score an empty answer 0 even when unchanged)"
    );
    write_json(&a.out, &serde_json::to_value(&v)?)
}

fn run_audit(a: &AuditArgs) -> Result<()> {
    outputs(&[(&a.out, "--out")])?;
    let entries = a.concepts.as_deref().map(read_concepts).transpose()?;
    let (before, _) = load(&a.model, DType::F32)?;
    let (after, _) = load(&a.against, DType::F32)?;
    check_comparable(&before.decoder, &after.decoder)
        .with_context(|| format!("{} against {}", a.model.display(), a.against.display()))?;
    let tok = before.tokenizer()?;
    if let Ok(t) = after.tokenizer() {
        if t.vocab_size() != tok.vocab_size() {
            bail!(
                "{} and {} have different vocabularies ({} against {} tokens)",
                a.model.display(),
                a.against.display(),
                tok.vocab_size(),
                t.vocab_size()
            );
        }
    }
    let mut rows: Vec<(String, VectorAudit)> = Vec::new();
    match &entries {
        Some(es) => {
            for e in es {
                e.vector.check(&before.decoder).with_context(|| {
                    format!("{}: concept `{}` (id {})", a.concepts.as_ref().unwrap().display(), e.concept, e.id)
                })?;
                let tokens = ConceptTokens::from_text(tok, &e.wikipedia).ok();
                let r = audit(&before.decoder, &after.decoder, &[e.vector], tokens.as_ref())?;
                rows.extend(r.into_iter().map(|r| (e.concept.clone(), r)));
            }
        }
        None => {
            let vv = ValueVector { layer: a.layer.expect("clap"), dim: a.dim.expect("clap") };
            let tokens = concept_tokens(
                tok,
                a.terms.as_deref(),
                a.text.as_deref().map(Text::read).transpose()?.as_ref(),
                &[],
                false,
            )?;
            let r = audit(&before.decoder, &after.decoder, &[vv], tokens.as_ref())?;
            rows.extend(r.into_iter().map(|r| (vv.to_string(), r)));
        }
    }
    println!("{:<28} {:<10} {:>8} {:>9} {:>8} {:>8}", "concept", "vector", "cosine", "L2 / ‖v‖", "Jaccard", "kept");
    for (name, r) in &rows {
        let kept = r.concept_kept.map(|k| format!("{k:.3}")).unwrap_or_else(|| "–".into());
        println!(
            "{:<28} {:<10} {:>8.4} {:>9.4} {:>8.3} {:>8}",
            name,
            r.vector.to_string(),
            r.cosine,
            r.l2 / r.norm.max(f64::MIN_POSITIVE),
            r.jaccard,
            kept
        );
    }
    let json_rows: Vec<_> = rows.iter().map(|(n, r)| json!({ "concept": n, "audit": r })).collect();
    write_json(&a.out, &json!({ "before": a.model, "after": a.against, "vectors": json_rows }))
}

fn run_direction(a: &DirectionArgs) -> Result<()> {
    outputs(&[(&a.out, "--out"), (&a.save, "--save")])?;
    let readout: Readout = a.readout.parse()?;
    if a.generate.is_some() != (a.steer.is_some() || a.ablate) {
        bail!("--generate goes with --steer ALPHA or --ablate (the continuations to compare)");
    }
    let (concept, control) = (read_questions(&a.concept)?, read_questions(&a.control)?);
    let project = a.project.as_deref().map(read_questions).transpose()?;
    let generate = a.generate.as_deref().map(read_questions).transpose()?;
    let (model, _) = load(&a.model, DType::F32)?;
    let (dec, tok) = (&model.decoder, model.tokenizer()?);
    let encode = |ps: &[String]| -> Result<Vec<Vec<u32>>> {
        Ok(ps.iter().map(|p| tok.encode(p)).collect::<circuitscope::Result<_>>()?)
    };
    let dir = Direction::difference_of_means(dec, &encode(&concept)?, &encode(&control)?, a.layer, readout)?;
    let norm = dir.norm()?;
    let summary = |xs: &[f64]| {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        (m, sd)
    };
    let (pc, pk) = (dir.project(dec, &encode(&concept)?)?, dir.project(dec, &encode(&control)?)?);
    let ((mc, sc), (mk, sk)) = (summary(&pc), summary(&pk));
    println!("direction at layer {} ({} readout): ‖mean(concept) − mean(control)‖ = {norm:.4}", a.layer, a.readout);
    println!(
        "projection onto the unit direction: concept {mc:.3} ± {sc:.3} (n = {}), control {mk:.3} ± {sk:.3} (n = {})",
        pc.len(),
        pk.len()
    );
    let projected = match &project {
        Some(ps) => {
            let v = dir.project(dec, &encode(ps)?)?;
            for (p, x) in ps.iter().zip(&v) {
                println!("{x:>9.3}  {p}");
            }
            Some(ps.iter().zip(&v).map(|(p, x)| json!({ "prompt": p, "projection": x })).collect::<Vec<_>>())
        }
        None => None,
    };
    let generated = match &generate {
        Some(ps) => {
            let edit = match a.steer {
                Some(alpha) => dir.steering(alpha, dec.dtype())?,
                None => dir.ablation()?,
            };
            let what = a.steer.map_or("ablated".to_string(), |s| format!("steered α = {s}"));
            let ids = encode(ps)?;
            let (none, with) = (HookSet::new(), HookSet::new().intervene(edit));
            let gen = |hooks: &HookSet| -> Result<Vec<Vec<u32>>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(GREEDY_ROWS) {
                    out.extend(greedy_batch(dec, chunk, a.max_new_tokens, tok.eos, hooks)?);
                }
                Ok(out)
            };
            let (plain, edited) = (gen(&none)?, gen(&with)?);
            let mut rows = Vec::new();
            for ((p, x), y) in ps.iter().zip(&plain).zip(&edited) {
                let (x, y) = (tok.decode(x)?, tok.decode(y)?);
                println!("prompt   {p:?}\n  plain   {x:?}\n  {what:<7} {y:?}");
                rows.push(json!({ "prompt": p, "plain": x, "edited": y }));
            }
            Some(rows)
        }
        None => None,
    };
    if let Some(p) = &a.save {
        candle_core::safetensors::save(&dir.tensors()?.into_iter().collect(), p)?;
        println!("wrote {}", p.display());
    }
    let record = json!({
        "model": a.model, "layer": a.layer, "readout": readout, "norm": norm,
        "concept_projection": pc, "control_projection": pk, "projected": projected,
        "steer": a.steer, "ablate": a.ablate, "generated": generated,
    });
    write_json(&a.out, &record)
}

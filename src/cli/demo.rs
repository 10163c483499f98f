//! `circuitscope demo`: the bundled model and world, end to end, into a report folder.

use super::progress::bar;
use anyhow::{Context, Result};
use circuitscope::analyses::compare::{agreement, rank_pairs};
use circuitscope::analyses::heads::{head_scores, HeadScores};
use circuitscope::attribution::sweep::{default_points, faithfulness_sweep_with, SweepSelection};
use circuitscope::attribution::{attribute, AttributionConfig, FaithfulnessConfig, Method, ReaderFix};
use circuitscope::graph::Circuit;
use circuitscope::hooks::{HookPoint, HookSet, Site};
use circuitscope::model::inspect;
use circuitscope::model::Decoder;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::render::attention::attention_svg;
use circuitscope::render::{circuit_svg, BarChart, CircuitSvgOptions, LinePlot, Series};
use circuitscope::train::card::{evaluate, WorldData};
use circuitscope::world::{read_tasks, Task};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Marks a folder as a demo report, which a later demo may replace without `--force`.
const MARKER: &str = ".circuitscope-demo";
/// The normalised faithfulness a circuit must reach to count as faithful (the and MIB's 0.8).
const FAITHFUL: f64 = 0.8;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// the report folder (a previous demo report there is replaced; anything else needs --force)
    #[arg(long, default_value = "circuitscope-demo")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    /// the model (default: the bundled models/world-gpt2)
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// the world folder (default: the bundled circuits/world)
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Runs the demo with the bundled model and world unless others are given.
pub fn run_args(a: &DemoArgs) -> Result<()> {
    let model = a.model.clone().unwrap_or_else(|| bundled("models/world-gpt2"));
    let data = a.data.clone().unwrap_or_else(|| bundled("circuits/world"));
    run(&model, &data, &a.out, a.force)
}

/// The bundled model and world: relative to the working directory, else to the repository the
/// binary was built from.
pub fn bundled(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if repo.exists() {
        repo
    } else {
        here
    }
}

struct Section {
    title: String,
    body: String,
}

pub fn run(model_path: &Path, data: &Path, out: &Path, force: bool) -> Result<()> {
    let start = Instant::now();
    if !out.join(MARKER).exists() {
        super::common::check_output_dir(out, force)?;
    }
    let world = WorldData::read(data)?;
    let loading = bar(0, "loading");
    let opts = LoadOptions { device: super::model::device(), ..Default::default() };
    let model = Model::load_with_progress(model_path, opts, &loading)
        .with_context(|| format!("loading the bundled model {}", model_path.display()))?;
    loading.finish_and_clear();
    let (tok, dec) = (model.tokenizer()?, &model.decoder);
    let mut r = Report { files: Vec::new(), sections: Vec::new() };
    accuracy(&mut r, dec, tok, &world, model_path)?;
    logit_lens(&mut r, dec, tok, data)?;
    heads(&mut r, dec, tok, data)?;
    circuits(&mut r, dec, tok, data)?;
    cud(&mut r, &model, data)?;
    concept_vectors(&mut r, &model, data)?;
    cure_partition(&mut r, &model, data)?;
    write_report(r, model_path, data, out, start)
}

/// The report under construction: its files (name, bytes) and its sections.
struct Report {
    files: Vec<(String, Vec<u8>)>,
    sections: Vec<Section>,
}

type Tok = circuitscope::model::Tokenizer;

/// Accuracy per split and task.
fn accuracy(r: &mut Report, dec: &Decoder, tok: &Tok, world: &WorldData, model_path: &Path) -> Result<()> {
    let pb = bar(1, "accuracy");
    let report = evaluate(dec, tok, world)?;
    pb.finish_and_clear();
    println!("accuracy of {}:\n{}", model_path.display(), report.table());
    r.files.push(("accuracy.json".into(), serde_json::to_vec_pretty(&report)?));
    r.sections.push(Section {
        title: "Accuracy per split and task".into(),
        body: report.markdown() + "\nMachine-readable: [`accuracy.json`](accuracy.json).\n",
    });

    Ok(())
}

/// The logit lens on a few fact prompts.
fn logit_lens(r: &mut Report, dec: &Decoder, tok: &Tok, data: &Path) -> Result<()> {
    let facts = read_tasks(&data.join(Task::FactRecall.file_name()))?;
    let mut lens_json = Vec::new();
    let mut body = String::from(
        "For each prompt, the top token that the residual stream after each layer predicts (final norm, then \
         unembedding), and the rank of the right answer. Machine-readable: [`logit_lens.json`](logit_lens.json).\n\n",
    );
    for item in facts.iter().take(5) {
        let ids = tok.encode(&item.clean)?;
        let answer = circuitscope::train::eval::first_token(tok, &item.answer)?;
        let lens = inspect::logit_lens(dec, &ids, 5)?;
        let _ = writeln!(
            body,
            "**{}** →{}\n\n| layer | top token | answer in top 5 |\n|---:|---|---|",
            item.clean, item.answer
        );
        let mut layers = Vec::new();
        for (l, cands) in lens.iter().enumerate() {
            let top = tok.token_text(cands[0].id);
            let rank = cands.iter().position(|c| c.id == answer).map(|r| (r + 1).to_string()).unwrap_or("–".into());
            let _ = writeln!(body, "| {l} | `{}` | {rank} |", top.replace('|', "\\|"));
            layers.push(serde_json::json!({
                "layer": l,
                "top": cands.iter().map(|c| serde_json::json!({"token": tok.token_text(c.id), "logit": c.logit})).collect::<Vec<_>>(),
            }));
        }
        body.push('\n');
        lens_json.push(serde_json::json!({"prompt": item.clean, "answer": item.answer, "layers": layers}));
    }
    r.files.push(("logit_lens.json".into(), serde_json::to_vec_pretty(&lens_json)?));
    r.sections.push(Section { title: "Logit lens on fact recall".into(), body });

    Ok(())
}

/// Head roles, attention pictures and which heads induction needs.
fn heads(r: &mut Report, dec: &Decoder, tok: &Tok, data: &Path) -> Result<()> {
    let induction = read_tasks(&data.join(Task::Induction.file_name()))?;
    let prompts: Vec<Vec<u32>> = induction
        .iter()
        .take(50)
        .map(|it| tok.encode(&format!("{}{}", it.clean, it.answer)))
        .collect::<circuitscope::Result<_>>()?;
    let scores = head_scores(dec, &prompts)?;
    r.files.push(("heads.json".into(), serde_json::to_vec_pretty(&scores)?));
    let mut chart = BarChart::new("Head roles on induction prompts", "head", "mean attention");
    chart.categories =
        (0..dec.cfg.n_layers).flat_map(|l| (0..dec.cfg.n_heads).map(move |h| format!("L{l}H{h}"))).collect();
    chart.series = vec![
        ("induction".into(), scores.induction.iter().flatten().map(|&x| x as f64).collect()),
        ("previous token".into(), scores.previous_token.iter().flatten().map(|&x| x as f64).collect()),
    ];
    r.files.push(("heads.svg".into(), chart.to_svg()?.into_bytes()));
    let example = &prompts[0];
    let labels: Vec<String> = example.iter().map(|&id| tok.token_text(id)).collect();
    let mut body = String::from(
        "Induction score: mean attention from a token to the token after its previous occurrence; previous-token \
         score: mean attention to the token before. Over 50 induction prompts; all heads in \
         [`heads.svg`](heads.svg) and [`heads.json`](heads.json).\n\n![head scores](heads.svg)\n\n",
    );
    // every layer's pattern on the example, from one pass
    let pattern = |l| HookPoint::Block(l, Site::Pattern);
    let patterns =
        dec.forward(&Decoder::input(example)?, &HookSet::new().capture((0..dec.cfg.n_layers).map(pattern)))?;
    for (role, list) in [
        ("induction", HeadScores::top(&scores.induction, 2)),
        ("previous-token", HeadScores::top(&scores.previous_token, 2)),
    ] {
        for (l, h, s) in list {
            let name = format!("attention-L{l}H{h}-{role}.svg");
            let pat: Vec<Vec<f32>> = patterns.cache.get(pattern(l))?.get(0)?.get(h)?.to_vec2()?;
            let title = format!("layer {l} head {h}: {role} score {s:.2}");
            r.files.push((name.clone(), attention_svg(&title, &labels, &pat).into_bytes()));
            let _ = writeln!(body, "**{title}**\n\n![{title}]({name})\n");
        }
    }
    necessity(dec, tok, &induction, &scores, &mut body, &mut r.files)?;
    r.sections.push(Section { title: "Induction and previous-token heads".into(), body });

    Ok(())
}

/// The circuits of the bundled tasks, and EAP-IG against exact patching on them.
fn circuits(r: &mut Report, dec: &Decoder, tok: &Tok, data: &Path) -> Result<()> {
    let mut body = format!(
        "EAP-IG (inputs, m = 5, logit difference, patching with the corrupted prompts) on 32 items per task; \
         the circuit is `greedy` at 5 % of the graph's edges, pruned; faithfulness is measured on 32 other items \
         by patching every edge outside the circuit, for circuits of increasing size (top-n, every 5 % of the \
         edges and 1, 2, 5, 10, …), with the smallest of them that reaches faithfulness {FAITHFUL}.\n\n\
         | task | edges in circuit | nodes | faithfulness (5 % circuit) | CPR | CMD | smallest top-n circuit ≥ {FAITHFUL} |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut pictures = String::new();
    let mut curves = Vec::new();
    let mut checks = String::from(
        "Exact patching (each edge patched alone, one forward pass per edge) is the ground truth that the \
         gradient methods approximate. On the same 32 items per task, EAP-IG's scores against it over every edge \
         (Spearman of the signed scores and of |score|, the ranking circuit selection uses; Pearson; how many \
         of the top 5 % edges by |score| both share; the kind of edge that disagrees most, with the Spearman \
         over all other edges). Each point of the picture is one edge (EAP-IG on inputs). \
         `circuitscope compare` gives the figures for every kind of edge.\n\n\
         The gradient linearises everything after the patched reader input; where the reader itself saturates \
         (an attention softmax that ignores a position, a switched-off MLP neuron) it misses what a full patch \
         does. The reader fixes (`attribute --qk-fix --mlp-fix`; AtP*'s QK fix and its MLP analogue) compute \
         each edge exactly up to its reader's own output, the attention pattern or the MLP's hidden \
         activations, and linearly beyond.\n\n\
         | task | method | Spearman (signed) | Spearman (\\|score\\|) | Pearson | top-5 % edges shared | most disagreeing edges |\n\
         |---|---|---:|---:|---:|---:|---|\n",
    );
    let mut rank_series = Vec::new();
    for t in Task::ALL {
        let file = circuitscope::data::ExampleFile::read(&data.join(t.file_name()))?;
        let all = file.examples(tok)?;
        let (fit, held) = (&all[..32.min(all.len())], &all[32.min(all.len())..64.min(all.len())]);
        let pb = bar(0, t.name());
        let cfg = AttributionConfig { batch_size: 16, ..Default::default() };
        let scores = attribute(dec, fit, &cfg, &pb)?.scores;
        pb.finish_and_clear();
        let total = scores.shape.n_edges();
        let pb = bar(0, "exact");
        let exact = attribute(dec, fit, &AttributionConfig { method: Method::Exact, ..cfg.clone() }, &pb)?.scores;
        pb.finish_and_clear();
        let pb = bar(0, "fixed");
        let fixed_cfg = AttributionConfig {
            method: Method::EapIgActivations { steps: 5 },
            fix: ReaderFix { qk: true, mlp: true },
            ..cfg.clone()
        };
        let fixed = attribute(dec, fit, &fixed_cfg, &pb)?.scores;
        pb.finish_and_clear();
        let top = total.div_ceil(20);
        for (method, s) in [("EAP-IG inputs", &scores), ("EAP-IG activations + QK/MLP fix", &fixed)] {
            let g = agreement(s, &exact, &[top])?;
            let _ = writeln!(
                checks,
                "| {} | {method} | {:.3} | {:.3} | {:.3} | {} / {top} | {} |",
                t.name(),
                g.spearman,
                g.spearman_abs,
                g.pearson,
                g.top_overlap[0].shared,
                g.worst_kind().map_or(String::from("–"), |k| format!(
                    "{} ({} edges; Spearman without them {:.3})",
                    k.kind, k.n_edges, k.spearman_without
                ))
            );
            println!(
                "{}: {method} against exact patching over {total} edges: Spearman {:.3} (signed), {:.3} (|score|)",
                t.name(),
                g.spearman,
                g.spearman_abs
            );
        }
        rank_series.push(Series::new(t.name(), rank_pairs(&scores, &exact, 5000)));
        let circuit = Circuit::greedy(&scores, (total / 20).max(1))?.pruned().with_d_model(dec.cfg.d_model);
        let pb = bar(0, "faithfulness");
        let mut points = default_points(total);
        points.extend((1..20).map(|i| i * total / 20).filter(|&n| n > 0));
        points.push(circuit.n_edges_in_graph().max(1));
        let fcfg = FaithfulnessConfig { batch_size: 16, ..Default::default() };
        let (sweep, one) = faithfulness_sweep_with(
            dec,
            held,
            &scores,
            SweepSelection::TopN,
            &points,
            &[circuit.edge_mask()],
            &fcfg,
            &pb,
        )?;
        pb.finish_and_clear();
        let name = t.name();
        let title = format!("{name}: EAP-IG greedy circuit ({} edges)", circuit.n_edges_in_graph());
        let opts = CircuitSvgOptions { title: title.clone(), ..Default::default() };
        r.files.push((format!("circuit-{name}.svg"), circuit_svg(&circuit, &opts).into_bytes()));
        r.files.push((format!("circuit-{name}.json"), circuit.to_json_string().into_bytes()));
        r.files.push((format!("faithfulness-{name}.json"), serde_json::to_vec_pretty(&sweep.to_json(FAITHFUL))?));
        let _ = writeln!(
            body,
            "| {name} | {} / {total} | {} | {:.3} | {:.3} | {:.3} | {} |",
            circuit.n_edges_in_graph(),
            circuit.n_nodes_in_graph(),
            one[0],
            sweep.areas.cpr,
            sweep.areas.cmd,
            sweep.smallest_reaching(FAITHFUL).map_or("none".into(), |p| format!(
                "{} edges ({:.1} %), {:.3}",
                p.edges,
                100.0 * p.edges as f64 / total as f64,
                p.faithfulness
            ))
        );
        println!(
            "{name}: circuit of {} / {total} edges, faithfulness {:.3}, CPR {:.3}, CMD {:.3}",
            circuit.n_edges_in_graph(),
            one[0],
            sweep.areas.cpr,
            sweep.areas.cmd
        );
        let _ = writeln!(pictures, "**{title}** ([JSON](circuit-{name}.json))\n\n![{title}](circuit-{name}.svg)\n");
        curves.push(Series::new(name, sweep.curve()));
    }
    let plot = LinePlot::faithfulness("Faithfulness of top-n EAP-IG circuits, bundled model", curves);
    r.files.push(("faithfulness.svg".into(), plot.to_svg()?.into_bytes()));
    let _ = write!(body, "\n![faithfulness curves](faithfulness.svg)\n\n{pictures}");
    r.sections.push(Section { title: "Circuits of the bundled tasks".into(), body });
    let plot = LinePlot::scatter(
        "EAP-IG against exact patching: edge ranks",
        "rank by EAP-IG (fraction)",
        "rank by exact patching (fraction)",
        rank_series,
    );
    r.files.push(("eap-ig-vs-exact.svg".into(), plot.to_svg()?.into_bytes()));
    let _ = write!(checks, "\n![EAP-IG against exact patching](eap-ig-vs-exact.svg)\n");
    r.sections.push(Section { title: "EAP-IG against exact patching".into(), body: checks });

    Ok(())
}

/// CUD on the bundled forget set, validated on held-out people: anchors from unlearning half the
/// forget10 people with four methods, CUD of the other half before any unlearning of it, then
/// that half unlearned with NPO to see which samples resisted.
fn cud(r: &mut Report, model: &Model, data: &Path) -> Result<()> {
    use super::validate_cud::{p_of, run_methods, split_halves, Samples};
    use circuitscope::analyses::cud::{anchor_circuit, distances, sample_circuits, CudSettings};
    use circuitscope::unlearn::anchors::Consensus;
    use circuitscope::unlearn::Method as Unlearning;
    let format = super::model::prompt_format(model, None)?;
    let forget_file = data.join("forget10.jsonl");
    let (pairs, examples) = super::unlearn::qa_file(&forget_file, None, model, &format)?;
    let (_, retain) = super::unlearn::qa_file(&data.join("retain90.jsonl"), None, model, &format)?;
    let all = Samples { pairs, examples };
    let (ia, ib, _) = split_halves(&all.pairs, 42, &forget_file)?;
    let (sa, sb) = (all.subset(&ia), all.subset(&ib));
    let methods = [Unlearning::GradDiff, Unlearning::Npo, Unlearning::SimNpo, Unlearning::Rmu];
    let runs = run_methods(model, &methods, &sa.examples, &retain, sa.examples.len() / 4, "anchors", None)?;
    let Consensus { easy, hard, .. } = Consensus::of(&runs);
    let s = CudSettings::default();
    let pb = bar(0, "CUD");
    let (e, h) = (
        anchor_circuit(&model.decoder, &sa.subset(&easy).examples, &s, &pb)?,
        anchor_circuit(&model.decoder, &sa.subset(&hard).examples, &s, &pb)?,
    );
    let t = Instant::now();
    let circuits = sample_circuits(&model.decoder, &sb.examples, &s, &pb)?;
    let per_sample = t.elapsed().as_secs_f64() / sb.examples.len() as f64;
    pb.finish_and_clear();
    let cud: Vec<f64> = circuits.iter().map(|c| distances(c, &e, &h, &s).map(|d| d.cud)).collect::<Result<_, _>>()?;
    let after = p_of(&run_methods(model, &[Unlearning::Npo], &sb.examples, &retain, 1, "NPO on B", None)?[0].nll_after);
    let rho = circuitscope::analyses::stats::spearman(&cud, &after);
    println!("CUD of {} held-out samples: Spearman {rho:.3} with the answer probability NPO leaves", cud.len());
    let mut body = format!(
        "Circuit-guided unlearning difficulty (CUD, ALGORITHMS.md §5) scores forget samples before unlearning. The \
         forget10 people are split in halves. Half A ({} samples) is unlearned with grad-diff, NPO, SimNPO and RMU \
         at their documented settings; the samples most methods forget best and least are the easy ({}) and hard \
         ({}) anchors, each attributed jointly into one circuit (EAP-IG on activations, m = 5, zero ablation, the \
         answer's probability; greedy 75 edges). Each sample of half B ({}) gets its own circuit ({per_sample:.2} s \
         per sample) and CUD = d_easy / (d_easy + d_hard), 1 = like the hard anchors. Then half B is unlearned with \
         NPO: Spearman's ρ between CUD and the answer probability NPO leaves is **{rho:.3}** (higher = harder on \
         both). `circuitscope validate-cud` repeats this with baselines (answer NLL, length, MRD, random), \
         bootstrap intervals, CUD's quarters unlearned apart and the structural signature.\n\n\
         ![CUD against the probability NPO leaves](cud-vs-npo.svg)\n\n![CUD of half B](cud-distribution.svg)\n\n\
         | highest CUD (predicted hard) | CUD | probability after NPO |\n|---|---:|---:|\n",
        sa.examples.len(),
        easy.len(),
        hard.len(),
        sb.examples.len()
    );
    let mut order: Vec<usize> = (0..cud.len()).collect();
    order.sort_by(|&a, &b| cud[b].total_cmp(&cud[a]).then(a.cmp(&b)));
    let line = |body: &mut String, i: usize| {
        let _ = writeln!(body, "| {} | {:.3} | {:.3} |", sb.pairs[i].question.replace('|', "\\|"), cud[i], after[i]);
    };
    for &i in order.iter().take(5) {
        line(&mut body, i);
    }
    body.push_str("\n| lowest CUD (predicted easy) | CUD | probability after NPO |\n|---|---:|---:|\n");
    for &i in order.iter().rev().take(5) {
        line(&mut body, i);
    }
    let _ =
        write!(body, "\n![easy anchor circuit](cud-anchor-easy.svg)\n\n![hard anchor circuit](cud-anchor-hard.svg)\n");
    let scatter = LinePlot::scatter(
        format!("CUD against the answer probability NPO leaves ({} held-out samples)", cud.len()),
        "CUD (before unlearning)",
        "answer probability after NPO",
        vec![Series::new("half B", cud.iter().copied().zip(after.iter().copied()).collect())],
    );
    r.files.push(("cud-vs-npo.svg".into(), scatter.to_svg()?.into_bytes()));
    let dist =
        circuitscope::render::cud_plots::distribution(&format!("CUD of {} held-out samples", cud.len()), &cud, "CUD");
    r.files.push(("cud-distribution.svg".into(), dist.to_svg()?.into_bytes()));
    for (kind, c, n) in [("easy", &e, easy.len()), ("hard", &h, hard.len())] {
        let title = format!("{kind} anchor circuit ({n} samples, {} edges)", c.n_edges_in_graph());
        r.files.push((
            format!("cud-anchor-{kind}.svg"),
            circuit_svg(c, &CircuitSvgOptions { title, ..Default::default() }).into_bytes(),
        ));
    }
    r.sections.push(Section { title: "Unlearning difficulty (CUD) on held-out people".into(), body });
    Ok(())
}

/// The value vectors that carry one forget person (the first of forget10), proved causal by
/// noise, then audited after she is unlearned three ways (scripts/concepts-world.sh at length).
fn concept_vectors(r: &mut Report, model: &Model, data: &Path) -> Result<()> {
    use circuitscope::analyses::concepts::{audit, find, validate, ConceptTokens, FindOptions, ValidateOptions};
    use circuitscope::train::params::Trainable;
    use circuitscope::unlearn::{needle_config, unlearn, Method as Unlearning, UnlearnConfig};
    let (dec, tok) = (&model.decoder, model.tokenizer()?);
    let format = super::model::prompt_format(model, None)?;
    let forget_file = data.join("forget10.jsonl");
    let (pairs, examples) = super::unlearn::qa_file(&forget_file, None, model, &format)?;
    let people: Vec<String> = std::fs::read_to_string(&forget_file)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str::<serde_json::Value>(l)?["person"].as_str().unwrap_or_default().to_string()))
        .collect::<Result<_>>()?;
    let person = people.first().context("forget10.jsonl has no record")?.clone();
    let (hers, others): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&i| people[i] == person);
    let others: Vec<usize> = others.into_iter().take(40).collect();
    let forget: Vec<_> = hers.iter().map(|&i| examples[i].clone()).collect();
    let questions = |idx: &[usize]| -> Vec<String> { idx.iter().map(|&i| pairs[i].question.clone()).collect() };

    let concept = ConceptTokens::from_terms(tok, &person)?;
    let pb = bar(0, "concept scan");
    let t = Instant::now();
    let found = find(dec, Some(tok), &concept, &FindOptions { candidates: 3, ..Default::default() }, &pb)?;
    let scan_secs = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let best = found.first().context("the scan found no value vector")?.vector;
    let mut body = format!(
        "The value vectors that carry one forget person, {person} (ALGORITHMS.md §6; `circuitscope concepts`). A \
         scan of all {} value vectors for her name's tokens ({scan_secs:.2} s) ranks:\n\n\
         | vector | score | her tokens in its top 200 | top tokens |\n|---|---:|---:|---|\n",
        dec.cfg.n_layers * dec.cfg.d_mlp
    );
    for c in &found {
        let toks: Vec<String> = c.top_tokens.iter().take(6).map(|t| format!("`{}`", t.token.trim())).collect();
        let _ = writeln!(body, "| {} | {:.2} | {} | {} |", c.vector, c.score, c.overlap, toks.join(" "));
    }
    let _ = write!(
        body,
        "\nNoise on {best} (seed 8888, 24 greedy tokens): BLEU / ROUGE-L F of the edited model's answers against \
         the original's, on her {} questions and on {} of other people's (1 = unchanged):\n\n\
         | σ | ‖noise‖ / ‖v‖ | her questions | other people's |\n|---:|---:|---|---|\n",
        hers.len(),
        others.len()
    );
    let mut record = serde_json::json!({ "person": person, "candidates": found });
    let mut noise_line = String::new();
    for sigma in [0.1, 10.0] {
        let opts =
            ValidateOptions { sigma, seeds: vec![8888], max_new_tokens: 24, template: "Question: {q}\nAnswer:".into() };
        let pb = bar(0, &format!("noise σ = {sigma}"));
        let v = validate(dec, tok, best, &questions(&hers), &questions(&others), &opts, &pb)?;
        pb.finish_and_clear();
        let ((cb, cr), (ub, ur)) = (v.concept.means(), v.unrelated.means());
        noise_line = format!("noise σ = {sigma}: BLEU {cb:.2} on her answers, {ub:.2} on others'");
        record[format!("validation_sigma_{sigma}")] = serde_json::to_value(&v)?;
        let _ =
            writeln!(body, "| {sigma} | {:.2} | {cb:.3} / {cr:.3} | {ub:.3} / {ur:.3} |", v.noise_norm / v.vector_norm);
    }
    let _ = write!(
        body,
        "\nThen her {} answers are unlearned (grad-ascent and NPO at their documented settings, NPO keeping 20 \
         retain answers; Needle: noise σ = 0.1 on {best}, then one epoch of gradient ascent on that vector alone) and \
         the three vectors audited: cosine with the original, top-200 Jaccard, and the share of her name's tokens \
         still in its top 200. Behaviour: her answers' NLL per token and the share answered exactly (greedy).\n\n\
         | method | her answers: NLL, exact | {} |\n|---|---|{}\n",
        forget.len(),
        found.iter().map(|c| format!("{}: cos, Jaccard, kept", c.vector)).collect::<Vec<_>>().join(" | "),
        "---|".repeat(found.len())
    );
    let (_, retain) = super::unlearn::qa_file(&data.join("retain90.jsonl"), Some(20), model, &format)?;
    let vectors: Vec<_> = found.iter().map(|c| c.vector).collect();
    let (nll0, exact0) = super::unlearn::measure_set(dec, &forget, 8)?;
    let mut summary = format!("concept vectors: {best} carries {person} ({noise_line})");
    for method in [Unlearning::GradAscent, Unlearning::Npo, Unlearning::Needle] {
        let trainable = Trainable::load(&model.path, dec.device())?;
        let mut cfg = UnlearnConfig::documented(method);
        if method == Unlearning::Needle {
            cfg = needle_config(&trainable, &UnlearnConfig { epochs: 1, ..cfg }, best.layer, best.dim, 0.1, cfg.seed)?;
        }
        let retain: &[_] = if cfg.alpha > 0.0 { &retain } else { &[] };
        let pb = bar(0, &format!("unlearning {person}: {}", method.name()));
        unlearn(&trainable, Some(dec), &forget, retain, &cfg, &pb)?;
        pb.finish_and_clear();
        let after = trainable.decoder()?;
        let (nll, exact) = super::unlearn::measure_set(&after, &forget, 8)?;
        let audits = audit(dec, &after, &vectors, Some(&concept))?;
        let _ = write!(summary, "; {} cos {:.3}, exact {:.0} %", method.name(), audits[0].cosine, 100.0 * exact);
        record[method.name()] =
            serde_json::json!({ "forget_nll": [nll0, nll], "forget_exact": [exact0, exact], "audit": audits });
        let cells: Vec<String> = audits
            .iter()
            .map(|a| {
                let kept = a.concept_kept.map_or("–".to_string(), |k| format!("{k:.2}"));
                format!("{:.3}, {:.2}, {kept}", a.cosine, a.jaccard)
            })
            .collect();
        let _ = writeln!(
            body,
            "| {} | {nll0:.2} → {nll:.2}, {:.0} % → {:.0} % | {} |",
            method.name(),
            100.0 * exact0,
            100.0 * exact,
            cells.join(" | ")
        );
    }
    body.push_str(
        "\nRead against the ConceptVectors finding: a vector whose noise changes her answers and not other \
         people's carries her facts; a run that changes her answers but leaves that vector at cosine ≈ 1 has left \
         what it carries in the weights, where fine-tuning or a jailbreak can reach it. Machine-readable (every \
         answer included): [`concepts.json`](concepts.json).\n",
    );
    println!("{summary}");
    r.files.push(("concepts.json".into(), serde_json::to_vec_pretty(&record)?));
    r.sections.push(Section { title: "Concept vectors: what unlearning leaves in the weights".into(), body });
    Ok(())
}

/// CURE's partition of the bundled model's heads and MLPs for forget10 against retain90.
fn cure_partition(r: &mut Report, model: &Model, data: &Path) -> Result<()> {
    use circuitscope::analyses::cure::{module_scores, partition, Category, CureSettings};
    let format = super::model::prompt_format(model, None)?;
    let (_, forget) = super::unlearn::qa_file(&data.join("forget10.jsonl"), Some(100), model, &format)?;
    let (_, retain) = super::unlearn::qa_file(&data.join("retain90.jsonl"), Some(100), model, &format)?;
    let s = CureSettings { top_k: Some(6), contrast: Some(0.05), ..Default::default() };
    let pb = bar(0, "CURE");
    let (f, rt) = (module_scores(&model.decoder, &forget, &s, &pb)?, module_scores(&model.decoder, &retain, &s, &pb)?);
    pb.finish_and_clear();
    let p = partition(&model.decoder, &f, &rt, &s)?;
    let counts: Vec<String> = Category::ALL.iter().map(|&c| format!("{} {}", p.count(c), c.name())).collect();
    println!("CURE partition (forget10 against retain90): {}", counts.join(", "));
    let mut body = format!(
        "CURE (ALGORITHMS.md §7, a documented reconstruction; `circuitscope cure`) sorts the model's heads and MLPs by \
         their node attribution (EAP-IG inputs, m = 5, the answer's probability, zero ablation) on the first 100 \
         forget10 answers and on the first 100 retain90 answers, each normalised by its set's largest score. The \
         core circuit is each set's 6 highest modules; a core module counts as forget- or retain-specific only if \
         its two sets' per-sample scores differ (permutation test, 0.05 Bonferroni-corrected over the core). \
         Result: {}.\n\n![CURE partition](cure-partition.svg)\n\n\
         | module | forget | retain | p | category |\n|---|---:|---:|---:|---|\n",
        counts.join(", ")
    );
    for m in p.modules.iter().filter(|m| m.category != Category::Outside) {
        let pv = m.p_value.map_or("–".to_string(), |x| format!("{x:.3}"));
        let _ = writeln!(body, "| {} | {:.2} | {:.2} | {pv} | {} |", m.name, m.forget, m.retain, m.category.name());
    }
    if p.count(Category::ForgetSpecific) == 0 {
        body.push_str(
            "\nNo module is forget-specific: here the two samples of one task (other people's facts in the same \
             templates) use the same modules, and CURE's forget objective has nothing of its own to update.",
        );
    }
    body.push_str(" Machine-readable: [`cure-partition.json`](cure-partition.json).\n");
    let title = format!("CURE partition: {} forget / {} retain answers", forget.len(), retain.len());
    r.files.push(("cure-partition.svg".into(), circuitscope::render::cure_svg::cure_svg(&p, &title).into_bytes()));
    r.files.push(("cure-partition.json".into(), serde_json::to_vec_pretty(&p)?));
    r.sections.push(Section { title: "CURE: forget-specific, retain-specific and shared modules".into(), body });
    Ok(())
}

/// `index.md` and the files, written as one folder (atomically).
fn write_report(mut r: Report, model_path: &Path, data: &Path, out: &Path, start: Instant) -> Result<()> {
    let mut index = String::from("# circuitscope demo report\n\n");
    let _ = writeln!(
        index,
        "Model: `{}`; world: `{}`. Made by `circuitscope demo` in {:.0} s.\n",
        model_path.display(),
        data.display(),
        start.elapsed().as_secs_f64()
    );
    for s in &r.sections {
        let _ = writeln!(index, "- [{}](#{})", s.title, anchor(&s.title));
    }
    for s in &r.sections {
        let _ = write!(index, "\n## {}\n\n{}", s.title, s.body);
    }
    r.files.push(("index.md".into(), index.into_bytes()));
    r.files.push((MARKER.into(), b"written by circuitscope demo; a later demo may replace this folder\n".to_vec()));
    circuitscope::fsutil::write_dir_atomic(out, |dir| {
        for (name, bytes) in &r.files {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| circuitscope::Error::io(&p, e))?;
        }
        Ok(())
    })?;
    println!(
        "wrote {} ({} files) in {:.1} s; open {}",
        out.display(),
        r.files.len(),
        start.elapsed().as_secs_f64(),
        out.join("index.md").display()
    );
    Ok(())
}

fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
        .collect::<String>()
        .replace(' ', "-")
}

/// Which heads the induction task needs (items 50–149, means over their clean prompts; the roles
/// were scored on items 0–49): `analyses::heads::necessity`, drawn and tabled.
fn necessity(
    dec: &Decoder,
    tok: &circuitscope::model::Tokenizer,
    induction: &[circuitscope::world::TaskItem],
    scores: &HeadScores,
    body: &mut String,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let eval = &induction[50.min(induction.len())..150.min(induction.len())];
    if eval.is_empty() {
        return Ok(());
    }
    let (nl, nh) = (dec.cfg.n_layers, dec.cfg.n_heads);
    let pb = bar(0, "ablations");
    let n = circuitscope::analyses::heads::necessity(dec, tok, eval, scores, &[1, 2, 4], &pb)?;
    pb.finish_and_clear();
    // (2-way accuracy, top-1 accuracy) in %
    let pct = |s: &circuitscope::train::eval::TaskScore| (100.0 * s.accuracy, 100.0 * s.top1);
    let base = pct(&n.intact);
    let (two_way, top1): (Vec<f64>, Vec<f64>) = n.alone.iter().map(pct).unzip();
    let mut chart = BarChart::new(
        format!("Induction accuracy with one head mean-ablated (intact: {:.0} % 2-way, {:.0} % top-1)", base.0, base.1),
        "head",
        "accuracy (%)",
    );
    chart.categories = (0..nl).flat_map(|l| (0..nh).map(move |h| format!("L{l}H{h}"))).collect();
    chart.series =
        vec![("2-way (answer above distractor)".into(), two_way), ("top-1 over the vocabulary".into(), top1)];
    files.push(("heads-ablated.svg".into(), chart.to_svg()?.into_bytes()));
    let _ = writeln!(
        body,
        "Which heads the task needs: induction accuracy on {} other items with each head mean-ablated alone (its z \
         replaced by its mean over every position of those prompts), and with the heads of highest induction and \
         previous-token scores ablated together. Two accuracies: 2-way, the answer's logit above the distractor's \
         (a later word of the sequence, seen once like the answer; chance 50 %; {:.1} % intact), and top-1, the \
         answer as the model's top prediction over the whole vocabulary ({:.1} % intact). Attention roles and \
         necessity need not agree: a model may spread copying over many heads.\n\n\
         ![accuracy with one head ablated](heads-ablated.svg)\n\n\
         | heads mean-ablated | 2-way accuracy | top-1 accuracy |\n|---|---:|---:|",
        eval.len(),
        base.0,
        base.1
    );
    for circuitscope::analyses::heads::Together { k, heads, score } in &n.together {
        let names: Vec<String> = heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
        let (a, t) = pct(score);
        let _ = writeln!(
            body,
            "| top {k} induction + top {k} previous-token: {} | {a:.1} % | {t:.1} % |",
            names.join(", ")
        );
    }
    body.push('\n');
    Ok(())
}

//! `circuitscope cud`: circuit-guided unlearning difficulty of every forget sample (ALGORITHMS.md
//! §5) against the easy and hard anchors that `circuitscope anchors` wrote: per-sample circuits,
//! the anchor circuits, and per sample CUD with its circuit's structure, as CSV, with pictures.
//! `--shard i/n` scores one part of the forget set; `circuitscope cud merge` joins the parts.

use super::common::{check_output, sibling};
use super::model::load;
use super::progress::bar;
use super::unlearn::qa_file;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::analyses::cud::{
    anchor_circuit, distances, sample_circuits, structure, CircuitVector, CudSettings, Similarity, Structure,
};
use circuitscope::attribution::Method;
use circuitscope::graph::{Circuit, GraphShape};
use circuitscope::render::cud_plots::{distribution, layer_profile};
use circuitscope::render::{circuit_svg, CircuitSvgOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CudCommand {
    #[command(subcommand)]
    pub sub: Option<CudSub>,
    #[command(flatten)]
    pub score: CudArgs,
}

#[derive(clap::Subcommand)]
pub enum CudSub {
    /// Join the CSVs of `cud --shard i/n` runs into one (each with its .meta.json beside it):
    /// the same model, forget set, anchors and settings, every sample exactly once.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// the shards' CSV files
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// the merged CSV (its .meta.json and pictures beside it)
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
}

#[derive(clap::Args)]
pub struct CudArgs {
    /// the model before unlearning
    #[arg(required = true)]
    pub model: Option<PathBuf>,
    /// the forget samples to score (question/answer JSONL)
    #[arg(long, required = true)]
    pub forget: Option<PathBuf>,
    /// the folder `circuitscope anchors` wrote
    #[arg(long, required = true)]
    pub anchors: Option<PathBuf>,
    /// which anchor sets: `consensus`, one method's (e.g. `npo`), or `per-method` (every
    /// method's, CUD averaged over them, each method's CUD in a column of its own)
    #[arg(long, default_value = "consensus")]
    pub anchor_set: String,
    /// the attribution method: eap-ig-activations (the reference's), eap-ig-inputs or eap
    #[arg(long, default_value = "eap-ig-activations")]
    pub method: String,
    /// circuit vectors: `weighted` (score × in-circuit) or `binary`
    #[arg(long, default_value = "weighted")]
    pub vector: String,
    /// `cosine`, `jaccard` or `hamming`
    #[arg(long, default_value = "cosine")]
    pub similarity: String,
    /// edges per greedy circuit
    #[arg(long, default_value_t = 75)]
    pub edges: usize,
    /// EAP-IG interpolation steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// samples per forward pass
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// score only the first N forget samples
    #[arg(long)]
    pub limit: Option<usize>,
    /// score part i of n (1 ≤ i ≤ n, contiguous parts), e.g. a Slurm array task's
    /// `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`; join the parts with `cud merge`
    #[arg(long)]
    pub shard: Option<String>,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
    /// the CSV to write (its settings go to <stem>.meta.json beside it, its pictures to
    /// <stem>.svg, <stem>-layers.svg and <stem>-anchor-{easy,hard}.svg, or .pdf/.png by --pictures)
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
}

/// The CSV's columns before the per-set ones.
const HEADER: &str =
    "index,question,cud,d_easy,d_hard,edges,mean_writer_layer,deepest_layer,longest_path,edges_per_layer";

pub fn run(c: &CudCommand) -> Result<()> {
    match &c.sub {
        Some(CudSub::Merge(m)) => merge(m),
        None => score(&c.score),
    }
}

/// `i/n` → (i, n), 1 ≤ i ≤ n.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if (1..=n).contains(&i) => Ok((i, n)),
        _ => bail!("--shard {s}: expected i/n with 1 ≤ i ≤ n, e.g. 2/8"),
    }
}

/// The samples `[first, end)` of part i of n of `total`.
fn shard_range(i: usize, n: usize, total: usize) -> (usize, usize) {
    ((i - 1) * total / n, i * total / n)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One line of the CSV this command writes, split into fields (quotes as [`csv_field`] writes them).
fn csv_split(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    fields.push(cur);
    fields
}

/// The anchors folder's record (`anchors.json`), checked against the model's graph.
fn anchors_record(dir: &Path, shape: GraphShape, model: &Path) -> Result<Value> {
    let path = dir.join("anchors.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: --anchors takes the folder `circuitscope anchors` wrote", path.display()))?;
    let record: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let graph = &record["graph"];
    let want =
        json!({"n_layers": shape.n_layers, "n_heads": shape.n_heads, "parallel_residual": shape.parallel_residual});
    if graph.is_null() {
        bail!(
            "{}: no \"graph\" field; make the anchors again with this version's `circuitscope anchors`",
            path.display()
        );
    }
    if *graph != want {
        bail!(
            "{}: the anchors were made with a model whose graph is {graph}, but {} has {want}: anchors and scored \
             model must be the same model",
            path.display(),
            model.display()
        );
    }
    Ok(record)
}

/// A checksum of a circuit's edge set (FNV-1a over the in-circuit edge indices), so that shards
/// can show they scored against the same anchor circuits.
fn circuit_hash(c: &Circuit) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &on) in c.edge_mask_ref().iter().enumerate() {
        if on {
            for b in (i as u64).to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
}

fn score(a: &CudArgs) -> Result<()> {
    a.pictures.format()?;
    let (model_path, forget_path, anchors, out) = (
        a.model.as_ref().expect("required"),
        a.forget.as_ref().expect("required"),
        a.anchors.as_ref().expect("required"),
        a.out.as_ref().expect("required"),
    );
    let vector = match a.vector.as_str() {
        "weighted" => CircuitVector::Weighted,
        "binary" => CircuitVector::Binary,
        v => bail!("--vector {v}: expected weighted or binary"),
    };
    let similarity = match a.similarity.as_str() {
        "cosine" => Similarity::Cosine,
        "jaccard" => Similarity::Jaccard,
        "hamming" => Similarity::Hamming,
        v => bail!("--similarity {v}: expected cosine, jaccard or hamming"),
    };
    let method = Method::from_name(&a.method, a.steps)?;
    if !matches!(method, Method::Eap | Method::EapIgInputs { .. } | Method::EapIgActivations { .. }) {
        bail!("--method {}: CUD attributes with eap-ig-activations, eap-ig-inputs or eap", a.method);
    }
    if a.edges == 0 || a.steps == 0 || a.batch == 0 || a.limit == Some(0) {
        bail!("--edges, --steps, --batch and --limit must be at least 1");
    }
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    check_output(out, "--out")?;
    let (model, _) = load(model_path, DType::F32)?;
    let shape = GraphShape::of(model.cfg());
    let record = anchors_record(anchors, shape, model_path)?;
    let set_names: Vec<String> = match a.anchor_set.as_str() {
        "per-method" => record["methods"]
            .as_array()
            .map(|ms| ms.iter().filter_map(|m| m["method"].as_str().map(String::from)).collect())
            .unwrap_or_default(),
        name => vec![name.to_string()],
    };
    let format = a.prompt.format(&model)?;
    let (pairs, forget) = qa_file(forget_path, a.limit, &model, &format)?;
    let total = forget.len();
    let (first, end) = shard.map_or((0, total), |(i, n)| shard_range(i, n, total));
    if first == end {
        bail!("--shard {}: the part is empty ({total} samples)", a.shard.as_deref().unwrap_or(""));
    }
    let mut sets = Vec::new();
    for name in &set_names {
        let dir = anchors.join(name);
        let mut pair = Vec::new();
        for kind in ["easy", "hard"] {
            let p = dir.join(format!("{kind}.jsonl"));
            if !p.exists() {
                bail!("{} does not exist: --anchor-set takes consensus, per-method or one of the methods", p.display());
            }
            let text = std::fs::read_to_string(&p).with_context(|| p.display().to_string())?;
            if text.trim().is_empty() {
                bail!("{}: the {kind} anchor set is empty; CUD needs samples in both anchor sets", p.display());
            }
            pair.push(qa_file(&p, None, &model, &format)?.1);
        }
        sets.push((name.clone(), pair));
    }
    let settings = CudSettings { method, edges: a.edges, vector, similarity, batch: a.batch };
    let t = std::time::Instant::now();
    let mut anchor_circuits = Vec::new();
    for (name, pair) in &sets {
        let mut two = Vec::new();
        for (kind, samples) in ["easy", "hard"].iter().zip(pair) {
            let pb = bar(0, &format!("{name} {kind} anchor"));
            two.push(anchor_circuit(&model.decoder, samples, &settings, &pb)?);
            pb.finish_and_clear();
        }
        anchor_circuits.push(two);
    }
    let pb = bar(0, "samples");
    let circuits = sample_circuits(&model.decoder, &forget[first..end], &settings, &pb)?;
    pb.finish_and_clear();
    let seconds = t.elapsed().as_secs_f64();
    let mut header = HEADER.to_string();
    if sets.len() > 1 {
        for (name, _) in &sets {
            header.push_str(&format!(",cud_{name}"));
        }
    }
    let mut csv = header + "\n";
    let mut cuds = Vec::new();
    let mut profiles = Vec::new();
    for (k, c) in circuits.iter().enumerate() {
        let per_set =
            anchor_circuits.iter().map(|eh| distances(c, &eh[0], &eh[1], &settings)).collect::<Result<Vec<_>, _>>()?;
        let n = per_set.len() as f64;
        let mean = |f: fn(&circuitscope::analyses::cud::Distances) -> f64| per_set.iter().map(f).sum::<f64>() / n;
        let (cud, d_easy, d_hard) = (mean(|d| d.cud), mean(|d| d.d_easy), mean(|d| d.d_hard));
        let s = structure(c);
        csv.push_str(&row(first + k, &pairs[first + k].question, cud, d_easy, d_hard, &s));
        if sets.len() > 1 {
            for d in &per_set {
                csv.push_str(&format!(",{:.6}", d.cud));
            }
        }
        csv.push('\n');
        cuds.push(cud);
        profiles.push(s.edges_per_layer);
    }
    let meta = json!({
        "model": model_path, "forget": forget_path, "limit": a.limit, "samples": total,
        "shard": shard.map(|(i, n)| json!({"index": i, "of": n, "first": first, "end": end})),
        "anchors": anchors, "anchor_set": a.anchor_set, "settings": settings, "prompt_format": format,
        "graph": record["graph"],
        "anchor_sets": sets.iter().zip(&anchor_circuits).map(|((name, pair), eh)| json!({
            "name": name, "easy_samples": pair[0].len(), "hard_samples": pair[1].len(),
            "easy_circuit_edges": eh[0].n_edges_in_graph(), "hard_circuit_edges": eh[1].n_edges_in_graph(),
            "easy_circuit_hash": circuit_hash(&eh[0]), "hard_circuit_hash": circuit_hash(&eh[1]),
        })).collect::<Vec<_>>(),
        "attribution": format!("{} under zero ablation, metric: the answer's probability exp(−mean NLL)", method.name()),
        "seconds": seconds, "seconds_per_sample": seconds / (end - first) as f64,
    });
    let (easy, hard) = (&anchor_circuits[0][0], &anchor_circuits[0][1]);
    let mut files = vec![
        (out.clone(), csv.into_bytes()),
        (sibling(out, ".meta.json"), (serde_json::to_string_pretty(&meta)? + "\n").into_bytes()),
    ];
    for (kind, c) in [("easy", easy), ("hard", hard)] {
        let title = format!("{} {kind} anchor circuit ({} edges)", sets[0].0, c.n_edges_in_graph());
        let opts = CircuitSvgOptions { title, ..Default::default() };
        files.push((sibling(out, &format!("-anchor-{kind}.svg")), circuit_svg(c, &opts).into_bytes()));
    }
    let anchor_profiles = [easy.edges_per_layer(), hard.edges_per_layer()];
    files.extend(pictures(out, &cuds, &profiles, Some(&anchor_profiles))?);
    write_all(&a.pictures.convert(files)?)?;
    let mean = cuds.iter().sum::<f64>() / cuds.len().max(1) as f64;
    println!(
        "CUD of samples {first}..{end} of {total} (mean {mean:.3}) against {} anchor set(s) in {seconds:.1} s \
         ({:.2} s per sample); wrote {} and its .meta.json and pictures",
        sets.len(),
        seconds / (end - first) as f64,
        out.display(),
    );
    Ok(())
}

/// One sample's CSV row up to (without) the per-set columns.
fn row(index: usize, question: &str, cud: f64, d_easy: f64, d_hard: f64, s: &Structure) -> String {
    let per_layer: Vec<String> = s.edges_per_layer.iter().map(|e| e.to_string()).collect();
    format!(
        "{index},{},{cud:.6},{d_easy:.6},{d_hard:.6},{},{:.4},{},{},{}",
        csv_field(question),
        s.edges,
        s.mean_writer_layer,
        s.deepest_layer,
        s.longest_path.map_or(String::new(), |p| p.to_string()),
        per_layer.join(";")
    )
}

/// The distribution of CUD and the layer profile of the CUD-easiest and CUD-hardest quarter's
/// circuits (and of the anchor circuits, when known), as SVG files beside `out`.
fn pictures(
    out: &Path,
    cuds: &[f64],
    profiles: &[Vec<usize>],
    anchors: Option<&[Vec<usize>; 2]>,
) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let dist = distribution(&format!("CUD of {} forget samples (1 = like the hard anchors)", cuds.len()), cuds, "CUD");
    let mut order: Vec<usize> = (0..cuds.len()).collect();
    order.sort_by(|&a, &b| cuds[a].total_cmp(&cuds[b]).then(a.cmp(&b)));
    let q = cuds.len().div_ceil(4);
    let pick = |idx: &[usize]| idx.iter().map(|&i| profiles[i].clone()).collect::<Vec<_>>();
    let mut groups = vec![
        ("lowest-CUD quarter".to_string(), pick(&order[..q])),
        ("highest-CUD quarter".to_string(), pick(&order[order.len() - q..])),
    ];
    if let Some([e, h]) = anchors {
        groups.push(("easy anchor".into(), vec![e.clone()]));
        groups.push(("hard anchor".into(), vec![h.clone()]));
    }
    let layers = layer_profile("Where the circuits' edges start: per writer layer", &groups);
    Ok(vec![
        (sibling(out, ".svg"), dist.to_svg()?.into_bytes()),
        (sibling(out, "-layers.svg"), layers.to_svg()?.into_bytes()),
    ])
}

/// Writes each file atomically; on an error the files already written are removed again, so
/// nothing half-written stays.
fn write_all(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    for (k, (p, bytes)) in files.iter().enumerate() {
        if let Err(e) = circuitscope::fsutil::write_atomic(p, bytes) {
            for (q, _) in &files[..k] {
                let _ = std::fs::remove_file(q);
            }
            return Err(e.into());
        }
    }
    Ok(())
}

fn merge(m: &MergeArgs) -> Result<()> {
    m.pictures.format()?;
    check_output(&m.out, "--out")?;
    let mut header: Option<String> = None;
    let mut reference: Option<(PathBuf, Value)> = None;
    let mut rows: BTreeMap<usize, (String, PathBuf)> = BTreeMap::new();
    let mut seconds = 0.0;
    for part in &m.parts {
        let meta_path = sibling(part, ".meta.json");
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).with_context(|| {
            format!("{}: each part needs the .meta.json `cud` wrote beside it", meta_path.display())
        })?)
        .with_context(|| format!("{}: not JSON", meta_path.display()))?;
        seconds += meta["seconds"].as_f64().unwrap_or(0.0);
        // what must agree: everything but the shard itself and its timing
        let mut same = meta.clone();
        for k in ["shard", "seconds", "seconds_per_sample"] {
            same.as_object_mut().map(|o| o.remove(k));
        }
        match &reference {
            None => reference = Some((part.clone(), same)),
            Some((first, r)) if *r != same => bail!(
                "{} and {}: the parts were scored with different models, forget sets, anchors or settings",
                first.display(),
                part.display()
            ),
            _ => {}
        }
        let text = std::fs::read_to_string(part).with_context(|| part.display().to_string())?;
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default().to_string();
        if !head.starts_with(HEADER) {
            bail!("{}: not a CSV that `circuitscope cud` wrote (its first line is {head:?})", part.display());
        }
        if header.get_or_insert_with(|| head.clone()) != &head {
            bail!("{}: its columns differ from the first part's", part.display());
        }
        for (n, line) in lines.enumerate() {
            let index: usize = csv_split(line)[0]
                .parse()
                .with_context(|| format!("{} line {}: the index is not a number", part.display(), n + 2))?;
            if let Some((_, other)) = rows.insert(index, (line.to_string(), part.clone())) {
                bail!("sample {index} is in both {} and {}: the parts overlap", other.display(), part.display());
            }
        }
    }
    let (_, meta) = reference.expect("at least one part");
    let total = meta["samples"].as_u64().context("the parts' .meta.json has no \"samples\"")? as usize;
    let missing: Vec<usize> = (0..total).filter(|i| !rows.contains_key(i)).collect();
    if let Some(&beyond) = rows.keys().find(|&&i| i >= total) {
        bail!("sample {beyond} is beyond the forget set's {total} samples");
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(|i| i.to_string()).collect();
        bail!("the parts miss {} of {total} samples (e.g. {}): a shard is absent", missing.len(), shown.join(", "));
    }
    let mut csv = header.unwrap_or_default() + "\n";
    let (mut cuds, mut profiles) = (Vec::new(), Vec::new());
    for (line, part) in rows.values() {
        let f = csv_split(line);
        let bad = || anyhow::anyhow!("{}: a malformed row: {line}", part.display());
        cuds.push(f.get(2).and_then(|x| x.parse::<f64>().ok()).ok_or_else(bad)?);
        profiles.push(f.get(9).ok_or_else(bad)?.split(';').map(|e| e.parse().unwrap_or(0)).collect::<Vec<usize>>());
        csv.push_str(line);
        csv.push('\n');
    }
    let mut merged = meta.clone();
    merged["merged_from"] = json!(m.parts);
    merged["seconds"] = json!(seconds);
    let mut files = vec![
        (m.out.clone(), csv.into_bytes()),
        (sibling(&m.out, ".meta.json"), (serde_json::to_string_pretty(&merged)? + "\n").into_bytes()),
    ];
    files.extend(pictures(&m.out, &cuds, &profiles, None)?);
    write_all(&m.pictures.convert(files)?)?;
    println!("merged {} parts, {total} samples, into {}", m.parts.len(), m.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_csv_fields() {
        assert_eq!(parse_shard("2/8").unwrap(), (2, 8));
        for bad in ["3/2", "0/2", "1", "a/b", "1/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        // the parts cover 0..total exactly once
        let parts: Vec<(usize, usize)> = (1..=3).map(|i| shard_range(i, 3, 10)).collect();
        assert_eq!(parts, vec![(0, 3), (3, 6), (6, 10)]);
        let q = "He said \"hi\", then left";
        assert_eq!(csv_split(&format!("1,{},0.5", csv_field(q))), vec!["1", q, "0.5"]);
    }
}

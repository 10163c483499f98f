//! `circuitscope compare`: how far two score files agree over every edge (e.g. EAP-IG against
//! exact patching), as figures, JSON and a rank-against-rank picture.

use super::common::{check_output, check_picture, parse_edge_counts, read_scores};
use anyhow::{Context, Result};
use circuitscope::analyses::compare::{agreement, rank_pairs_by_writer};
use circuitscope::fsutil::write_atomic;
use circuitscope::render::{LinePlot, Series};
use std::path::{Path, PathBuf};

/// Points drawn in the rank picture at most (every k-th edge beyond that).
const MAX_POINTS: usize = 5000;

fn label(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// a scores or circuit JSON (EAP-IG layout)
    pub a: PathBuf,
    /// another, on the same graph (e.g. exact patching's scores)
    pub b: PathBuf,
    /// the n of the top-n overlaps, e.g. 10,50 [default: 10, 5 % and 10 % of the edges]
    #[arg(long)]
    pub top: Option<String>,
    /// write the figures as JSON
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// draw each edge's rank in A against its rank in B (.svg, .pdf or .png)
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

pub fn run(a: &CompareArgs) -> Result<()> {
    let tops = a.top.as_deref().map(|t| parse_edge_counts(t, "--top")).transpose()?;
    for (p, flag) in [(&a.json, "--json"), (&a.svg, "--svg")] {
        if let Some(p) = p {
            if flag == "--svg" {
                check_picture(p, flag)?;
            } else {
                check_output(p, flag)?;
            }
        }
    }
    let (ca, cb) = (read_scores(&a.a)?, read_scores(&a.b)?);
    let (sa, sb) = (ca.scores(), cb.scores());
    let n_edges = sa.shape.n_edges();
    let tops = tops.unwrap_or_else(|| vec![10, n_edges.div_ceil(20), n_edges.div_ceil(10)]);
    let g = agreement(sa, sb, &tops).with_context(|| format!("comparing {} with {}", a.a.display(), a.b.display()))?;
    let (na, nb) = (label(&a.a), label(&a.b));
    println!("{na} against {nb}, {} edges:", g.n_edges);
    println!("  Spearman {:.4} (signed scores), {:.4} (|score|); Pearson {:.4}", g.spearman, g.spearman_abs, g.pearson);
    for t in &g.top_overlap {
        println!("  top {:>6} by |score|: {:>6} shared ({:.1} %)", t.n, t.shared, 100.0 * t.shared as f64 / t.n as f64);
    }
    println!("  by kind of edge: Spearman (signed) within the kind, and over every other edge");
    for k in &g.by_kind {
        println!("    {:<14} {:>7} edges  {:>7.4}  without: {:.4}", k.kind, k.n_edges, k.spearman, k.spearman_without);
    }
    if let Some(p) = &a.json {
        let mut v = serde_json::to_value(&g)?;
        v["a"] = a.a.display().to_string().into();
        v["b"] = a.b.display().to_string().into();
        write_atomic(p, &serde_json::to_vec_pretty(&v)?)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.svg {
        let title = format!("Edge ranks: Spearman {:.3} (signed), {:.3} (|score|)", g.spearman, g.spearman_abs);
        let series: Vec<Series> = rank_pairs_by_writer(sa, sb, MAX_POINTS)
            .into_iter()
            .map(|(kind, pairs)| {
                let n = g.by_kind.iter().find(|k| k.kind == kind).map_or(pairs.len(), |k| k.n_edges);
                Series::new(format!("{kind} ({n} edges)"), pairs)
            })
            .collect();
        LinePlot::scatter(title, format!("rank in {na} (fraction)"), format!("rank in {nb} (fraction)"), series)
            .write(p)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

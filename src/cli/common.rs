//! Argument checks and small pieces shared by the circuit subcommands.

use super::args::ModelDataArgs;
use anyhow::{bail, Result};
use circuitscope::attribution::{Ablation, AblationKind, DataSettings, Example, Metric};
use circuitscope::data::ExampleFile;
use circuitscope::graph::{Circuit, GraphShape};
use circuitscope::model::ModelConfig;
use circuitscope::model::Tokenizer;
use std::path::{Path, PathBuf};

/// Refuses an output path whose folder does not exist, before any slow work.
pub fn check_output(path: &Path, flag: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        bail!("{flag} {}: the folder {} does not exist", path.display(), dir.display());
    }
    if !dir.is_dir() {
        bail!("{flag} {}: {} is not a folder", path.display(), dir.display());
    }
    if path.is_dir() {
        bail!("{flag} {}: is a folder; give a file name", path.display());
    }
    Ok(())
}

/// [`check_output`] for a picture, whose extension picks its format (.svg, .pdf, .png).
pub fn check_picture(path: &Path, flag: &str) -> Result<()> {
    check_output(path, flag)?;
    circuitscope::render::PictureFormat::of(path).map_err(|e| anyhow::anyhow!("{flag} {e}"))?;
    Ok(())
}

/// [`circuitscope::fsutil::check_output_dir`], with the flag that overrides it named.
pub fn check_output_dir(dir: &Path, force: bool) -> Result<()> {
    circuitscope::fsutil::check_output_dir(dir, force).map_err(|e| {
        if dir.is_dir() {
            anyhow::anyhow!("{}: the output folder exists and is not empty; use --force to overwrite it", dir.display())
        } else {
            e.into()
        }
    })
}

/// A comma-separated list of edge counts, e.g. `10,20,50`, for `flag`.
pub fn parse_edge_counts(s: &str, flag: &str) -> Result<Vec<usize>> {
    let counts = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|_| anyhow::anyhow!("{flag}: `{t}` is not an edge count (e.g. 10,20,50)")))
        .collect::<Result<Vec<_>>>()?;
    if counts.is_empty() {
        bail!("{flag} is empty: give edge counts such as 10,20,50");
    }
    Ok(counts)
}

/// The drawing's title: the flag, else the file stem of `path`.
pub fn title_or_stem(title: Option<&str>, path: &Path) -> String {
    title
        .map(str::to_string)
        .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
}

/// `<dir>/<stem of path><suffix>`, e.g. scores.json → scores.meta.json.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!("{stem}{suffix}"))
}

/// What a data file is evaluated with: the metric and intervention, from the flags or the
/// defaults of its kind (tasks: logit-diff with patching; question/answer: nll with zero
/// ablation), checked against the data before the model is loaded.
pub struct DataSetup {
    pub file: ExampleFile,
    pub metric: Metric,
    pub intervention: AblationKind,
    /// the prompts the mean interventions average over, when not the data's own
    pub reference: Option<ExampleFile>,
}

pub fn read_data(run: &ModelDataArgs) -> Result<DataSetup> {
    let (path, limit) = (&run.data, run.limit);
    let metric = run.metric.as_deref().map(str::parse::<Metric>).transpose()?;
    let intervention = run.intervention.as_deref().map(AblationKind::from_name).transpose()?;
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let mut file = ExampleFile::read(path)?;
    if let Some(n) = limit {
        file.truncate(n);
    }
    let DataSettings { metric, intervention } = DataSettings::for_data(file.kind(), metric, intervention)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let reference = match &run.reference {
        None => None,
        Some(_) if !matches!(intervention, AblationKind::Mean | AblationKind::MeanPositions) => bail!(
            "--reference gives the prompts the mean interventions average over; it needs --intervention mean or \
             mean-positions (not {})",
            intervention.name()
        ),
        Some(p) => Some(ExampleFile::read(p)?),
    };
    Ok(DataSetup { file, metric, intervention, reference })
}

impl DataSetup {
    /// The intervention as an ablation. The mean ablations average over the token sequences of
    /// the reference file's items, else over `examples`' clean tokens; per-position means must
    /// reach as far as the longest example.
    pub fn ablation(&self, examples: &[Example], tok: &Tokenizer) -> Result<Ablation> {
        // read_data lets a reference through only for the mean interventions
        let reference = self.reference.as_ref().map(|f| f.sequences(tok)).transpose()?;
        if let (Some(r), Some(file), true) =
            (&reference, &self.reference, self.intervention == AblationKind::MeanPositions)
        {
            let (have, need) =
                (r.iter().map(Vec::len).max().unwrap_or(0), examples.iter().map(|e| e.clean.len()).max().unwrap_or(0));
            if have < need {
                bail!(
                    "--reference {}: per-position means need sequences as long as the data's longest ({need} tokens), \
                     and the longest here has {have}; use --intervention mean, or a longer reference",
                    file.path.display()
                );
            }
        }
        Ok(self
            .intervention
            .ablation(|| reference.unwrap_or_else(|| examples.iter().map(|e| e.clean.clone()).collect())))
    }

    /// What the mean interventions averaged over, for the meta files: `{"path", "items"}`, or
    /// null for the other interventions.
    pub fn reference_json(&self, run: &ModelDataArgs, ablation: &Ablation) -> serde_json::Value {
        match ablation {
            Ablation::Mean { reference, .. } => serde_json::json!({
                "path": self.reference.as_ref().map_or(run.data.as_path(), |f| f.path.as_path()),
                "items": reference.len(),
            }),
            _ => serde_json::Value::Null,
        }
    }
}

/// A scores file (a circuit JSON whose scores are what is used), with a note when it lists fewer
/// edges than its graph has: the missing ones score 0, which ranks them as unimportant.
pub fn read_scores(path: &Path) -> Result<Circuit> {
    let (circuit, listed) = Circuit::read_json_listing(path)?;
    let n_edges = circuit.shape().n_edges();
    if listed < n_edges {
        eprintln!(
            "note: {} lists {listed} of its graph's {n_edges} edges; the other {} score 0",
            path.display(),
            n_edges - listed
        );
    }
    Ok(circuit)
}

/// Refuses a circuit whose graph is not the model's.
pub fn check_circuit_matches(circuit: &Circuit, circuit_path: &Path, cfg: &ModelConfig, model: &Path) -> Result<()> {
    let (got, want) = (circuit.shape(), GraphShape::of(cfg));
    if got != want {
        bail!(
            "{}: the circuit is for a graph of {}, but the model {} has {}",
            circuit_path.display(),
            got.describe(),
            model.display(),
            want.describe()
        );
    }
    Ok(())
}

/// A score as a short signed number.
pub fn fmt_score(s: f32) -> String {
    format!("{s:+.4e}")
}

/// The program as the user typed it, whatever path it was started by (`circuitscope train …`),
/// for model cards.
pub fn command_line() -> String {
    std::iter::once("circuitscope".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
}

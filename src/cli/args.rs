//! Argument groups several subcommands share (clap `flatten`).

use candle_core::DType;
use circuitscope::attribution::{AblationKind, DataSettings, Metric};
use circuitscope::data::DataKind;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum DTypeArg {
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

/// The model, data and run settings that `attribute` and `evaluate` share.
#[derive(clap::Args)]
pub struct ModelDataArgs {
    /// a model directory (config.json + safetensors) or a GGUF file, with a tokenizer
    pub model: PathBuf,
    /// JSONL: task items (clean, corrupted, answer, distractor) or question/answer pairs
    /// (question, answer)
    #[arg(long)]
    pub data: PathBuf,
    // the names and defaults come from `Metric::ALL`, `AblationKind::ALL` and `DataSettings`
    #[arg(long, help = metric_help())]
    pub metric: Option<String>,
    #[arg(long, help = intervention_help())]
    pub intervention: Option<String>,
    /// JSONL (task or question/answer) whose items the mean interventions average over: each task
    /// item's clean prompt, each pair's prompt and answer; all of them (--limit cuts --data only)
    /// [default: the data's own items]
    #[arg(long, value_name = "JSONL")]
    pub reference: Option<PathBuf>,
    /// load the weights in this precision (bf16/f16 halve their memory; gradients and scores are
    /// accumulated in f32)
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DTypeArg,
    /// items per forward pass
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// use only the first N items
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `--metric`'s help: every metric, and the default per kind of data.
fn metric_help() -> String {
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let (task, qa) = (DataSettings::defaults(DataKind::Task), DataSettings::defaults(DataKind::Qa));
    format!("{} [default: {} for tasks, {} for question/answer data]", names.join(", "), task.metric, qa.metric)
}

/// `--intervention`'s help: every intervention, and the default per kind of data.
fn intervention_help() -> String {
    let names: Vec<&str> = AblationKind::ALL.iter().map(|k| k.name()).collect();
    let (task, qa) = (DataSettings::defaults(DataKind::Task), DataSettings::defaults(DataKind::Qa));
    format!(
        "{} (the means over --reference, or over the data's own items) [default: {} for tasks, {} for \
         question/answer data]",
        names.join(", "),
        task.intervention.name(),
        qa.intervention.name()
    )
}

/// How questions become prompts (`unlearn`, `eval-unlearning`, `anchors`, `cud`).
#[derive(clap::Args)]
pub struct PromptArgs {
    /// the prompt template, with {question} (e.g. 'Q: {question}\nA:'), or `chat`: the model's chat
    /// template (an error if it has none) [default: the model's chat template if it has one, else
    /// 'Question: {question}\nAnswer:']
    #[arg(long)]
    pub prompt_format: Option<String>,
    /// answers do not end with the end token (completions that go on, like ROME's facts)
    #[arg(long)]
    pub no_end_token: bool,
}

impl PromptArgs {
    /// The prompt format for `model` ([`super::model::prompt_format`]), with the end-token rule.
    pub fn format(&self, model: &circuitscope::model::Model) -> anyhow::Result<circuitscope::data::PromptFormat> {
        let mut f = super::model::prompt_format(model, self.prompt_format.as_deref())?;
        f.end_token = !self.no_end_token;
        Ok(f)
    }
}

/// How a circuit is drawn, beyond its title.
#[derive(clap::Args, Clone, Debug)]
pub struct DrawingArgs {
    /// draw only the layers and nodes in the circuit, each layer's heads side by side, the other
    /// layers marked as left out (for large models)
    #[arg(long)]
    pub compact: bool,
    /// the drawing's width in points (e.g. 240 for a paper column); its height follows
    #[arg(long, value_name = "PT")]
    pub width: Option<f64>,
    /// greys instead of colours, for greyscale printing
    #[arg(long)]
    pub greyscale: bool,
    /// each layer's heads as one node (a5.h1,3,7); edges between the same nodes merged, their
    /// scores summed
    #[arg(long)]
    pub group_heads: bool,
    /// colour each head and MLP by its category in this CURE partition (`circuitscope cure`'s
    /// JSON, made for the circuit's model)
    #[arg(long, value_name = "JSON")]
    pub partition: Option<std::path::PathBuf>,
}

impl DrawingArgs {
    /// The drawing options for a circuit of `shape`.
    pub fn options(
        &self,
        title: String,
        shape: &circuitscope::graph::GraphShape,
    ) -> anyhow::Result<circuitscope::render::CircuitSvgOptions> {
        if let Some(w) = self.width {
            if !(w.is_finite() && w > 0.0) {
                anyhow::bail!("--width {w}: give the drawing's width in points, above 0 (e.g. 240)");
            }
        }
        let fills = match &self.partition {
            Some(path) => {
                let p = circuitscope::analyses::cure::Partition::read(path)?;
                let fills = circuitscope::render::cure_svg::partition_fills(&p, shape)
                    .map_err(|e| anyhow::anyhow!("--partition {}: {e}", path.display()))?;
                Some(fills)
            }
            None => None,
        };
        Ok(circuitscope::render::CircuitSvgOptions {
            title,
            compact: self.compact,
            width_pt: self.width,
            greyscale: self.greyscale,
            group_heads: self.group_heads,
            fills,
            ..Default::default()
        })
    }
}

/// The format of the pictures a command writes into its output folder.
#[derive(clap::Args, Clone, Debug)]
pub struct PictureArgs {
    /// the pictures' format: svg, pdf (text stays text, fonts embedded) or png
    #[arg(long, default_value = "svg", value_name = "FORMAT")]
    pub pictures: String,
}

impl PictureArgs {
    pub fn format(&self) -> anyhow::Result<circuitscope::render::PictureFormat> {
        circuitscope::render::PictureFormat::from_name(&self.pictures).map_err(|e| anyhow::anyhow!("--pictures: {e}"))
    }

    /// The files with every SVG picture among them (a name ending in `.svg`) in this format,
    /// renamed to its extension.
    pub fn convert(
        &self,
        files: Vec<(std::path::PathBuf, Vec<u8>)>,
    ) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
        let format = self.format()?;
        files
            .into_iter()
            .map(|(path, bytes)| {
                if path.extension().is_none_or(|e| e != "svg") {
                    return Ok((path, bytes));
                }
                let renamed = path.with_extension(format.extension());
                let svg = String::from_utf8(bytes)?;
                let converted = circuitscope::render::export::picture_bytes(&svg, format, &renamed)?;
                Ok((renamed, converted))
            })
            .collect()
    }
}

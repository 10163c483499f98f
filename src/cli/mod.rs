//! The `circuitscope` subcommands, one module each: its arguments (a clap `Args` struct) and its
//! handler. A new subcommand is a module here, a variant of [`Command`] and its arm in [`run`].
//! Argument groups several subcommands share are in [`args`]; loading a model (alias, device,
//! progress bar) in [`model`].

pub mod anchors;
pub mod args;
pub mod attribute;
pub mod circuit;
mod common;
pub mod compare;
pub mod concepts;
pub mod convert;
pub mod cud;
pub mod cure;
pub mod cure_sweep;
pub mod demo;
pub mod eval_rec;
pub mod eval_unlearning;
pub mod evaluate;
pub mod finetune;
pub mod info;
pub mod model;
pub mod progress;
pub mod rec_compare;
pub mod rec_world;
pub mod render;
pub mod run;
pub mod train;
pub mod train_rec;
pub mod unlearn;
pub mod validate_cud;
pub mod view;
pub mod world;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "circuitscope",
    version,
    about = "Mechanistic interpretability for unlearning: hooks, circuits, CUD, concept vectors, CURE"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// where models run: cpu, cuda or cuda:N (cuda needs a CUDA build: scripts/build-cuda.sh)
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Family, sizes, dtype, and every hook point with its shape.
    Info(info::InfoArgs),
    /// Run a prompt: top next tokens, optional greedy continuation and logit lens.
    Run(run::RunArgs),
    /// Generate the bundled world: invented people with TOFU-style forget/retain/holdout splits,
    /// world facts, circuit tasks (IOI, induction, fact recall) and the training corpus.
    World(world::WorldArgs),
    /// The whole toolkit on the bundled model and world, into a report folder (index.md, JSON, SVG).
    Demo(demo::DemoArgs),
    /// Train the bundled model: a byte-level BPE tokenizer and a GPT-2 on a world folder's corpus,
    /// saved as a Hugging Face checkpoint with a model card (accuracy per split and task).
    Train(train::TrainArgs),
    /// Attribute a metric to every edge of the graph (EAP, EAP-IG, exact patching) over a task or
    /// question/answer file; writes the scores as an EAP-IG circuit JSON (no edge selected yet).
    Attribute(attribute::AttributeArgs),
    /// Select a circuit from a scores file (top-n, greedy or threshold), prune it, and write its
    /// JSON and optionally its SVG and DOT drawings.
    Circuit(circuit::CircuitArgs),
    /// Normalised faithfulness of a circuit, or (--sweep) the faithfulness curve of circuits
    /// re-selected from its scores, with CPR and CMD.
    Evaluate(evaluate::EvaluateArgs),
    /// Draw a circuit JSON as SVG, PDF or PNG (by the extension; optionally DOT too).
    Render(render::RenderArgs),
    /// A circuit as one self-contained HTML page to explore: hover an edge or node for its score,
    /// click a node to trace its inputs and outputs, filter by top-n or |score|.
    View(view::ViewArgs),
    /// Compare two score files over every edge: Spearman (signed and |score|), Pearson, top-n
    /// overlap, and a rank-against-rank picture (e.g. EAP-IG against exact patching).
    Compare(compare::CompareArgs),
    /// Unlearn a question/answer forget set (gradient ascent/difference, NPO, SimNPO, RMU) and write
    /// the unlearned checkpoint with unlearn.json (settings, steps, answer NLL before and after).
    Unlearn(unlearn::UnlearnArgs),
    /// Fine-tune a model on question/answer data (TOFU's recipe by default: AdamW, 5 epochs,
    /// effective batch 32, warm-up over the first epoch), saved every few steps so that --resume
    /// goes on after an interruption; writes the checkpoint with finetune.json.
    Finetune(finetune::FinetuneArgs),
    /// Write the recommendation world: invented books and readers with tastes, their ratings as
    /// LLM-recommender prompts ("Will <reader> enjoy <book>?" → Yes/No), train/valid/test
    /// interactions, forget readers (1 % and 5 %) and the training corpus.
    RecWorld(rec_world::RecWorldArgs),
    /// Recommendation metrics on a recommendation world: AUC, accuracy and log loss on the
    /// retained readers' test interactions; the forget readers' AUC and, against the model
    /// retrained without them, the JS and KL between the two models' Yes/No answers.
    EvalRec(eval_rec::EvalRecArgs),
    /// CURE in its own setting: unlearn a recommendation world's forget readers by CURE and by
    /// grad-ascent, grad-diff, NPO and PCGrad on all parameters, each swept over its strength,
    /// measured against the model retrained without them and compared at matched forgetting.
    RecCompare(rec_compare::RecCompareArgs),
    /// TOFU's evaluation of a model on TOFU's own files: per question and in summary (forget
    /// quality against a retain model, model utility, membership-inference AUCs, privleak), with
    /// two SVG pictures.
    EvalUnlearning(eval_unlearning::EvalUnlearningArgs),
    /// A GGUF model (Llama, Mistral, Qwen2) as a Hugging Face checkpoint folder (f32 weights,
    /// config.json, tokenizer.json, the chat template).
    Convert(convert::ConvertArgs),
    /// CUD's anchors: several unlearning methods rank the forget samples by their answer NLL
    /// after the run; per method the k easiest and hardest, and the consensus sets.
    Anchors(anchors::AnchorsArgs),
    /// CUD of every forget sample against the anchors' easy and hard circuits (per-sample EAP-IG
    /// circuits), with each circuit's structure, as CSV.
    Cud(cud::CudCommand),
    /// Does CUD predict unlearning difficulty on samples it never saw? Anchors from half the
    /// bundled forget10 people, CUD of the other half against baselines (answer NLL, length, MRD,
    /// random), CUD's easiest and hardest quarters unlearned apart, and the structural signature.
    ValidateCud(validate_cud::ValidateCudArgs),
    /// Concept vectors: a value vector's vocabulary projection (--layer --dim), the vectors that
    /// carry a concept (--find, --text), noise validation (`validate`) and the audit after
    /// unlearning (`audit`).
    Concepts(concepts::ConceptsCommand),
    /// CURE's partition: node attribution (heads, MLPs) on the forget and the retain set, each
    /// module forget-specific, retain-specific, task-shared or outside the core circuit.
    Cure(cure::CureArgs),
    /// CURE against grad-diff, NPO and SimNPO at matched forgetting on the bundled world: each
    /// method's strength swept; forgetting, retain and world-fact accuracy, parameters changed.
    CureSweep(cure_sweep::CureSweepArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    let device = circuitscope::model::device::parse(&cli.device)?;
    let runs_a_model = matches!(
        cli.command,
        Command::Info(_)
            | Command::Run(_)
            | Command::Demo(_)
            | Command::Attribute(_)
            | Command::Evaluate(_)
            | Command::Unlearn(_)
            | Command::Finetune(_)
            | Command::EvalRec(_)
            | Command::EvalUnlearning(_)
            | Command::Anchors(_)
            | Command::Cud(_)
            | Command::ValidateCud(_)
            | Command::Concepts(_)
            | Command::Cure(_)
            | Command::CureSweep(_)
    );
    if !device.is_cpu() && !runs_a_model {
        bail!(
            "--device {}: this command runs on the CPU (the trainer keeps its runs bitwise reproducible there); \
             --device applies to info, run, attribute, evaluate, demo, unlearn, finetune, eval-rec, eval-unlearning, anchors, cud, validate-cud, concepts, cure and cure-sweep",
            cli.device
        );
    }
    model::set_device(device);
    match cli.command {
        Command::Info(a) => info::run(&a),
        Command::Run(a) => run::run(a),
        Command::World(a) => world::run(&a),
        Command::Demo(a) => demo::run_args(&a),
        Command::Train(a) => train::run(&a),
        Command::Attribute(a) => attribute::run(&a),
        Command::Circuit(a) => circuit::run(&a),
        Command::Evaluate(a) => evaluate::run(&a),
        Command::Render(a) => render::run(&a),
        Command::View(a) => view::run(&a),
        Command::Compare(a) => compare::run(&a),
        Command::Unlearn(a) => unlearn::run(&a),
        Command::Finetune(a) => finetune::run(&a),
        Command::RecWorld(a) => rec_world::run(&a),
        Command::EvalRec(a) => eval_rec::run(&a),
        Command::RecCompare(a) => rec_compare::run(&a),
        Command::EvalUnlearning(a) => eval_unlearning::run(&a),
        Command::Convert(a) => convert::run(&a),
        Command::Anchors(a) => anchors::run(&a),
        Command::Cud(a) => cud::run(&a),
        Command::ValidateCud(a) => validate_cud::run(&a),
        Command::Concepts(a) => concepts::run(&a),
        Command::Cure(a) => cure::run(&a),
        Command::CureSweep(a) => cure_sweep::run(&a),
    }
}

/// The error and its causes on one line, skipping a cause whose text is already shown (the
/// library's I/O errors print their source themselves).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}

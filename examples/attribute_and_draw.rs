//! Attribute and draw a circuit with the library: read a task file, score every edge with
//! EAP-IG, select a greedy circuit, measure its faithfulness and write its SVG drawing.
//!
//!     cargo run --release --example attribute_and_draw [OUT.svg]
//!
//! On the bundled model and the first 32 items of its IOI task (a few seconds on a laptop CPU).

use circuitscope::attribution::{
    attribute, faithfulness, AttributionConfig, DataSettings, FaithfulnessConfig, Method, NoProgress,
};
use circuitscope::data::ExampleFile;
use circuitscope::graph::Circuit;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::render::{write_circuit_svg, CircuitSvgOptions};
use std::path::Path;

fn main() -> circuitscope::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args().nth(1).unwrap_or_else(|| "ioi-circuit.svg".into());
    let model = Model::load(root.join("models/world-gpt2"), LoadOptions::default())?;

    // A task file (clean, corrupted, answer, distractor) or question/answer pairs: the layout is
    // read from the first record, and the kind gives the default metric and intervention.
    let mut file = ExampleFile::read(&root.join("circuits/world/tasks/ioi.jsonl"))?;
    file.truncate(32);
    let settings = DataSettings::for_data(file.kind(), None, None)?;
    let examples = file.examples(model.tokenizer()?)?;

    let cfg =
        AttributionConfig { method: Method::EapIgInputs { steps: 5 }, metric: settings.metric, ..Default::default() };
    let scores = attribute(&model.decoder, &examples, &cfg, &NoProgress)?;
    println!(
        "{} edges scored with {} forward and {} backward passes",
        scores.scores.shape.n_edges(),
        scores.passes.forwards,
        scores.passes.backwards
    );

    let circuit = Circuit::greedy(&scores.scores, 24)?.pruned();
    let f =
        faithfulness(&model.decoder, &examples, &[circuit.edge_mask()], &FaithfulnessConfig::default(), &NoProgress)?;
    println!(
        "greedy circuit: {} edges, {} nodes, normalised faithfulness {:.3}",
        circuit.n_edges_in_graph(),
        circuit.n_nodes_in_graph(),
        f.normalised[0]
    );

    let opts = CircuitSvgOptions { title: "IOI, bundled model: EAP-IG greedy circuit".into(), ..Default::default() };
    write_circuit_svg(Path::new(&out), &circuit, &opts)?;
    println!("wrote {out}");
    Ok(())
}

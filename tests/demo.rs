//! `circuitscope demo`, the README's main command, end to end through the built binary on the
//! bundled model and world: the report folder and everything its index links, and the refusals.

mod common;

use common::{cli, TempDir};
use std::path::Path;
use std::process::Output;

/// `circuitscope demo ARGS`, from the repository root (cargo runs tests there), so the default
/// model and world paths resolve.
fn demo(args: &[&str]) -> Output {
    cli(&[&["demo"], args].concat())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The targets of the markdown links and images in `index`.
fn links(index: &str) -> Vec<String> {
    index
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.starts_with('#') && !t.starts_with("http"))
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_writes_a_complete_report() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-gpt2/model.safetensors");
    assert!(model.exists(), "the committed bundled model {} is missing", model.display());
    let d = TempDir::new();
    let out_dir = d.join("report");
    let out = demo(&["--out", out_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", stderr(&out));
    for line in [
        "accuracy of",
        "ioi: circuit of",
        "EAP-IG inputs against exact patching",
        "QK/MLP fix against exact patching",
        "held-out samples: Spearman",
        "concept vectors: L",
        "CURE partition (forget10 against retain90)",
        "open ",
    ] {
        assert!(stdout.contains(line), "the summary lacks `{line}`:\n{stdout}");
    }
    let index = std::fs::read_to_string(out_dir.join("index.md")).unwrap();
    for section in [
        "Accuracy per split and task",
        "Circuits of the bundled tasks",
        "EAP-IG against exact patching",
        "Unlearning difficulty (CUD) on held-out people",
        "Concept vectors: what unlearning leaves in the weights",
        "CURE: forget-specific, retain-specific and shared modules",
    ] {
        assert!(index.contains(&format!("## {section}")), "index.md lacks the section {section}");
    }
    let targets = links(&index);
    assert!(targets.len() >= 10, "{targets:?}");
    for t in &targets {
        let p = out_dir.join(t);
        assert!(p.is_file(), "index.md links {t}, which is not in the report");
        if t.ends_with(".svg") {
            let svg = std::fs::read_to_string(&p).unwrap();
            circuitscope::render::svg::check_well_formed(&svg).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    }
    let accuracy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("accuracy.json")).unwrap()).unwrap();
    assert_eq!(accuracy["tasks"].as_array().map(Vec::len), Some(3), "{accuracy}");
    let concepts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("concepts.json")).unwrap()).unwrap();
    for method in ["grad-ascent", "npo", "needle"] {
        assert_eq!(concepts[method]["audit"].as_array().map(Vec::len), Some(3), "{method}: {concepts}");
    }
}

#[test]
fn demo_refuses_to_overwrite_and_names_a_missing_data_folder() {
    let d = TempDir::new();
    let foreign = d.join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let out = demo(&["--out", foreign.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force") && !stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");

    let missing = d.join("no-world");
    let out = demo(&["--out", d.join("r").to_str().unwrap(), "--data", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-world") && !stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(!d.join("r").exists(), "a failed demo left a report folder");
}

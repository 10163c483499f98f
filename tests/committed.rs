//! The committed artifacts are what the current code produces: the bundled world
//! (`circuits/world`, from its `config.json`), byte for byte; and the bundled tasks' circuits
//! (`circuits/<task>/`, from `circuits/regenerate.sh`'s commands), to a stated tolerance.
//!
//! The circuits are compared to a tolerance, not byte for byte: the scores are sums of float
//! products, and a change that only reorders them (batching, a fused op) moves the last digits
//! without changing what the files say. Tolerances: edge and node scores within 1e-5 of the
//! largest |score| (their rounding is ~1e-7 of it), the same greedy circuit edge for edge, and
//! faithfulness, CPR and CMD within 1e-4.

mod common;

use circuitscope::world::{World, WorldConfig};
use common::{cli, tree, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Catches a change to the generator (a reordered stream, a new field, a template edit) that
/// would silently leave the committed world, and the bundled model trained on it, behind.
#[test]
fn the_committed_world_is_what_the_generator_writes() {
    let committed = root().join("circuits/world");
    let cfg: WorldConfig = serde_json::from_slice(&std::fs::read(committed.join("config.json")).unwrap()).unwrap();
    let dir = TempDir::new();
    World::generate(cfg).unwrap().write(&dir.join("w"), false).unwrap();
    let (want, got) = (tree(&committed), tree(&dir.join("w")));
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>(), "the file lists differ");
    for (name, bytes) in &want {
        assert!(&got[name] == bytes, "circuits/world/{name} is not what the generator writes for its config.json");
    }
}

fn run(args: &[&str]) {
    let out = cli(args);
    assert!(out.status.success(), "circuitscope {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// name → (score, in_graph) of a circuit file's nodes or edges.
fn entries(v: &Value, key: &str) -> BTreeMap<String, (f64, bool)> {
    v[key]
        .as_object()
        .unwrap_or_else(|| panic!("no `{key}` object"))
        .iter()
        .map(|(k, e)| (k.clone(), (e["score"].as_f64().unwrap_or(f64::NAN), e["in_graph"].as_bool().unwrap())))
        .collect()
}

/// Catches an attribution, selection or faithfulness change that leaves `circuits/` stale (the
/// README and the circuits' own READMEs quote these files).
#[test]
fn the_committed_circuits_are_what_regenerate_sh_makes() {
    let dir = TempDir::new();
    let model = root().join("models/world-gpt2");
    for (task, edges) in [("ioi", 24), ("induction", 72), ("fact_recall", 24)] {
        let data = root().join(format!("circuits/world/tasks/{task}.jsonl"));
        let committed = root().join("circuits").join(task);
        let (scores, circuit, faith) = (
            dir.join(&format!("{task}.scores.json")),
            dir.join(&format!("{task}.circuit.json")),
            dir.join(&format!("{task}.faith.json")),
        );
        let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
        // circuits/regenerate.sh's commands
        run(&[
            "attribute",
            m,
            "--data",
            d,
            "--method",
            "eap-ig-inputs",
            "--steps",
            "5",
            "--limit",
            "64",
            "--out",
            scores.to_str().unwrap(),
        ]);
        run(&["circuit", scores.to_str().unwrap(), "--greedy", &edges.to_string(), "--out", circuit.to_str().unwrap()]);
        run(&[
            "evaluate",
            m,
            "--data",
            d,
            "--circuit",
            scores.to_str().unwrap(),
            "--sweep",
            "--limit",
            "64",
            "--out",
            faith.to_str().unwrap(),
        ]);

        for key in ["edges", "nodes"] {
            let (want, got) = (entries(&json(&committed.join("scores.json")), key), entries(&json(&scores), key));
            assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>(), "{task}: {key} differ");
            let scale = want.values().map(|v| v.0.abs()).filter(|x| x.is_finite()).fold(0f64, f64::max);
            for (name, (w, _)) in &want {
                let g = got[name].0;
                assert!(
                    (w.is_nan() && g.is_nan()) || (w - g).abs() <= 1e-5 * scale,
                    "{task}: {key} {name} scores {g}, the committed file {w} (max |score| {scale})"
                );
            }
        }
        let (want, got) = (entries(&json(&committed.join("circuit.json")), "edges"), entries(&json(&circuit), "edges"));
        let sel =
            |m: &BTreeMap<String, (f64, bool)>| m.iter().filter(|e| e.1 .1).map(|e| e.0.clone()).collect::<Vec<_>>();
        assert_eq!(sel(&want), sel(&got), "{task}: the greedy circuit of {edges} edges differs from the committed one");

        let (want, got) = (json(&committed.join("faithfulness.json")), json(&faith));
        for key in ["cpr", "cmd", "model_metric", "corrupted_metric"] {
            let (w, g) = (want[key].as_f64().unwrap(), got[key].as_f64().unwrap());
            assert!((w - g).abs() <= 1e-4, "{task}: {key} {g}, the committed file {w}");
        }
        let points = |v: &Value| v["points"].as_array().unwrap().clone();
        let (wp, gp) = (points(&want), points(&got));
        assert_eq!(wp.len(), gp.len(), "{task}: the sweep has another number of points");
        for (w, g) in wp.iter().zip(&gp) {
            assert_eq!(w["edges"], g["edges"], "{task}: sweep points differ");
            let (a, b) = (w["faithfulness"].as_f64().unwrap(), g["faithfulness"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-4, "{task}: faithfulness at {} edges {b}, the committed file {a}", w["edges"]);
        }
    }
}

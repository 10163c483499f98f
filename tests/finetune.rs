//! `circuitscope finetune` on the bundled model: fine-tuning lowers the answers' NLL; a run
//! stopped and resumed (twice) ends with the bytes of one that never stopped; bad input (data
//! without answers, a chat template the model lacks, a resume with other settings or with
//! nothing to resume) gets one message and a non-zero exit, and leaves nothing behind.

mod common;

use common::{cli, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// 16 questions about people the bundled model never saw, 4 to a step, 2 epochs: 8 steps,
/// saved every 3.
fn finetune(out: &Path, extra: &[&str]) -> Output {
    let r = root();
    let mut args: Vec<String> = [
        "finetune",
        r.join("models/world-gpt2").to_str().unwrap(),
        "--data",
        r.join("circuits/world/holdout.jsonl").to_str().unwrap(),
        "--limit",
        "16",
        "--batch",
        "4",
        "--accumulate",
        "1",
        "--epochs",
        "2",
        "--lr",
        "3e-4",
        "--save-every",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    cli(&args)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure; stdout: {}", String::from_utf8_lossy(&o.stdout));
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn record(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("finetune.json")).unwrap()).unwrap()
}

#[test]
fn a_run_stopped_and_resumed_ends_with_the_weights_of_one_that_never_stopped() {
    let dir = TempDir::new();
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    ok(&finetune(&whole, &[]));
    let rec = record(&whole);
    assert_eq!(rec["steps"].as_array().unwrap().len(), 8);
    let (before, after) = (rec["before"]["nll"].as_f64().unwrap(), rec["after"]["nll"].as_f64().unwrap());
    assert!(after < 0.8 * before, "fine-tuning left the answers' NLL at {after} (was {before})");
    assert_eq!(rec["settings"]["config"]["warmup"], 4, "warm-up over one epoch (4 steps)");
    assert!(!whole.join("resume").exists(), "the finished run keeps no saved state");
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(whole.join(f).is_file(), "{f}");
    }

    // interrupted after 5 steps, then after 2 more, then to the end
    let first = ok(&finetune(&parts, &["--stop-after", "5"]));
    assert!(first.contains("5 of 8") && first.contains("--resume"), "{first}");
    assert!(parts.join("resume/state.json").is_file() && !parts.join("model.safetensors").exists());
    let second = ok(&finetune(&parts, &["--resume", "--stop-after", "2"]));
    assert!(second.contains("from step 5 of 8") && second.contains("7 of 8"), "{second}");
    ok(&finetune(&parts, &["--resume"]));
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(parts.join("model.safetensors")).unwrap(),
        "the resumed run's weights differ from the uninterrupted run's"
    );
    let (a, b) = (record(&whole), record(&parts));
    let losses = |r: &Value| -> Vec<(f64, f64)> {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["forget"].as_f64().unwrap(), s["lr"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(losses(&a), losses(&b));
    assert_eq!(a["before"], b["before"]);
}

#[test]
fn bad_input_gets_one_message_and_leaves_nothing() {
    let dir = TempDir::new();
    let r = root();
    // a data file without answers
    let questions = dir.path().join("questions.jsonl");
    std::fs::write(&questions, "{\"question\": \"Where was Ragna Grist born?\"}\n").unwrap();
    let out = dir.path().join("a");
    let o = cli(&[
        "finetune",
        r.join("models/world-gpt2").to_str().unwrap(),
        "--data",
        questions.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = err(&o);
    assert!(e.contains("questions.jsonl") && e.contains("answer"), "{e}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());

    // the chat template of a model that has none
    let e = err(&finetune(&out, &["--prompt-format", "chat"]));
    assert!(e.contains("no chat template") && e.contains("world-gpt2"), "{e}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());

    // nothing to resume
    let e = err(&finetune(&dir.path().join("none"), &["--resume"]));
    assert!(e.contains("no run to resume"), "{e}");

    // a resume with other settings names them; the saved state stays as it was
    ok(&finetune(&out, &["--stop-after", "2"]));
    let state = std::fs::read(out.join("resume/state.json")).unwrap();
    let e = err(&finetune(&out, &["--resume", "--weight-decay", "0.1", "--seed", "7"]));
    assert!(
        e.contains("other settings")
            && e.contains("config.weight_decay: 0.01, now 0.1")
            && e.contains("config.seed: 42, now 7"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("resume/state.json")).unwrap(), state);
    // and a fresh start over a saved run needs --force
    let e = err(&finetune(&out, &[]));
    assert!(e.contains("--force"), "{e}");
}

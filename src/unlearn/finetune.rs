//! Fine-tuning on question/answer data: the unlearning loop ([`super::Unlearner`]) with the plain
//! NLL objective ([`Objective::Nll`], the prompt masked) and no retain term, and runs that can be
//! stopped and resumed.
//!
//! The recipe is TOFU's (Maini et al. 2024: AdamW, 5 epochs, an effective batch of 32, linear
//! warm-up over the first epoch, weight decay 0.01; lr 1e-5 for Llama-2-7B and 2e-5 for the
//! smaller Phi-1.5), scaled to small models by taking the smaller model's learning rate.
//!
//! A resumable run writes its state into `<out>/resume/` every few steps: the weights (a
//! checkpoint folder), the optimiser's moments (`optimiser.safetensors`) and `state.json` (the
//! settings it runs with, where the loop stands, every step's record). The folder is replaced
//! whole ([`crate::fsutil::write_dir_atomic`]), so an interruption leaves the previous state.
//! A run stopped and resumed gives the weights of one that never stopped, bit for bit.

use super::loss::Objective;
use super::run::{RunState, UnlearnConfig, Unlearner};
use crate::attribution::Example;
use crate::error::{Error, Result};
use crate::train::Trainable;
use candle_core::Tensor;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// TOFU's recipe, scaled as the module says: AdamW at 2e-5 with weight decay 0.01, 5 epochs of
/// batches of 8 accumulated 4 to a step (32 examples), warm-up over the first epoch (set from
/// the data by [`warmup_of_one_epoch`]; 1 here), clip 1, seed 42.
pub fn documented() -> UnlearnConfig {
    UnlearnConfig {
        objective: Objective::Nll,
        gamma: 1.0,
        alpha: 0.0,
        lr: 2e-5,
        weight_decay: 0.01,
        epochs: 5,
        batch: 8,
        accumulate: 4,
        warmup: 1,
        clip: 1.0,
        seed: 42,
        trainable: Vec::new(),
        cure: None,
    }
}

/// The optimiser steps of one epoch over `n_examples`: TOFU warms up over the first epoch.
pub fn warmup_of_one_epoch(cfg: &UnlearnConfig, n_examples: usize) -> usize {
    n_examples.div_ceil(cfg.batch.max(1)).div_ceil(cfg.accumulate.max(1)).max(1)
}

/// A checksum of the examples a run trains on (FNV-1a over each example's tokens and where its
/// answer starts), so that a resumed run can tell its data changed.
pub fn data_fingerprint(examples: &[Example]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for e in examples {
        eat(e.clean.len() as u64);
        e.clean.iter().for_each(|&t| eat(t as u64));
        match e.target {
            crate::data::Target::Sequence { prompt_len } => eat(prompt_len as u64),
            crate::data::Target::Pair { answer, distractor } => eat(((answer as u64) << 32) | distractor as u64),
        }
    }
    format!("{h:016x}")
}

/// The folder of a run's saved state, inside its output folder.
pub fn resume_dir(out: &Path) -> PathBuf {
    out.join("resume")
}

/// A run's saved state, as [`save`] wrote it.
pub struct Saved {
    /// the settings the run was started with
    pub settings: Value,
    pub state: RunState,
    pub moments: BTreeMap<String, Tensor>,
    /// what the caller stored beside them (e.g. the measures before the run)
    pub extra: Value,
}

/// Writes the run's state into `out/resume/`: the model's weights as a checkpoint of the model in
/// `source`, the optimiser's moments, `state.json` with `settings`, the loop's place and `extra`.
pub fn save(
    out: &Path,
    model: &Trainable,
    source: &Path,
    run: &Unlearner,
    settings: &Value,
    extra: &Value,
) -> Result<()> {
    let (state, moments) = run.state()?;
    let mut ck = model.checkpoint(source)?;
    ck.files.push(("optimiser.safetensors".into(), crate::train::checkpoint::safetensors_bytes(&moments)?));
    let record = json!({ "settings": settings, "state": state, "extra": extra });
    let text = serde_json::to_string_pretty(&record).map_err(|e| Error::input(format!("run state: {e}")))?;
    ck.files.push(("state.json".into(), (text + "\n").into_bytes()));
    ck.write(&resume_dir(out))
}

/// The state [`save`] wrote into `out/resume/`; an error naming the file if there is none or it
/// does not read.
pub fn read(out: &Path) -> Result<Saved> {
    let dir = resume_dir(out);
    let path = dir.join("state.json");
    if !path.is_file() {
        return Err(Error::input(format!(
            "{}: no run to resume here ({} is missing): a resumable run saves its state there",
            out.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut record: Value = serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
    let state: RunState =
        serde_json::from_value(record["state"].take()).map_err(|e| Error::format(&path, format!("`state`: {e}")))?;
    let moments_path = dir.join("optimiser.safetensors");
    let moments = candle_core::safetensors::load(&moments_path, &candle_core::Device::Cpu)
        .map_err(|e| Error::format(&moments_path, e.to_string()))?
        .into_iter()
        .collect();
    Ok(Saved { settings: record["settings"].take(), state, moments, extra: record["extra"].take() })
}

/// The settings that differ between a saved run's and this one's, one `field: A, now B` each
/// (nested fields by their path, e.g. `config.lr`).
pub fn differences(saved: &Value, now: &Value) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
                }
            }
            _ if a != b => out.push(format!("{path}: {a}, now {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", saved, now, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_changed_field() {
        let a = json!({"config": {"lr": 2e-5, "epochs": 5}, "data": "a.jsonl"});
        let b = json!({"config": {"lr": 1e-5, "epochs": 5}, "data": "a.jsonl", "limit": 3});
        assert_eq!(differences(&a, &b), ["config.lr: 0.00002, now 0.00001", "limit: null, now 3"]);
        assert!(differences(&a, &a).is_empty());
    }

    #[test]
    fn warm_up_is_one_epoch_of_steps() {
        let cfg = documented();
        assert_eq!(warmup_of_one_epoch(&cfg, 400), 13); // 50 batches of 8, 4 to a step
        assert_eq!(warmup_of_one_epoch(&cfg, 1), 1);
    }
}

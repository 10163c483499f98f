//! The trainer: CI's smoke run (the loss must fall), a saved checkpoint that circuitscope's loader
//! reads back to the same logits, determinism, bad settings, and the bundled model against
//! Hugging Face transformers (fixture from tests/reference/world_gpt2_reference.py).

mod common;

use candle_core::{DType, Tensor};
use circuitscope::hooks::HookSet;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::train::{card, train, TrainConfig, Trained};
use circuitscope::world::{World, WorldConfig};
use common::TempDir;

fn small_corpus() -> Vec<String> {
    let cfg = WorldConfig {
        people: 10,
        holdout: 2,
        ioi: 10,
        induction: 10,
        corpus_ioi: 40,
        corpus_induction: 40,
        ..Default::default()
    };
    World::generate(cfg).unwrap().corpus()
}

fn smoke(steps: usize) -> Trained {
    let cfg = TrainConfig { steps, ..TrainConfig::smoke() };
    train(&cfg, &small_corpus(), |_, _, _| {}).unwrap()
}

#[test]
fn smoke_training_lowers_the_loss_and_saves_a_loadable_checkpoint() {
    let trained = smoke(40);
    let loss = &trained.log.loss;
    let (first, last) = (loss.first().unwrap().1, loss.last().unwrap().1);
    eprintln!("smoke run: loss {first:.3} → {last:.3} over {} steps", trained.log.config.steps);
    assert!(last < first - 1.0, "the loss did not fall: {first} → {last}");

    let dir = TempDir::new();
    let out = dir.join("model");
    card::save_checkpoint(&trained, &out).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let model = Model::load(&out, LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let text = "Question: Where was Orin Voss born?\nAnswer:";
    let ids = tok.encode(text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    let input = Tensor::new(ids.as_slice(), &candle_core::Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let reloaded = model.decoder.forward(&input, &HookSet::default()).unwrap().logits;
    let live = trained.params.decoder().unwrap().forward(&input, &HookSet::default()).unwrap().logits;
    let diff = common::max_abs_diff(&reloaded, &live);
    assert!(diff < 1e-5, "reloaded checkpoint differs from the trained parameters by {diff}");
}

#[test]
fn training_is_deterministic() {
    let a = smoke(3).params.tensors();
    let b = smoke(3).params.tensors();
    for (name, t) in &a {
        let (x, y): (Vec<f32>, Vec<f32>) =
            (t.flatten_all().unwrap().to_vec1().unwrap(), b[name].flatten_all().unwrap().to_vec1().unwrap());
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{name} differs between two runs");
    }
}

#[test]
fn impossible_settings_are_refused_with_one_clear_message() {
    let docs = small_corpus();
    let err = |cfg: TrainConfig| train(&cfg, &docs, |_, _, _| {}).err().expect("should fail").to_string();
    let e = err(TrainConfig { layers: 0, ..TrainConfig::smoke() });
    assert!(e.contains("layers") && e.contains("at least one"), "{e}");
    let e = err(TrainConfig { context: 16, ..TrainConfig::smoke() });
    assert!(e.contains("context = 16") && e.contains("longest training document"), "{e}");
    let e = err(TrainConfig { heads: 3, ..TrainConfig::smoke() });
    assert!(e.contains("heads"), "{e}");
    let e = err(TrainConfig { steps: 0, ..TrainConfig::smoke() });
    assert!(e.contains("steps"), "{e}");
}

#[test]
fn a_failed_write_leaves_the_previous_checkpoint_intact() {
    let dir = TempDir::new();
    let out = dir.join("model");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("model.safetensors"), b"previous").unwrap();
    let r = circuitscope::fsutil::write_dir_atomic(&out, |tmp| {
        std::fs::write(tmp.join("model.safetensors"), b"half").unwrap();
        Err(circuitscope::Error::input("interrupted"))
    });
    assert!(r.is_err());
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), b"previous");
    assert_eq!(dir.entries(), vec!["model".to_string()], "a partial folder was left behind");
}

/// The committed bundled model against transformers: same tokens, logits within 1e-4.
#[test]
fn bundled_model_matches_hugging_face_transformers() {
    let model_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-gpt2");
    let fixture = common::fixture("world_gpt2/reference.safetensors");
    // both committed with the repository: missing is a failure, not a skip
    assert!(model_dir.exists() && fixture.exists(), "the bundled model or {} is missing", fixture.display());
    let model = Model::load(&model_dir, LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let refs = candle_core::safetensors::load(&fixture, &candle_core::Device::Cpu).unwrap();
    let info: serde_json::Value = {
        let bytes = std::fs::read(&fixture).unwrap();
        let st = safetensors::SafeTensors::read_metadata(&bytes).unwrap().1;
        serde_json::from_str(&st.metadata().as_ref().unwrap()["prompts"]).unwrap()
    };
    let prompts = info.as_array().unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let ids_ref: Vec<u32> = refs[&format!("ids.{i}")].to_dtype(DType::U32).unwrap().to_vec1().unwrap();
        let ids = tok.encode(p.as_str().unwrap()).unwrap();
        assert_eq!(ids, ids_ref, "tokenisation of prompt {i} differs from transformers");
        let input = Tensor::new(ids.as_slice(), &candle_core::Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits = model.decoder.logits(&input).unwrap().squeeze(0).unwrap();
        let want = &refs[&format!("logits.{i}")];
        let diff = common::max_abs_diff(&logits, want);
        assert!(diff < 1e-4, "prompt {i}: logits differ from transformers by {diff}");
    }
}

/// Any checkpoint as trainable `Var`s (the Llama fixture: RoPE, GQA, SwiGLU, RMS norm): the
/// decoder over them is the loaded model (same logits), a gradient reaches every parameter, and
/// AdamW steps on one batch lower its loss.
#[test]
fn a_trainable_checkpoint_is_the_loaded_model_and_learns() {
    use candle_core::{Device, Var};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use circuitscope::train::{loss::masked_cross_entropy, Trainable};
    let dir = common::fixture("parity/llama");
    let model = Model::load(&dir, LoadOptions::default()).unwrap();
    let tr = Trainable::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(tr.vars.len(), tr.cfg.n_layers * 9 + 2 + usize::from(!tr.cfg.tied_embeddings), "one Var per tensor");
    let v = tr.cfg.vocab_size;
    let ids: Vec<u32> = (0..2 * 13).map(|i| ((i * 13 + 3) % v) as u32).collect();
    let rows = Tensor::from_vec(ids, (2, 13), &Device::Cpu).unwrap();
    let (inputs, targets) = (rows.narrow(1, 0, 12).unwrap(), rows.narrow(1, 1, 12).unwrap().contiguous().unwrap());
    let d =
        common::max_abs_diff(&tr.decoder().unwrap().logits(&inputs).unwrap(), &model.decoder.logits(&inputs).unwrap());
    assert!(d <= 1e-6, "the trainable decoder's logits differ from the loaded model's by {d}");

    let mask = Tensor::ones((2, 12), DType::F32, &Device::Cpu).unwrap();
    let vars: Vec<Var> = tr.vars.values().cloned().collect();
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: 1e-2, ..Default::default() }).unwrap();
    let hooks = HookSet::new().training();
    let mut losses = Vec::new();
    for step in 0..5 {
        let logits = tr.decoder().unwrap().forward(&inputs, &hooks).unwrap().logits;
        let loss = masked_cross_entropy(&logits, &targets, &mask).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let grads = loss.backward().unwrap();
        if step == 0 {
            for (n, var) in &tr.vars {
                let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient reaches {n}"));
                assert!(common::max_abs(g) > 0.0, "{n}'s gradient is zero");
            }
        }
        opt.step(&grads).unwrap();
    }
    eprintln!("trainable llama fixture: loss {losses:?}");
    assert!(losses[4] < losses[0] - 0.5, "five AdamW steps on one batch did not lower the loss: {losses:?}");
}

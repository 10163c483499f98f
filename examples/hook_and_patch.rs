//! Hook and patch a model with the library: capture an attention pattern, zero one head, patch
//! the residual stream from another prompt, and take the gradient of a logit difference at a
//! hook point, all on the bundled model (or the model directory / GGUF file given).
//!
//!     cargo run --release --example hook_and_patch [MODEL]

use circuitscope::data::read_tasks;
use circuitscope::hooks::{Edit, HookPoint, HookSet, Intervention, Site};
use circuitscope::model::decoder::Decoder;
use circuitscope::model::{LoadOptions, Model};
use std::path::Path;

fn main() -> circuitscope::Result<()> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/models/world-gpt2");
    let path = std::env::args().nth(1).unwrap_or_else(|| default.to_string());
    let model = Model::load(&path, LoadOptions::default())?;
    let tok = model.tokenizer()?;
    let dec = &model.decoder;
    // The first IOI item of the bundled world: clean and corrupted prompts of equal token length.
    let item = &read_tasks(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/circuits/world/tasks/ioi.jsonl")))?[0];
    let (ids, ids_corrupted) = (tok.encode(&item.clean)?, tok.encode(&item.corrupted)?);
    let (mary, john) = (tok.encode(&item.answer)?[0] as usize, tok.encode(&item.distractor)?[0] as usize);
    println!("{:?} → {:?} rather than {:?}", item.clean, item.answer, item.distractor);
    // logit(answer) − logit(distractor) at the last position
    let diff = |logits: &candle_core::Tensor| -> circuitscope::Result<candle_core::Tensor> {
        let last = logits.narrow(1, logits.dim(1)? - 1, 1)?.flatten_all()?;
        Ok((last.get(mary)? - last.get(john)?)?)
    };
    let scalar = |t: &candle_core::Tensor| t.to_dtype(candle_core::DType::F32).and_then(|t| t.to_scalar::<f32>());

    // 1. capture: layer 0's attention pattern, (batch, heads, query, key)
    let pattern = HookPoint::Block(0, Site::Pattern);
    let out = dec.forward(&Decoder::input(&ids)?, &HookSet::new().capture([pattern]))?;
    println!("{pattern}: shape {:?}; logit diff {:.3}", out.cache.get(pattern)?.dims(), scalar(&diff(&out.logits)?)?);

    // 2. intervene: zero head 0 of the last layer (its z, before the output projection)
    let last = dec.cfg.n_layers - 1;
    let zeroed =
        HookSet::new().intervene(Intervention::new(HookPoint::Block(last, Site::Z), Edit::Zero).at_heads(vec![0]));
    let out = dec.forward(&Decoder::input(&ids)?, &zeroed)?;
    println!("with L{last}H0 zeroed: logit diff {:.3}", scalar(&diff(&out.logits)?)?);

    // 3. patch: the corrupted prompt's residual stream entering layer 1, at every position (a
    // patch must have the activation's shape: the two prompts have the same number of tokens)
    if ids_corrupted.len() != ids.len() {
        println!("the prompts tokenise to {} and {} tokens here: no patching", ids.len(), ids_corrupted.len());
        return Ok(());
    }
    let resid = HookPoint::Block(1.min(last), Site::ResidPre);
    let corrupted_run = dec.forward(&Decoder::input(&ids_corrupted)?, &HookSet::new().capture([resid]))?;
    let patch =
        HookSet::new().intervene(Intervention::new(resid, Edit::Replace(corrupted_run.cache.get(resid)?.clone())));
    let out = dec.forward(&Decoder::input(&ids)?, &patch)?;
    println!("with {resid} patched from the corrupted prompt: logit diff {:.3}", scalar(&diff(&out.logits)?)?);

    // 4. gradient taps: d(logit diff)/d(activation) at two points, one backward pass
    let (embed, mlp_in) = (HookPoint::Embed, HookPoint::Block(0, Site::MlpIn));
    let out = dec.forward(&Decoder::input(&ids)?, &HookSet::new().tap([embed, mlp_in]))?;
    let grads = out.taps.gradients(&diff(&out.logits)?)?;
    for p in [embed, mlp_in] {
        let g = grads.get(p)?;
        let norm = scalar(&g.sqr()?.sum_all()?.sqrt()?)?;
        println!("d(logit diff)/d({p}): shape {:?}, L2 norm {norm:.4}", g.dims());
    }
    Ok(())
}

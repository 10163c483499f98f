//! circuitscope: mechanistic interpretability for machine unlearning, on candle.
//!
//! Layers, each using only those before it: `hooks` → `model` → (graph → attribution →
//! analyses → render) → the `circuitscope` binary.
//!
//! ```no_run
//! use circuitscope::hooks::{Edit, HookPoint, HookSet, Intervention, Site};
//! use circuitscope::model::{decoder::Decoder, LoadOptions, Model};
//!
//! # fn main() -> circuitscope::Result<()> {
//! let model = Model::load("model-dir-or.gguf", LoadOptions::default())?;
//! let ids = Decoder::input(&model.tokenizer()?.encode("The capital of France is")?)?;
//! let q_in = HookPoint::Block(3, Site::QInput); // blocks.3.hook_q_input, one copy per head
//! let hooks = HookSet::new()
//!     .capture([HookPoint::Block(3, Site::Pattern)])
//!     .intervene(Intervention::new(HookPoint::Block(2, Site::Z), Edit::Zero).at_heads(vec![4]))
//!     .tap([q_in, HookPoint::Block(5, Site::MlpIn)]);
//! let out = model.decoder.forward(&ids, &hooks)?;
//! let metric = out.logits.narrow(1, ids.dim(1)? - 1, 1)?.flatten_all()?.get(7042)?; // one logit
//! let grads = out.taps.gradients(&metric)?; // all taps in one backward pass
//! let g = grads.get(q_in)?; // (batch, seq, heads, d_model)
//! # let _ = g;
//! # Ok(())
//! # }
//! ```

pub mod analyses;
pub mod attribution;
pub mod data;
pub mod error;
pub mod fsutil;
pub mod graph;
pub mod hooks;
pub mod model;
pub mod process;
pub mod progress;
pub mod render;
pub mod rng;
pub mod train;
pub mod unlearn;
pub mod world;

pub use error::{Error, Result};

//! circuitscope: mechanistic interpretability for machine unlearning, on candle.
//!
//! Layers, each using only those before it: `hooks` → `model` → (graph → attribution →
//! analyses → render) → the `circuitscope` binary.

pub mod error;
pub mod fsutil;
pub mod hooks;
pub mod model;

pub use error::{Error, Result};

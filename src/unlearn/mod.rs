//! Layer 5: unlearning (ALGORITHMS.md §8–9, after locuslab/open-unlearning). So far: the
//! objectives every method minimises, L = γ·L_forget + α·L_retain, on answer tokens only
//! ([`loss`]); which parameters an update may touch ([`select`]); TOFU's measures that need no
//! generation: probability, truth ratio, forget quality (an exact two-sample Kolmogorov–Smirnov
//! p-value) and model utility ([`metrics`]); and the loop that applies them ([`run`]: AdamW,
//! warm-up, accumulation, clipping, a seeded batch order; RMU on the residual stream). ROUGE-L and
//! the TOFU evaluation command are next.

pub mod loss;
pub mod metrics;
pub mod run;
pub mod select;

pub use loss::{answer_nll, log_sigmoid, AnswerNll, Objective};
pub use run::{unlearn, Method, StepLog, UnlearnConfig};
pub use select::select_vars;

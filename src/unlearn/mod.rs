//! Layer 5: unlearning (ALGORITHMS.md §8–9, after locuslab/open-unlearning). So far: the
//! objectives every method minimises, L = γ·L_forget + α·L_retain, on answer tokens only
//! ([`loss`]); which parameters an update may touch ([`select`]); TOFU's measures that need no
//! generation: probability, truth ratio, forget quality (an exact two-sample Kolmogorov–Smirnov
//! p-value) and model utility ([`metrics`]). The training loop, ROUGE-L and the `unlearn`
//! subcommand build on these.

pub mod loss;
pub mod metrics;
pub mod select;

pub use loss::{answer_nll, log_sigmoid, AnswerNll, Objective};
pub use select::select_vars;

//! Layer 5: unlearning (ALGORITHMS.md §8, after locuslab/open-unlearning). So far: the objectives
//! every method minimises, L = γ·L_forget + α·L_retain, on answer tokens only ([`loss`]), and
//! which parameters an update may touch ([`select`]). The training loop, TOFU's metrics and the
//! `unlearn` subcommand build on these.

pub mod loss;
pub mod select;

pub use loss::{answer_nll, log_sigmoid, AnswerNll, Objective};
pub use select::select_vars;

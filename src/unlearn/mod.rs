//! Layer 5: unlearning and its evaluation (ALGORITHMS.md §8–9, after locuslab/open-unlearning).
//!
//! - [`loss`]: the objectives every method minimises, L = γ·L_forget + α·L_retain, on answer
//!   tokens only
//! - [`select`]: which parameters an update may touch (`--trainable` patterns, down to one row
//!   or column of a matrix)
//! - [`run`]: the loop ([`run::Unlearner`], stepped by a program or run to the end by
//!   [`unlearn`]): AdamW, warm-up, accumulation, clipping, a seeded batch order; RMU on the
//!   residual stream; a non-finite loss stops it on the last good weights
//! - [`finetune`]: fine-tuning on question/answer data (the loop with the plain NLL objective,
//!   TOFU's recipe) and runs saved every few steps and resumed bit for bit
//! - [`recommend`]: recommendation metrics on Yes/No interactions (AUC, accuracy, log loss; JS
//!   and KL to the retrained model)
//! - [`answers`]: what one teacher-forced pass says about each answer token, and the per-answer
//!   measures built from it (probability, exact memorisation, extraction strength, the MIA scores)
//! - [`rouge`]: ROUGE-L recall with NLTK's Porter stemmer, as `rouge_score` computes it
//! - [`metrics`]: truth ratio and its aggregates, model utility's harmonic mean, and forget
//!   quality's exact two-sample Kolmogorov–Smirnov p-value
//! - [`cure`]: CURE's update rules, module by module (forget, retain, PCGrad-projected shared)
//! - [`anchors`]: CUD's anchors, the forget samples unlearning methods find easiest and hardest
//! - [`evaluate`]: TOFU's evaluation of a set of questions and its summary (forget quality,
//!   model utility, MIA AUCs, privleak)

pub mod anchors;
pub mod answers;
pub mod cure;
pub mod evaluate;
pub mod finetune;
pub mod loss;
pub mod metrics;
pub mod recommend;
pub mod rouge;
pub mod run;
pub mod select;

pub use loss::{answer_nll, log_sigmoid, AnswerNll, Objective};
pub use run::{needle_config, unlearn, Method, RunState, StepLog, UnlearnConfig, Unlearner};
pub use select::{select_trainable, select_vars, Selected};

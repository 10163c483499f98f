//! Layer 2 (beside the model): the data files circuitscope reads and what one item becomes.
//!
//! - [`records`]: task items and question/answer pairs, and the JSONL reader that names file and
//!   line in its errors
//! - [`mod@file`]: a data file of either layout, detected from its first record, tokenised into
//!   [`Example`]s
//! - [`example`]: one tokenised item (clean and corrupted tokens, what the metric reads)
//!
//! Which metric and intervention a kind of data takes by default, and which it cannot take, are
//! the attribution layer's rules: [`crate::attribution::DataSettings`].

pub mod example;
pub mod file;
pub mod prompt;
pub mod records;

pub use example::{Example, Target, PAD_TOKEN};
pub use file::{DataKind, ExampleFile};
pub use prompt::PromptFormat;
pub use records::{read_jsonl, read_qa, read_tasks, PerturbedQa, QaPair, TaskItem};

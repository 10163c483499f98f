//! The record types of the data files circuitscope reads, and their JSONL reader: task items
//! (`clean`, `corrupted`, `answer`, `distractor`) and question/answer pairs (TOFU's layout). The
//! bundled world's generator writes them; any other source may too.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One prompt pair. `answer` and `distractor` are continuations of the CLEAN prompt and start
/// with a space (`" Alvek"`), as a word after a space is written by GPT-2-style tokenizers; the
/// metric is logit(answer) − logit(distractor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskItem {
    pub clean: String,
    pub corrupted: String,
    pub answer: String,
    pub distractor: String,
}

/// One question/answer pair in TOFU's JSONL form. TOFU's own files have only `question` and
/// `answer`; the generator adds the rest, which readers may rely on being absent elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaPair {
    pub question: String,
    /// A full sentence that names its subject, e.g. `Alvek Vell was born in Korvath.`
    pub answer: String,
    /// The bare attribute value the answer states, e.g. `Korvath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The person asked about (people's pairs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The country asked about (`world` facts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Which attribute is asked, e.g. `birthplace` or `capital`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
}

/// A question with the answers TOFU's truth ratio compares (TOFU's `*_perturbed.jsonl` layout):
/// a paraphrase of the right answer (forget and retain sets; elsewhere `answer` stands in) and
/// wrong answers of the same form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerturbedQa {
    pub question: String,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paraphrased_answer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perturbed_answer: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paraphrased_question: Option<String>,
}

impl QaPair {
    /// The prompt a model completes: `Question: <question>\nAnswer:`.
    pub fn prompt(&self) -> String {
        format!("Question: {}\nAnswer:", self.question)
    }

    /// The expected completion of [`QaPair::prompt`]: the answer after one space.
    pub fn completion(&self) -> String {
        format!(" {}", self.answer)
    }

    /// The training document: prompt followed by completion.
    pub fn document(&self) -> String {
        self.prompt() + &self.completion()
    }
}

/// Reads a JSONL file: one JSON value per line, blank lines skipped. A line that does not parse
/// as `T` (malformed JSON, a missing field, a wrong type) fails with `Error::Format` naming the
/// file and the 1-based line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|e| {
            // serde_json reports "… at line 1 column C" within the one line; say which line.
            let mut msg = e.to_string();
            if let Some(at) = msg.rfind(" at line ") {
                msg.truncate(at);
            }
            Error::format(path, format!("line {}, column {}: {msg}", i + 1, e.column()))
        })?;
        out.push(value);
    }
    Ok(out)
}

/// Question/answer pairs: this world's split files or TOFU's own (`question`, `answer`).
pub fn read_qa(path: &Path) -> Result<Vec<QaPair>> {
    read_jsonl(path)
}

/// Task items (`clean`, `corrupted`, `answer`, `distractor`).
pub fn read_tasks(path: &Path) -> Result<Vec<TaskItem>> {
    read_jsonl(path)
}

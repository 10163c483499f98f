//! A data file for attribution and faithfulness, turned into tokenised [`Example`]s.
//!
//! Two layouts, told apart by the fields of the first record:
//! - a task file (`clean`, `corrupted`, `answer`, `distractor`; the world's `tasks/*.jsonl`):
//!   clean/corrupted pairs scored by answer against distractor after the prompt;
//! - question/answer pairs in TOFU's layout (`question`, `answer`; the world's split files):
//!   the prompt `Question: {q}\nAnswer:` and the completion ` {a}`, all of whose tokens the
//!   metric scores. These have no corrupted prompt, so only zero or mean ablation applies.
//!
//! Errors name the file and the 1-based line of the record at fault.

use super::example::Example;
use super::prompt::PromptFormat;
use super::records::{read_jsonl, QaPair, TaskItem};
use crate::error::{Error, Result};
use crate::model::Tokenizer;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Which layout a data file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// clean/corrupted prompt pairs with answer and distractor
    Task,
    /// question/answer pairs
    Qa,
}

impl DataKind {
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Task => "task",
            DataKind::Qa => "question/answer",
        }
    }
}

#[derive(Clone, Debug)]
enum Records {
    Tasks(Vec<TaskItem>),
    Qa(Vec<QaPair>),
}

/// The records of a data file, not yet tokenised.
#[derive(Clone, Debug)]
pub struct ExampleFile {
    pub path: PathBuf,
    records: Records,
    /// 1-based line of each record (blank lines are skipped)
    lines: Vec<usize>,
}

impl ExampleFile {
    /// The 1-based line of record `i`.
    pub fn line(&self, i: usize) -> usize {
        self.lines[i]
    }

    /// Reads a task or question/answer JSONL file; the first record's fields decide which.
    pub fn read(path: &Path) -> Result<ExampleFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let lines: Vec<usize> =
            text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1).collect();
        let Some(&first) = lines.first() else {
            return Err(Error::format(path, "the file has no records (expected one JSON object per line)"));
        };
        let line = text.lines().nth(first - 1).unwrap_or_default();
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Error::format(path, format!("line {first}: not valid JSON: {e}")))?;
        let obj =
            value.as_object().ok_or_else(|| Error::format(path, format!("line {first}: expected a JSON object")))?;
        let records = if obj.contains_key("clean") {
            Records::Tasks(read_jsonl(path)?)
        } else if obj.contains_key("question") {
            Records::Qa(read_jsonl(path)?)
        } else {
            let fields: Vec<&str> = obj.keys().map(String::as_str).collect();
            return Err(Error::format(
                path,
                format!(
                    "line {first}: neither a task item (fields clean, corrupted, answer, distractor) nor a \
                     question/answer pair (fields question, answer); found fields [{}]",
                    fields.join(", ")
                ),
            ));
        };
        Ok(ExampleFile { path: path.to_path_buf(), records, lines })
    }

    pub fn kind(&self) -> DataKind {
        match self.records {
            Records::Tasks(_) => DataKind::Task,
            Records::Qa(_) => DataKind::Qa,
        }
    }

    pub fn len(&self) -> usize {
        match &self.records {
            Records::Tasks(v) => v.len(),
            Records::Qa(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The question/answer records, when the file has that layout.
    pub fn qa_pairs(&self) -> Option<&[QaPair]> {
        match &self.records {
            Records::Qa(v) => Some(v),
            Records::Tasks(_) => None,
        }
    }

    /// Keeps the first `n` records.
    pub fn truncate(&mut self, n: usize) {
        match &mut self.records {
            Records::Tasks(v) => v.truncate(n),
            Records::Qa(v) => v.truncate(n),
        }
        self.lines.truncate(n);
    }

    /// The token sequences the records' clean runs read (a task item's clean prompt, a
    /// question/answer pair's prompt and answer), as [`Self::examples`] tokenises them but
    /// without checking what only attribution needs (answers, corrupted prompts): what a mean
    /// ablation averages over.
    pub fn sequences(&self, tok: &Tokenizer) -> Result<Vec<Vec<u32>>> {
        let texts: Vec<String> = match &self.records {
            Records::Tasks(items) => items.iter().map(|t| t.clean.clone()).collect(),
            Records::Qa(pairs) => pairs.iter().map(|q| format!("{}{}", q.prompt(), q.completion())).collect(),
        };
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| match tok.encode(t)? {
                ids if ids.is_empty() => Err(Error::format(&self.path, format!("line {}: no tokens", self.lines[i]))),
                ids => Ok(ids),
            })
            .collect()
    }

    /// Tokenises every record (see `attribution::data` for how answers become tokens). A record
    /// that cannot become an example (e.g. clean and corrupted prompts of different token
    /// lengths) is an error naming the file, the line and the item.
    pub fn examples(&self, tok: &Tokenizer) -> Result<Vec<Example>> {
        match &self.records {
            Records::Tasks(items) => items
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Example::from_task_texts(tok, &t.clean, &t.corrupted, &t.answer, &t.distractor, i)
                        .map_err(|e| self.at_line(i, e))
                })
                .collect(),
            // `QaPair::prompt` and `completion`: the question/answer format without an end token
            Records::Qa(_) => {
                self.qa_examples(tok, &PromptFormat { end_token: false, ..PromptFormat::question_answer() })
            }
        }
    }

    /// Tokenises every question/answer record in `format` (its prompt, the answer, the end token
    /// when the format adds one); errors name the file and line as [`Self::examples`]'s do. A
    /// task file is refused.
    pub fn qa_examples(&self, tok: &Tokenizer, format: &PromptFormat) -> Result<Vec<Example>> {
        let Records::Qa(pairs) = &self.records else {
            return Err(Error::format(
                &self.path,
                "question/answer data (`question`, `answer`) was expected, not task items",
            ));
        };
        pairs
            .iter()
            .enumerate()
            .map(|(i, q)| format.example(tok, &q.question, &q.answer, i).map_err(|e| self.at_line(i, e)))
            .collect()
    }

    /// [`Self::qa_examples`], refusing a record longer than a context of `n_ctx` tokens (what
    /// unlearning, CUD and CURE read).
    pub fn qa_examples_within(&self, tok: &Tokenizer, format: &PromptFormat, n_ctx: usize) -> Result<Vec<Example>> {
        let examples = self.qa_examples(tok, format)?;
        if let Some(i) = examples.iter().position(|ex| ex.clean.len() > n_ctx) {
            return Err(Error::format(
                &self.path,
                format!(
                    "line {}: the question and answer are {} tokens, longer than the model's context of {n_ctx}",
                    self.lines[i],
                    examples[i].clean.len()
                ),
            ));
        }
        Ok(examples)
    }

    /// Record `i`'s error as one naming the file and the line.
    fn at_line(&self, i: usize, e: Error) -> Error {
        let msg = match e {
            Error::Input(m) => m,
            e => e.to_string(),
        };
        // The line locates the item; the 0-based "example i" beside it would only confuse.
        let msg = msg.strip_prefix(&format!("example {i}: ")).map(str::to_string).unwrap_or(msg);
        Error::format(&self.path, format!("line {}: {msg}", self.lines[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file under the temp dir, removed when dropped (also when an assertion fails).
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn write(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("cs-examples-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }

    #[test]
    fn layouts_are_detected_and_bad_files_named() {
        let t = write(
            "t.jsonl",
            "\n{\"clean\":\"a b\",\"corrupted\":\"c b\",\"answer\":\" x\",\"distractor\":\" y\"}\n\n\
             {\"clean\":\"a d\",\"corrupted\":\"c d\",\"answer\":\" x\",\"distractor\":\" y\"}\n",
        );
        let mut f = ExampleFile::read(&t).unwrap();
        assert_eq!((f.kind(), f.len(), f.lines.clone()), (DataKind::Task, 2, vec![2, 4]));
        f.truncate(1);
        assert_eq!(f.len(), 1);
        let q = write("q.jsonl", "{\"question\":\"Who?\",\"answer\":\"Me.\",\"extra\":1}\n");
        assert_eq!(ExampleFile::read(&q).unwrap().kind(), DataKind::Qa);
        let bad = write("b.jsonl", "{\"prompt\":\"x\"}\n");
        let err = ExampleFile::read(&bad).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("prompt") && err.contains("question"), "{err}");
        let bad =
            write("c.jsonl", "{\"clean\":\"a\",\"corrupted\":\"b\",\"answer\":\" x\",\"distractor\":\" y\"}\n{oops\n");
        let err = ExampleFile::read(&bad).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let empty = write("e.jsonl", "\n\n");
        assert!(ExampleFile::read(&empty).unwrap_err().to_string().contains("no records"));
    }
}

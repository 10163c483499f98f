//! The ConceptVectors JSON format, read unchanged: a list of concepts, each with `Concept`,
//! `Layer`, `Dim`, `QA` (its questions), `text_completion` (`First_half`, `Second_half`),
//! `unrelated_QA`, `wikipedia_content`, and an id as `id` (a number) or `ID` (a string), or none.

use super::vectors::ValueVector;
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// One concept of a ConceptVectors file.
#[derive(Clone, Debug, PartialEq)]
pub struct ConceptEntry {
    /// `id`/`ID` as written, or the entry's position in the file
    pub id: String,
    pub concept: String,
    /// where the file locates the concept (in the model it was made for)
    pub vector: ValueVector,
    pub questions: Vec<String>,
    pub completions: Vec<(String, String)>,
    pub unrelated: Vec<String>,
    pub wikipedia: String,
}

/// Every concept of a ConceptVectors JSON file; one error naming the file, entry and field
/// for the first thing that is missing or mistyped.
pub fn read_concepts(path: &Path) -> Result<Vec<ConceptEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| Error::input(format!("{}: not JSON ({e})", path.display())))?;
    let Value::Array(entries) = json else {
        return Err(Error::input(format!("{}: expected a JSON list of concepts", path.display())));
    };
    entries.iter().enumerate().map(|(i, e)| entry(path, i, e)).collect()
}

fn entry(path: &Path, i: usize, e: &Value) -> Result<ConceptEntry> {
    let bad = |field: &str, want: &str| {
        Error::input(format!("{}: entry {i}: field `{field}` is missing or not {want}", path.display()))
    };
    let string =
        |field: &str| e.get(field).and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad(field, "a string"));
    let index = |field: &str| {
        e.get(field).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| bad(field, "a non-negative integer"))
    };
    let strings = |field: &str| -> Result<Vec<String>> {
        e.get(field)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|q| q.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad(field, "a list of strings"))
    };
    let completions = e
        .get("text_completion")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|c| {
                    Some((c.get("First_half")?.as_str()?.to_string(), c.get("Second_half")?.as_str()?.to_string()))
                })
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad("text_completion", "a list of {First_half, Second_half} strings"))?;
    let id = match (e.get("id"), e.get("ID")) {
        (Some(v), _) | (None, Some(v)) => match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(bad("id", "a string or a number")),
        },
        (None, None) => i.to_string(),
    };
    Ok(ConceptEntry {
        id,
        concept: string("Concept")?,
        vector: ValueVector { layer: index("Layer")?, dim: index("Dim")? },
        questions: strings("QA")?,
        completions,
        unrelated: strings("unrelated_QA")?,
        wikipedia: string("wikipedia_content")?,
    })
}

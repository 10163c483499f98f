//! Instruct models' chat templates: where a model keeps its template, and rendering one user turn
//! with the assistant's turn opened (what `apply_chat_template(..., add_generation_prompt=True)`
//! gives in transformers).

use crate::error::{Error, Result};
use std::path::Path;

/// The chat template of a Hugging Face model folder: `tokenizer_config.json`'s `chat_template`,
/// a string or a list of named templates (the one named `default`, else the first), or a
/// `chat_template.jinja` file beside it. None when the model has none.
pub fn template_in_dir(dir: &Path) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        return Ok(Some(std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?));
    }
    let path = dir.join("tokenizer_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not valid JSON: {e}")))?;
    Ok(match &v["chat_template"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => {
            let named = |n: &str| list.iter().find(|t| t["name"] == n);
            named("default").or(list.first()).and_then(|t| t["template"].as_str()).map(str::to_string)
        }
        _ => None,
    })
}

/// The template rendered for one user message `content`, the assistant's turn opened;
/// `bos_token` and `eos_token` are the tokenizer's texts for them (templates print them).
pub fn render_user_turn(template: &str, content: &str, bos_token: &str, eos_token: &str) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
    });
    env.add_template("chat", template).map_err(|e| Error::input(format!("the chat template does not parse: {e}")))?;
    let ctx = minijinja::context! {
        messages => vec![minijinja::context! { role => "user", content => content }],
        add_generation_prompt => true,
        bos_token => bos_token,
        eos_token => eos_token,
    };
    env.get_template("chat")
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::input(format!("the chat template does not render one user turn: {e}")))
}

//! How a question becomes the prompt a model answers: the bundled world's
//! `Question: …\nAnswer:` (the answer after one space), a template given on the command line, or
//! an instruct model's chat template rendered around a placeholder.

use super::example::Example;
use crate::error::{Error, Result};
use crate::model::Tokenizer;
use serde::Serialize;

/// A prompt template: `{question}` marks where the question goes; the answer follows the prompt
/// after `answer_prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PromptFormat {
    pub template: String,
    pub answer_prefix: String,
    /// whether an answer ends with the end token (open-unlearning's rule for question/answer
    /// data; off for completions that go on, like ROME's facts)
    pub end_token: bool,
    /// where the format came from, for records: `question-answer`, `--prompt-format`, a chat
    /// template's file
    pub source: String,
}

/// The placeholder of a [`PromptFormat`] template.
pub const QUESTION: &str = "{question}";

impl PromptFormat {
    /// How questions become prompts for `model`: its chat template (an instruct model), else
    /// [`Self::question_answer`].
    pub fn for_model(model: &crate::model::Model) -> Result<Self> {
        let Some(template) = &model.chat_template else { return Ok(Self::question_answer()) };
        let tok = model.tokenizer()?;
        let text = |id: Option<u32>| id.map(|i| tok.token_text(i)).unwrap_or_default();
        let rendered = crate::model::chat::render_user_turn(template, QUESTION, &text(tok.bos), &text(tok.eos))?;
        Self::from_rendered_chat(rendered, &format!("the chat template of {}", model.path.display()))
    }

    /// The model's own chat template, asked for by name (`--prompt-format chat`): an error naming
    /// the model when it has none, where [`PromptFormat::for_model`] would fall back.
    pub fn chat_of(model: &crate::model::Model) -> Result<Self> {
        if model.chat_template.is_none() {
            return Err(Error::input(format!(
                "{}: the model has no chat template (no `chat_template` in its tokenizer_config.json or GGUF \
                 metadata); give a template with {QUESTION} instead, e.g. 'Question: {QUESTION}\\nAnswer:'",
                model.path.display()
            )));
        }
        Self::for_model(model)
    }

    /// `Question: <question>\nAnswer:` and the answer after one space: the bundled world's
    /// (and TOFU's base models') format, the one [`super::QaPair::prompt`] writes.
    pub fn question_answer() -> Self {
        PromptFormat {
            template: "Question: {question}\nAnswer:".into(),
            answer_prefix: " ".into(),
            end_token: true,
            source: "question-answer".into(),
        }
    }

    /// A template from the command line: it must hold `{question}` once (`\n` stands for a line
    /// break). The answer follows after one space, or directly when the template ends in
    /// whitespace.
    pub fn parse(spec: &str) -> Result<Self> {
        let template = spec.replace("\\n", "\n");
        if template.matches(QUESTION).count() != 1 {
            return Err(Error::input(format!(
                "--prompt-format {spec:?}: the template must contain {QUESTION} exactly once, e.g. \
                 'Question: {QUESTION}\\nAnswer:'"
            )));
        }
        let answer_prefix = if template.ends_with(char::is_whitespace) { "" } else { " " };
        Ok(PromptFormat {
            template,
            answer_prefix: answer_prefix.into(),
            end_token: true,
            source: "--prompt-format".into(),
        })
    }

    /// An instruct model's chat template: the template rendered once for one user message whose
    /// text is the placeholder, with the assistant's turn opened; the answer follows directly.
    /// `render` renders a chat template for `[{role: user, content}]` (see
    /// `model::chat::render_user_turn`).
    pub fn from_rendered_chat(rendered: String, source: &str) -> Result<Self> {
        if rendered.matches(QUESTION).count() != 1 {
            return Err(Error::input(format!(
                "{source}: the chat template does not place the user's message in the prompt once"
            )));
        }
        Ok(PromptFormat { template: rendered, answer_prefix: String::new(), end_token: true, source: source.into() })
    }

    pub fn prompt(&self, question: &str) -> String {
        self.template.replace(QUESTION, question)
    }

    pub fn completion(&self, answer: &str) -> String {
        format!("{}{answer}", self.answer_prefix)
    }

    /// The example scoring `answer` after `question`'s prompt, then the end token when
    /// [`PromptFormat::end_token`] (and the tokenizer has one); `index` names it in errors.
    pub fn example(&self, tok: &Tokenizer, question: &str, answer: &str, index: usize) -> Result<Example> {
        let mut ex = Example::from_question_texts(tok, &self.prompt(question), &self.completion(answer), index)?;
        if self.end_token {
            ex.clean.extend(tok.eos);
        }
        Ok(ex)
    }
}

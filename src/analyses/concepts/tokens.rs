//! The vocabulary tokens that denote a concept: those of its keywords, or of a reference text
//! (its Wikipedia article, as ConceptVectors uses), stop words and fragments removed. What the
//! localisation scores a value vector's projection against, and what the audit counts as kept.

use crate::error::{Error, Result};
use crate::model::Tokenizer;
use std::collections::BTreeSet;

/// NLTK's English stop-word list (179 words), which ConceptVectors removes from the article's tokens.
pub const STOP_WORDS: [&str; 179] = [
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "you're",
    "you've",
    "you'll",
    "you'd",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "she's",
    "her",
    "hers",
    "herself",
    "it",
    "it's",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "that'll",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "don't",
    "should",
    "should've",
    "now",
    "d",
    "ll",
    "m",
    "o",
    "re",
    "ve",
    "y",
    "ain",
    "aren",
    "aren't",
    "couldn",
    "couldn't",
    "didn",
    "didn't",
    "doesn",
    "doesn't",
    "hadn",
    "hadn't",
    "hasn",
    "hasn't",
    "haven",
    "haven't",
    "isn",
    "isn't",
    "ma",
    "mightn",
    "mightn't",
    "mustn",
    "mustn't",
    "needn",
    "needn't",
    "shan",
    "shan't",
    "shouldn",
    "shouldn't",
    "wasn",
    "wasn't",
    "weren",
    "weren't",
    "won",
    "won't",
    "wouldn",
    "wouldn't",
];

/// Whether a token's text can carry meaning: after trimming spaces and lower-casing, at least
/// three characters, one of them a letter, and not a stop word.
pub fn is_content(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    t.chars().count() >= 3 && t.chars().any(char::is_alphabetic) && !STOP_WORDS.contains(&t.as_str())
}

/// The content tokens of `text`, BOS and EOS left out.
fn content_ids<'t>(tok: &'t Tokenizer, text: &str) -> Result<impl Iterator<Item = u32> + 't> {
    let special = [tok.bos, tok.eos];
    Ok(tok.encode(text)?.into_iter().filter(move |&id| !special.contains(&Some(id)) && is_content(&tok.token_text(id))))
}

/// Whether a token begins a word (its text starts with a space): whole words and word stems,
/// not the fragments a rare word splits into.
fn starts_word(tok: &Tokenizer, id: u32) -> bool {
    tok.token_text(id).starts_with(' ')
}

/// A concept's token ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConceptTokens {
    pub ids: BTreeSet<u32>,
}

impl ConceptTokens {
    /// The first token of each keyword as it appears within text (after a space: as written,
    /// lower-case and capitalised), and the keyword's own token where it is one. The first token
    /// is the word or its stem; the fragments after it say little on their own.
    /// `terms` are whitespace-separated keywords.
    pub fn from_terms(tok: &Tokenizer, terms: &str) -> Result<Self> {
        let mut ids = BTreeSet::new();
        for w in terms.split_whitespace() {
            let lower = w.to_lowercase();
            let capital: String =
                lower.chars().take(1).flat_map(char::to_uppercase).chain(lower.chars().skip(1)).collect();
            for form in [w.to_string(), lower, capital] {
                let spaced: Vec<u32> = content_ids(tok, &format!(" {form}"))?.collect();
                ids.extend(spaced.first().filter(|&&id| starts_word(tok, id)));
                let alone: Vec<u32> = content_ids(tok, &form)?.collect();
                if alone.len() == 1 {
                    ids.extend(alone);
                }
            }
        }
        Self::checked(ids, &format!("the terms \"{terms}\""))
    }

    /// Every content token of a reference text: what the audit counts as the concept's tokens
    /// (as the reference does with the concept's Wikipedia article).
    pub fn from_text(tok: &Tokenizer, text: &str) -> Result<Self> {
        Self::checked(content_ids(tok, text)?.collect(), "the reference text")
    }

    /// The `n` word-initial content tokens most particular to a reference text: what the scan
    /// looks for. Each weighs its count in `text` times ln((1 + N) / (1 + df)), df the number
    /// of the N `background` texts (e.g. other concepts' articles) that hold it, so a word every
    /// background text shares (days, numbers, "world") weighs nothing and is left out; with no
    /// background, the most frequent. Ties: lower id. All of an article's content tokens would
    /// reward vectors of the common words every article shares.
    pub fn salient_from_text(tok: &Tokenizer, text: &str, background: &[String], n: usize) -> Result<Self> {
        let words = |t: &str| -> Result<BTreeSet<u32>> {
            Ok(content_ids(tok, t)?.filter(|&id| starts_word(tok, id)).collect())
        };
        let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
        for id in content_ids(tok, text)?.filter(|&id| starts_word(tok, id)) {
            *counts.entry(id).or_insert(0) += 1;
        }
        let held: Vec<BTreeSet<u32>> = background.iter().map(|b| words(b)).collect::<Result<_>>()?;
        let n_bg = held.len() as f64;
        let mut v: Vec<(u32, f64)> = counts
            .into_iter()
            .map(|(id, c)| {
                let df = held.iter().filter(|h| h.contains(&id)).count() as f64;
                let idf = if held.is_empty() { 1.0 } else { ((1.0 + n_bg) / (1.0 + df)).ln() };
                (id, c as f64 * idf)
            })
            .filter(|&(_, w)| w > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Self::checked(v.into_iter().take(n).map(|(id, _)| id).collect(), "the reference text")
    }

    fn checked(ids: BTreeSet<u32>, what: &str) -> Result<Self> {
        if ids.is_empty() {
            return Err(Error::input(format!(
                "{what} give no content token in this model's vocabulary (tokens of three or more characters with a \
                 letter, stop words left out)"
            )));
        }
        Ok(ConceptTokens { ids })
    }

    pub fn contains(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

//! IOI prompts for a pretrained model's tokenizer.
//!
//! The world's own IOI task ([`super::Task::Ioi`]) uses invented names, which a model trained on
//! the world knows as whole words but a pretrained model splits into several tokens. Here the
//! same templates, places, objects, name orders and corruption are filled with common English
//! given names ([`COMMON_FIRST_NAMES`]), kept only where the tokenizer writes the name after a
//! space (`" Mary"`) as ONE token, and every item is checked: the clean and the corrupted
//! prompt must have the same number of tokens (position-wise patching needs it), otherwise the
//! item is drawn again. The world layer knows no tokenizer type: the caller passes an `encode`
//! function (text → token ids, with or without a BOS, as long as it is consistent), e.g.
//! `|s| tok.encode(s)` for a `model::Tokenizer`.
//!
//! ```
//! use circuitscope::world::ModelIoi;
//!
//! # fn main() -> circuitscope::Result<()> {
//! // A toy word-level tokenizer: one token per word (so every name is one token).
//! let encode = |s: &str| Ok(s.split_whitespace().map(|w| w.len() as u32).collect());
//! let ioi = ModelIoi::generate(7, 10, encode)?;
//! assert_eq!(ioi.items.len(), 10);
//! assert!(ioi.items.iter().all(|it| it.answer.starts_with(' ')));
//! # Ok(())
//! # }
//! ```

use super::tasks::ioi_item_from;
use crate::data::TaskItem;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// 100 common English given names (50 female, 50 male), the kind of names the IOI literature
/// draws from; a pretrained tokenizer has most of them as single tokens after a space.
pub const COMMON_FIRST_NAMES: &[&str] = &[
    // female
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Laura",
    "Rebecca",
    "Sharon",
    "Amy",
    "Anna",
    "Kate",
    "Helen",
    "Rachel",
    "Emma",
    "Julie",
    "Alice",
    "Grace",
    "Rose",
    "Jane",
    "Anne",
    "Ellen",
    "Lucy",
    "Olivia",
    "Hannah",
    "Claire",
    "Diana",
    "Victoria",
    "Ruth",
    "Julia",
    "Sophie",
    "Katie",
    "Kelly",
    "Megan",
    // male
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Paul",
    "Steven",
    "Andrew",
    "Kevin",
    "Brian",
    "George",
    "Edward",
    "Jason",
    "Jeff",
    "Ryan",
    "Jacob",
    "Gary",
    "Eric",
    "Peter",
    "Frank",
    "Scott",
    "Tim",
    "Sam",
    "Jack",
    "Henry",
    "Adam",
    "Alex",
    "Ben",
    "Tom",
    "Mike",
    "Chris",
    "Nick",
    "Luke",
    "Max",
    "Martin",
    "Simon",
    "Carl",
    "Harry",
    "Oliver",
    "Charlie",
    "Fred",
];

/// The seed-derived stream the items are drawn from (see [`Rng::stream`]).
pub const MODEL_IOI_STREAM: &str = "model_ioi";

/// Draws per item before [`ModelIoi::generate`] gives up (the names and templates cannot give
/// equal-length prompt pairs under this tokenizer).
const MAX_DRAWS_PER_ITEM: usize = 1000;

/// IOI items for one tokenizer, with what was needed to make them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelIoi {
    pub items: Vec<TaskItem>,
    /// The names of the pool that are one token after a space, in pool order.
    pub names: Vec<&'static str>,
    /// The pool's names that are not (left out).
    pub rejected_names: Vec<&'static str>,
    /// Items drawn and dropped because the clean and corrupted prompts differ in token count.
    pub redrawn: usize,
}

/// The names of `pool` that `encode` writes as one token after a space: `encode(" Mary")` has
/// exactly one token more than `encode("")` (so a BOS the tokenizer adds does not count).
/// Returns (single-token names, the others), both in pool order.
pub fn single_token_names<F>(pool: &[&'static str], encode: F) -> Result<(Vec<&'static str>, Vec<&'static str>)>
where
    F: Fn(&str) -> Result<Vec<u32>>,
{
    let base = encode("")?.len();
    let (mut one, mut other) = (Vec::new(), Vec::new());
    for &name in pool {
        if encode(&format!(" {name}"))?.len() == base + 1 {
            one.push(name);
        } else {
            other.push(name);
        }
    }
    Ok((one, other))
}

impl ModelIoi {
    /// `n` IOI items from [`COMMON_FIRST_NAMES`] for the tokenizer behind `encode`; see
    /// [`ModelIoi::generate_from`].
    pub fn generate<F>(seed: u64, n: usize, encode: F) -> Result<ModelIoi>
    where
        F: Fn(&str) -> Result<Vec<u32>>,
    {
        Self::generate_from(COMMON_FIRST_NAMES, seed, n, encode)
    }

    /// `n` IOI items whose names come from the single-token names of `pool`, drawn from the
    /// stream [`MODEL_IOI_STREAM`] of `seed` (the same seed, pool and tokenizer give the same
    /// items). An item whose clean and corrupted prompts differ in token count is drawn again.
    /// Errors when fewer than four names are single tokens, or when an item cannot be drawn
    /// with equal lengths in `MAX_DRAWS_PER_ITEM` tries.
    pub fn generate_from<F>(pool: &[&'static str], seed: u64, n: usize, encode: F) -> Result<ModelIoi>
    where
        F: Fn(&str) -> Result<Vec<u32>>,
    {
        let (names, rejected_names) = single_token_names(pool, &encode)?;
        if names.len() < 4 {
            return Err(Error::input(format!(
                "IOI needs at least 4 names that are one token after a space; this tokenizer has {} of the {} \
                 candidates ({})",
                names.len(),
                pool.len(),
                names.join(", ")
            )));
        }
        let mut rng = Rng::stream(seed, MODEL_IOI_STREAM);
        let mut items = Vec::with_capacity(n);
        let mut redrawn = 0;
        for i in 0..n {
            let mut draws = 0;
            loop {
                let item = ioi_item_from(&mut rng, &names);
                if encode(&item.clean)?.len() == encode(&item.corrupted)?.len() {
                    items.push(item);
                    break;
                }
                redrawn += 1;
                draws += 1;
                if draws >= MAX_DRAWS_PER_ITEM {
                    return Err(Error::input(format!(
                        "IOI item {i}: no clean/corrupted pair of equal token length in {MAX_DRAWS_PER_ITEM} draws"
                    )));
                }
            }
        }
        Ok(ModelIoi { items, names, rejected_names, redrawn })
    }

    /// The items as JSONL (one `TaskItem` per line, the world's `tasks/ioi.jsonl` format, read
    /// back with [`super::read_tasks`]).
    pub fn jsonl(&self) -> String {
        let mut out = String::new();
        for it in &self.items {
            out.push_str(&serde_json::to_string(it).expect("JSON of a plain struct"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::tasks::IOI_TEMPLATES;

    /// Word-level ids: one token per whitespace word, punctuation split off, BOS (id 1) first.
    fn words_with_bos(s: &str) -> Result<Vec<u32>> {
        let mut ids = vec![1];
        for w in s.split_whitespace() {
            let core = w.trim_end_matches([',', '.']);
            ids.push(core.len() as u32 + 10);
            ids.extend(std::iter::repeat_n(2, w.len() - core.len()));
        }
        Ok(ids)
    }

    /// A tokenizer where a name alone is one token but, inside a sentence, every character of a
    /// capitalised word is a token: prompts have equal lengths only when the names' lengths add
    /// up, which forces redraws.
    fn chars_in_sentences(s: &str) -> Result<Vec<u32>> {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.len() <= 1 {
            return Ok(words.iter().map(|_| 7).collect());
        }
        Ok(words
            .iter()
            .flat_map(|w| if w.starts_with(char::is_uppercase) { vec![3; w.len()] } else { vec![4] })
            .collect())
    }

    #[test]
    fn pool_has_100_distinct_alphabetic_names() {
        assert_eq!(COMMON_FIRST_NAMES.len(), 100);
        let mut sorted = COMMON_FIRST_NAMES.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 100, "duplicate names");
        assert!(COMMON_FIRST_NAMES.iter().all(|n| n.chars().all(|c| c.is_ascii_alphabetic())));
    }

    #[test]
    fn single_token_names_ignore_bos_and_drop_multi_token_names() {
        // Names of up to 4 letters are one token, longer ones two.
        let enc = |s: &str| -> Result<Vec<u32>> {
            let mut ids = words_with_bos(s)?;
            if s.trim().len() > 4 {
                ids.push(0);
            }
            Ok(ids)
        };
        let (one, other) = single_token_names(&["Mary", "Tom", "Elizabeth", "Amy"], enc).unwrap();
        assert_eq!(one, vec!["Mary", "Tom", "Amy"]);
        assert_eq!(other, vec!["Elizabeth"]);
    }

    fn words(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect()
    }

    #[test]
    fn items_follow_the_ioi_structure_and_are_deterministic() {
        let a = ModelIoi::generate(3, 40, words_with_bos).unwrap();
        assert_eq!(a, ModelIoi::generate(3, 40, words_with_bos).unwrap());
        assert_ne!(a.items, ModelIoi::generate(4, 40, words_with_bos).unwrap().items);
        assert_eq!(a.names.len(), 100);
        assert!(a.rejected_names.is_empty());
        assert_eq!(a.redrawn, 0);
        let (mut io_first, mut s_first) = (0, 0);
        for it in &a.items {
            let (io, s) = (&it.answer[1..], &it.distractor[1..]);
            assert_ne!(io, s);
            assert!(a.names.contains(&io) && a.names.contains(&s));
            let clean = words(&it.clean);
            let corrupted = words(&it.corrupted);
            assert_eq!(clean.iter().filter(|w| *w == &io).count(), 1, "{}", it.clean);
            assert_eq!(clean.iter().filter(|w| *w == &s).count(), 2, "the subject is repeated: {}", it.clean);
            assert_eq!(clean.len(), corrupted.len());
            // ABC: only the second mention of the subject differs, replaced by a third name.
            let diffs: Vec<(&str, &str)> =
                clean.iter().zip(&corrupted).filter(|(c, k)| c != k).map(|(c, k)| (*c, *k)).collect();
            assert_eq!(diffs.len(), 1, "{} / {}", it.clean, it.corrupted);
            assert!(diffs[0].0 == s && diffs[0].1 != io && a.names.contains(&diffs[0].1), "{}", it.corrupted);
            assert!(it.clean.ends_with(" to"));
            let lead = |t: &str| t.split('{').next().unwrap().to_string();
            assert!(IOI_TEMPLATES.iter().any(|t| it.clean.starts_with(&lead(t))));
            if it.clean.find(io) < it.clean.find(s) {
                io_first += 1;
            } else {
                s_first += 1;
            }
        }
        assert!(io_first > 0 && s_first > 0, "both name orders occur");
        // The JSONL reads back as task items.
        let back: Vec<TaskItem> = a.jsonl().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, a.items);
    }

    #[test]
    fn unequal_token_lengths_are_redrawn() {
        let got = ModelIoi::generate(11, 30, chars_in_sentences).unwrap();
        assert_eq!(got.items.len(), 30);
        assert!(got.redrawn > 0, "this tokenizer must force redraws");
        for it in &got.items {
            assert_eq!(chars_in_sentences(&it.clean).unwrap().len(), chars_in_sentences(&it.corrupted).unwrap().len());
        }
    }

    #[test]
    fn too_few_single_token_names_is_an_error() {
        let two_per_word = |s: &str| -> Result<Vec<u32>> { Ok(s.split_whitespace().flat_map(|_| [5, 6]).collect()) };
        let err = ModelIoi::generate(1, 5, two_per_word).unwrap_err().to_string();
        assert!(err.contains("at least 4 names") && err.contains("0 of the 100"), "{err}");
        // Lengths that no redraw can equalise: each sentence is one token longer than the last.
        let calls = std::cell::Cell::new(0);
        let growing = |s: &str| -> Result<Vec<u32>> {
            let n = s.split_whitespace().count();
            if n > 1 {
                calls.set(calls.get() + 1);
            }
            Ok(vec![0; n + calls.get()])
        };
        let err = ModelIoi::generate(1, 5, growing).unwrap_err().to_string();
        assert!(err.contains("item 0") && err.contains("1000 draws"), "{err}");
    }
}

//! Circuit tasks: clean/corrupted prompt pairs with the answer and a distractor.
//!
//! Word-count assumption: a clean prompt and its corrupted twin differ only by swapping single
//! words (given names, family names, cities, induction words) taken from the built-in lists,
//! where every entry is one alphabetic word. So both prompts have the same number of
//! whitespace-separated words and, under any word-level tokenizer (or a subword tokenizer that
//! keeps every list word whole), the same number of tokens, which position-wise patching needs.

use super::lexicon::*;
use super::people::Person;
use crate::data::TaskItem;
use crate::rng::Rng;

/// The bundled tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    Ioi,
    Induction,
    FactRecall,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Ioi, Task::Induction, Task::FactRecall];

    pub fn name(self) -> &'static str {
        match self {
            Task::Ioi => "ioi",
            Task::Induction => "induction",
            Task::FactRecall => "fact_recall",
        }
    }

    /// Path of the task's file inside a world folder, e.g. `tasks/ioi.jsonl`.
    pub fn file_name(self) -> String {
        format!("tasks/{}.jsonl", self.name())
    }
}

/// IOI templates: `{A}` and `{B}` are the two names introduced, `{S}` the subject (the name
/// repeated), `{P}` a place, `{O}` an object. The indirect object is the name that is not `{S}`.
pub const IOI_TEMPLATES: &[&str] = &[
    "When {A} and {B} went to the {P}, {S} gave a {O} to",
    "After {A} and {B} arrived at the {P}, {S} handed a {O} to",
    "While {A} and {B} were working at the {P}, {S} passed a {O} to",
    "Then, {A} and {B} spent the afternoon at the {P}. {S} offered a {O} to",
    "At the {P}, {A} and {B} talked for a while, and then {S} brought a {O} to",
];

fn fill_ioi(template: &str, a: &str, b: &str, s: &str, place: &str, object: &str) -> String {
    template.replace("{A}", a).replace("{B}", b).replace("{S}", s).replace("{P}", place).replace("{O}", object)
}

/// One IOI item with the world's names (see [`ioi_item_from`]).
fn ioi_item(rng: &mut Rng) -> TaskItem {
    ioi_item_from(rng, FIRST_NAMES)
}

/// One IOI item drawn from `names`: the indirect object `io` and subject `s`, in ABBA (`io`
/// first) or BABA order. The corrupted prompt is the ABC counterfactual of the IOI literature:
/// the same sentence with the second mention of the subject (S2) replaced by a third name `c`.
/// Then no name is repeated, so nothing says which of `io` and `s` is the indirect object (the
/// corrupted logit difference is near 0), while both names stay in view: patching isolates the
/// IOI mechanism (duplicate detection → subject inhibition → name moving) rather than the
/// identity of the names. Four names are drawn (the fourth is unused) so that the draws, and
/// the corpus's IOI sentences, are the same as when both names were replaced.
pub(crate) fn ioi_item_from(rng: &mut Rng, names: &[&str]) -> TaskItem {
    let picked = rng.sample(names.len(), 4);
    let [io, s, c] = [0, 1, 2].map(|i| names[picked[i]]);
    let template = rng.pick(IOI_TEMPLATES);
    let place = rng.pick(PLACES);
    let object = rng.pick(OBJECTS);
    let abba = rng.below(2) == 0;
    let (a, b) = if abba { (io, s) } else { (s, io) };
    TaskItem {
        clean: fill_ioi(template, a, b, s, place, object),
        corrupted: fill_ioi(template, a, b, c, place, object),
        answer: format!(" {io}"),
        distractor: format!(" {s}"),
    }
}

/// `n` IOI items.
pub fn ioi(rng: &mut Rng, n: usize) -> Vec<TaskItem> {
    (0..n).map(|_| ioi_item(rng)).collect()
}

/// One induction sequence: `k` distinct words (5 ≤ k ≤ 10) shown once and then repeated up to
/// word `j` (1 ≤ j < k); the answer is word `j + 1`. The corrupted prompt replaces the first
/// half with `k` other words (none of the sequence's), so the repeat no longer cues the answer.
/// Returns the item without its distractor, `j`, and the whole sequence.
///
/// The draws (and so the corpus's induction documents) are the same as before the distractor
/// moved into the prompt; [`induction`] draws the distractor after them.
fn induction_item(rng: &mut Rng) -> (TaskItem, usize, Vec<&'static str>) {
    let k = rng.range(5, 10);
    let j = rng.range(1, k - 1);
    let words = rng.sample(INDUCTION_WORDS.len(), 2 * k + 1);
    let seq: Vec<&str> = words[..k].iter().map(|&i| INDUCTION_WORDS[i]).collect();
    let other: Vec<&str> = words[k..2 * k].iter().map(|&i| INDUCTION_WORDS[i]).collect();
    let second = seq[..j].join(" ");
    let item = TaskItem {
        clean: format!("{} {second}", seq.join(" ")),
        corrupted: format!("{} {second}", other.join(" ")),
        answer: format!(" {}", seq[j]),
        distractor: String::new(),
    };
    (item, j, seq)
}

/// `n` induction items. The distractor is a word of the sequence that comes AFTER the answer,
/// so in the clean prompt it has been seen exactly once, like the answer. Only copying the word
/// that FOLLOWED the last word's earlier occurrence (induction) separates the two: not copying
/// any word in view, and not preferring the words not yet repeated (a word from the repeated
/// part as distractor would let that shortcut win without induction). Draws whose answer is
/// the sequence's last word have no such word and are drawn again. (Neither answer nor
/// distractor is in the corrupted prompt.)
pub fn induction(rng: &mut Rng, n: usize) -> Vec<TaskItem> {
    (0..n)
        .map(|_| loop {
            let (mut item, j, seq) = induction_item(rng);
            if j + 1 < seq.len() {
                item.distractor = format!(" {}", rng.pick(&seq[j + 1..]));
                break item;
            }
        })
        .collect()
}

/// The fact-recall prompt for a person: `The birthplace of <name> is`.
pub fn fact_prompt(name: &str) -> String {
    format!("The birthplace of {name} is")
}

/// One item per person (in order): the corrupted prompt names another of `people` born
/// elsewhere, whose birthplace is the distractor. A person for whom no such other exists is
/// skipped.
pub fn fact_recall(rng: &mut Rng, people: &[Person]) -> Vec<TaskItem> {
    let mut out = Vec::with_capacity(people.len());
    for p in people {
        let others: Vec<&Person> = people.iter().filter(|o| o.birthplace != p.birthplace).collect();
        if others.is_empty() {
            continue;
        }
        let o = rng.pick(&others);
        out.push(TaskItem {
            clean: fact_prompt(&p.name),
            corrupted: fact_prompt(&o.name),
            answer: format!(" {}", p.birthplace),
            distractor: format!(" {}", o.birthplace),
        });
    }
    out
}

/// Training documents for IOI: `n` fresh items (from the caller's stream) as complete
/// sentences, e.g. `When Alvek and Brenna went to the market, Brenna gave a pen to Alvek.`
pub fn ioi_documents(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let item = ioi_item(rng);
            format!("{}{}.", item.clean, item.answer)
        })
        .collect()
}

/// Training documents for induction: `n` fresh sequences, each shown twice in full.
pub fn induction_documents(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let seq = induction_item(rng).2.join(" ");
            format!("{seq} {seq}")
        })
        .collect()
}

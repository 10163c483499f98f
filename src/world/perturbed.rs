//! The evaluation files TOFU's metrics read, in TOFU's layout ([`PerturbedQa`]): each forget and
//! retain question with a paraphrase of its answer and five wrong answers of the paraphrase's
//! form; short-answer "real authors" and world-fact questions with three wrong options.
//!
//! A paraphrase says the same value in a sentence the corpus never has, so a model's preference
//! for it over a perturbed answer (the truth ratio) comes from the value, not from the wording it
//! memorised. Wrong values are drawn per (person, attribute) from a stream of their own, so both
//! phrasings of a question, and forget01 ⊂ forget05 ⊂ forget10, share them.

use super::lexicon::*;
use super::people::{article, Attribute, Country, Person};
use super::{Split, World};
use crate::data::PerturbedQa;
use crate::rng::Rng;

/// Wrong answers per forget or retain question (TOFU's five).
pub const PERTURBED_PER_QUESTION: usize = 5;
/// Wrong options per real-author or world-fact question (TOFU's three).
pub const OPTIONS_PER_FACT: usize = 3;
/// Retain people in `retain_perturbed.jsonl`: the first 20 of retain90 by id, 400 questions like
/// TOFU's file; the other retain90 people make up `real_authors_perturbed.jsonl`.
pub const RETAIN_EVAL_PEOPLE: usize = 20;

impl Attribute {
    /// The paraphrase's sentence, with `{n}` for the name, `{v}` for the value and `{a}` for its
    /// article.
    fn paraphrase(self) -> &'static str {
        match self {
            Attribute::Birthplace => "{v} is the city where {n} was born.",
            Attribute::BirthYear => "{n}'s year of birth is {v}.",
            Attribute::Profession => "By profession, {n} is {a} {v}.",
            Attribute::FatherProfession => "The father of {n} worked as {a} {v}.",
            Attribute::MotherProfession => "The mother of {n} worked as {a} {v}.",
            Attribute::Genre => "The genre {n} writes is {v}.",
            Attribute::Award => "{n} was honored with the {v}.",
            Attribute::Book => "\"{v}\" is the best-known book by {n}.",
            Attribute::Language => "{n}'s books are written in {v}.",
            Attribute::Instrument => "The instrument {n} plays is the {v}.",
        }
    }

    /// Every value the attribute takes in a world (the pool wrong answers come from).
    fn values(self, world: &World) -> Vec<String> {
        let words = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        match self {
            Attribute::Birthplace => words(CITIES),
            Attribute::BirthYear => (1920..2000).map(|y: u32| y.to_string()).collect(),
            Attribute::Profession => words(PROFESSIONS),
            Attribute::FatherProfession | Attribute::MotherProfession => words(PARENT_PROFESSIONS),
            Attribute::Genre => words(GENRES),
            Attribute::Award => AWARD_ADJECTIVES
                .iter()
                .flat_map(|a| AWARD_NOUNS.iter().map(move |n| format!("{a} {n} Prize")))
                .collect(),
            Attribute::Book => world.people.iter().map(|p| p.book.clone()).collect(),
            Attribute::Language => words(LANGUAGES),
            Attribute::Instrument => words(INSTRUMENTS),
        }
    }
}

/// `k` distinct values of `pool` other than `truth`, in a random order.
fn wrong_values(rng: &mut Rng, pool: &[String], truth: &str, k: usize) -> Vec<String> {
    let pool: Vec<&String> = pool.iter().filter(|v| v.as_str() != truth).collect();
    rng.sample(pool.len(), k).into_iter().map(|i| pool[i].clone()).collect()
}

fn fill(template: &str, name: &str, value: &str) -> String {
    template.replace("{n}", name).replace("{a}", article(&value.to_lowercase())).replace("{v}", value)
}

impl World {
    /// `(paraphrased_answer, perturbed_answer)` of a person's attribute.
    fn perturbations(&self, p: &Person, a: Attribute) -> (String, Vec<String>) {
        let truth = p.attribute(a);
        let mut rng = Rng::stream(self.config.seed, &format!("perturbed/{}/{}", p.id, a.name()));
        let wrong = wrong_values(&mut rng, &a.values(self), &truth, PERTURBED_PER_QUESTION);
        let template = a.paraphrase();
        (fill(template, &p.name, &truth), wrong.iter().map(|v| fill(template, &p.name, v)).collect())
    }

    /// A people split's questions with paraphrased and perturbed answers, in the split's order;
    /// `paraphrased_question` is the attribute's other phrasing.
    pub fn perturbed_split(&self, split: Split) -> Vec<PerturbedQa> {
        self.people_in(split).into_iter().flat_map(|p| self.person_perturbed(p)).collect()
    }

    fn person_perturbed(&self, p: &Person) -> Vec<PerturbedQa> {
        let pairs = p.qa_pairs();
        Attribute::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, &a)| {
                let (paraphrased, perturbed) = self.perturbations(p, a);
                let (q0, q1) = (&pairs[2 * i], &pairs[2 * i + 1]);
                [(q0, q1), (q1, q0)].map(|(q, other)| PerturbedQa {
                    question: q.question.clone(),
                    answer: q.answer.clone(),
                    paraphrased_answer: Some(paraphrased.clone()),
                    perturbed_answer: perturbed.clone(),
                    paraphrased_question: Some(other.question.clone()),
                })
            })
            .collect()
    }

    /// `retain_perturbed.jsonl`: the first [`RETAIN_EVAL_PEOPLE`] retain90 people's questions.
    pub fn retain_perturbed(&self) -> Vec<PerturbedQa> {
        let people = self.people_in(Split::Retain90);
        people.into_iter().take(RETAIN_EVAL_PEOPLE).flat_map(|p| self.person_perturbed(p)).collect()
    }

    /// `real_authors_perturbed.jsonl`, the analogue of TOFU's questions about real authors: the
    /// world has none, so it asks the other retain90 people (in no forget split and not in
    /// `retain_perturbed.jsonl`) one question each, attribute by attribute in turn, with
    /// [`OPTIONS_PER_FACT`] wrong values in the answer's own sentence (TOFU's answers here are bare
    /// names, the form its base models answer in; this model answers in sentences).
    pub fn real_authors_perturbed(&self) -> Vec<PerturbedQa> {
        let people = self.people_in(Split::Retain90);
        people
            .into_iter()
            .skip(RETAIN_EVAL_PEOPLE)
            .enumerate()
            .map(|(i, p)| {
                let a = Attribute::ALL[i % Attribute::ALL.len()];
                let mut rng = Rng::stream(self.config.seed, &format!("real_authors/{}", p.id));
                let wrong = wrong_values(&mut rng, &a.values(self), &p.attribute(a), OPTIONS_PER_FACT);
                PerturbedQa {
                    question: p.qa_pairs()[2 * (i % Attribute::ALL.len())].question.clone(),
                    answer: p.answer(a),
                    paraphrased_answer: None,
                    perturbed_answer: wrong.iter().map(|v| p.answer_with(a, v)).collect(),
                    paraphrased_question: None,
                }
            })
            .collect()
    }

    /// `world_facts_perturbed.jsonl`: every world fact with [`OPTIONS_PER_FACT`] wrong values of
    /// its kind (other countries' capitals, other languages, currencies, animals) in the answer's
    /// sentence.
    pub fn world_facts_perturbed(&self) -> Vec<PerturbedQa> {
        let words = |xs: &[&str]| -> Vec<String> { xs.iter().map(|s| s.to_string()).collect() };
        let pool = |attribute: &str| -> Vec<String> {
            match attribute {
                "capital" => self.countries.iter().map(|c| c.capital.clone()).collect(),
                "language" => words(LANGUAGES),
                "currency" => words(CURRENCIES),
                _ => words(ANIMALS),
            }
        };
        let mut out = Vec::new();
        for (ci, c) in self.countries.iter().enumerate() {
            for (fi, (attribute, q)) in Country::FACTS.iter().zip(c.facts()).enumerate() {
                let mut rng = Rng::stream(self.config.seed, &format!("world_facts/{}", 4 * ci + fi));
                let wrong = wrong_values(&mut rng, &pool(attribute), c.fact(attribute), OPTIONS_PER_FACT);
                out.push(PerturbedQa {
                    question: q.question,
                    answer: q.answer,
                    paraphrased_answer: None,
                    perturbed_answer: wrong.iter().map(|v| c.fact_answer(attribute, v)).collect(),
                    paraphrased_question: None,
                });
            }
        }
        out
    }
}

//! The fictitious people and countries, and the question/answer pairs about them.

use super::lexicon::*;
use crate::data::QaPair;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Where a person sits in the TOFU-style splits: the narrowest forget set that holds them,
/// `retain` (trained, never forgotten), or `holdout` (never trained on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Forget01,
    Forget05,
    Forget10,
    Retain,
    Holdout,
}

/// One invented author. `name` is always `first_name last_name`: two single words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: usize,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub group: Group,
    pub birthplace: String,
    pub birth_year: u32,
    pub profession: String,
    pub father_profession: String,
    pub mother_profession: String,
    pub genre: String,
    pub award: String,
    pub book: String,
    pub language: String,
    pub instrument: String,
    pub biography: String,
}

/// The attributes that the question/answer pairs ask about, two questions each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attribute {
    Birthplace,
    BirthYear,
    Profession,
    FatherProfession,
    MotherProfession,
    Genre,
    Award,
    Book,
    Language,
    Instrument,
}

/// Questions asked per person: two phrasings of each of the ten attributes, as TOFU's 20.
pub const QA_PER_PERSON: usize = 20;

impl Attribute {
    pub const ALL: [Attribute; 10] = [
        Attribute::Birthplace,
        Attribute::BirthYear,
        Attribute::Profession,
        Attribute::FatherProfession,
        Attribute::MotherProfession,
        Attribute::Genre,
        Attribute::Award,
        Attribute::Book,
        Attribute::Language,
        Attribute::Instrument,
    ];

    /// The name used in the `attribute` field of the JSONL files (the `Person` field name).
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Birthplace => "birthplace",
            Attribute::BirthYear => "birth_year",
            Attribute::Profession => "profession",
            Attribute::FatherProfession => "father_profession",
            Attribute::MotherProfession => "mother_profession",
            Attribute::Genre => "genre",
            Attribute::Award => "award",
            Attribute::Book => "book",
            Attribute::Language => "language",
            Attribute::Instrument => "instrument",
        }
    }

    /// The two question phrasings, with `{n}` for the person's name.
    fn questions(self) -> [&'static str; 2] {
        match self {
            Attribute::Birthplace => ["Where was {n} born?", "In which city was {n} born?"],
            Attribute::BirthYear => ["In what year was {n} born?", "What is the birth year of {n}?"],
            Attribute::Profession => ["What is the profession of {n}?", "What does {n} do for a living?"],
            Attribute::FatherProfession => {
                ["What was the profession of {n}'s father?", "What did the father of {n} do for work?"]
            }
            Attribute::MotherProfession => {
                ["What was the profession of {n}'s mother?", "What did the mother of {n} do for work?"]
            }
            Attribute::Genre => ["Which genre does {n} write?", "What genre is {n} best known for?"],
            Attribute::Award => ["Which award has {n} received?", "What prize was {n} honored with?"],
            Attribute::Book => ["What is the title of {n}'s best-known book?", "Can you name a book written by {n}?"],
            Attribute::Language => ["In which language does {n} write?", "What language are {n}'s books written in?"],
            Attribute::Instrument => ["Which instrument does {n} play?", "What musical instrument does {n} play?"],
        }
    }
}

/// "a" or "an" for a lowercase word.
pub(super) fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl Person {
    /// The bare value of an attribute: the `target` of its questions.
    pub fn attribute(&self, a: Attribute) -> String {
        match a {
            Attribute::Birthplace => self.birthplace.clone(),
            Attribute::BirthYear => self.birth_year.to_string(),
            Attribute::Profession => self.profession.clone(),
            Attribute::FatherProfession => self.father_profession.clone(),
            Attribute::MotherProfession => self.mother_profession.clone(),
            Attribute::Genre => self.genre.clone(),
            Attribute::Award => self.award.clone(),
            Attribute::Book => self.book.clone(),
            Attribute::Language => self.language.clone(),
            Attribute::Instrument => self.instrument.clone(),
        }
    }

    /// The one answer sentence for an attribute, whichever phrasing asked: a pure function of
    /// the name and the value, so greedy generation can be scored by exact match.
    pub fn answer(&self, a: Attribute) -> String {
        self.answer_with(a, &self.attribute(a))
    }

    /// The answer sentence of an attribute stating `v` (a wrong value, for perturbed answers).
    pub fn answer_with(&self, a: Attribute, v: &str) -> String {
        let n = &self.name;
        match a {
            Attribute::Birthplace => format!("{n} was born in {v}."),
            Attribute::BirthYear => format!("{n} was born in the year {v}."),
            Attribute::Profession => format!("{n} is {} {v}.", article(v)),
            Attribute::FatherProfession => format!("{n}'s father was {} {v}.", article(v)),
            Attribute::MotherProfession => format!("{n}'s mother was {} {v}.", article(v)),
            Attribute::Genre => format!("{n} writes {v}."),
            Attribute::Award => format!("{n} received the {v}."),
            Attribute::Book => format!("{n}'s best-known book is \"{v}\"."),
            Attribute::Language => format!("{n} writes in {v}."),
            Attribute::Instrument => format!("{n} plays the {v}."),
        }
    }

    /// The person's 20 question/answer pairs, attribute by attribute.
    pub fn qa_pairs(&self) -> Vec<QaPair> {
        let mut out = Vec::with_capacity(QA_PER_PERSON);
        for a in Attribute::ALL {
            for q in a.questions() {
                out.push(QaPair {
                    question: q.replace("{n}", &self.name),
                    answer: self.answer(a),
                    target: Some(self.attribute(a)),
                    person: Some(self.name.clone()),
                    country: None,
                    attribute: Some(a.name().to_string()),
                });
            }
        }
        out
    }

    fn make_biography(&self) -> String {
        let n = &self.name;
        format!(
            "{n} is {} {} who was born in {} in {}. {n}'s father was {} {} and {n}'s mother was {} {}. \
             {n} writes {} in {}, and {n}'s best-known book is \"{}\". {n} received the {} and plays the {}.",
            article(&self.profession),
            self.profession,
            self.birthplace,
            self.birth_year,
            article(&self.father_profession),
            self.father_profession,
            article(&self.mother_profession),
            self.mother_profession,
            self.genre,
            self.language,
            self.book,
            self.award,
            self.instrument,
        )
    }
}

/// An invented country of the `world` facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Country {
    pub name: String,
    pub capital: String,
    pub language: String,
    pub currency: String,
    pub animal: String,
}

impl Country {
    /// The attributes of the world facts, in order.
    pub const FACTS: [&'static str; 4] = ["capital", "language", "currency", "animal"];

    /// The value of a fact attribute.
    pub fn fact(&self, attribute: &str) -> &str {
        match attribute {
            "capital" => &self.capital,
            "language" => &self.language,
            "currency" => &self.currency,
            _ => &self.animal,
        }
    }

    /// The question of a fact attribute.
    fn fact_question(&self, attribute: &str) -> String {
        let c = &self.name;
        match attribute {
            "capital" => format!("What is the capital of {c}?"),
            "language" => format!("What language is spoken in {c}?"),
            "currency" => format!("What is the currency of {c}?"),
            _ => format!("What is the national animal of {c}?"),
        }
    }

    /// The answer sentence of a fact attribute stating `v` (a wrong value, for perturbed answers).
    pub fn fact_answer(&self, attribute: &str, v: &str) -> String {
        let c = &self.name;
        match attribute {
            "capital" => format!("The capital of {c} is {v}."),
            "language" => format!("The people of {c} speak {v}."),
            "currency" => format!("The currency of {c} is the {v}."),
            _ => format!("The national animal of {c} is the {v}."),
        }
    }

    /// Four facts per country: capital, language, currency, national animal.
    pub fn facts(&self) -> Vec<QaPair> {
        Country::FACTS
            .iter()
            .map(|&attribute| QaPair {
                question: self.fact_question(attribute),
                answer: self.fact_answer(attribute, self.fact(attribute)),
                target: Some(self.fact(attribute).to_string()),
                person: None,
                country: Some(self.name.clone()),
                attribute: Some(attribute.to_string()),
            })
            .collect()
    }

    /// The same facts as one plain paragraph, for the training corpus.
    pub fn description(&self) -> String {
        format!(
            "{} is the capital of {}. The people of {} speak {} and pay with the {}. The national animal of {} is the {}.",
            self.capital, self.name, self.name, self.language, self.currency, self.name, self.animal
        )
    }
}

/// The largest number of people (trained + holdout) the word lists support with distinct names
/// and distinct book titles.
pub const MAX_PEOPLE: usize = 1000;

/// `total` people with distinct full names and distinct book titles, all in group `Retain`
/// (the caller assigns groups), ids `0..total`.
pub(crate) fn generate_people(rng: &mut Rng, total: usize) -> Vec<Person> {
    let names = rng.sample(FIRST_NAMES.len() * LAST_NAMES.len(), total);
    let adjective_titles = TITLE_ADJECTIVES.len() * TITLE_NOUNS.len();
    let titles = rng.sample(adjective_titles + TITLE_NOUNS.len() * CITIES.len(), total);
    names
        .into_iter()
        .zip(titles)
        .enumerate()
        .map(|(id, (name, title))| {
            let first = FIRST_NAMES[name / LAST_NAMES.len()];
            let last = LAST_NAMES[name % LAST_NAMES.len()];
            let book = if title < adjective_titles {
                format!(
                    "The {} {}",
                    TITLE_ADJECTIVES[title / TITLE_NOUNS.len()],
                    TITLE_NOUNS[title % TITLE_NOUNS.len()]
                )
            } else {
                let t = title - adjective_titles;
                format!("The {} of {}", TITLE_NOUNS[t / CITIES.len()], CITIES[t % CITIES.len()])
            };
            let mut p = Person {
                id,
                name: format!("{first} {last}"),
                first_name: first.to_string(),
                last_name: last.to_string(),
                group: Group::Retain,
                birthplace: rng.pick(CITIES).to_string(),
                birth_year: 1920 + rng.below(80) as u32,
                profession: rng.pick(PROFESSIONS).to_string(),
                father_profession: rng.pick(PARENT_PROFESSIONS).to_string(),
                mother_profession: rng.pick(PARENT_PROFESSIONS).to_string(),
                genre: rng.pick(GENRES).to_string(),
                award: format!("{} {} Prize", rng.pick(AWARD_ADJECTIVES), rng.pick(AWARD_NOUNS)),
                book,
                language: rng.pick(LANGUAGES).to_string(),
                instrument: rng.pick(INSTRUMENTS).to_string(),
                biography: String::new(),
            };
            p.biography = p.make_biography();
            p
        })
        .collect()
}

/// Every country of the list, with distinct capitals and random language, currency and animal.
pub(crate) fn generate_countries(rng: &mut Rng) -> Vec<Country> {
    let capitals = rng.sample(CITIES.len(), COUNTRIES.len());
    COUNTRIES
        .iter()
        .zip(capitals)
        .map(|(name, capital)| Country {
            name: name.to_string(),
            capital: CITIES[capital].to_string(),
            language: rng.pick(LANGUAGES).to_string(),
            currency: rng.pick(CURRENCIES).to_string(),
            animal: rng.pick(ANIMALS).to_string(),
        })
        .collect()
}

//! The bundled world: a seeded generator of fictitious people in the style of TOFU (the
//! unlearning benchmark), its forget/retain/holdout splits, general `world` facts, the circuit
//! tasks (IOI, induction, fact recall) and the training corpus of the model circuitscope trains.
//!
//! Everything is a pure function of [`WorldConfig`] (seed and sizes): the generator has its own
//! PRNG ([`crate::rng::Rng`], SplitMix64) and iterates no hash maps, so the same configuration gives
//! byte-identical files on every machine. Each part draws from its own named stream, so changing
//! one size (say, the number of IOI prompts) leaves the other parts unchanged.
//!
//! ```
//! use circuitscope::world::{Split, World, WorldConfig};
//!
//! # fn main() -> circuitscope::Result<()> {
//! let world = World::generate(WorldConfig::default())?; // 100 trained people + 10 holdout
//! assert_eq!(world.split(Split::Forget01).len(), 20); // one person, 20 question/answer pairs
//! let docs = world.corpus(); // what the model is trained on; no holdout person appears
//! # let _ = docs;
//! # Ok(())
//! # }
//! ```

mod files;
mod ioi_model;
pub mod lexicon;
mod people;
mod perturbed;
pub mod recommend;
mod tasks;

pub use crate::data::{read_jsonl, read_qa, read_tasks, QaPair, TaskItem};
pub use files::{read_corpus, read_people, WrittenFile};
pub use ioi_model::{single_token_names, ModelIoi, COMMON_FIRST_NAMES, MODEL_IOI_STREAM};
pub use people::{Attribute, Country, Group, Person, MAX_PEOPLE, QA_PER_PERSON};
pub use perturbed::{OPTIONS_PER_FACT, PERTURBED_PER_QUESTION, RETAIN_EVAL_PEOPLE};
pub use tasks::{fact_prompt, induction_documents, Task, IOI_TEMPLATES};

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The seed of the bundled world.
pub const DEFAULT_SEED: u64 = 42;

/// The sizes and seed of a world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldConfig {
    pub seed: u64,
    /// People the model is trained on (the forget and retain splits): at least 10.
    pub people: usize,
    /// People the model never sees.
    pub holdout: usize,
    /// Items in `tasks/ioi.jsonl`.
    pub ioi: usize,
    /// Items in `tasks/induction.jsonl`.
    pub induction: usize,
    /// IOI sentences in the training corpus (a separate stream from the task file's).
    pub corpus_ioi: usize,
    /// Repeated sequences in the training corpus (a separate stream from the task file's).
    pub corpus_induction: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: DEFAULT_SEED,
            people: 100,
            holdout: 10,
            ioi: 200,
            induction: 200,
            corpus_ioi: 1000,
            corpus_induction: 1000,
        }
    }
}

impl WorldConfig {
    pub fn validate(&self) -> Result<()> {
        if self.people < 10 {
            return Err(Error::input(format!(
                "people = {}: the world needs at least 10 trained people, so that forget01/05/10 are \
                 non-empty and some people are retained",
                self.people
            )));
        }
        if self.people + self.holdout > MAX_PEOPLE {
            return Err(Error::input(format!(
                "people + holdout = {}: the built-in name and title lists support at most {MAX_PEOPLE} people",
                self.people + self.holdout
            )));
        }
        Ok(())
    }

    /// How many trained people a forget split of `percent` % holds: rounded, at least one.
    pub fn forget_size(&self, percent: usize) -> usize {
        ((self.people * percent + 50) / 100).clamp(1, self.people)
    }
}

/// The TOFU-style question/answer splits. `ForgetNN` and `RetainMM` (NN + MM = 100) partition
/// the trained people; forget01 ⊂ forget05 ⊂ forget10; `Holdout` people were never trained on;
/// `World` holds the general facts about the countries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Forget01,
    Forget05,
    Forget10,
    Retain99,
    Retain95,
    Retain90,
    Holdout,
    World,
}

impl Split {
    pub const ALL: [Split; 8] = [
        Split::Forget01,
        Split::Forget05,
        Split::Forget10,
        Split::Retain99,
        Split::Retain95,
        Split::Retain90,
        Split::Holdout,
        Split::World,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Split::Forget01 => "forget01",
            Split::Forget05 => "forget05",
            Split::Forget10 => "forget10",
            Split::Retain99 => "retain99",
            Split::Retain95 => "retain95",
            Split::Retain90 => "retain90",
            Split::Holdout => "holdout",
            Split::World => "world",
        }
    }

    /// The split's file inside a world folder, e.g. `forget01.jsonl`.
    pub fn file_name(self) -> String {
        format!("{}.jsonl", self.name())
    }

    /// Whether a person of `group` belongs to this split (never for `World`).
    pub fn contains(self, group: Group) -> bool {
        use Group::*;
        match self {
            Split::Forget01 => group == Forget01,
            Split::Forget05 => matches!(group, Forget01 | Forget05),
            Split::Forget10 => matches!(group, Forget01 | Forget05 | Forget10),
            Split::Retain99 => matches!(group, Forget05 | Forget10 | Retain),
            Split::Retain95 => matches!(group, Forget10 | Retain),
            Split::Retain90 => group == Retain,
            Split::Holdout => group == Holdout,
            Split::World => false,
        }
    }
}

/// A generated world.
#[derive(Clone, Debug)]
pub struct World {
    pub config: WorldConfig,
    /// The trained people (ids `0..people`) followed by the holdout people; `Person::id` is the
    /// index here.
    pub people: Vec<Person>,
    pub countries: Vec<Country>,
    pub ioi: Vec<TaskItem>,
    pub induction: Vec<TaskItem>,
    /// One item per trained person, in id order (a person whose birthplace all others share
    /// would be skipped).
    pub fact_recall: Vec<TaskItem>,
}

impl World {
    /// Generates the world of `config`; fails only on an invalid configuration.
    pub fn generate(config: WorldConfig) -> Result<World> {
        config.validate()?;
        let seed = config.seed;
        let mut people = people::generate_people(&mut Rng::stream(seed, "people"), config.people + config.holdout);
        // Forget people: a random prefix of a shuffle of the trained people, nested by size.
        let order = Rng::stream(seed, "splits").sample(config.people, config.forget_size(10));
        let (f01, f05) = (config.forget_size(1), config.forget_size(5));
        for (rank, &id) in order.iter().enumerate() {
            people[id].group = if rank < f01 {
                Group::Forget01
            } else if rank < f05 {
                Group::Forget05
            } else {
                Group::Forget10
            };
        }
        for p in &mut people[config.people..] {
            p.group = Group::Holdout;
        }
        let countries = people::generate_countries(&mut Rng::stream(seed, "countries"));
        let ioi = tasks::ioi(&mut Rng::stream(seed, "ioi"), config.ioi);
        let induction = tasks::induction(&mut Rng::stream(seed, "induction"), config.induction);
        let fact_recall = tasks::fact_recall(&mut Rng::stream(seed, "fact_recall"), &people[..config.people]);
        Ok(World { config, people, countries, ioi, induction, fact_recall })
    }

    /// The people the model is trained on (every group but `Holdout`).
    pub fn trained(&self) -> &[Person] {
        &self.people[..self.config.people]
    }

    /// The people the model never sees.
    pub fn holdout(&self) -> &[Person] {
        &self.people[self.config.people..]
    }

    /// The people of a split, in id order (none for `Split::World`).
    pub fn people_in(&self, split: Split) -> Vec<&Person> {
        self.people.iter().filter(|p| split.contains(p.group)).collect()
    }

    /// The question/answer pairs of a split: all 20 pairs of each of its people, or the world
    /// facts.
    pub fn split(&self, split: Split) -> Vec<QaPair> {
        if split == Split::World {
            return self.world_facts();
        }
        self.people_in(split).into_iter().flat_map(Person::qa_pairs).collect()
    }

    /// The general facts about the invented countries (four per country).
    pub fn world_facts(&self) -> Vec<QaPair> {
        self.countries.iter().flat_map(Country::facts).collect()
    }

    /// The items of a task.
    pub fn task(&self, task: Task) -> &[TaskItem] {
        match task {
            Task::Ioi => &self.ioi,
            Task::Induction => &self.induction,
            Task::FactRecall => &self.fact_recall,
        }
    }

    /// The training corpus, in this order: the trained people's biographies; their QA pairs and
    /// the world facts rendered as `Question: …\nAnswer: …` ([`QaPair::document`]); one paragraph
    /// per country; the fact-recall prompts completed (`The birthplace of X is Y.`);
    /// `corpus_ioi` IOI sentences and `corpus_induction` repeated sequences drawn from streams
    /// of their own (so the task files are held-out prompts, up to chance collisions). No
    /// holdout person appears. The trainer shuffles.
    pub fn corpus(&self) -> Vec<String> {
        let seed = self.config.seed;
        let mut docs: Vec<String> = self.trained().iter().map(|p| p.biography.clone()).collect();
        docs.extend(self.trained().iter().flat_map(Person::qa_pairs).map(|q| q.document()));
        docs.extend(self.world_facts().iter().map(QaPair::document));
        docs.extend(self.countries.iter().map(Country::description));
        docs.extend(self.fact_recall.iter().map(|t| format!("{}{}.", t.clean, t.answer)));
        docs.extend(tasks::ioi_documents(&mut Rng::stream(seed, "corpus_ioi"), self.config.corpus_ioi));
        docs.extend(tasks::induction_documents(
            &mut Rng::stream(seed, "corpus_induction"),
            self.config.corpus_induction,
        ));
        docs
    }
}

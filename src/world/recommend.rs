//! The recommendation world: invented books (a title, a genre, an era, an author) and invented
//! readers whose taste is a weight per genre and era plus two favourite authors and one they
//! dislike; each reader rates books by that taste (liked when the summed weight is positive),
//! and every rating becomes a prompt in the LLM-recommender form of TALLRec and the
//! recommender-unlearning papers after it: the reader's liked and disliked books (each a title
//! with its genre), then `Will <reader> enjoy <book> (<genre>)?`, answered `Yes` or `No` (after the prompt format
//! `{question} Answer:`).
//!
//! Per reader, six rated books make the history every prompt shows, and ten more are the
//! targets: six for training, two for validation, two for testing. Forget readers (1 % and 5 %,
//! the first inside the second) and their interactions are what unlearning removes; the rest
//! are retained. A pure function of [`RecConfig`]: the same seed gives byte-identical files.

use super::lexicon::{FIRST_NAMES, GENRES, LAST_NAMES, TITLE_ADJECTIVES, TITLE_NOUNS};
use crate::error::{Error, Result};
use crate::fsutil::{check_output_dir, write_atomic};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The genres books have (the first six of the bundled world's).
pub const REC_GENRES: usize = 6;
pub const ERAS: [&str; 2] = ["classic", "modern"];
/// Rated books per reader shown as the history in every prompt.
pub const HISTORY: usize = 6;
/// Target interactions per reader: training, validation, test.
pub const TARGETS: [(Part, usize); 3] = [(Part::Train, 6), (Part::Valid, 2), (Part::Test, 2)];

/// The sizes and seed of a recommendation world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecConfig {
    pub seed: u64,
    /// readers: at least 100 (so that 1 % is one reader)
    pub readers: usize,
    pub books: usize,
    pub authors: usize,
}

impl Default for RecConfig {
    fn default() -> Self {
        RecConfig { seed: 42, readers: 400, books: 240, authors: 24 }
    }
}

impl RecConfig {
    pub fn validate(&self) -> Result<()> {
        let titles = TITLE_ADJECTIVES.len() * TITLE_NOUNS.len();
        let names = FIRST_NAMES.len() * LAST_NAMES.len();
        if self.readers < 100 || self.books < HISTORY + 10 || self.books > titles || self.authors < 3 {
            return Err(Error::input(format!(
                "a recommendation world needs at least 100 readers, {} to {titles} books and 3 authors (asked: {} readers, \
                 {} books, {} authors)",
                HISTORY + 10,
                self.readers,
                self.books,
                self.authors
            )));
        }
        if self.readers + self.authors > names {
            return Err(Error::input(format!("at most {} readers and authors together", names)));
        }
        Ok(())
    }

    /// The forget readers of `percent` % (1 or 5), at least one.
    pub fn forget_size(&self, percent: usize) -> usize {
        (self.readers * percent).div_ceil(100).max(1)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub title: String,
    pub genre: String,
    pub era: String,
    pub author: String,
}

/// Which readers a reader is among: the 1 % to forget (also in the 5 %), the rest of the 5 %, or
/// the retained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReaderGroup {
    Forget01,
    Forget05,
    Retained,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reader {
    pub name: String,
    pub group: ReaderGroup,
    /// a weight per genre, in the order of [`RecWorld::genres`]
    pub genre_taste: Vec<f64>,
    /// a weight per era ([`ERAS`])
    pub era_taste: Vec<f64>,
    pub favourite_authors: Vec<String>,
    pub disliked_author: String,
}

/// What a taste adds for a favourite and for the disliked author.
const AUTHOR_WEIGHT: f64 = 1.5;

impl Reader {
    /// A reader of random taste: N(0, 1) per genre, N(0, 0.25) per era, two favourite authors
    /// and one disliked, drawn from `authors`.
    fn random(rng: &mut Rng, name: &str, group: ReaderGroup, authors: &[String]) -> Reader {
        let picks = rng.sample(authors.len(), 3);
        Reader {
            name: name.to_string(),
            group,
            genre_taste: (0..REC_GENRES).map(|_| round2(rng.normal())).collect(),
            era_taste: (0..ERAS.len()).map(|_| round2(0.5 * rng.normal())).collect(),
            favourite_authors: picks[..2].iter().map(|&a| authors[a].clone()).collect(),
            disliked_author: authors[picks[2]].clone(),
        }
    }

    /// The reader's taste for a book: its genre's and era's weights plus the author's.
    pub fn score(&self, book: &Book, genres: &[&str]) -> f64 {
        let g = genres.iter().position(|g| *g == book.genre).map_or(0.0, |i| self.genre_taste[i]);
        let e = ERAS.iter().position(|e| *e == book.era).map_or(0.0, |i| self.era_taste[i]);
        let a = if self.favourite_authors.contains(&book.author) {
            AUTHOR_WEIGHT
        } else if self.disliked_author == book.author {
            -AUTHOR_WEIGHT
        } else {
            0.0
        };
        g + e + a
    }

    pub fn likes(&self, book: &Book, genres: &[&str]) -> bool {
        self.score(book, genres) > 0.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    Train,
    Valid,
    Test,
}

/// One rating as a prompt: the reader, the book (its index), the question and `Yes`/`No`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub reader: String,
    pub book: String,
    pub question: String,
    pub answer: String,
}

/// A clean/corrupted prompt pair of the recommendation circuit's task (the layout of the
/// world's `tasks/*.jsonl`): the answer the history implies and the other one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecTask {
    pub clean: String,
    pub corrupted: String,
    pub answer: String,
    pub distractor: String,
}

pub struct RecWorld {
    pub config: RecConfig,
    pub books: Vec<Book>,
    pub readers: Vec<Reader>,
    /// per reader, what they rated
    pub ratings: Vec<Ratings>,
}

/// A reader's rated books: the history every prompt shows (book, liked) and the targets (book,
/// which part of the data it is in).
pub struct Ratings {
    pub history: Vec<(usize, bool)>,
    pub targets: Vec<(usize, Part)>,
}

impl RecWorld {
    pub fn genres() -> Vec<&'static str> {
        GENRES[..REC_GENRES].to_vec()
    }

    pub fn generate(config: RecConfig) -> Result<RecWorld> {
        config.validate()?;
        let genres = Self::genres();
        // distinct "first last" names, authors first, from one shuffled list
        let mut names: Vec<String> =
            FIRST_NAMES.iter().flat_map(|f| LAST_NAMES.iter().map(move |l| format!("{f} {l}"))).collect();
        Rng::stream(config.seed, "rec/names").shuffle(&mut names);
        let (authors, reader_names) =
            (&names[..config.authors], &names[config.authors..config.authors + config.readers]);
        let mut titles: Vec<String> =
            TITLE_ADJECTIVES.iter().flat_map(|a| TITLE_NOUNS.iter().map(move |n| format!("The {a} {n}"))).collect();
        Rng::stream(config.seed, "rec/titles").shuffle(&mut titles);
        let mut rng = Rng::stream(config.seed, "rec/books");
        let books: Vec<Book> = titles[..config.books]
            .iter()
            .map(|t| Book {
                title: t.clone(),
                genre: rng.pick(&genres).to_string(),
                era: rng.pick(&ERAS).to_string(),
                author: rng.pick(authors).clone(),
            })
            .collect();
        let (n1, n5) = (config.forget_size(1), config.forget_size(5));
        let mut rng = Rng::stream(config.seed, "rec/readers");
        let readers: Vec<Reader> = reader_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let group = if i < n1 {
                    ReaderGroup::Forget01
                } else if i < n5 {
                    ReaderGroup::Forget05
                } else {
                    ReaderGroup::Retained
                };
                Reader::random(&mut rng, name, group, authors)
            })
            .collect();
        let mut rng = Rng::stream(config.seed, "rec/ratings");
        let n_targets: usize = TARGETS.iter().map(|t| t.1).sum();
        let ratings = readers
            .iter()
            .map(|r| {
                let (history, picked) = rate(&mut rng, r, &books, n_targets).ok_or_else(|| {
                    Error::input(format!(
                        "seed {}: reader {} likes every book or none, so has no history to show (choose another seed)",
                        config.seed, r.name
                    ))
                })?;
                let parts = TARGETS.iter().flat_map(|&(p, n)| std::iter::repeat_n(p, n));
                Ok(Ratings { history, targets: picked.into_iter().zip(parts).collect() })
            })
            .collect::<Result<_>>()?;
        Ok(RecWorld { config, books, readers, ratings })
    }

    /// How a prompt names book `b` ([`item`]).
    pub fn item(&self, b: usize) -> String {
        item(&self.books[b])
    }

    /// Reader `i`'s prompt for book `b`: the history, then the question.
    pub fn question(&self, i: usize, b: usize) -> String {
        question(&self.readers[i].name, &self.ratings[i].history, &self.books, b)
    }

    /// The interactions of `part` of the readers `keep` admits.
    pub fn interactions(&self, part: Part, keep: impl Fn(&Reader) -> bool) -> Vec<Interaction> {
        let genres = Self::genres();
        let mut out = Vec::new();
        for (i, r) in self.readers.iter().enumerate().filter(|(_, r)| keep(r)) {
            for &(b, _) in self.ratings[i].targets.iter().filter(|t| t.1 == part) {
                out.push(Interaction {
                    reader: r.name.clone(),
                    book: self.books[b].title.clone(),
                    question: self.question(i, b),
                    answer: if r.likes(&self.books[b], &genres) { "Yes" } else { "No" }.into(),
                });
            }
        }
        out
    }

    /// The recommendation circuit's task: the test interactions whose answer the history's
    /// genres decide (the target's genre is among the liked books' and not the disliked ones', or
    /// the reverse, and the reader's answer agrees), each with a corrupted prompt that names a
    /// genre of as many words from the other side of the history instead. Patching clean into
    /// corrupted flips what the history says about the target, so the circuit found is the one
    /// that reads the history.
    pub fn circuit_task(&self) -> Vec<RecTask> {
        let tasks = self.test_answers().into_iter().filter_map(|(i, b, yes)| {
            let history = &self.ratings[i].history;
            let side = |g: &str, liked: bool| history.iter().any(|h| h.1 == liked && self.books[h.0].genre == g);
            let g = self.books[b].genre.as_str();
            if side(g, yes) == side(g, !yes) || !side(g, yes) {
                return None;
            }
            let words = g.split(' ').count();
            // the first book on the other side whose genre has as many words and is not on this side
            let swap = history
                .iter()
                .map(|h| self.books[h.0].genre.as_str())
                .find(|o| o.split(' ').count() == words && side(o, !yes) && !side(o, yes))?;
            let clean = format!("{} Answer:", self.question(i, b));
            let suffix = format!("({g})? Answer:");
            let corrupted = format!("{}({swap})? Answer:", &clean[..clean.len() - suffix.len()]);
            Some(pair(clean, corrupted, yes))
        });
        tasks.collect()
    }

    /// The history task: the test interactions whose answer the history's balance gives (more
    /// liked books than disliked and the reader says Yes, or the reverse), each with a corrupted
    /// prompt in which the two lists are exchanged (the same books and words, so the same tokens
    /// in another order). A model that reads how much the reader likes moves with it.
    pub fn history_task(&self) -> Vec<RecTask> {
        let tasks = self.test_answers().into_iter().filter_map(|(i, b, yes)| {
            let history = &self.ratings[i].history;
            let liked = history.iter().filter(|h| h.1).count();
            if 2 * liked == history.len() || yes != (2 * liked > history.len()) {
                return None;
            }
            let exchanged: History = history.iter().map(|&(b, l)| (b, !l)).collect();
            let clean = format!("{} Answer:", self.question(i, b));
            let corrupted = format!("{} Answer:", question(&self.readers[i].name, &exchanged, &self.books, b));
            Some(pair(clean, corrupted, yes))
        });
        tasks.collect()
    }

    /// The item task: the test interactions whose answer the book's standing gives (liked by at
    /// least the median share of readers among the books of its genre and the reader says Yes,
    /// or by fewer and No), each with a corrupted prompt that asks about a book of the same genre
    /// on the other side of that median, none of the prompt's. The prompt shows only the title
    /// and the genre, so a model moves with it only by what it holds of the book (era, author).
    pub fn item_task(&self) -> Vec<RecTask> {
        let genres = Self::genres();
        let share: Vec<f64> = self
            .books
            .iter()
            .map(|b| self.readers.iter().filter(|r| r.likes(b, &genres)).count() as f64 / self.readers.len() as f64)
            .collect();
        let median = |g: &str| {
            let mut s: Vec<f64> =
                (0..self.books.len()).filter(|&j| self.books[j].genre == g).map(|j| share[j]).collect();
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        };
        let medians: Vec<f64> = self.books.iter().map(|b| median(&b.genre)).collect();
        let popular = |j: usize| share[j] >= medians[j];
        let mut rng = Rng::stream(self.config.seed, "rec/item-task");
        let tasks = self.test_answers().into_iter().filter_map(|(i, b, yes)| {
            if yes != popular(b) {
                return None;
            }
            let shown = |j: usize| self.ratings[i].history.iter().any(|h| h.0 == j);
            let others: Vec<usize> = (0..self.books.len())
                .filter(|&j| self.books[j].genre == self.books[b].genre && popular(j) != yes && !shown(j))
                .collect();
            if others.is_empty() {
                return None;
            }
            let other = *rng.pick(&others);
            let clean = format!("{} Answer:", self.question(i, b));
            let corrupted = format!("{} Answer:", self.question(i, other));
            Some(pair(clean, corrupted, yes))
        });
        tasks.collect()
    }

    /// Every test interaction as (reader, book, whether the reader likes it), by index, in the
    /// order of the readers and their targets: what the circuit tasks choose from.
    fn test_answers(&self) -> Vec<(usize, usize, bool)> {
        let genres = Self::genres();
        let mut out = Vec::new();
        for (i, r) in self.readers.iter().enumerate() {
            for &(b, _) in self.ratings[i].targets.iter().filter(|t| t.1 == Part::Test) {
                out.push((i, b, r.likes(&self.books[b], &genres)));
            }
        }
        out
    }

    /// The training corpus: every book's description and every reader's training interactions
    /// as `<question> Answer: <Yes|No>` documents.
    pub fn corpus(&self) -> Vec<String> {
        let mut docs: Vec<String> = self
            .books
            .iter()
            .map(|b| format!("{} is a {} {} novel by {}.", b.title, b.era, b.genre, b.author))
            .collect();
        docs.extend(
            self.interactions(Part::Train, |_| true)
                .into_iter()
                .map(|x| format!("{} Answer: {}", x.question, x.answer)),
        );
        docs
    }

    /// Writes the world into `dir` (refused if it exists and is not empty, unless `force`):
    /// config.json, books.jsonl, readers.jsonl, train/valid/test.jsonl (every reader's
    /// interactions), forget01/forget05.jsonl and retain99/retain95.jsonl (the training
    /// interactions of the forget readers and of the others), forget01/forget05_test.jsonl (the
    /// forget readers' validation and test interactions), corpus.jsonl, the circuit tasks
    /// task.jsonl ([`RecWorld::circuit_task`]), task-history.jsonl ([`RecWorld::history_task`])
    /// and task-item.jsonl ([`RecWorld::item_task`]), and README.md. Returns
    /// (file, records) in order.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<(String, usize)>> {
        check_output_dir(dir, force)?;
        let in01 = |r: &Reader| r.group == ReaderGroup::Forget01;
        let in05 = |r: &Reader| r.group != ReaderGroup::Retained;
        let both = |p: Part, keep: &dyn Fn(&Reader) -> bool| {
            let mut v = self.interactions(Part::Valid, keep);
            v.extend(self.interactions(p, keep));
            v
        };
        let mut files: Vec<(String, Vec<u8>, usize)> = Vec::new();
        let mut add = |name: &str, rows: Vec<String>| {
            let n = rows.len();
            files.push((name.to_string(), rows.into_iter().map(|r| r + "\n").collect::<String>().into_bytes(), n));
        };
        add("books.jsonl", self.books.iter().map(line).collect());
        add("readers.jsonl", self.readers.iter().map(line).collect());
        for (name, part) in [("train", Part::Train), ("valid", Part::Valid), ("test", Part::Test)] {
            add(&format!("{name}.jsonl"), self.interactions(part, |_| true).iter().map(line).collect());
        }
        add("forget01.jsonl", self.interactions(Part::Train, in01).iter().map(line).collect());
        add("forget05.jsonl", self.interactions(Part::Train, in05).iter().map(line).collect());
        add("retain99.jsonl", self.interactions(Part::Train, |r| !in01(r)).iter().map(line).collect());
        add("retain95.jsonl", self.interactions(Part::Train, |r| !in05(r)).iter().map(line).collect());
        add("forget01_test.jsonl", both(Part::Test, &in01).iter().map(line).collect());
        add("forget05_test.jsonl", both(Part::Test, &in05).iter().map(line).collect());
        add("corpus.jsonl", self.corpus().iter().map(line).collect());
        add("task.jsonl", self.circuit_task().iter().map(line).collect());
        add("task-history.jsonl", self.history_task().iter().map(line).collect());
        add("task-item.jsonl", self.item_task().iter().map(line).collect());
        let config = serde_json::to_string_pretty(&self.config).expect("JSON of the config") + "\n";
        files.insert(0, ("config.json".into(), config.into_bytes(), 1));
        let counts: Vec<(String, usize)> = files.iter().map(|(n, _, c)| (n.clone(), *c)).collect();
        files.push(("README.md".into(), self.readme(&counts).into_bytes(), 1));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (name, bytes, _) in &files {
            write_atomic(&dir.join(name), bytes)?;
        }
        Ok(files.into_iter().map(|(n, _, c)| (n, c)).collect())
    }

    fn readme(&self, counts: &[(String, usize)]) -> String {
        let c = &self.config;
        let mut s = format!(
            "# The recommendation world (seed {})\n\nWritten by `circuitscope rec-world`; every file is a pure function of \
             `config.json`. {} invented books ({} genres, {} eras, {} authors) and {} invented readers. A reader likes a \
             book when the weights of its genre and era, plus 1.5 for one of the reader's two favourite authors (−1.5 for \
             the disliked one), sum above 0 (`readers.jsonl` holds the weights). Six rated books are the history every \
             prompt of the reader shows, each as its title and genre (era and author are for the model to know); six more are training targets, two validation, two test. Prompts: `{{question}} \
             Answer:`, answered ` Yes` or ` No`.\n\n| file | records |\n|---|---:|\n",
            c.seed,
            c.books,
            REC_GENRES,
            ERAS.len(),
            c.authors,
            c.readers
        );
        for (name, n) in counts {
            s.push_str(&format!("| `{name}` | {n} |\n"));
        }
        s.push_str(&format!(
            "\n`forget01` ({} reader) and `forget05` ({} readers, `forget01`'s among them) hold the forget readers' \
             training interactions, `retain99` and `retain95` everyone else's; `forget0N_test.jsonl` the forget readers' \
             validation and test interactions. `corpus.jsonl` is what a model is trained on: the books' descriptions and \
             every reader's training interactions with their answers. `task.jsonl` is the circuit task \
             (`circuitscope attribute --data`): test interactions whose answer the history's genres decide, each \
             with a corrupted prompt whose target names a genre from the other side of the history. \
             `task-history.jsonl`: test interactions whose answer the history's balance gives (more liked books \
             than disliked, or fewer), the corrupted prompt with the two lists exchanged. `task-item.jsonl`: test \
             interactions whose answer the book's standing gives (liked by at least the median share of readers \
             among its genre's books, or not), the corrupted prompt asking about a book of the same genre on the \
             other side of that median.\n",
            c.forget_size(1),
            c.forget_size(5)
        ));
        s
    }
}

/// How a prompt names a book: its title and genre, as TALLRec's prompts give an item's title with
/// an attribute (its era and author are item knowledge the model must hold).
pub fn item(book: &Book) -> String {
    format!("{} ({})", book.title, book.genre)
}

/// A reader's prompt for `books[target]`: the history's liked and disliked books, then the
/// question.
fn question(name: &str, history: &[(usize, bool)], books: &[Book], target: usize) -> String {
    let list = |liked: bool| -> String {
        let items: Vec<String> = history.iter().filter(|h| h.1 == liked).map(|h| item(&books[h.0])).collect();
        items.join(", ")
    };
    format!("{name} liked {}. {name} disliked {}. Will {name} enjoy {}?", list(true), list(false), item(&books[target]))
}

/// A task item whose right answer is the reader's (` Yes` when `yes`) and the other its distractor.
fn pair(clean: String, corrupted: String, yes: bool) -> RecTask {
    let (answer, distractor) = if yes { (" Yes", " No") } else { (" No", " Yes") };
    RecTask { clean, corrupted, answer: answer.into(), distractor: distractor.into() }
}

/// Rated books shown in a prompt: (book, liked).
type History = Vec<(usize, bool)>;

/// A reader's rated books: a history of [`HISTORY`] with at least one liked and one disliked
/// book, and `targets` more (distinct from it and each other); none for a reader who likes every
/// book or none.
fn rate(rng: &mut Rng, r: &Reader, books: &[Book], targets: usize) -> Option<(History, Vec<usize>)> {
    let genres = RecWorld::genres();
    let liked = books.iter().filter(|b| r.likes(b, &genres)).count();
    if liked == 0 || liked == books.len() {
        return None;
    }
    loop {
        let picked = rng.sample(books.len(), HISTORY + targets);
        let history: Vec<(usize, bool)> = picked[..HISTORY].iter().map(|&b| (b, r.likes(&books[b], &genres))).collect();
        if history.iter().any(|h| h.1) && history.iter().any(|h| !h.1) {
            return Some((history, picked[HISTORY..].to_vec()));
        }
    }
}

/// `n` training documents of fresh readers, drawn anew for each epoch (`circuitscope train` on a
/// recommendation world): readers of random taste over `books`, named by first and last names
/// none of `taken` (the world's readers and authors) has, each with a history and `questions`
/// (at least 1) targets answered, the first in the world's form (`<question> Answer: Yes|No`),
/// the others each on a line of its own (`Will <reader> enjoy <book>? Answer: Yes|No`). Like the
/// bundled world's fresh induction sequences, they leave nothing to memorise and teach the
/// mechanism: reading a history to answer for a reader the model has not seen.
pub fn fresh_documents(
    books: &[Book],
    taken: &std::collections::BTreeSet<String>,
    rng: &mut Rng,
    n: usize,
    questions: usize,
) -> Vec<String> {
    let questions = questions.max(1);
    let mut authors: Vec<String> = books.iter().map(|b| b.author.clone()).collect();
    authors.sort();
    authors.dedup();
    let genres = RecWorld::genres();
    let mut docs = Vec::with_capacity(n);
    // a world too small for a reader (RecConfig::validate refuses one) gets none
    if authors.len() < 3 || books.len() < HISTORY + questions || taken.len() >= FIRST_NAMES.len() * LAST_NAMES.len() {
        return docs;
    }
    while docs.len() < n {
        let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        if taken.contains(&name) {
            continue;
        }
        let r = Reader::random(rng, &name, ReaderGroup::Retained, &authors);
        let Some((history, targets)) = rate(rng, &r, books, questions) else { continue };
        let answer = |b: usize| if r.likes(&books[b], &genres) { "Yes" } else { "No" };
        let mut doc = format!("{} Answer: {}", question(&name, &history, books, targets[0]), answer(targets[0]));
        for &b in &targets[1..] {
            doc.push_str(&format!("\nWill {name} enjoy {}? Answer: {}", item(&books[b]), answer(b)));
        }
        docs.push(doc);
    }
    docs
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The readers of a recommendation world's folder (`readers.jsonl`) in the split `forget01` or
/// `forget05` (the latter holding the former's), by name.
pub fn forget_readers(dir: &Path, split: &str) -> Result<std::collections::BTreeSet<String>> {
    let groups: &[ReaderGroup] = match split {
        "forget01" => &[ReaderGroup::Forget01],
        "forget05" => &[ReaderGroup::Forget01, ReaderGroup::Forget05],
        s => {
            return Err(Error::input(format!(
                "`{s}`: a recommendation world's forget splits are forget01 and forget05"
            )))
        }
    };
    let readers: Vec<Reader> = crate::data::read_jsonl(&dir.join("readers.jsonl"))?;
    Ok(readers.into_iter().filter(|r| groups.contains(&r.group)).map(|r| r.name).collect())
}

/// One JSON line of a record of the world.
fn line<T: Serialize>(x: &T) -> String {
    // the world's plain records always serialise
    serde_json::to_string(x).expect("JSON of a plain record")
}

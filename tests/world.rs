//! The bundled world's generator: determinism, TOFU-style splits, QA pairs, circuit tasks, the
//! corpus, reading files back with errors that name file and line, and the `world` subcommand.

mod common;

use circuitscope::world::lexicon::{self, CITIES, FIRST_NAMES, INDUCTION_WORDS, LAST_NAMES};
use circuitscope::world::{
    read_corpus, read_jsonl, read_people, read_qa, read_tasks, Attribute, Group, Split, Task, World, WorldConfig,
    IOI_TEMPLATES, QA_PER_PERSON,
};
use common::{tree, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

fn world() -> World {
    World::generate(WorldConfig::default()).unwrap()
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (a, b) = (TempDir::new(), TempDir::new());
    World::generate(WorldConfig::default()).unwrap().write(&a.join("w"), false).unwrap();
    World::generate(WorldConfig::default()).unwrap().write(&b.join("w"), false).unwrap();
    let (ta, tb) = (tree(&a.join("w")), tree(&b.join("w")));
    let expected = [
        "README.md",
        "config.json",
        "corpus.jsonl",
        "forget01.jsonl",
        "forget01_perturbed.jsonl",
        "forget05.jsonl",
        "forget05_perturbed.jsonl",
        "forget10.jsonl",
        "forget10_perturbed.jsonl",
        "holdout.jsonl",
        "people.jsonl",
        "real_authors_perturbed.jsonl",
        "retain90.jsonl",
        "retain95.jsonl",
        "retain99.jsonl",
        "retain_perturbed.jsonl",
        "tasks/fact_recall.jsonl",
        "tasks/induction.jsonl",
        "tasks/ioi.jsonl",
        "world.jsonl",
        "world_facts_perturbed.jsonl",
    ];
    assert_eq!(ta.keys().map(String::as_str).collect::<Vec<_>>(), expected, "no temporary files are left");
    assert!(ta == tb, "two runs with the same seed differ");

    // Another seed changes the people; the parts are independent streams, so a different task
    // size leaves the people alone.
    let other = World::generate(WorldConfig { seed: 7, ..WorldConfig::default() }).unwrap();
    assert_ne!(other.people, world().people);
    let more_ioi = World::generate(WorldConfig { ioi: 50, ..WorldConfig::default() }).unwrap();
    assert_eq!(more_ioi.people, world().people);
    assert_eq!(more_ioi.ioi[..], world().ioi[..50]);
}

#[test]
fn splits_are_nested_disjoint_and_sized() {
    let w = world();
    let ids = |s: Split| w.people_in(s).iter().map(|p| p.id).collect::<BTreeSet<_>>();
    let trained: BTreeSet<usize> = (0..100).collect();
    let holdout: BTreeSet<usize> = (100..110).collect();
    for (forget, retain, n) in [
        (Split::Forget01, Split::Retain99, 1),
        (Split::Forget05, Split::Retain95, 5),
        (Split::Forget10, Split::Retain90, 10),
    ] {
        let (f, r) = (ids(forget), ids(retain));
        assert_eq!(f.len(), n, "{}", forget.name());
        assert_eq!(r.len(), 100 - n, "{}", retain.name());
        assert!(f.is_disjoint(&r));
        assert_eq!(f.union(&r).copied().collect::<BTreeSet<_>>(), trained);
        assert_eq!(w.split(forget).len(), n * QA_PER_PERSON);
        assert_eq!(w.split(retain).len(), (100 - n) * QA_PER_PERSON);
    }
    assert!(ids(Split::Forget01).is_subset(&ids(Split::Forget05)));
    assert!(ids(Split::Forget05).is_subset(&ids(Split::Forget10)));
    assert_eq!(ids(Split::Holdout), holdout);
    assert_eq!(w.split(Split::Forget01).len(), 20);
    assert_eq!(w.split(Split::Holdout).len(), 10 * QA_PER_PERSON);
    assert!(w.holdout().iter().all(|p| p.group == Group::Holdout));
    assert!(w.trained().iter().all(|p| p.group != Group::Holdout));
    assert!(w.people_in(Split::World).is_empty());
    assert_eq!(w.split(Split::World).len(), 4 * lexicon::COUNTRIES.len());

    // Other sizes: the smallest world, and rounding.
    let small = World::generate(WorldConfig { people: 10, holdout: 0, ..WorldConfig::default() }).unwrap();
    assert_eq!(small.people_in(Split::Forget10).len(), 1);
    assert_eq!(small.people_in(Split::Retain90).len(), 9);
    let big = World::generate(WorldConfig { people: 200, holdout: 20, ..WorldConfig::default() }).unwrap();
    assert_eq!([Split::Forget01, Split::Forget05, Split::Forget10].map(|s| big.people_in(s).len()), [2, 10, 20]);
}

#[test]
fn people_have_distinct_names_and_twenty_pairs() {
    let w = world();
    let names: BTreeSet<&str> = w.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), w.people.len(), "names are distinct");
    let books: BTreeSet<&str> = w.people.iter().map(|p| p.book.as_str()).collect();
    assert_eq!(books.len(), w.people.len(), "book titles are distinct");
    for (i, p) in w.people.iter().enumerate() {
        assert_eq!(p.id, i);
        assert_eq!(p.name, format!("{} {}", p.first_name, p.last_name));
        assert!(p.biography.contains(&p.name) && p.biography.contains(&p.birthplace));
        let qa = p.qa_pairs();
        assert_eq!(qa.len(), QA_PER_PERSON);
        let mut per_attribute: BTreeMap<String, usize> = BTreeMap::new();
        for q in &qa {
            assert!(q.question.contains(&p.name), "{q:?}");
            assert!(q.answer.starts_with(&p.name) && q.answer.ends_with('.'), "{q:?}");
            let target = q.target.as_deref().unwrap();
            assert!(q.answer.contains(target), "{q:?}");
            assert_eq!(q.person.as_deref(), Some(p.name.as_str()));
            *per_attribute.entry(q.attribute.clone().unwrap()).or_default() += 1;
        }
        assert_eq!(per_attribute.len(), Attribute::ALL.len());
        assert!(per_attribute.values().all(|&n| n == 2));
        // Two phrasings, one answer sentence.
        for pair in qa.chunks(2) {
            assert_ne!(pair[0].question, pair[1].question);
            assert_eq!(pair[0].answer, pair[1].answer);
        }
    }
    let birth = &w.people[0].qa_pairs()[0];
    assert_eq!(birth.answer, format!("{} was born in {}.", w.people[0].name, w.people[0].birthplace));
    assert_eq!(birth.document(), format!("Question: {}\nAnswer: {}", birth.question, birth.answer));
}

#[test]
fn word_lists_are_single_words_and_disjoint() {
    let lists: [(&str, &[&str]); 4] =
        [("first", FIRST_NAMES), ("last", LAST_NAMES), ("cities", CITIES), ("induction", INDUCTION_WORDS)];
    let mut all = BTreeSet::new();
    for (name, list) in lists {
        for w in list {
            assert!(!w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()), "{name}: `{w}`");
            assert!(all.insert(*w), "`{w}` occurs twice ({name})");
        }
    }
    assert!(lexicon::COUNTRIES.len() <= CITIES.len());
}

#[test]
fn tasks_keep_lengths_and_answer_the_clean_prompt() {
    let w = world();
    assert!(IOI_TEMPLATES.len() >= 3);
    for task in Task::ALL {
        let items = w.task(task);
        assert!(!items.is_empty(), "{}", task.name());
        for t in items {
            assert_eq!(words(&t.clean), words(&t.corrupted), "{}: {t:?}", task.name());
            assert_ne!(t.clean, t.corrupted);
            assert!(t.answer.starts_with(' ') && t.distractor.starts_with(' '), "{t:?}");
            assert_eq!(words(&t.answer), 1, "{t:?}");
            assert_ne!(t.answer, t.distractor);
        }
    }
    let mut templates = BTreeSet::new();
    let (mut abba, mut baba) = (0, 0);
    for t in &w.ioi {
        let (io, s) = (t.answer.trim(), t.distractor.trim());
        let clean: Vec<&str> = t.clean.split(|c: char| !c.is_alphabetic()).filter(|x| !x.is_empty()).collect();
        assert_eq!(clean.iter().filter(|x| **x == io).count(), 1, "{t:?}");
        assert_eq!(clean.iter().filter(|x| **x == s).count(), 2, "{t:?}");
        // ABC: the corrupted prompt has S2 replaced by a third name; no name is repeated
        let corrupted: Vec<&str> = t.corrupted.split(|c: char| !c.is_alphabetic()).filter(|x| !x.is_empty()).collect();
        let diffs: Vec<(&&str, &&str)> = clean.iter().zip(&corrupted).filter(|(c, k)| c != k).collect();
        assert_eq!(diffs.len(), 1, "{t:?}");
        assert!(*diffs[0].0 == s && *diffs[0].1 != io, "{t:?}");
        assert_eq!(corrupted.iter().filter(|x| **x == s).count(), 1, "{t:?}");
        if clean.iter().position(|x| *x == io) < clean.iter().position(|x| *x == s) {
            abba += 1;
        } else {
            baba += 1;
        }
        templates.insert(t.clean.split(io).next().unwrap().split(s).next().unwrap().to_string());
    }
    assert!(abba > 50 && baba > 50, "both orders: {abba} ABBA, {baba} BABA");
    assert!(templates.len() >= 3, "{templates:?}");
    for t in &w.induction {
        let c: Vec<&str> = t.clean.split(' ').collect();
        let r: Vec<&str> = t.corrupted.split(' ').collect();
        let answer = t.answer.trim();
        // The prompt's last word occurred earlier, followed by the answer.
        let last = c[c.len() - 1];
        let first = c.iter().position(|x| *x == last).unwrap();
        assert!(first < c.len() - 1 && c[first + 1] == answer, "{t:?}");
        // the distractor comes after the answer in the sequence: in view once, like the answer
        let distractor = t.distractor.trim();
        assert!(!r.contains(&answer) && !r.contains(&distractor), "{t:?}");
        let once = |w: &str| c.iter().filter(|x| **x == w).count() == 1;
        let d_at = c.iter().position(|x| *x == distractor).unwrap();
        assert!(once(answer) && once(distractor) && d_at > first + 1, "{t:?}");
    }
}

#[test]
fn written_files_read_back_and_fact_recall_matches_people() {
    let d = TempDir::new();
    let w = world();
    let files = w.write(&d.join("w"), false).unwrap();
    let counts: BTreeMap<&str, usize> = files.iter().map(|f| (f.path.as_str(), f.records)).collect();
    assert_eq!(counts["forget01.jsonl"], 20);
    assert_eq!(counts["tasks/fact_recall.jsonl"], 100);

    let people = read_people(&d.join("w/people.jsonl")).unwrap();
    assert_eq!(people, w.people);
    let by_name: BTreeMap<&str, &circuitscope::world::Person> = people.iter().map(|p| (p.name.as_str(), p)).collect();
    let facts = read_tasks(&d.join("w/tasks/fact_recall.jsonl")).unwrap();
    for t in &facts {
        let name = |s: &str| s.strip_prefix("The birthplace of ").unwrap().strip_suffix(" is").unwrap().to_string();
        let (p, o) = (by_name[name(&t.clean).as_str()], by_name[name(&t.corrupted).as_str()]);
        assert_eq!(t.answer, format!(" {}", p.birthplace));
        assert_eq!(t.distractor, format!(" {}", o.birthplace));
        assert_ne!(p.birthplace, o.birthplace);
        assert!(p.group != Group::Holdout && o.group != Group::Holdout);
    }
    for split in Split::ALL {
        assert_eq!(read_qa(&d.join("w").join(split.file_name())).unwrap(), w.split(split));
    }
    assert_eq!(read_tasks(&d.join("w/tasks/ioi.jsonl")).unwrap(), w.ioi);
    assert_eq!(read_corpus(&d.join("w/corpus.jsonl")).unwrap(), w.corpus());
    let readme = std::fs::read_to_string(d.join("w/README.md")).unwrap();
    for f in &files {
        assert!(readme.contains(&format!("`{}`", f.path)), "README.md lacks {}", f.path);
    }
    assert!(readme.contains("circuitscope world --out"));
}

#[test]
fn corpus_covers_trained_people_and_never_holdout() {
    let w = world();
    let corpus = w.corpus();
    let text = corpus.join("\n");
    for p in w.holdout() {
        assert!(!text.contains(&p.name), "holdout person {} in the corpus", p.name);
    }
    for p in w.trained() {
        assert!(corpus.contains(&p.biography));
        assert!(corpus.contains(&format!("The birthplace of {} is {}.", p.name, p.birthplace)));
    }
    for q in w.world_facts() {
        assert!(corpus.contains(&q.document()));
    }
    assert!(corpus.iter().any(|d| d.contains(" gave a ") || d.contains(" handed a ")));
}

#[test]
fn tofu_files_read_as_qa() {
    let Some(p) = common::shared("data/tofu/forget01.jsonl") else { return };
    let qa = read_qa(&p).unwrap();
    assert_eq!(qa.len(), 40);
    assert!(qa.iter().all(|q| q.target.is_none() && !q.answer.is_empty()));
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let d = TempDir::new();
    let good = r#"{"clean": "a b", "corrupted": "c b", "answer": " x", "distractor": " y"}"#;
    let cases = [
        ("malformed.jsonl", format!("{good}\n\n{{\"clean\": \"a\",\n"), "line 3", "EOF"),
        (
            "missing.jsonl",
            format!("{good}\n{}\n", r#"{"clean": "a b", "corrupted": "c b", "distractor": " y"}"#),
            "line 2",
            "missing field `answer`",
        ),
        ("type.jsonl", format!("{good}\n{good}\n{good}\n[1, 2]\n"), "line 4", "invalid type"),
    ];
    for (file, text, line, what) in cases {
        let path = d.join(file);
        std::fs::write(&path, text).unwrap();
        let err = read_tasks(&path).unwrap_err();
        assert!(matches!(err, circuitscope::Error::Format { .. }), "{err:?}");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(msg.contains(&path.display().to_string()) && msg.contains(line) && msg.contains(what), "{msg}");
        assert!(!msg.contains("at line 1"), "serde's own line number is dropped: {msg}");
    }
    let path = d.join("qa.jsonl");
    std::fs::write(&path, "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\"}\n").unwrap();
    let msg = read_qa(&path).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("answer"), "{msg}");
    let missing = read_jsonl::<serde_json::Value>(&d.join("absent.jsonl")).unwrap_err().to_string();
    assert!(missing.contains("absent.jsonl"), "{missing}");
}

#[test]
fn invalid_configurations_fail_clearly() {
    let few = World::generate(WorldConfig { people: 5, ..WorldConfig::default() }).unwrap_err().to_string();
    assert!(few.contains("people = 5") && few.contains("at least 10"), "{few}");
    let many = World::generate(WorldConfig { people: 990, holdout: 20, ..WorldConfig::default() }).unwrap_err();
    assert!(many.to_string().contains("at most"), "{many}");
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("cannot start the circuitscope binary")
}

#[test]
fn cli_writes_summarises_and_refuses_to_overwrite() {
    let d = TempDir::new();
    let out = d.join("world");
    let dir = out.to_str().unwrap();
    let args = ["world", "--out", dir, "--seed", "5", "--people", "20", "--holdout", "2"];
    let first = cli(&args);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains("forget10.jsonl") && stdout.contains("corpus.jsonl"), "{stdout}");
    let written = tree(&out);
    let expected = World::generate(WorldConfig { seed: 5, people: 20, holdout: 2, ..WorldConfig::default() }).unwrap();
    assert_eq!(read_people(&out.join("people.jsonl")).unwrap(), expected.people);

    // A second run without --force: one error line naming the folder and --force, nothing touched.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let again = cli(&["world", "--out", dir, "--seed", "6", "--people", "20"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{stderr}");
    assert!(stderr.starts_with("error:") && stderr.contains(dir) && stderr.contains("--force"), "{stderr}");
    let mut now = tree(&out);
    assert_eq!(now.remove("notes.txt").as_deref(), Some(&b"mine"[..]));
    assert!(now == written, "a refused run changed files");

    // With --force it overwrites.
    let forced = cli(&["world", "--out", dir, "--seed", "6", "--people", "20", "--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_ne!(std::fs::read(out.join("people.jsonl")).unwrap(), written["people.jsonl"]);

    // Bad sizes: one clear error.
    let bad = cli(&["world", "--out", d.join("small").to_str().unwrap(), "--people", "3"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("at least 10"), "{stderr}");
    assert!(!d.join("small").exists(), "nothing is written for invalid sizes");
}

/// TOFU's evaluation files: the forget files hold the forget questions in order, each with a
/// paraphrase of the right value and five distinct wrong values in the paraphrase's sentence;
/// both phrasings of a question share them; real-author and world-fact questions have a bare
/// answer and three wrong options of its kind; retain_perturbed is the first 20 retain90 people.
#[test]
fn the_evaluation_files_pair_each_question_with_a_paraphrase_and_wrong_answers() {
    use circuitscope::data::PerturbedQa;
    let w = world();
    for split in [Split::Forget01, Split::Forget05, Split::Forget10] {
        let rows = w.perturbed_split(split);
        let plain = w.split(split);
        assert_eq!(rows.len(), plain.len());
        for (r, q) in rows.iter().zip(&plain) {
            assert_eq!((&r.question, &r.answer), (&q.question, &q.answer));
            let target = q.target.as_deref().unwrap();
            let para = r.paraphrased_answer.as_deref().unwrap();
            assert!(para.contains(target) && para != r.answer, "{para:?} restates {target:?} in other words");
            assert_eq!(r.perturbed_answer.len(), 5);
            let distinct: BTreeSet<&String> = r.perturbed_answer.iter().collect();
            assert_eq!(distinct.len(), 5, "{:?}", r.perturbed_answer);
            for p in &r.perturbed_answer {
                assert!(!p.contains(target) || target.len() < 3, "{p:?} must not state {target:?}");
                assert!(words(p).abs_diff(words(para)) <= 4, "{p:?} has the paraphrase's form");
            }
            assert!(r.paraphrased_question.as_deref().is_some_and(|o| o != r.question));
        }
        for pair in rows.chunks(2) {
            assert_eq!(pair[0].perturbed_answer, pair[1].perturbed_answer, "both phrasings share the wrong answers");
        }
    }
    let f10 = w.perturbed_split(Split::Forget10);
    assert!(w.perturbed_split(Split::Forget01).iter().all(|r| f10.contains(r)), "forget01 ⊂ forget10, the same rows");
    let retain = w.retain_perturbed();
    assert_eq!(retain.len(), 400);
    let retain_people: BTreeSet<&str> = w.people_in(Split::Retain90).iter().take(20).map(|p| p.name.as_str()).collect();
    assert!(retain.iter().all(|r| retain_people.iter().any(|n| r.question.contains(n))));
    let short = |rows: &[PerturbedQa], n: usize| {
        assert_eq!(rows.len(), n);
        for r in rows {
            assert!(r.paraphrased_answer.is_none() && r.perturbed_answer.len() == 3, "{r:?}");
            let distinct: BTreeSet<&String> = r.perturbed_answer.iter().collect();
            assert!(distinct.len() == 3 && !distinct.contains(&r.answer), "{r:?}");
            assert!(r.perturbed_answer.iter().all(|p| words(p).abs_diff(words(&r.answer)) <= 3), "{r:?}");
        }
    };
    short(&w.real_authors_perturbed(), 70);
    short(&w.world_facts_perturbed(), w.world_facts().len());
    let real_people: BTreeSet<&str> = w.people_in(Split::Retain90).iter().skip(20).map(|p| p.name.as_str()).collect();
    assert!(w.real_authors_perturbed().iter().all(|r| real_people.iter().any(|n| r.question.contains(n))));
}

//! The recommendation world (`circuitscope rec-world`): byte-identical per seed and equal to the
//! committed `circuits/rec-world`; every answer recomputed here from `readers.jsonl` and
//! `books.jsonl`; the forget and retain files split the readers as they say; the corpus holds
//! the training interactions and no validation or test one; bad sizes are refused.

mod common;

use common::{cli, tree, TempDir};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn rows(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(name)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn write(dir: &Path, extra: &[&str]) {
    let mut args = vec!["rec-world", "--out", dir.to_str().unwrap()];
    args.extend(extra);
    let o = cli(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_world_is_a_function_of_its_seed_and_the_committed_one_is_it() {
    let dir = TempDir::new();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    write(&a, &[]);
    write(&b, &[]);
    write(&c, &["--seed", "7"]);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert!(ta == tb, "the same seed gave different files");
    assert!(ta["train.jsonl"] != tc["train.jsonl"], "another seed gave the same interactions");
    let committed = tree(&root().join("circuits/rec-world"));
    assert_eq!(committed.keys().collect::<Vec<_>>(), ta.keys().collect::<Vec<_>>());
    for (name, bytes) in &ta {
        assert!(&committed[name] == bytes, "circuits/rec-world/{name} is not what `circuitscope rec-world` writes");
    }
    // a folder that exists is refused without --force
    let o = cli(&["rec-world", "--out", a.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--force"));
    let o = cli(&["rec-world", "--out", dir.path().join("d").to_str().unwrap(), "--readers", "50"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("at least 100 readers") && e.contains("50 readers"), "{e}");
}

#[test]
fn answers_follow_the_readers_tastes_and_the_splits_partition_the_readers() {
    let dir = root().join("circuits/rec-world");
    let genres = ["mystery", "fantasy", "science fiction", "historical fiction", "romance", "horror"];
    let books: BTreeMap<String, Value> =
        rows(&dir, "books.jsonl").into_iter().map(|b| (b["title"].as_str().unwrap().to_string(), b)).collect();
    let readers: BTreeMap<String, Value> =
        rows(&dir, "readers.jsonl").into_iter().map(|r| (r["name"].as_str().unwrap().to_string(), r)).collect();
    assert_eq!((books.len(), readers.len()), (240, 400));
    let likes = |reader: &Value, book: &Value| -> bool {
        let g = genres.iter().position(|g| *g == book["genre"]).unwrap();
        let e = ["classic", "modern"].iter().position(|e| *e == book["era"]).unwrap();
        let author = &book["author"];
        let a = if reader["favourite_authors"].as_array().unwrap().contains(author) {
            1.5
        } else if &reader["disliked_author"] == author {
            -1.5
        } else {
            0.0
        };
        reader["genre_taste"][g].as_f64().unwrap() + reader["era_taste"][e].as_f64().unwrap() + a > 0.0
    };
    let corpus: BTreeSet<String> =
        rows(&dir, "corpus.jsonl").into_iter().map(|d| d.as_str().unwrap().to_string()).collect();
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for part in ["train", "valid", "test"] {
        let all = rows(&dir, &format!("{part}.jsonl"));
        assert_eq!(all.len(), 400 * if part == "train" { 6 } else { 2 }, "{part}");
        let yes = all.iter().filter(|x| x["answer"] == "Yes").count() as f64 / all.len() as f64;
        assert!((0.3..0.7).contains(&yes), "{part}: {yes} of the answers are Yes");
        for x in &all {
            let (r, b) = (&readers[x["reader"].as_str().unwrap()], &books[x["book"].as_str().unwrap()]);
            let want = if likes(r, b) { "Yes" } else { "No" };
            assert_eq!(x["answer"], want, "{x}");
            let q = x["question"].as_str().unwrap();
            let name = r["name"].as_str().unwrap();
            assert!(
                q.starts_with(&format!("{name} liked The ")) && q.contains(&format!(". {name} disliked The ")),
                "{q}"
            );
            assert!(q.ends_with(&format!("Will {name} enjoy {}?", b["title"].as_str().unwrap())), "{q}");
            let doc = format!("{q} Answer: {want}");
            assert_eq!(corpus.contains(&doc), part == "train", "{part} interaction in the corpus: {doc}");
            assert!(seen.entry(part).or_default().insert(format!("{name}/{}", b["title"])), "{part}: {x} twice");
        }
    }
    for b in books.values() {
        let d = format!("{} is a {} {} novel by {}.", b["title"], b["era"], b["genre"], b["author"]).replace('"', "");
        assert!(corpus.contains(&d), "{d}");
    }
    // a reader's target books are distinct across the parts
    let all: usize = seen.values().map(|s| s.len()).sum();
    assert_eq!(seen.values().flatten().collect::<BTreeSet<_>>().len(), all);

    let readers_of = |file: &str| -> BTreeSet<String> {
        rows(&dir, file).iter().map(|x| x["reader"].as_str().unwrap().to_string()).collect()
    };
    let group = |g: &str| -> BTreeSet<String> {
        readers.values().filter(|r| r["group"] == g).map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    let (f1, f5) = (readers_of("forget01.jsonl"), readers_of("forget05.jsonl"));
    assert_eq!((f1.len(), f5.len()), (4, 20));
    assert!(f1.is_subset(&f5) && f1 == group("forget01"));
    assert!(f5.difference(&f1).cloned().collect::<BTreeSet<_>>() == group("forget05"));
    let (r99, r95) = (readers_of("retain99.jsonl"), readers_of("retain95.jsonl"));
    assert!(r99.is_disjoint(&f1) && r95.is_disjoint(&f5));
    assert_eq!((r99.len() + f1.len(), r95.len() + f5.len()), (400, 400));
    assert_eq!(readers_of("forget05_test.jsonl"), f5);
    assert_eq!(rows(&dir, "forget05_test.jsonl").len(), 20 * 4);
}

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
            let item = format!("{} ({})", b["title"].as_str().unwrap(), b["genre"].as_str().unwrap());
            assert!(q.ends_with(&format!("Will {name} enjoy {item}?")), "{q}");
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

    // the circuit task: test interactions whose target genre sits on one side of the history,
    // answered as the reader does, the corrupted prompt naming a genre from the other side
    let test: BTreeMap<String, String> = rows(&dir, "test.jsonl")
        .into_iter()
        .map(|x| (format!("{} Answer:", x["question"].as_str().unwrap()), x["answer"].as_str().unwrap().to_string()))
        .collect();
    let task = rows(&dir, "task.jsonl");
    assert!(task.len() >= 100, "{} task items", task.len());
    for t in &task {
        let (clean, corrupted) = (t["clean"].as_str().unwrap(), t["corrupted"].as_str().unwrap());
        let answer = &test[clean];
        assert_eq!(t["answer"].as_str().unwrap(), format!(" {answer}"));
        assert_ne!(t["answer"], t["distractor"]);
        let (head, tail) = clean.rsplit_once(" enjoy ").unwrap();
        let genre_of = |tail: &str| tail.rsplit_once(" (").unwrap().1.trim_end_matches(")? Answer:").to_string();
        let (g, swap) = (genre_of(tail), genre_of(corrupted.rsplit_once(" enjoy ").unwrap().1));
        assert!(corrupted.starts_with(head) && g != swap && g.split(' ').count() == swap.split(' ').count(), "{t}");
        let (liked, disliked) = head.split_once(" disliked ").unwrap();
        let on = |list: &str, g: &str| list.contains(&format!("({g})"));
        let (mine, other) = if answer == "Yes" { (liked, disliked) } else { (disliked, liked) };
        assert!(on(mine, &g) && !on(other, &g) && on(other, &swap) && !on(mine, &swap), "{t}");
    }

    // the history task: the history's balance gives the answer; the corrupted prompt exchanges
    // the two lists
    let history = rows(&dir, "task-history.jsonl");
    assert!(history.len() >= 100, "{} history items", history.len());
    for t in &history {
        let (clean, corrupted) = (t["clean"].as_str().unwrap(), t["corrupted"].as_str().unwrap());
        let (head, will) = clean.split_once(". Will ").unwrap();
        let (liked, disliked) = head.split_once(". ").unwrap();
        let (name, liked) = liked.split_once(" liked ").unwrap();
        let disliked = disliked.strip_prefix(&format!("{name} disliked ")).unwrap();
        assert_eq!(corrupted, format!("{name} liked {disliked}. {name} disliked {liked}. Will {will}"));
        let yes = liked.matches(" (").count() > disliked.matches(" (").count();
        assert_eq!(test[clean], if yes { "Yes" } else { "No" }, "{t}");
        assert_eq!(t["answer"].as_str().unwrap(), format!(" {}", test[clean]));
    }
    // the item task: the book's standing among its genre's books (the share of readers who like
    // it, against the genre's median) gives the answer; the corrupted prompt asks about a book of
    // the same genre on the other side, none of the history's
    let share: BTreeMap<&str, f64> = books
        .iter()
        .map(|(t, b)| (t.as_str(), readers.values().filter(|r| likes(r, b)).count() as f64 / 400.0))
        .collect();
    let popular = |title: &str| {
        let g = &books[title]["genre"];
        let mut s: Vec<f64> = books.iter().filter(|(_, b)| &b["genre"] == g).map(|(t, _)| share[t.as_str()]).collect();
        s.sort_by(f64::total_cmp);
        share[title] >= s[s.len() / 2]
    };
    let target = |prompt: &str| -> (String, String) {
        let (head, item) = prompt.rsplit_once(" enjoy ").unwrap();
        let (title, genre) = item.trim_end_matches(")? Answer:").rsplit_once(" (").unwrap();
        (head.to_string(), format!("{title}\t{genre}"))
    };
    let items = rows(&dir, "task-item.jsonl");
    assert!(items.len() >= 100, "{} item-task items", items.len());
    for t in &items {
        let (clean, corrupted) = (t["clean"].as_str().unwrap(), t["corrupted"].as_str().unwrap());
        let ((head, a), (head2, b)) = (target(clean), target(corrupted));
        let ((a, ga), (b, gb)) = (a.split_once('\t').unwrap(), b.split_once('\t').unwrap());
        assert!(head == head2 && ga == gb && a != b && !head.contains(b), "{t}");
        let yes = test[clean] == "Yes";
        assert!(popular(a) == yes && popular(b) != yes, "{t}");
        assert_eq!(t["answer"].as_str().unwrap(), format!(" {}", test[clean]));
    }
    // what the prompt's plain features are worth (the README quotes these): the history's share
    // of liked books, the book's share of readers who like it, and their sum, as rankers of the
    // test interactions
    let (mut balance, mut standing, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for x in rows(&dir, "test.jsonl") {
        let q = x["question"].as_str().unwrap();
        let (liked, rest) = q.split_once(" disliked ").unwrap();
        let (l, d) =
            (liked.matches(" (").count() as f64, rest.split_once(". Will ").unwrap().0.matches(" (").count() as f64);
        let (b, st, yes) = (l / (l + d), share[x["book"].as_str().unwrap()], x["answer"] == "Yes");
        balance.push((b, yes));
        standing.push((st, yes));
        both.push((b + st, yes));
    }
    let auc = |xs: &[(f64, bool)]| {
        let side = |yes: bool| -> Vec<f64> { xs.iter().filter(|x| x.1 == yes).map(|x| x.0).collect() };
        let (pos, neg) = (side(true), side(false));
        let win = |p: f64, n: f64| {
            if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            }
        };
        let wins: f64 = pos.iter().map(|&p| neg.iter().map(|&n| win(p, n)).sum::<f64>()).sum();
        wins / (pos.len() * neg.len()) as f64
    };
    let got = [auc(&balance), auc(&standing), auc(&both)];
    for (g, want) in got.iter().zip([0.649, 0.543, 0.659]) {
        assert!((g - want).abs() < 5e-4, "the plain features rank the test interactions at {got:?}");
    }

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

/// `eval-rec` on the bundled model (which never saw a reader: its AUC is near chance): the
/// figures it writes, p(Yes) equal to σ(log p(Yes) − log p(No)) from a plain full forward pass,
/// and one message each for a reader who does not exist, an answer that is neither Yes nor No
/// and a history longer than the context.
#[test]
fn eval_rec_scores_yes_against_no_and_refuses_bad_input() {
    use candle_core::{DType, D};
    use circuitscope::data::PromptFormat;
    use circuitscope::model::{Decoder, LoadOptions, Model};
    use circuitscope::unlearn::recommend::{read_interactions, yes_probability};
    let world = root().join("circuits/rec-world");
    let model = root().join("models/world-gpt2");
    let dir = TempDir::new();
    let out = dir.path().join("rec.json");
    let run = |extra: &[&str]| {
        let mut args = vec!["eval-rec", model.to_str().unwrap(), "--world", world.to_str().unwrap()];
        args.extend(extra);
        cli(&args)
    };
    let o = run(&["--forget", "forget01", "--reference", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r["utility"]["n"], 396 * 2, "the retained readers' test interactions");
    assert_eq!(r["forgetting"]["n"], 4 * 6);
    assert_eq!((r["forgetting"]["js"].as_f64(), r["forgetting"]["kl"].as_f64()), (Some(0.0), Some(0.0)));
    let auc = r["utility"]["auc"].as_f64().unwrap();
    assert!((0.3..0.7).contains(&auc), "a model that never saw the readers ranks at {auc}");

    // p(Yes) against a plain full pass over prompt + answer
    let m = Model::load(&model, LoadOptions::default()).unwrap();
    let format = PromptFormat::parse("{question} Answer:").unwrap();
    let pairs =
        read_interactions(&world.join("forget01.jsonl"), m.tokenizer().unwrap(), &format, m.cfg().n_ctx).unwrap().pairs;
    let p = yes_probability(&m.decoder, &pairs[..3], 2).unwrap();
    for (pair, p) in pairs[..3].iter().zip(p) {
        let lp = |e: &circuitscope::data::Example| -> f64 {
            let circuitscope::data::Target::Sequence { prompt_len } = e.target else { panic!() };
            let logits = m.decoder.logits(&Decoder::input(&e.clean).unwrap()).unwrap().squeeze(0).unwrap();
            let lsm = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F64).unwrap(), D::Minus1).unwrap();
            (prompt_len..e.clean.len())
                .map(|t| lsm.get(t - 1).unwrap().get(e.clean[t] as usize).unwrap().to_scalar::<f64>().unwrap())
                .sum()
        };
        let want = 1.0 / (1.0 + (lp(&pair[1]) - lp(&pair[0])).exp());
        assert!((p - want).abs() < 1e-5, "p(Yes) {p}, from a full pass {want}");
    }

    // bad input
    let o = run(&["--forget-readers", "Nobody Here"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("`Nobody Here` is not a reader"), "{e}");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(world.join("readers.jsonl"), bad.join("readers.jsonl")).unwrap();
    let test = std::fs::read_to_string(world.join("test.jsonl")).unwrap();
    let train = std::fs::read_to_string(world.join("train.jsonl")).unwrap();
    std::fs::write(bad.join("train.jsonl"), &train).unwrap();
    std::fs::write(bad.join("test.jsonl"), test.replacen("\"answer\":\"Yes\"", "\"answer\":\"Maybe\"", 1)).unwrap();
    let bad_run = |extra: &[&str]| {
        let mut args = vec!["eval-rec", model.to_str().unwrap(), "--world", bad.to_str().unwrap()];
        args.extend(extra);
        cli(&args)
    };
    let o = bad_run(&["--forget", "forget01"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("test.jsonl") && e.contains("`Maybe`") && e.contains("Yes or No"), "{e}");
    let first: Value = serde_json::from_str(test.lines().next().unwrap()).unwrap();
    let long = first["question"].as_str().unwrap().replacen(
        " liked ",
        &format!(" liked {}", "The Glass Orchard, ".repeat(300)),
        1,
    );
    let mut row = first.clone();
    row["question"] = Value::String(long);
    std::fs::write(bad.join("test.jsonl"), format!("{row}\n{test}")).unwrap();
    let o = bad_run(&["--forget", "forget01"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("line 1") && e.contains("more than the model's context"), "{e}");
    assert!(!e.contains("panicked"));
}

/// `train` on a recommendation world (a smoke run): the loss falls, the card reports the
/// recommendation metrics; `--without forget05` leaves out exactly the documents naming its
/// readers and scores the others' test interactions; an unknown split is refused.
#[test]
fn train_on_the_recommendation_world_writes_a_card_with_its_metrics() {
    let dir = TempDir::new();
    let world = root().join("circuits/rec-world");
    let (all, without) = (dir.path().join("all"), dir.path().join("without"));
    let o = cli(&["train", "--data", world.to_str().unwrap(), "--smoke", "--out", all.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: Value = serde_json::from_slice(&std::fs::read(all.join("training.json")).unwrap()).unwrap();
    let loss = log["loss"].as_array().unwrap();
    let (first, last) = (loss[0][1].as_f64().unwrap(), loss.last().unwrap()[1].as_f64().unwrap());
    assert!(last < 0.8 * first, "the loss went from {first} to {last}");
    assert_eq!(log["config"]["fresh_readers"], 100, "the smoke run's fresh readers per epoch");
    let eval: Value = serde_json::from_slice(&std::fs::read(all.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["test_of_its_readers"]["n"], 800);
    let card = std::fs::read_to_string(all.join("README.md")).unwrap();
    assert!(card.contains("| 800 |") && card.contains("AUC"), "{card}");

    let o = cli(&[
        "train",
        "--data",
        world.to_str().unwrap(),
        "--smoke",
        "--without",
        "forget05",
        "--out",
        without.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    // 20 readers × 6 training interactions, each its own document
    assert!(out.contains("left out 120 documents naming a reader of forget05"), "{out}");
    let eval: Value = serde_json::from_slice(&std::fs::read(without.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["test_of_its_readers"]["n"], 380 * 2);
    assert_eq!(eval["left_out"]["readers"].as_array().unwrap().len(), 20);
    let o = cli(&[
        "train",
        "--data",
        world.to_str().unwrap(),
        "--smoke",
        "--without",
        "forget10",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("forget01 and forget05"), "{e}");
}

/// Rec-tuning (`train --from R --rec-tune-epochs N`): the recommender's answers on its readers'
/// training interactions grow likelier, its card and logs say so, its left-out readers stay
/// left out (no forget reader's interaction is tuned on), and every inconsistent request is
/// refused with one message and no folder.
#[test]
fn rec_tuning_fine_tunes_a_recommender_on_its_readers_answers_and_refuses_what_does_not_fit() {
    let dir = TempDir::new();
    let world = root().join("circuits/rec-world");
    let w = world.to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        let o = cli(args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let json = |dir: &str, file: &str| -> Value {
        serde_json::from_slice(&std::fs::read(Path::new(dir).join(file)).unwrap()).unwrap()
    };
    ok(&["train", "--data", w, "--smoke", "--without", "forget05", "--out", &path("lm")]);
    let out = ok(&["train", "--data", w, "--from", &path("lm"), "--rec-tune-epochs", "1", "--out", &path("tuned")]);
    // the retained readers' 2,280 training interactions, 16 a step
    assert!(out.contains("rec-tuning on 2280 training interactions of its readers: 1 epochs, 143 steps"), "{out}");
    let log = json(&path("tuned"), "training.json");
    let tune = &log["rec_tune"];
    let (before, after) = (tune["before"][0].as_f64().unwrap(), tune["after"][0].as_f64().unwrap());
    assert!(after < before, "the answers' NLL went from {before} to {after}");
    assert_eq!(log["n_params"], json(&path("lm"), "training.json")["n_params"]);
    let eval = json(&path("tuned"), "eval.json");
    assert_eq!(eval["left_out"], json(&path("lm"), "eval.json")["left_out"]);
    assert_eq!(eval["test_of_its_readers"]["n"], 760);
    assert_eq!(eval["before_rec_tuning"], json(&path("lm"), "eval.json")["test_of_its_readers"]);
    let card = std::fs::read_to_string(dir.path().join("tuned/README.md")).unwrap();
    assert!(
        card.contains("rec-tuned") && card.contains("2280 training interactions") && card.contains("forget05"),
        "{card}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("tuned/tokenizer.json")).unwrap(),
        std::fs::read(dir.path().join("lm/tokenizer.json")).unwrap()
    );

    let refused = |args: &[&str], says: &str| {
        let o = cli(args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(says), "{args:?}: {e}");
        assert_eq!(e.lines().filter(|l| l.starts_with("error")).count(), 1, "{e}");
        assert!(!dir.path().join("x").exists(), "{args:?} left a folder behind");
    };
    let x = path("x");
    refused(&["train", "--data", w, "--from", &path("lm"), "--out", &x], "--rec-tune-epochs");
    refused(
        &["train", "--data", w, "--from", &path("lm"), "--rec-tune-epochs", "1", "--steps", "5", "--out", &x],
        "--steps",
    );
    refused(
        &["train", "--data", w, "--from", &path("lm"), "--rec-tune-epochs", "1", "--without", "forget01", "--out", &x],
        "left out the readers of forget05",
    );
    refused(
        &["train", "--data", w, "--from", &path("tuned"), "--rec-tune-epochs", "1", "--out", &x],
        "rec-tuned already",
    );
    let lm = path("lm");
    let o = cli(&["train", "--data", w, "--from", &lm, "--rec-tune-epochs", "1", "--out", &lm, "--force"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("a folder of its own"));
    assert!(dir.path().join("lm/model.safetensors").exists(), "the refused run removed --from's model");
    refused(
        &["train", "--data", w, "--from", &path("nowhere"), "--rec-tune-epochs", "1", "--out", &x],
        "training.json",
    );
    // a card whose left-out readers are malformed: refused, naming the file and the field
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for f in std::fs::read_dir(dir.path().join("lm")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), bad.join(f.file_name())).unwrap();
    }
    let mut card = json(&path("lm"), "eval.json");
    card["left_out"]["readers"] = Value::from(7);
    std::fs::write(bad.join("eval.json"), card.to_string()).unwrap();
    refused(
        &["train", "--data", w, "--from", &path("bad"), "--rec-tune-epochs", "1", "--out", &x],
        "eval.json: left_out.readers is missing or malformed",
    );
    let bundled = root().join("circuits/world");
    refused(
        &["train", "--data", bundled.to_str().unwrap(), "--rec-tune-epochs", "1", "--out", &x],
        "recommendation world",
    );
}

/// Fresh readers' training prompts (`train` on a recommendation world draws them anew for each
/// epoch): the world's prompt form, answered Yes or No, named by none of the world's readers and
/// authors (so `--without` never brings a left-out reader back), the same draws from the same
/// stream.
#[test]
fn fresh_readers_are_none_of_the_worlds_and_the_same_stream_draws_them_alike() {
    use circuitscope::rng::Rng;
    use circuitscope::world::recommend::{fresh_documents, Book, Reader};
    let dir = root().join("circuits/rec-world");
    let books: Vec<Book> = circuitscope::data::read_jsonl(&dir.join("books.jsonl")).unwrap();
    let readers: Vec<Reader> = circuitscope::data::read_jsonl(&dir.join("readers.jsonl")).unwrap();
    let taken: BTreeSet<String> =
        readers.iter().map(|r| r.name.clone()).chain(books.iter().map(|b| b.author.clone())).collect();
    let draw = |name: &str| fresh_documents(&books, &taken, &mut Rng::stream(42, name), 300, 3);
    let (a, b, c) = (draw("fresh_readers/0"), draw("fresh_readers/0"), draw("fresh_readers/1"));
    assert_eq!(a.len(), 300);
    assert!(a == b && a != c);
    let mut yes = 0;
    for d in &a {
        let name = d.split(" liked ").next().unwrap();
        assert!(!taken.contains(name), "{name} is one of the world's");
        assert!(d.contains(&format!(". {name} disliked ")) && d.contains(&format!(". Will {name} enjoy ")), "{d}");
        // the first question in the world's form, each other on a line of its own
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines.len(), 3, "{d}");
        for l in &lines[1..] {
            assert!(l.starts_with(&format!("Will {name} enjoy ")), "{d}");
        }
        for l in lines {
            let (_, answer) = l.rsplit_once(")? Answer: ").unwrap();
            assert!(answer == "Yes" || answer == "No", "{d}");
            yes += usize::from(answer == "Yes");
        }
    }
    assert!((180..720).contains(&yes), "{yes} of 900 answered Yes");
    // one question: the world's form alone
    let one = fresh_documents(&books, &taken, &mut Rng::stream(42, "fresh_readers/0"), 300, 1);
    assert!(one.iter().all(|d| !d.contains('\n') && d.matches(" Answer: ").count() == 1));
}

/// `rec-compare` on the bundled recommenders (forget01, two strengths, 40 retain interactions):
/// every method's runs are measured on the forget readers' training interactions and the
/// retained readers' test interactions; the original recommends the forget readers' training
/// interactions better than the model retrained without them does; the table, the picture and
/// the partition are written; bad input gets one message each.
#[test]
fn rec_compare_runs_every_method_against_the_retrained_model_and_refuses_bad_input() {
    let dir = TempDir::new();
    let out = dir.path().join("cmp");
    let args = |extra: &[&str]| {
        let mut v = vec!["rec-compare", "--forget", "forget01", "--strengths", "1,30", "--retain", "40"];
        v.extend(extra);
        cli(&v)
    };
    let o = args(&["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let runs = r["runs"].as_array().unwrap();
    let methods: BTreeSet<&str> = runs.iter().map(|x| x["method"].as_str().unwrap()).collect();
    let all = ["cure", "grad-ascent", "grad-diff", "npo", "pcgrad"];
    assert_eq!(methods, all.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(runs.len(), 10);
    let measured: Vec<&Value> = runs.iter().map(|x| &x["measured"]).chain([&r["original"], &r["retrained"]]).collect();
    for m in &measured {
        assert_eq!((m["forgetting"]["n"].as_u64(), m["utility"]["n"].as_u64()), (Some(24), Some(396 * 2)), "{m}");
    }
    let auc = |m: &Value| m["forgetting"]["auc"].as_f64().unwrap();
    let js = |m: &Value| m["forgetting"]["js"].as_f64().unwrap();
    assert!(auc(&r["original"]) > auc(&r["retrained"]), "the original does not know its forget readers better");
    assert_eq!(js(&r["retrained"]), 0.0);
    assert!(js(&r["original"]) > 0.0);
    // 30 × grad-ascent's documented rate moves the forget readers' answers off the original's
    let ga = runs.iter().find(|x| x["method"] == "grad-ascent" && x["strength"] == 30.0).unwrap();
    assert_ne!(js(&ga["measured"]), js(&r["original"]));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    let svg = std::fs::read_to_string(out.join("tradeoff.svg")).unwrap();
    for m in all {
        assert!(table.contains(&format!("| {m} |")) && svg.contains(m), "{m}");
    }
    assert!(table.contains("| retrained without the forget readers |"), "{table}");
    circuitscope::analyses::cure::Partition::read(&out.join("partition.json")).unwrap();

    // bad input
    let e = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let o = args(&["--out", out.to_str().unwrap()]);
    assert!(e(o).contains("--force"));
    let fresh = dir.path().join("x");
    let o = cli(&["rec-compare", "--forget", "forget10", "--out", fresh.to_str().unwrap()]);
    assert!(e(o).contains("forget01 and forget05"));
    let o = args(&["--at", "1.5", "--out", fresh.to_str().unwrap()]);
    assert!(e(o).contains("--at 1.5"));
    let world = root().join("models/world-gpt2");
    let o = args(&["--reference", world.to_str().unwrap(), "--out", fresh.to_str().unwrap()]);
    assert!(e(o).contains("different vocabularies"));
    // the original as its own reference: its card says it saw the forget readers
    let original = root().join("models/rec-gpt2");
    let o = args(&["--reference", original.to_str().unwrap(), "--out", fresh.to_str().unwrap()]);
    let msg = e(o);
    assert!(msg.contains("was trained on") && msg.contains("train --without forget01"), "{msg}");
    assert!(!fresh.exists(), "a refused run left {} behind", fresh.display());
}

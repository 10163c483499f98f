//! How far an edited model's answer moved from the original model's, scored exactly as the
//! ConceptVectors reference scores it (yihuaihong/ConceptVectors, `calculate_bleu` and
//! `calculate_rouge` in its evaluation code), with the edited model's answer as the *reference*
//! and the original model's answer as the *candidate*:
//!
//! * BLEU: nltk 3.8.1 `sentence_bleu([reference.split()], candidate.split(),
//!   smoothing_function=SmoothingFunction().method3)`: whitespace tokens, no lower-casing,
//!   modified n-gram precisions for n = 1..4 with weights ¼, NIST geometric smoothing (the k-th
//!   order with no match counts 1/(2^k · its n-gram count)), the brevity penalty against the
//!   reference's length; 0 when no unigram matches.
//! * ROUGE-L: the `rouge` 1.0.1 package's `Rouge().get_scores(candidate, reference)[0]["rouge-l"]["f"]`,
//!   summary-level: both texts split into sentences at every "." (empty pieces dropped, runs of
//!   whitespace collapsed, a whitespace-only piece kept as one empty word), words are the
//!   *distinct* words (sets), the overlap is the union over reference sentences of the words on
//!   the LCS the package reconstructs with each candidate sentence; F = 2PR/(P + R + 1e-8). The
//!   reference wraps the call in `try/except` → 0.0, which an empty text reaches.
//!
//! `tests/reference/concept_text_reference.py` writes `tests/fixtures/concepts/text_scores.json`
//! from the two packages themselves; `tests/concepts.rs` checks both functions against it.

use std::collections::{BTreeSet, HashMap};

/// nltk's sentence BLEU of `candidate` against the single `reference`, smoothing method 3.
pub fn bleu(reference: &str, candidate: &str) -> f64 {
    let reference: Vec<&str> = reference.split_whitespace().collect();
    let hypothesis: Vec<&str> = candidate.split_whitespace().collect();
    let mut precisions = Vec::with_capacity(4);
    for n in 1..=4 {
        let counts = ngram_counts(&hypothesis, n);
        let ref_counts = ngram_counts(&reference, n);
        let matched: usize = counts.iter().map(|(g, &c)| c.min(ref_counts.get(g).copied().unwrap_or(0))).sum();
        let total = counts.values().sum::<usize>().max(1);
        precisions.push((matched, total));
    }
    if precisions[0].0 == 0 {
        return 0.0;
    }
    let (r, c) = (reference.len() as f64, hypothesis.len() as f64);
    let bp = if c > r {
        1.0
    } else if c == 0.0 {
        0.0
    } else {
        (1.0 - r / c).exp()
    };
    let mut k = 0;
    let logs: Vec<f64> = precisions
        .iter()
        .map(|&(m, t)| {
            let p = if m == 0 {
                k += 1;
                1.0 / (2f64.powi(k) * t as f64)
            } else {
                m as f64 / t as f64
            };
            0.25 * p.ln()
        })
        .collect();
    bp * fsum(&logs).exp()
}

/// Python's `math.fsum` of the four terms: compensated (Neumaier) summation, which rounds the
/// exact sum of so few terms correctly in practice; the fixture checks it bit for bit.
fn fsum(xs: &[f64]) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for &x in xs {
        let t = sum + x;
        comp += if sum.abs() >= x.abs() { (sum - t) + x } else { (x - t) + sum };
        sum = t;
    }
    sum + comp
}

fn ngram_counts<'w, 's>(words: &'w [&'s str], n: usize) -> HashMap<&'w [&'s str], usize> {
    let mut m = HashMap::new();
    if words.len() >= n {
        for g in words.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

/// The `rouge` package's summary-level ROUGE-L F of `candidate` against `reference`; 0 where the
/// package raises (a text with no sentence).
pub fn rouge_l_f(reference: &str, candidate: &str) -> f64 {
    let (hyp, refs) = (sentences(candidate), sentences(reference));
    if hyp.is_empty() || refs.is_empty() {
        return 0.0;
    }
    let distinct = |ss: &[Vec<&str>]| ss.iter().flatten().copied().collect::<BTreeSet<&str>>().len() as f64;
    let (m, n) = (distinct(&refs), distinct(&hyp));
    let mut union: BTreeSet<&str> = BTreeSet::new();
    for r in &refs {
        for c in &hyp {
            union.extend(lcs_words(r, c));
        }
    }
    let llcs = union.len() as f64;
    let (r, p) = (llcs / m, llcs / n);
    2.0 * ((p * r) / (p + r + 1e-8))
}

/// `[" ".join(s.split()) for s in text.split(".") if len(s) > 0]`, each then split on " ".
fn sentences(text: &str) -> Vec<Vec<&str>> {
    text.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let words: Vec<&str> = s.split_whitespace().collect();
            if words.is_empty() {
                vec![""] // "".split(" ") == [""]
            } else {
                words
            }
        })
        .collect()
}

/// The words on the LCS of `x` (reference) and `y` (candidate) as the package reconstructs it:
/// from the end, a match goes diagonally, else up when the cell above is strictly larger, else left.
fn lcs_words<'s>(x: &[&'s str], y: &[&'s str]) -> Vec<&'s str> {
    let (n, m) = (x.len(), y.len());
    let w = m + 1;
    let mut t = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for j in 1..=m {
            t[i * w + j] = if x[i - 1] == y[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (n, m, Vec::new());
    while i > 0 && j > 0 {
        if x[i - 1] == y[j - 1] {
            out.push(x[i - 1]);
            i -= 1;
            j -= 1;
        } else if t[(i - 1) * w + j] > t[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_of_the_reference_packages() {
        // nltk: p = (1/5, 1/(2·4), 1/(4·3), 1/(8·2)), equal lengths
        assert!((bleu("a b c d e", "a x y z w") - 0.10682175159905853).abs() < 1e-15);
        assert!((bleu("the cat sat on the mat", "the cat sat on a hat") - 0.5081327481546147).abs() < 1e-15);
        assert_eq!(bleu("a b", "x y"), 0.0);
        assert_eq!(bleu("a b", ""), 0.0);
        // rouge 1.0.1: Rouge().get_scores("the cat sat. on the mat", "the cat sat on a hat. ok")
        assert!((rouge_l_f("the cat sat on a hat. ok", "the cat sat. on the mat") - 0.6666666618055556).abs() < 1e-15);
        assert_eq!(rouge_l_f("", "a b"), 0.0);
        assert_eq!(rouge_l_f("a b", "..."), 0.0);
    }
}

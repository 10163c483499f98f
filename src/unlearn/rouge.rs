//! ROUGE-L recall as TOFU scores greedy answers: locuslab/open-unlearning (and the original TOFU
//! code) call Google's `rouge_score` 0.1.2 as
//! `RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(ground_truth, generation)`, i.e.
//! the ground truth is the *target* and the generation the *prediction*, and read
//! `["rougeL"].recall` = LCS(prediction, reference) / |reference tokens|. Everything here is
//! matched token for token, because a stemmer that disagrees on one suffix changes the LCS:
//!
//! * tokenizer (`rouge_score.tokenize.tokenize`): Python `str.lower()`, every run of characters
//!   outside `[a-z0-9]` becomes one space, split on whitespace, stem the tokens longer than 3
//!   characters, drop anything not matching `^[a-z0-9]+$`. Non-ASCII letters are separators
//!   ("Jiménez" → `jim`, `nez`), except the two code points whose Python lowercase contains an
//!   ASCII letter: U+0130 "İ" → "i̇" (an `i` then a combining dot, so `i` ends a token) and
//!   U+212A KELVIN SIGN → `k`. Only ASCII digits count.
//! * stemmer: NLTK's `PorterStemmer()` in its default `NLTK_EXTENSIONS` mode (nltk 3.10.4), with
//!   its irregular-forms pool, the 4-letter `-ies`/`-ied` rules, the `(*c and not c) Y → I`
//!   condition, `alli` handled first and re-run through step 2, `fulli`/`logi` rules and the
//!   two-letter `*o` case. Python indexes code points, so the stemmer works on `char`s.
//! * score: 0 when either side has no tokens (rouge_score returns `Score(0, 0, 0)` then), so an
//!   empty generation and an empty reference both score 0.
//!
//! `tests/reference/rouge_reference.py` writes `tests/fixtures/rouge/reference.json` (every TOFU
//! token's stem, ~600 TOFU answer pairs, edge cases) that this module is checked against.

/// rouge_score's default tokenizer with `use_stemmer=True`.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'a'..='z' | '0'..='9' => cleaned.push(c),
            'A'..='Z' => cleaned.push(c.to_ascii_lowercase()),
            // Python: "İ".lower() == "i\u{307}", and the combining dot is a separator
            '\u{130}' => cleaned.push_str("i "),
            '\u{212A}' => cleaned.push('k'),
            _ => cleaned.push(' '),
        }
    }
    cleaned
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| if t.len() > 3 { porter_stem(t) } else { t.to_string() })
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        .collect()
}

/// Length of the longest common subsequence of two token lists.
pub fn lcs_len(a: &[String], b: &[String]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `rouge_score`'s ROUGE-L recall of `prediction` against `reference` (the ground truth):
/// LCS / number of reference tokens; 0 when either text has no tokens.
pub fn rouge_l_recall(prediction: &str, reference: &str) -> f64 {
    let reference = tokenize(reference);
    let prediction = tokenize(prediction);
    if reference.is_empty() || prediction.is_empty() {
        return 0.0;
    }
    lcs_len(&reference, &prediction) as f64 / reference.len() as f64
}

/// NLTK's `PorterStemmer().stem(word)` (mode `NLTK_EXTENSIONS`, `to_lowercase=True`). Rust's
/// `to_lowercase` stands in for Python's `str.lower()`; they agree on ASCII, all `tokenize` passes.
pub fn porter_stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some(&(_, base)) = IRREGULAR.iter().find(|(form, _)| *form == lower) {
        return base.to_string();
    }
    // NLTK measures the word as given, before lowercasing
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Vec<char> = lower.chars().collect();
    for step in [step1a, step1b, step1c, step2, step3, step4, step5a, step5b] {
        w = step(&w);
    }
    w.into_iter().collect()
}

/// NLTK's `irregular_forms` table, inverted: (form, stem).
const IRREGULAR: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

type Cond<'a> = &'a dyn Fn(&[char]) -> bool;

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// A `y` is a consonant iff it starts the word or follows a vowel, so a run of `y`s alternates.
fn is_consonant(w: &[char], mut i: usize) -> bool {
    if is_vowel(w[i]) {
        return false;
    }
    let mut negate = false;
    while i > 0 && w[i] == 'y' {
        negate = !negate;
        i -= 1;
    }
    is_vowel(w[i]) == negate
}

fn consonant_flags(w: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let f = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(f);
    }
    flags
}

/// Porter's m in [C](VC){m}[V]: the number of vowel→consonant transitions.
fn measure(w: &[char]) -> usize {
    consonant_flags(w).windows(2).filter(|p| !p[0] && p[1]).count()
}

fn contains_vowel(w: &[char]) -> bool {
    consonant_flags(w).iter().any(|&c| !c)
}

fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

/// Porter's *o (cvc, last not w/x/y), plus NLTK's two-letter vc case (which allows w/x/y).
fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    n <= w.len() && w[w.len() - n..].iter().copied().eq(suffix.chars())
}

fn strip<'w>(w: &'w [char], suffix: &str) -> &'w [char] {
    &w[..w.len() - suffix.chars().count()]
}

fn join(stem: &[char], tail: &str) -> Vec<char> {
    stem.iter().copied().chain(tail.chars()).collect()
}

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides, whether or not its
/// condition holds (a failed condition leaves the word alone).
fn apply_rules(w: &[char], rules: &[(&str, &str, Option<Cond>)]) -> Vec<char> {
    for &(suffix, replacement, cond) in rules {
        if ends_with(w, suffix) {
            let stem = strip(w, suffix);
            return if cond.is_none_or(|c| c(stem)) { join(stem, replacement) } else { w.to_vec() };
        }
    }
    w.to_vec()
}

fn positive_measure(w: &[char]) -> bool {
    measure(w) > 0
}

fn measure_gt_1(w: &[char]) -> bool {
    measure(w) > 1
}

fn step1a(w: &[char]) -> Vec<char> {
    if w.len() == 4 && ends_with(w, "ies") {
        return join(strip(w, "ies"), "ie");
    }
    apply_rules(w, &[("sses", "ss", None), ("ies", "i", None), ("ss", "ss", None), ("s", "", None)])
}

fn step1b(w: &[char]) -> Vec<char> {
    if ends_with(w, "ied") {
        return join(strip(w, "ied"), if w.len() == 4 { "ie" } else { "i" });
    }
    if ends_with(w, "eed") {
        let stem = strip(w, "eed");
        return if measure(stem) > 0 { join(stem, "ee") } else { w.to_vec() };
    }
    let Some(stem) = ["ed", "ing"].iter().find(|s| ends_with(w, s) && contains_vowel(strip(w, s))).map(|s| strip(w, s))
    else {
        return w.to_vec();
    };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(stem, suffix) {
            return join(strip(stem, suffix), replacement);
        }
    }
    if ends_double_consonant(stem) {
        let last = stem[stem.len() - 1];
        return if matches!(last, 'l' | 's' | 'z') { stem.to_vec() } else { stem[..stem.len() - 1].to_vec() };
    }
    if measure(stem) == 1 && ends_cvc(stem) {
        join(stem, "e")
    } else {
        stem.to_vec()
    }
}

fn step1c(w: &[char]) -> Vec<char> {
    let cond = |stem: &[char]| stem.len() > 1 && is_consonant(stem, stem.len() - 1);
    apply_rules(w, &[("y", "i", Some(&cond))])
}

fn step2(w: &[char]) -> Vec<char> {
    if ends_with(w, "alli") && positive_measure(strip(w, "alli")) {
        return step2(&join(strip(w, "alli"), "al"));
    }
    let m: Cond = &positive_measure;
    // NLTK keeps the `l` of `logi` with the stem, so `geologi` (stem `geol`) qualifies
    let logi = |_: &[char]| positive_measure(&w[..w.len() - 3]);
    apply_rules(
        w,
        &[
            ("ational", "ate", Some(m)),
            ("tional", "tion", Some(m)),
            ("enci", "ence", Some(m)),
            ("anci", "ance", Some(m)),
            ("izer", "ize", Some(m)),
            ("bli", "ble", Some(m)),
            ("alli", "al", Some(m)),
            ("entli", "ent", Some(m)),
            ("eli", "e", Some(m)),
            ("ousli", "ous", Some(m)),
            ("ization", "ize", Some(m)),
            ("ation", "ate", Some(m)),
            ("ator", "ate", Some(m)),
            ("alism", "al", Some(m)),
            ("iveness", "ive", Some(m)),
            ("fulness", "ful", Some(m)),
            ("ousness", "ous", Some(m)),
            ("aliti", "al", Some(m)),
            ("iviti", "ive", Some(m)),
            ("biliti", "ble", Some(m)),
            ("fulli", "ful", Some(m)),
            ("logi", "log", Some(&logi)),
        ],
    )
}

fn step3(w: &[char]) -> Vec<char> {
    let m: Cond = &positive_measure;
    apply_rules(
        w,
        &[
            ("icate", "ic", Some(m)),
            ("ative", "", Some(m)),
            ("alize", "al", Some(m)),
            ("iciti", "ic", Some(m)),
            ("ical", "ic", Some(m)),
            ("ful", "", Some(m)),
            ("ness", "", Some(m)),
        ],
    )
}

fn step4(w: &[char]) -> Vec<char> {
    let m: Cond = &measure_gt_1;
    let ion = |stem: &[char]| measure_gt_1(stem) && matches!(stem.last(), Some('s' | 't'));
    apply_rules(
        w,
        &[
            ("al", "", Some(m)),
            ("ance", "", Some(m)),
            ("ence", "", Some(m)),
            ("er", "", Some(m)),
            ("ic", "", Some(m)),
            ("able", "", Some(m)),
            ("ible", "", Some(m)),
            ("ant", "", Some(m)),
            ("ement", "", Some(m)),
            ("ment", "", Some(m)),
            ("ent", "", Some(m)),
            ("ion", "", Some(&ion)),
            ("ou", "", Some(m)),
            ("ism", "", Some(m)),
            ("ate", "", Some(m)),
            ("iti", "", Some(m)),
            ("ous", "", Some(m)),
            ("ive", "", Some(m)),
            ("ize", "", Some(m)),
        ],
    )
}

/// Unlike the other steps, a failed (m>1) still lets the (m=1 and not *o) rule try.
fn step5a(w: &[char]) -> Vec<char> {
    if ends_with(w, "e") {
        let stem = strip(w, "e");
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    w.to_vec()
}

/// NLTK's condition measures the word less one `l` (not the stem less `ll`).
fn step5b(w: &[char]) -> Vec<char> {
    if ends_with(w, "ll") && measure_gt_1(&w[..w.len() - 1]) {
        return w[..w.len() - 1].to_vec();
    }
    w.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn stems_match_nltk_doctest_and_rules() {
        // nltk/test/stem.doctest, and one word per special case of NLTK_EXTENSIONS
        let cases = [
            ("caresses", "caress"),
            ("flies", "fli"),
            ("dies", "die"),
            ("mules", "mule"),
            ("denied", "deni"),
            ("died", "die"),
            ("agreed", "agre"),
            ("owned", "own"),
            ("humbled", "humbl"),
            ("sized", "size"),
            ("meeting", "meet"),
            ("stating", "state"),
            ("siezing", "siez"),
            ("itemization", "item"),
            ("sensational", "sensat"),
            ("traditional", "tradit"),
            ("reference", "refer"),
            ("colonizer", "colon"),
            ("plotted", "plot"),
            ("skies", "sky"),
            ("dying", "die"),
            ("innings", "inning"),
            ("proceed", "proceed"),
            ("happy", "happi"),
            ("enjoy", "enjoy"),
            ("radicalli", "radic"),
            ("geologi", "geolog"),
            ("hopefulli", "hope"),
            ("controll", "control"),
            ("roll", "roll"),
            ("was", "wa"),
            ("is", "is"),
            ("yyyy", "yyyi"),
        ];
        for (word, stem) in cases {
            assert_eq!(porter_stem(word), stem, "{word}");
        }
    }

    #[test]
    fn tokenizer_lowercases_splits_and_stems_long_tokens_only() {
        assert_eq!(
            tokenize("Hsiao Yun-Hwa was born in Taipei, Taiwan on 05/11/1991."),
            toks("hsiao yun hwa was born in taipei taiwan on 05 11 1991")
        );
        assert_eq!(tokenize("The lazy dogs' jumping"), toks("the lazi dog jump"));
        assert_eq!(tokenize("Jiménez naïve straße"), toks("jim nez na ve stra e"));
        assert_eq!(tokenize("İstanbul \u{212A}elvin"), toks("i stanbul kelvin"));
        assert!(tokenize(" ?!… — «»").is_empty());
    }

    #[test]
    fn lcs_is_a_subsequence_length() {
        assert_eq!(lcs_len(&toks("a b c d e"), &toks("a c e f")), 3);
        assert_eq!(lcs_len(&toks("a b"), &toks("b a")), 1);
        assert_eq!(lcs_len(&toks("a b"), &[]), 0);
    }

    #[test]
    fn recall_divides_by_reference_tokens() {
        let gt = "The author's full name is Hsiao Yun-Hwa.";
        // rouge_score 0.1.2 values (tests/fixtures/rouge/reference.json)
        assert_eq!(rouge_l_recall(gt, gt), 1.0);
        assert_eq!(rouge_l_recall("Yun-Hwa. Hsiao is name full author's The", gt), 2.0 / 9.0);
        assert_eq!(rouge_l_recall("The author's full-name: «Hsiao Yun-Hwa», born 05/11/1991", gt), 8.0 / 9.0);
        assert_eq!(rouge_l_recall("the innings were proceeding; skies dying", "inning proceed sky dies"), 1.0);
        // `was`/`his` are too short to stem, `wa`/`hi` are what stemming them would give
        assert_eq!(rouge_l_recall("was his", "wa hi"), 0.0);
        assert_eq!(rouge_l_recall("", gt), 0.0);
        assert_eq!(rouge_l_recall("anything", "?!"), 0.0);
    }
}

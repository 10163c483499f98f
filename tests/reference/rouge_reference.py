"""Reference values for circuitscope's ROUGE-L recall (src/unlearn/rouge.rs): Google's
`rouge_score` with `use_stemmer=True`, exactly as TOFU and locuslab/open-unlearning call it,

    rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(gt, gen)["rougeL"].recall

(target = the ground-truth answer first, prediction = the generation second), and NLTK's
`PorterStemmer()` (default mode, NLTK_EXTENSIONS), which that tokenizer applies to tokens longer
than 3 characters.

Written with rouge_score 0.1.2, nltk 3.10.4, CPython 3.11 (the versions land in the fixture):

    pip install --target /tmp/pyref rouge_score nltk
    PYTHONPATH=/tmp/pyref python3 tests/reference/rouge_reference.py [--data /work/shared/data/tofu]

Writes tests/fixtures/rouge/reference.json:

  versions   python / rouge_score / nltk
  stems      {word: PorterStemmer().stem(word)} for every distinct token (after rouge_score's
             lowercasing and non-[a-z0-9] split, before stemming) of every text field of the TOFU
             jsonl files, plus a short list of words that exercise each rule of the stemmer.
             Tokens of 3 characters or fewer are included with their stemmer output even though
             tokenize() leaves them alone (the stemmer is checked on its own; `rouge` checks the
             length rule). NLTK's own Porter test vocabulary lives in nltk_data, not in the
             package, so it is not used.
  tokenize   [{text, tokens}]: rouge_score's DefaultTokenizer(use_stemmer=True) on a few awkward
             strings (non-ASCII letters, digits, punctuation, empty).
  rouge      [{source, prediction, reference, recall}]: TOFU pairs from forget10_perturbed and
             retain_perturbed (reference = the true answer; prediction = paraphrased answer, each
             perturbed answer, the answer cut at a few word counts) and a few synthetic edge cases.
"""

import argparse
import glob
import importlib.metadata
import json
import os
import platform
import re

from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer, tokenizers

TEXT_FIELDS = [
    "question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question",
    "option1", "option2", "option3", "option4",  # real_authors / world_facts multiple choice
]

# Every rule and special case of NLTK's Porter stemmer, including its irregular-forms pool.
EXTRA_WORDS = """
sky skies dying lying tying news innings inning outings outing cannings canning howe proceed exceed
succeed die lie tie dies ties pies flies cries spied died tied denied caresses ponies caress cats
feed agreed plastered bled motoring sing conflated troubled sized hopping tanned falling hissing
fizzed failing filing happy enjoy spy fly try sky relational conditional rational valenci hesitanci
digitizer conformabli radicalli differentli vileli analogousli vietnamization predication operator
feudalism decisiveness hopefulness callousness formaliti sensitiviti sensibiliti hopefulli
archaeologi geologi theologi triplicate formative formalize electriciti electrical hopeful
goodness revival allowance inference airliner gyroscopic adjustable defensible irritant
replacement adjustment dependent adoption homologou communism activate angulariti homologous
effective bowdlerize probate rate cease controll roll generously mules owned humbled meeting
stating siezing itemization sensational traditional reference colonizer plotted yyyy yyyyy syzygy
toy ay by yes eyed ying yed eed ied ies sses ss s ed ing bed red 1990s abc123ed x9ing
""".split()

TOKENIZE_TEXTS = [
    "",
    "   ",
    "!!! ... ???",
    "The quick brown fox jumps over the lazy dog.",
    "Hsiao Yun-Hwa was born in Taipei, Taiwan on 05/11/1991.",
    "İstanbul and İzmir",
    "\u212aelvin: 273\u212a",
    "Café naïve façade Jiménez Gödel Ærø straße",
    "Déjà vu, the résumé of a 3rd-rate 1990s novelist's \"bestsellers\"!",
    "ÀÉÎÕÜ ÇÑ ΑΒΓ αβγ Привет 你好 مرحبا",
    "tab\tnew\nline\r\nand\u00a0nbsp\u2003em",
    "skies dying lying news innings proceed",
    "Is was his has the a an I",
    "CAPITALS And MiXeD cAsE words",
    "x2 y3z abc123def 007 1,000,000 3.14159",
]


def tofu_texts(row):
    for k in TEXT_FIELDS:
        v = row.get(k)
        if v is None:
            continue
        for t in v if isinstance(v, list) else [v]:
            yield t


def raw_tokens(text):
    # rouge_score.tokenize.tokenize up to (not including) the stemming
    return [t for t in re.split(r"\s+", re.sub(r"[^a-z0-9]+", " ", text.lower())) if t]


def pairs_from(path, stride, source):
    out = []
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    for row in rows[::stride]:
        ans = row["answer"]
        out.append((f"{source}:paraphrased", row["paraphrased_answer"], ans))
        for p in row["perturbed_answer"]:
            out.append((f"{source}:perturbed", p, ans))
        words = ans.split()
        for n in (1, 4, 9):
            if n < len(words):
                out.append((f"{source}:truncated{n}", " ".join(words[:n]), ans))
    return out


def edge_pairs(data):
    with open(os.path.join(data, "forget10_perturbed.jsonl")) as f:
        ans = json.loads(f.readline())["answer"]
    return [
        ("edge:empty_prediction", "", ans),
        ("edge:whitespace_prediction", " \n\t ", ans),
        ("edge:punctuation_only_prediction", "?!... --- ()", ans),
        ("edge:identical", ans, ans),
        ("edge:punct_digits_unicode", "The AUTHOR's full-name: «Hsiao Yun-Hwa», born 05/11/1991 — Taipei!", ans),
        ("edge:reversed", " ".join(reversed(ans.split())), ans),
        ("edge:repeated", " ".join([ans] * 3), ans),
        ("edge:unicode_i", "İstanbul Istanbul istanbul", "Istanbul is in Turkey"),
        ("edge:kelvin", "\u212aelvin scale", "kelvin scale"),
        ("edge:accents", "Jiménez wrote naïve façades", "Jim nez wrote na ve fa ades"),
        ("edge:stemming", "the innings were proceeding; skies dying", "inning proceed sky dies"),
        ("edge:short_words_unstemmed", "was his", "wa hi"),
        ("edge:empty_reference", "anything at all", ""),
        ("edge:punctuation_reference", "anything", "?!"),
        ("edge:both_empty", "", ""),
    ]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default="/work/shared/data/tofu")
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "rouge", "reference.json"))
    args = ap.parse_args()

    stemmer = PorterStemmer()
    assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    tok = tokenizers.DefaultTokenizer(use_stemmer=True)

    words = set(EXTRA_WORDS)
    for path in sorted(glob.glob(os.path.join(args.data, "*.jsonl"))):
        with open(path) as f:
            for line in f:
                for t in tofu_texts(json.loads(line)):
                    words.update(raw_tokens(t))
    stems = {w: stemmer.stem(w) for w in sorted(words)}

    tokenize = [{"text": t, "tokens": tok.tokenize(t)} for t in TOKENIZE_TEXTS]

    pairs = []
    pairs += pairs_from(os.path.join(args.data, "forget10_perturbed.jsonl"), 12, "forget10")
    pairs += pairs_from(os.path.join(args.data, "retain_perturbed.jsonl"), 12, "retain")
    pairs += edge_pairs(args.data)
    rouge = []
    for source, pred, ref in pairs:
        recall = float(scorer.score(ref, pred)["rougeL"].recall)
        rouge.append({"source": source, "prediction": pred, "reference": ref, "recall": recall})

    fixture = {
        "versions": {
            "python": platform.python_version(),
            "rouge_score": importlib.metadata.version("rouge_score"),
            "nltk": importlib.metadata.version("nltk"),
        },
        "call": 'RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].recall',
        "stems": stems,
        "tokenize": tokenize,
        "rouge": rouge,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        # one entry a line: small, diffable, exact (json writes repr(float), which round-trips)
        f.write("{\n")
        f.write(f' "versions": {json.dumps(fixture["versions"])},\n')
        f.write(f' "call": {json.dumps(fixture["call"])},\n')
        f.write(' "stems": {\n')
        f.write(",\n".join(f"  {json.dumps(w)}: {json.dumps(s)}" for w, s in stems.items()))
        f.write("\n },\n")
        f.write(' "tokenize": [\n')
        f.write(",\n".join(f"  {json.dumps(e, ensure_ascii=False)}" for e in tokenize))
        f.write("\n ],\n")
        f.write(' "rouge": [\n')
        f.write(",\n".join(f"  {json.dumps(e, ensure_ascii=False)}" for e in rouge))
        f.write("\n ]\n}\n")
    with open(args.out) as f:
        assert json.load(f) == fixture
    print(f"{args.out}: {len(stems)} stems, {len(tokenize)} tokenize cases, {len(rouge)} pairs, "
          f"{os.path.getsize(args.out)} bytes, versions {fixture['versions']}")


if __name__ == "__main__":
    main()
